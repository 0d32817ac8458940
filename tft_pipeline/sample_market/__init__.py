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
    factor. Daily log-return = drift + planted edge + beta x market + idiosyncratic shock + jump
    (+ the drift after catalyst events).
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
    universe over the whole span, the cross-sectional rank IC of s_D is about 0.033 against the
    next session's return and about 0.041 against the next 5 sessions' (0.041-0.048 across seeds
    1, 2, 3, 11 and the default); the top-minus-bottom quintile earns about 0.62 % over 5 sessions
    (before the catalyst events, whose drift windows are noise to it: 0.034, 0.044 and 0.67 %).
    One year of 50 tickers is far too little to see it (standard error about 0.02).
    ``planted_edge_summary`` measures it on any tickers and sessions; ``latent_sentiment`` exposes
    s itself. Nothing else in the returns is predictable from the cross-section but the catalyst
    drift below.

Catalyst events
    A second, rare and strong edge. CATALYST_RATE = 0.4 % of ticker-sessions carry a catalyst
    event, drawn per ticker from its own stream (so a ticker's events never depend on the rest of
    the universe, and no older draw moved): a kind of news out of CATALYST_KINDS, half bullish
    (fda_approval, buyback, guidance_raise, contract_win, takeover_bid), half bearish
    (fda_rejection, guidance_cut, secondary_offering, sec_probe, lost_contract). The news breaks
    inside the Reddit window of the event session D. D's own close-to-close return never sees it,
    nor does the overnight gap into D+1: from D+1 on, for CATALYST_DRIFT_SESSIONS = 10 sessions, the
    intraday (open to close) log-return drifts in the event's direction by CATALYST_DRIFT = 1.0
    daily volatility x strength (uniform 0.5..1.5 per event) on D+1, shrinking by
    CATALYST_DRIFT_DECAY = 0.9 a session. So a feature built at D's close can only see the event in
    D's chatter and volume, and an order placed then and filled at D+1's open catches all of it.
    On D the volume is multiplied by 2..4 (log-uniform), and a burst of about CATALYST_BURST_POSTS
    = 6 posts (Poisson, x scale) about the ticker follows the news (exponential delays, mean 45
    minutes, all inside D's window), with about 4 comments each (60 % naming the ticker, the rest
    reactions; late ones fall into D+1's window). They are written in the words of
    ``tft_pipeline.features.catalysts`` ("FDA approval", "buyback", "raises guidance", "wins a $2B
    contract", "takeover bid"; "complete response letter", "cuts guidance", "secondary offering",
    "SEC probe", "lost the contract"), name the ticker as "$NVDA" or "NVDA", and read with the
    event's sign both in ``catalyst_direction`` and in VADER. Rumours blur the signal: posts in the
    same words (a random kind, either way) about tickers without an event, about
    CATALYST_RUMOUR_SHARE = 15 % as many as the event posts (0.0036 a ticker-session at scale 1,
    usually one at a time), with no price effect. Unlike the ordinary chatter, catalyst chatter
    grows with the number of tickers (about 0.028 posts a ticker-session at scale 1: 1.4 a window
    for 50 tickers, 14 for 500). It has its own id ranges, random streams and dirt: returns outside
    the drift windows, overnight gaps, volume off event sessions, the ordinary posts and comments
    (dirt included) and ``latent_sentiment`` are exactly what they were before catalysts; price
    levels before 2024-01-02 moved by the drifts between them and that anchor session.

    Measured on the 50-ticker core universe (``CORE_UNIVERSE``, the first 50 of the default 500)
    over the sessions 2010-01-04..2030-12-31 with
    ``catalyst_edge_summary`` (trade entered at D+1's open in the event's direction, Wilder ATR(14)
    known at D's close, target 2 ATR, stop 1 ATR, 10 sessions, a bar touching both is the stop),
    also recorded by ``python -m bench sample_market`` (``catalyst_*`` figures):

        from tft_pipeline.sample_market import catalyst_edge_summary
        from tft_pipeline.trading_calendar import sessions_between
        from tft_pipeline.universe import CORE_UNIVERSE
        catalyst_edge_summary(CORE_UNIVERSE, sessions_between("2010-01-04", "2030-12-31"))

    1,067 events in 263,450 ticker-sessions (4.05 per 1,000; 531 bullish, 536 bearish); the target
    comes first after 84.2 % of bullish and 79.1 % of bearish events (81.6 % together), against a
    base rate of 27.8 % for the same long trade on the sessions without an event (24.0 % short).
    On the default 500 tickers: 10,474 events (3.98 per 1,000), 83.8 % / 80.3 % (82.1 %), base
    28.2 % / 23.8 %. The event-direction log-return from D+1's open to D+10's close averages 17 %; D's own event-direction return averages 0.04 daily volatilities (t = 1.2,
    noise), D+1's 0.84. ``catalyst_events`` gives the truth (ticker, session_date, direction,
    kind). The drift windows (4 % of ticker-sessions) add noise to the planted sentiment edge: its
    rank IC figures above are measured with them.

Dirt (extra rows only; rates in PRICE_DIRT_RATES, POST_DIRT_RATES, COMMENT_DIRT_RATES)
    Repeated and corrected fetches, zero/negative prices, crossed high/low, NaN volume, malformed
    symbols; repeated and edited post fetches, missing titles; duplicate comments and empty-bodied
    shells. Rejecting invalid rows and keeping the latest valid fetch per key gives back the truth.
"""

from tft_pipeline.sample_market.catalysts import (
    CATALYST_DRIFT,
    CATALYST_DRIFT_DECAY,
    CATALYST_DRIFT_SESSIONS,
    CATALYST_KINDS,
    CATALYST_RATE,
    catalyst_events,
)
from tft_pipeline.sample_market.dirt import COMMENT_DIRT_RATES, POST_DIRT_RATES, PRICE_DIRT_RATES
from tft_pipeline.sample_market.edge import catalyst_edge_summary, planted_edge_summary
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
    CATALYST_BURST_POSTS,
    CATALYST_RUMOUR_SHARE,
    POSTS_PER_WEEKDAY_WINDOW,
    generate_reddit_comments,
    generate_reddit_posts,
)

__all__ = [
    "CATALYST_BURST_POSTS",
    "CATALYST_DRIFT",
    "CATALYST_DRIFT_DECAY",
    "CATALYST_DRIFT_SESSIONS",
    "CATALYST_KINDS",
    "CATALYST_RATE",
    "CATALYST_RUMOUR_SHARE",
    "COMMENT_DIRT_RATES",
    "DEFAULT_SEED",
    "EDGE_BETA",
    "POSTS_PER_WEEKDAY_WINDOW",
    "POST_DIRT_RATES",
    "PRICE_DIRT_RATES",
    "SENTIMENT_PERSISTENCE",
    "TickerProfile",
    "catalyst_edge_summary",
    "catalyst_events",
    "generate_price_history",
    "generate_reddit_comments",
    "generate_reddit_posts",
    "latent_sentiment",
    "planted_edge_summary",
    "ticker_profile",
]
