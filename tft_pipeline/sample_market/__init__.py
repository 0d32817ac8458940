"""The bundled deterministic sample market: offline prices and Reddit chatter with a planted edge.

Pure (no Dagster). The default data source: a newcomer runs the whole pipeline on it.

Determinism
    Each ticker is one simulated path over the whole calendar span of ``trading_calendar``
    (2000-01-03..2030-12-31, 7,794 sessions), from a generator seeded with (seed, crc32(ticker));
    requests are slices of it. Each session's Reddit window is generated from (seed, session
    ordinal) and the configuration (tickers, subreddits, scale), so a session's rows are the same
    whether asked for alone, in a range, or after other calls. ``fetched_at`` derives from the
    session close plus seeded offsets, never from the wall clock.

Prices (any symbol; parameters from its hash)
    Price level on 2024-01-02 of 10..800, annual volatility 15..80 %, beta to a common market
    factor. Daily log-return = drift + planted edge + beta x market + idiosyncratic shock + jump.
    Market and idiosyncratic volatility switch between calm and stressed regimes (2-state Markov),
    and idiosyncratic volatility also drifts (log-AR(1)), so big moves cluster; shocks are
    fat-tailed (normal scale mixture); 2 % of sessions carry an earnings-like jump that gaps the
    open. Part of every move happens overnight, so opens differ from previous closes.
    High/low extend the open/close body; volume has a per-ticker base, autocorrelated noise, and
    rises with big moves and with Reddit attention. adj_close = close (no dividends).

Reddit
    Posts over each session's whole window (previous close to this close: nights, weekends and
    holidays fall to the next session), busiest at the open and the close, lower at night and on
    closed days; about 60 posts per ordinary window at ``scale=1`` (more on Mondays), about 4
    comments per post (negative binomial), in the configured subreddits. Titles, selftexts and
    comments are assembled from tone-labelled templates (checked with VADER) naming tickers as
    "$NVDA" or "NVDA" next to look-alikes that are not tickers (YOLO, DD, CEO, IT, ALL, FOR, ON, A,
    I, USA, IMO, ATH, EPS) and trading slang. Popular tickers (GME, TSLA, NVDA, AMC, PLTR...) and
    tickers on big-move days get more mentions. Comments come after their post, mostly in the same
    window; late ones fall into the next window.

The planted edge
    Every ticker has a latent daily sentiment s (AR(1), persistence SENTIMENT_PERSISTENCE = 0.8,
    unit variance). The tone of each post or comment about the ticker in session D's window is
    bullish / neutral / bearish as s_D + N(0, 1) is above 0.6 / between / below -0.6. The
    expected log-return of session D+1 is raised by EDGE_BETA x daily volatility x s_D with
    EDGE_BETA = 0.0225. Session D's own return never sees s_D (only s_{D-1}): sentiment built from
    D's window and known at D's close predicts D+1 onwards, with no look-ahead. On the default
    universe over the whole span, the cross-sectional rank IC of s_D is about 0.034 against the
    next session's return and about 0.044 against the next 5 sessions' (0.042-0.048 across seeds
    and universes); the top-minus-bottom quintile earns about 0.67 % over 5 sessions. One year of
    50 tickers is far too little to see it (standard error about 0.02). ``planted_edge_summary``
    measures it on any tickers and sessions; ``latent_sentiment`` exposes s itself. Nothing
    else in the returns is predictable from the cross-section.

Dirt (extra rows only; rates in PRICE_DIRT_RATES, POST_DIRT_RATES, COMMENT_DIRT_RATES)
    Repeated and corrected fetches, zero/negative prices, crossed high/low, NaN volume, malformed
    symbols; repeated and edited post fetches, missing titles; duplicate comments and empty-bodied
    shells. Rejecting invalid rows and keeping the latest valid fetch per key gives back the truth.
"""

from tft_pipeline.sample_market.dirt import COMMENT_DIRT_RATES, POST_DIRT_RATES, PRICE_DIRT_RATES
from tft_pipeline.sample_market.edge import planted_edge_summary
from tft_pipeline.sample_market.prices import (
    EDGE_BETA,
    SENTIMENT_PERSISTENCE,
    TickerProfile,
    generate_price_history,
    latent_sentiment,
    ticker_profile,
)
from tft_pipeline.sample_market.randomness import DEFAULT_SEED
from tft_pipeline.sample_market.reddit import (
    POSTS_PER_WEEKDAY_WINDOW,
    generate_reddit_comments,
    generate_reddit_posts,
)

__all__ = [
    "COMMENT_DIRT_RATES",
    "DEFAULT_SEED",
    "EDGE_BETA",
    "POSTS_PER_WEEKDAY_WINDOW",
    "POST_DIRT_RATES",
    "PRICE_DIRT_RATES",
    "SENTIMENT_PERSISTENCE",
    "TickerProfile",
    "generate_price_history",
    "generate_reddit_comments",
    "generate_reddit_posts",
    "latent_sentiment",
    "planted_edge_summary",
    "ticker_profile",
]
