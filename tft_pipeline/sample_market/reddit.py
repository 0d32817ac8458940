"""The Reddit side of the sample market: posts and comments per session window, with planted tone,
plus the catalyst layer (bursts about events, rumours) on its own streams and ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from tft_pipeline.sample_market import text
from tft_pipeline.sample_market.catalysts import (
    CATALYST_KINDS,
    CATALYST_RATE,
    KIND_DIRECTION,
    catalyst_path,
)
from tft_pipeline.sample_market.dirt import add_comment_dirt, add_post_dirt
from tft_pipeline.sample_market.ids import (
    CATALYST_COMMENT_ID_OFFSET,
    CATALYST_POST_ID_OFFSET,
    COMMENT_ID_BASE,
    COMMENT_ID_STRIDE,
    POST_ID_BASE,
    POST_ID_STRIDE,
    SHELL_ID_OFFSET,
    base36,
)
from tft_pipeline.sample_market.layout import exact_layout
from tft_pipeline.sample_market.prices import market_path, ticker_path, unique_tickers
from tft_pipeline.sample_market.randomness import DEFAULT_SEED, Stream, generator, ticker_key
from tft_pipeline.sample_market.span import (
    calendar_closes_ns,
    calendar_sessions,
    session_count,
    session_ordinals,
    sessions_of,
)
from tft_pipeline.tables import RAW_COMMENT_COLUMNS, RAW_POST_COLUMNS, empty_frame, text_state_of
from tft_pipeline.trading_calendar import NEW_YORK, fetch_lag_hours

POSTS_PER_WEEKDAY_WINDOW = 60.0  # expected posts at scale 1 in an ordinary 24-hour window
COMMENTS_PER_POST = 4.0  # mean of a negative binomial: most posts get a few, some get dozens
COMMENT_DISPERSION = 1.5
COMMENT_DELAY_MEDIAN_S = 45 * 60.0  # comments arrive log-normally after their post
COMMENT_DELAY_SIGMA = 1.3
NO_TICKER_SHARE = 0.15  # posts about the market in general
SECOND_TICKER_SHARE = 0.12  # posts that also name another ticker
CASHTAG_SHARE = 0.5  # "$NVDA" rather than "NVDA"
COMMENT_NAMES_TICKER = 0.45
COMMENT_OTHER_TICKER = 0.08  # comments about some other ticker than their post's
# Tone of a text about a ticker: t = TONE_LOADING * s + N(0, 1); bullish above the threshold,
# bearish below minus it, neutral between (a text about no ticker has s = 0).
TONE_LOADING = 1.0
TONE_THRESHOLD = 0.6
# Catalyst chatter, on top of the ordinary posts (CATALYST_RATE of ticker-sessions carry an event):
# about CATALYST_BURST_POSTS posts (Poisson, x scale) about the ticker in its event's window, after
# the news breaks; and rumours, posts in the same words about a ticker without an event, about
# CATALYST_RUMOUR_SHARE as many as the event posts over all ticker-sessions (no price effect).
CATALYST_BURST_POSTS = 6.0
CATALYST_RUMOUR_SHARE = 0.15
RUMOUR_POSTS_PER_TICKER_SESSION = CATALYST_RUMOUR_SHARE * CATALYST_RATE * CATALYST_BURST_POSTS
CATALYST_POST_DELAY_S = 45 * 60.0  # mean delay of the posts after the news (exponential)
CATALYST_COMMENTS_PER_POST = 4.0  # as many as on an ordinary post
CATALYST_COMMENT_NAMES_TICKER = 0.6  # the others are reactions ("Huge news, congrats longs!")
DELETED_AUTHOR_SHARE = 0.02  # "[deleted]"
MISSING_AUTHOR_SHARE = 0.005  # None, as praw gives for a deleted account
AUTHOR_POOL_SIZE = 5000

# Subreddits' share of posts; others get a weight from their name's hash.
SUBREDDIT_WEIGHTS: dict[str, float] = {"wallstreetbets": 3.0, "stocks": 1.5, "investing": 1.0}

BIN_NS = 15 * 60 * 1_000_000_000
# Relative posting intensity per New York hour: busy at the open and the close, quiet at night;
# weekends and holidays are flatter and lower.
# fmt: off
HOURLY_SESSION_DAY = np.array(
    [0.25, 0.2, 0.2, 0.2, 0.25, 0.3, 0.45, 0.7, 1.0, 1.6, 1.5, 1.2,
     1.0, 1.0, 1.1, 1.5, 1.3, 1.0, 0.9, 0.9, 0.9, 0.8, 0.6, 0.4]
)
HOURLY_CLOSED_DAY = 0.45 * np.array(
    [0.4, 0.3, 0.25, 0.2, 0.2, 0.25, 0.35, 0.5, 0.7, 0.9, 1.0, 1.0,
     1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.6]
)
# fmt: on
# 15-minute bins per hour: the weekday total over 24 hours is POSTS_PER_WEEKDAY_WINDOW.
_WEEKDAY_BIN_WEIGHT_TOTAL = 4.0 * HOURLY_SESSION_DAY.sum()


@lru_cache(maxsize=8)
def author_pool(seed: int = DEFAULT_SEED) -> np.ndarray:
    """Reddit-like user names, the most active first."""
    rng = generator(seed, Stream.AUTHORS)
    # fmt: off
    first = np.array(
        ["Diamond", "Paper", "Tendie", "Moon", "Bull", "Bear", "Theta", "Gamma", "Yolo", "Dip",
         "Retail", "Smooth", "Rocket", "Value", "Quiet", "Lucky", "Degenerate", "Patient"],
        dtype=object,
    )
    second = np.array(
        ["Hands", "Trader", "Ape", "Investor", "Gang", "Lord", "Wizard", "Buyer", "Holder",
         "Enjoyer", "Monk", "Chaser", "Goblin", "Boomer", "Panda"],
        dtype=object,
    )
    # fmt: on
    separators = np.array(["_", "-", ""], dtype=object)
    numbers = rng.integers(1, 9999, AUTHOR_POOL_SIZE).astype(str).astype(object)
    return text.concat(
        first[rng.integers(0, len(first), AUTHOR_POOL_SIZE)],
        separators[rng.integers(0, len(separators), AUTHOR_POOL_SIZE)],
        second[rng.integers(0, len(second), AUTHOR_POOL_SIZE)],
        numbers,
    )


def _subreddit_weights(subreddits: tuple[str, ...]) -> np.ndarray:
    weights = np.array(
        [
            SUBREDDIT_WEIGHTS.get(name.lower(), 0.5 + (ticker_key(name.lower()) % 1000) / 1000.0)
            for name in subreddits
        ]
    )
    return weights / weights.sum()


def _draw_authors(rng: np.random.Generator, count: int) -> np.ndarray:
    """Author codes: index into the pool, -1 for "[deleted]", -2 for None."""
    # Power users: a squashed uniform puts most posts on the low (most active) indices.
    codes = (AUTHOR_POOL_SIZE * rng.random(count) ** 2.5).astype(np.int32)
    gone = rng.random(count)
    codes[gone < DELETED_AUTHOR_SHARE + MISSING_AUTHOR_SHARE] = -1
    codes[gone < MISSING_AUTHOR_SHARE] = -2
    return codes


def _author_names(codes: np.ndarray, seed: int) -> np.ndarray:
    names = author_pool(seed)[np.maximum(codes, 0)]
    names = np.where(codes == -1, "[deleted]", names)
    return np.where(codes == -2, None, names)


def _tones(rng: np.random.Generator, latent: np.ndarray) -> np.ndarray:
    draw = TONE_LOADING * latent + rng.standard_normal(len(latent))
    return np.where(
        draw > TONE_THRESHOLD,
        text.BULLISH,
        np.where(draw < -TONE_THRESHOLD, text.BEARISH, text.NEUTRAL),
    ).astype(np.int8)


_NS_PER_S = 1_000_000_000
_NS_PER_HOUR = 3600 * _NS_PER_S
_NS_PER_DAY = 24 * _NS_PER_HOUR


@lru_cache(maxsize=1)
def _new_york_tables() -> tuple[int, np.ndarray, int, np.ndarray]:
    """Hourly UTC offsets of New York and a trading-day flag per day, over the span (built once).

    DST switches on a whole UTC hour, so an hourly table gives exact local times for any instant.
    """
    closes = calendar_closes_ns()
    first_hour = (closes[0] // _NS_PER_DAY - 7) * _NS_PER_DAY
    hours = pd.date_range(
        pd.Timestamp(first_hour, tz="UTC"),
        pd.Timestamp(closes[-1] + 8 * _NS_PER_DAY, tz="UTC"),
        freq="h",
    )
    offsets = hours.tz_convert(NEW_YORK).tz_localize(None).asi8 - hours.asi8
    session_days = calendar_sessions().asi8 // _NS_PER_DAY
    first_day = int(session_days[0]) - 7
    trading = np.zeros(int(session_days[-1]) - first_day + 8, dtype=bool)
    trading[session_days - first_day] = True
    return int(first_hour), offsets, first_day, trading


def _window_bins(ordinal: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, length and relative intensity of the 15-minute bins of session ``ordinal``'s window."""
    closes = calendar_closes_ns()
    start, end = closes[ordinal - 1], closes[ordinal]
    starts = np.arange(start, end, BIN_NS, dtype=np.int64)
    lengths = np.minimum(BIN_NS, end - starts)
    first_hour, offsets, first_day, trading = _new_york_tables()
    local = starts + offsets[(starts - first_hour) // _NS_PER_HOUR]
    trading_day = trading[local // _NS_PER_DAY - first_day]
    hours = (local % _NS_PER_DAY) // _NS_PER_HOUR
    weights = np.where(trading_day, HOURLY_SESSION_DAY[hours], HOURLY_CLOSED_DAY[hours])
    return starts, lengths, weights * (lengths / BIN_NS)


@dataclass(frozen=True, eq=False)
class _Chatter:
    """One session's posts and every comment on them, as numbers (text is rendered later)."""

    ordinal: int
    post_created: np.ndarray  # ns UTC, sorted
    post_id: np.ndarray  # id numbers
    post_subreddit: np.ndarray
    post_ticker: np.ndarray  # index into the sorted tickers, -1 for none
    post_second_ticker: np.ndarray
    post_tone: np.ndarray
    post_cashtag: np.ndarray
    post_second_cashtag: np.ndarray
    post_title: np.ndarray  # template indices
    post_opener: np.ndarray
    post_subject: np.ndarray  # generic subject of posts about no ticker
    post_sentence_named: np.ndarray
    post_sentence_other: np.ndarray
    post_filler: np.ndarray
    post_author: np.ndarray
    post_score: np.ndarray
    post_num_comments: np.ndarray
    post_fetched: np.ndarray
    comment_post: np.ndarray  # index into the posts above
    comment_created: np.ndarray  # sorted
    comment_id: np.ndarray
    comment_session: np.ndarray  # ordinal of the window holding the comment (this one or the next)
    comment_subject: np.ndarray  # ticker index talked about, -1 for none
    comment_named: np.ndarray  # the body names the ticker
    comment_cashtag: np.ndarray
    comment_tone: np.ndarray
    comment_template: np.ndarray
    comment_author: np.ndarray
    comment_score: np.ndarray
    comment_fetched: np.ndarray


def _ticker_states(
    tickers: tuple[str, ...], ordinal: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Latent sentiment and mention weights (popularity x attention) of every ticker at ``ordinal``."""
    paths = [ticker_path(ticker, seed) for ticker in tickers]
    sentiment = np.array([p.sentiment[ordinal] for p in paths], dtype=np.float64)
    weights = np.array(
        [p.profile.popularity * p.attention[ordinal] for p in paths], dtype=np.float64
    )
    return sentiment, weights / weights.sum()


def _fetch_delay_ns(rng: np.random.Generator, count: int) -> np.ndarray:
    # The scraper runs 1 to 10 minutes after the close.
    return (60 + rng.integers(0, 540, count)).astype(np.int64) * 1_000_000_000


def _comment_arrivals(
    rng: np.random.Generator, created: np.ndarray, ordinal: int, mean_per_post: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Comments on posts created at ``created``: (post index, creation time, spilled into the next
    window), sorted by time. Most land in this window, late ones in the next; later ones are never
    fetched."""
    closes = calendar_closes_ns()
    per_post = rng.negative_binomial(
        COMMENT_DISPERSION, COMMENT_DISPERSION / (COMMENT_DISPERSION + mean_per_post), len(created)
    )
    comment_post = np.repeat(np.arange(len(created), dtype=np.int32), per_post)
    delay = rng.lognormal(np.log(COMMENT_DELAY_MEDIAN_S), COMMENT_DELAY_SIGMA, len(comment_post))
    comment_created = created[comment_post] + np.maximum(delay, 1.0).astype(np.int64) * _NS_PER_S
    horizon = closes[ordinal + 1] if ordinal + 1 < session_count() else closes[ordinal]
    keep = comment_created < horizon
    comment_post, comment_created = comment_post[keep], comment_created[keep]
    order = np.argsort(comment_created, kind="stable")
    comment_post, comment_created = comment_post[order], comment_created[order]
    return comment_post, comment_created, comment_created >= closes[ordinal]


@lru_cache(maxsize=64)
def _session_chatter(
    seed: int, ordinal: int, tickers: tuple[str, ...], subreddits: tuple[str, ...], scale: float
) -> _Chatter:
    """Posts of session ``ordinal``'s window and their comments, from (seed, ordinal) alone."""
    rng = generator(seed, Stream.POSTS, ordinal)
    closes = calendar_closes_ns()
    has_next = ordinal + 1 < session_count()

    starts, lengths, intensity = _window_bins(ordinal)
    market = market_path(seed)
    market_surprise = min(abs(market.returns[ordinal]) / market.volatility[ordinal], 4.0)
    buzz = max(0.5, 1.0 + 0.25 * (market_surprise - 0.8))  # market-wide big days draw more posts
    expected = scale * POSTS_PER_WEEKDAY_WINDOW * buzz * intensity.sum() / _WEEKDAY_BIN_WEIGHT_TOTAL
    count = int(rng.poisson(expected))
    bins = rng.choice(len(starts), size=count, p=intensity / intensity.sum())
    offsets_s = (rng.random(count) * (lengths[bins] // _NS_PER_S)).astype(np.int64)
    created = np.sort(starts[bins] + offsets_s * _NS_PER_S)  # Reddit stamps whole seconds

    sentiment, weights = _ticker_states(tickers, ordinal, seed)
    n_tickers = len(tickers)
    ticker = rng.choice(n_tickers, size=count, p=weights).astype(np.int32)
    ticker[rng.random(count) < NO_TICKER_SHARE] = -1
    second = rng.choice(n_tickers, size=count, p=weights).astype(np.int32)
    second[(rng.random(count) >= SECOND_TICKER_SHARE) | (second == ticker) | (ticker < 0)] = -1
    tone = _tones(rng, np.where(ticker >= 0, sentiment[np.maximum(ticker, 0)], 0.0))
    named_first = (rng.random(count) < 0.5) & (ticker >= 0)

    post_fetched = closes[ordinal] + _fetch_delay_ns(rng, count)
    post = {
        "post_created": created,
        "post_id": POST_ID_BASE + ordinal * POST_ID_STRIDE + np.arange(count, dtype=np.int64),
        "post_subreddit": rng.choice(
            len(subreddits), size=count, p=_subreddit_weights(subreddits)
        ).astype(np.int16),
        "post_ticker": ticker,
        "post_second_ticker": second,
        "post_tone": tone,
        "post_cashtag": rng.random(count) < CASHTAG_SHARE,
        "post_second_cashtag": rng.random(count) < CASHTAG_SHARE,
        "post_title": text.TITLE_TABLE.pick(tone, rng.random(count)),
        "post_opener": rng.integers(0, len(text.OPENERS), count),
        "post_subject": rng.integers(0, len(text.SUBJECTS), count),
        "post_sentence_named": text.POST_SENTENCE_TABLE.pick(
            2 * tone + named_first, rng.random(count)
        ),
        "post_sentence_other": text.POST_SENTENCE_TABLE.pick(2 * tone, rng.random(count)),
        "post_filler": rng.integers(0, len(text.FILLERS), count),
        "post_author": _draw_authors(rng, count),
        "post_fetched": post_fetched,
    }

    comment_post, comment_created, spilled = _comment_arrivals(
        rng, created, ordinal, COMMENTS_PER_POST
    )
    n_comments = len(comment_post)
    comment_session = np.where(spilled, ordinal + 1, ordinal).astype(np.int32)

    subject = ticker[comment_post].copy()
    strays = rng.random(n_comments) < COMMENT_OTHER_TICKER
    subject[strays] = rng.choice(n_tickers, size=int(strays.sum()), p=weights)
    next_sentiment = _ticker_states(tickers, ordinal + 1, seed)[0] if has_next else sentiment
    # Each comment's tone follows the latent sentiment of the session whose window holds it.
    subject_sentiment = np.where(
        spilled, next_sentiment[np.maximum(subject, 0)], sentiment[np.maximum(subject, 0)]
    )
    comment_tone = _tones(rng, np.where(subject >= 0, subject_sentiment, 0.0))
    named = (rng.random(n_comments) < COMMENT_NAMES_TICKER) & (subject >= 0)
    comment_template = text.COMMENT_TABLE.pick(2 * comment_tone + named, rng.random(n_comments))
    comment_score = np.floor(rng.lognormal(0.8, 1.2, n_comments)).astype(np.int32)
    comment_score[rng.random(n_comments) < 0.12] *= -1  # downvoted takes
    comment_fetched = closes[comment_session] + _fetch_delay_ns(rng, n_comments)

    num_comments = np.bincount(
        comment_post[comment_created < post_fetched[comment_post]], minlength=count
    ).astype(np.int32)
    post_score = np.round(
        rng.lognormal(1.5, 1.0, count) + num_comments * rng.lognormal(1.0, 0.7, count)
    ).astype(np.int32)

    return _Chatter(
        ordinal=ordinal,
        **post,
        post_score=post_score,
        post_num_comments=num_comments,
        comment_post=comment_post,
        comment_created=comment_created,
        comment_id=COMMENT_ID_BASE
        + ordinal * COMMENT_ID_STRIDE
        + np.arange(n_comments, dtype=np.int64),
        comment_session=comment_session,
        comment_subject=subject,
        comment_named=named,
        comment_cashtag=rng.random(n_comments) < CASHTAG_SHARE,
        comment_tone=comment_tone,
        comment_template=comment_template,
        comment_author=_draw_authors(rng, n_comments),
        comment_score=comment_score,
        comment_fetched=comment_fetched,
    )


def _empty_chatter(ordinal: int) -> _Chatter:
    """A window without posts of this kind."""
    none = np.zeros(0, dtype=np.int64)
    fields = {name: none for name in _Chatter.__dataclass_fields__ if name != "ordinal"}
    return _Chatter(ordinal=ordinal, **fields)


def _catalyst_states(
    tickers: tuple[str, ...], ordinal: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Event direction (0 for none) and kind index (-1 for none) of every ticker at ``ordinal``."""
    paths = [catalyst_path(ticker, seed) for ticker in tickers]
    direction = np.array([p.direction[ordinal] for p in paths], dtype=np.int8)
    kind = np.array([p.kind[ordinal] for p in paths], dtype=np.int64)
    return direction, kind


@lru_cache(maxsize=64)
def _session_catalyst_chatter(
    seed: int, ordinal: int, tickers: tuple[str, ...], subreddits: tuple[str, ...], scale: float
) -> _Chatter:
    """The catalyst posts (event bursts and rumours) of session ``ordinal``'s window and their
    comments, from (seed, ordinal) alone and their own stream: the ordinary chatter never moves."""
    rng = generator(seed, Stream.CATALYST_POSTS, ordinal)
    closes = calendar_closes_ns()
    event_direction, event_kind = _catalyst_states(tickers, ordinal, seed)
    is_event = event_direction != 0
    # A rumour is about some kind of news, either way, for a ticker that has none.
    kind = np.where(is_event, event_kind, rng.integers(0, len(CATALYST_KINDS), len(tickers)))
    expected = scale * np.where(is_event, CATALYST_BURST_POSTS, RUMOUR_POSTS_PER_TICKER_SESSION)
    per_ticker = rng.poisson(expected)
    count = int(per_ticker.sum())
    if count == 0:
        return _empty_chatter(ordinal)

    # The news breaks (or the rumour starts) at a busy moment of the window; posts follow it at
    # exponential delays truncated to the window's end, so they all belong to this session.
    talked = np.flatnonzero(per_ticker)
    starts, lengths, intensity = _window_bins(ordinal)
    bins = rng.choice(len(starts), size=len(talked), p=intensity / intensity.sum())
    offsets_s = (rng.random(len(talked)) * (lengths[bins] // _NS_PER_S)).astype(np.int64)
    news_at = np.repeat(starts[bins] + offsets_s * _NS_PER_S, per_ticker[talked])
    room_s = (closes[ordinal] - news_at) // _NS_PER_S
    mean_s = CATALYST_POST_DELAY_S
    delay_s = -mean_s * np.log1p(-rng.random(count) * -np.expm1(-room_s / mean_s))
    delay_s = np.minimum(np.floor(delay_s).astype(np.int64), room_s - 1)
    created = news_at + delay_s * _NS_PER_S
    order = np.argsort(created, kind="stable")
    created = created[order]
    ticker = np.repeat(talked, per_ticker[talked]).astype(np.int32)[order]
    post_kind = kind[ticker]
    direction = KIND_DIRECTION[post_kind]

    vocabulary = text.CATALYST_VOCABULARY
    post_fetched = closes[ordinal] + _fetch_delay_ns(rng, count)
    post = {
        "post_created": created,
        "post_id": POST_ID_BASE
        + ordinal * POST_ID_STRIDE
        + CATALYST_POST_ID_OFFSET
        + np.arange(count, dtype=np.int64),
        "post_subreddit": rng.choice(
            len(subreddits), size=count, p=_subreddit_weights(subreddits)
        ).astype(np.int16),
        "post_ticker": ticker,
        "post_second_ticker": np.full(count, -1, dtype=np.int32),
        "post_tone": np.where(direction > 0, text.BULLISH, text.BEARISH).astype(np.int8),
        "post_cashtag": rng.random(count) < CASHTAG_SHARE,
        "post_second_cashtag": np.zeros(count, dtype=bool),
        "post_title": vocabulary.titles.pick(post_kind, rng.random(count)),
        "post_opener": rng.integers(0, len(vocabulary.openers), count),
        "post_subject": np.zeros(count, dtype=np.int64),
        "post_sentence_named": vocabulary.post_sentences.pick(post_kind, rng.random(count)),
        "post_sentence_other": vocabulary.post_sentences.pick(
            text.catalyst_reaction_group(direction), rng.random(count)
        ),
        "post_filler": rng.integers(0, len(vocabulary.fillers), count),
        "post_author": _draw_authors(rng, count),
        "post_fetched": post_fetched,
    }

    comment_post, comment_created, spilled = _comment_arrivals(
        rng, created, ordinal, CATALYST_COMMENTS_PER_POST
    )
    n_comments = len(comment_post)
    comment_session = np.where(spilled, ordinal + 1, ordinal).astype(np.int32)
    named = rng.random(n_comments) < CATALYST_COMMENT_NAMES_TICKER
    comment_group = np.where(
        named, post_kind[comment_post], text.catalyst_reaction_group(direction[comment_post])
    )
    comment_score = np.floor(rng.lognormal(0.8, 1.2, n_comments)).astype(np.int32)
    comment_score[rng.random(n_comments) < 0.12] *= -1
    num_comments = np.bincount(
        comment_post[comment_created < post_fetched[comment_post]], minlength=count
    ).astype(np.int32)
    post_score = np.round(
        rng.lognormal(2.5, 1.0, count) + num_comments * rng.lognormal(1.0, 0.7, count)
    ).astype(np.int32)
    return _Chatter(
        ordinal=ordinal,
        **post,
        post_score=post_score,
        post_num_comments=num_comments,
        comment_post=comment_post,
        comment_created=comment_created,
        comment_id=COMMENT_ID_BASE
        + ordinal * COMMENT_ID_STRIDE
        + CATALYST_COMMENT_ID_OFFSET
        + np.arange(n_comments, dtype=np.int64),
        comment_session=comment_session,
        comment_subject=ticker[comment_post],
        comment_named=named,
        comment_cashtag=rng.random(n_comments) < CASHTAG_SHARE,
        comment_tone=np.where(direction[comment_post] > 0, text.BULLISH, text.BEARISH).astype(
            np.int8
        ),
        comment_template=vocabulary.comments.pick(comment_group, rng.random(n_comments)),
        comment_author=_draw_authors(rng, n_comments),
        comment_score=comment_score,
        comment_fetched=closes[comment_session] + _fetch_delay_ns(rng, n_comments),
    )


@dataclass(frozen=True, eq=False)
class _ChatterKind:
    """A layer of the sample Reddit with its own vocabulary, random streams and ids."""

    catalyst: bool
    vocabulary: text.Vocabulary
    post_dirt: Stream
    comment_dirt: Stream
    shell_id_offset: int


ORDINARY_CHATTER = _ChatterKind(
    False, text.ORDINARY_VOCABULARY, Stream.POST_DIRT, Stream.COMMENT_DIRT, SHELL_ID_OFFSET
)
CATALYST_CHATTER = _ChatterKind(
    True,
    text.CATALYST_VOCABULARY,
    Stream.CATALYST_POST_DIRT,
    Stream.CATALYST_COMMENT_DIRT,
    SHELL_ID_OFFSET + CATALYST_COMMENT_ID_OFFSET,
)
CHATTER_KINDS = (ORDINARY_CHATTER, CATALYST_CHATTER)


@dataclass(frozen=True)
class RedditConfig:
    """What a sample Reddit is made of: normalised so that equal configurations share caches."""

    tickers: tuple[str, ...]
    subreddits: tuple[str, ...]
    seed: int
    scale: float

    @classmethod
    def of(
        cls, tickers: Iterable[str], subreddits: Iterable[str], seed: int, scale: float
    ) -> RedditConfig:
        symbols = tuple(sorted(unique_tickers(tickers)))
        names = tuple(sorted(dict.fromkeys(s.strip() for s in subreddits if s and s.strip())))
        if not symbols:
            raise ValueError("the sample Reddit needs at least one ticker")
        if not names:
            raise ValueError("the sample Reddit needs at least one subreddit")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        return cls(tickers=symbols, subreddits=names, seed=int(seed), scale=float(scale))

    def chatter(self, ordinal: int, kind: _ChatterKind = ORDINARY_CHATTER) -> _Chatter:
        make = _session_catalyst_chatter if kind.catalyst else _session_chatter
        return make(self.seed, int(ordinal), self.tickers, self.subreddits, self.scale)


def reddit_ordinals(sessions: Iterable[dt.date | str | pd.Timestamp]) -> np.ndarray:
    """Ordinals of ``sessions``; the span's first session has no window and is refused."""
    ordinals = session_ordinals(sessions)
    if len(ordinals) and ordinals[0] < 1:
        raise ValueError(
            f"{calendar_sessions()[0].date()} is the first session of the span: its Reddit window "
            "starts before the sample market does"
        )
    return ordinals


def _references(config: RedditConfig, ticker: np.ndarray, cashtag: np.ndarray) -> np.ndarray:
    symbols = np.array(config.tickers, dtype=object)[np.maximum(ticker, 0)]
    return text.ticker_references(symbols, cashtag)


def _posts_of(
    config: RedditConfig, ordinals: np.ndarray, kind: _ChatterKind = ORDINARY_CHATTER
) -> tuple[pd.DataFrame, list[_Chatter]]:
    """The true posts (no dirt) of ``kind`` in the windows of ``ordinals``, and their skeletons."""
    chatters = [config.chatter(o, kind) for o in ordinals]
    vocabulary = kind.vocabulary
    filled = [c for c in chatters if len(c.post_id)]  # most windows have no catalyst posts

    def column(name: str) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in filled])

    if not chatters or sum(len(c.post_id) for c in chatters) == 0:
        return empty_frame(RAW_POST_COLUMNS), chatters
    ticker = column("post_ticker")
    subject = np.where(
        ticker >= 0,
        _references(config, ticker, column("post_cashtag")),
        vocabulary.subjects[column("post_subject")],
    )
    second = column("post_second_ticker")
    second_sentence = np.where(
        second >= 0,
        text.concat(
            text.SECOND_TICKER_BEFORE,
            _references(config, second, column("post_second_cashtag")),
            text.SECOND_TICKER_AFTER,
        ),
        "",
    )
    title = text.concat(
        vocabulary.openers[column("post_opener")],
        vocabulary.titles.render(column("post_title"), subject),
    )
    selftext = text.concat(
        vocabulary.post_sentences.render(column("post_sentence_named"), subject),
        " ",
        vocabulary.post_sentences.render(column("post_sentence_other"), subject),
        vocabulary.fillers[column("post_filler")],
        second_sentence,
    )
    subreddit = np.array(config.subreddits, dtype=object)[column("post_subreddit")]
    post_id = base36(column("post_id"))
    frame = pd.DataFrame(
        {
            "post_id": post_id,
            "subreddit": subreddit,
            "author": _author_names(column("post_author"), config.seed),
            "title": title,
            "selftext": selftext,
            "created_utc": column("post_created").astype("datetime64[ns]"),
            "score": column("post_score").astype(np.float64),
            "num_comments": column("post_num_comments").astype(np.float64),
            "url": text.concat("https://www.reddit.com/r/", subreddit, "/comments/", post_id, "/"),
            "fetched_at": column("post_fetched").astype("datetime64[ns]"),
            "session_date": np.repeat(sessions_of(ordinals), [len(c.post_id) for c in chatters]),
        }
    )
    return frame, chatters


def _comments_of(
    config: RedditConfig, ordinals: np.ndarray, kind: _ChatterKind = ORDINARY_CHATTER
) -> pd.DataFrame:
    """The true comments (no dirt) of ``kind`` created in the windows of ``ordinals``."""
    wanted = {int(o) for o in ordinals}
    # Comments of window D come from D's posts and from late comments on D-1's posts.
    sources = sorted(wanted | {o - 1 for o in wanted if o - 1 >= 1})
    parts: list[dict[str, np.ndarray]] = []
    for source in sources:
        chatter = config.chatter(source, kind)
        if len(chatter.comment_id) == 0:
            continue
        keep = np.isin(chatter.comment_session, list(wanted))
        if not keep.any():
            continue
        post = chatter.comment_post[keep]
        parts.append(
            {
                "post_id": chatter.post_id[post],
                "subreddit": chatter.post_subreddit[post],
                **{
                    name: getattr(chatter, f"comment_{name}")[keep]
                    for name in (
                        "created",
                        "id",
                        "session",
                        "subject",
                        "named",
                        "cashtag",
                        "template",
                        "author",
                        "score",
                        "fetched",
                    )
                },
            }
        )
    if not parts:
        return empty_frame(RAW_COMMENT_COLUMNS)
    merged = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    subject = merged["subject"]
    reference = _references(config, subject, merged["cashtag"])
    body = kind.vocabulary.comments.render(merged["template"], reference)
    frame = pd.DataFrame(
        {
            "comment_id": base36(merged["id"]),
            "post_id": base36(merged["post_id"]),
            "subreddit": np.array(config.subreddits, dtype=object)[merged["subreddit"]],
            "author": _author_names(merged["author"], config.seed),
            "body": body,
            "created_utc": merged["created"].astype("datetime64[ns]"),
            "score": merged["score"].astype(np.float64),
            "fetched_at": merged["fetched"].astype("datetime64[ns]"),
            "session_date": sessions_of(merged["session"]),
        }
    )
    # A fixed order per session, whatever range was asked for: dirt draws rely on it.
    return frame.sort_values(
        ["session_date", "created_utc", "comment_id"], kind="stable"
    ).reset_index(drop=True)


def _stack(layers: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows of every layer of chatter in one frame (the caller sorts them)."""
    filled = [frame for frame in layers if len(frame)]
    if len(filled) <= 1:
        return filled[0] if filled else layers[0]
    return pd.concat(filled, ignore_index=True)


def generate_reddit_posts(
    sessions: Iterable[dt.date | str | pd.Timestamp],
    tickers: Iterable[str],
    subreddits: Iterable[str],
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    dirt: bool = True,
) -> pd.DataFrame:
    """Posts created in the Reddit windows of ``sessions``, as a scraper would fetch them.

    Columns and dtypes of ``RAW_POST_COLUMNS`` with ``session_date`` the window's session. A
    session's posts depend only on (seed, session, tickers, subreddits, scale), never on which other
    sessions are asked for. With ``dirt`` the documented share of repeated, edited and broken
    fetches is added (``POST_DIRT_RATES``).
    """
    config = RedditConfig.of(tickers, subreddits, seed, scale)
    ordinals = reddit_ordinals(sessions)
    layers = []
    for kind in CHATTER_KINDS:
        posts, chatters = _posts_of(config, ordinals, kind)
        if dirt and len(posts):
            posts = add_post_dirt(posts, chatters, config.seed, kind.post_dirt)
        layers.append(posts)
    posts = _stack(layers)
    posts = posts.sort_values(
        ["session_date", "created_utc", "post_id", "fetched_at"], kind="stable"
    )
    posts = with_fetch_facts(posts, posts["selftext"])
    return exact_layout(posts, RAW_POST_COLUMNS)


def generate_reddit_comments(
    sessions: Iterable[dt.date | str | pd.Timestamp],
    tickers: Iterable[str],
    subreddits: Iterable[str],
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    dirt: bool = True,
) -> pd.DataFrame:
    """Comments created in the Reddit windows of ``sessions`` (on posts of that window or the one
    before), in ``RAW_COMMENT_COLUMNS``; each comment is later than its post and inside its window.
    With ``dirt`` the documented duplicates and empty-bodied shells are added (``COMMENT_DIRT_RATES``).
    """
    config = RedditConfig.of(tickers, subreddits, seed, scale)
    ordinals = reddit_ordinals(sessions)
    layers = []
    for kind in CHATTER_KINDS:
        comments = _comments_of(config, ordinals, kind)
        if dirt and len(comments):
            comments = add_comment_dirt(
                comments, config.seed, kind.comment_dirt, kind.shell_id_offset
            )
        layers.append(comments)
    comments = _stack(layers)
    comments = comments.sort_values(
        ["session_date", "created_utc", "comment_id", "fetched_at"], kind="stable"
    )
    comments = with_fetch_facts(comments, comments["body"])
    return exact_layout(comments, RAW_COMMENT_COLUMNS)


def with_fetch_facts(frame: pd.DataFrame, text: pd.Series) -> pd.DataFrame:
    """``frame`` with ``text_state`` (of ``text``) and ``fetch_lag_hours``, as a live fetch has."""
    return frame.assign(
        text_state=text_state_of(text).to_numpy(dtype=object),
        fetch_lag_hours=fetch_lag_hours(frame["fetched_at"], frame["session_date"]).to_numpy(),
    )
