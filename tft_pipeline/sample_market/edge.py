"""Measure the sample market's planted edges on generated data, as yardsticks for models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from tft_pipeline.metrics import row_rank_ic
from tft_pipeline.sample_market.catalysts import catalyst_path
from tft_pipeline.sample_market.prices import (
    EDGE_BETA,
    SENTIMENT_PERSISTENCE,
    clean_price_bars,
    ticker_path,
    ticker_profile,
    unique_tickers,
)
from tft_pipeline.sample_market.randomness import DEFAULT_SEED
from tft_pipeline.sample_market.span import session_count, session_ordinals

MIN_TICKERS_FOR_EDGE = 5  # a cross-sectional rank IC needs a cross-section


def _row_ranks(matrix: np.ndarray) -> np.ndarray:
    # Continuous values: ties have probability zero, so argsort-of-argsort ranks are exact.
    return np.argsort(np.argsort(matrix, axis=1), axis=1).astype(np.float64)


def _quintile_spread(signal: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Per session: mean outcome of the top fifth by signal minus that of the bottom fifth."""
    ranks = _row_ranks(signal)
    width = signal.shape[1]
    bucket = max(1, width // 5)
    top = ranks >= width - bucket
    bottom = ranks < bucket
    return ((outcome * top).sum(axis=1) - (outcome * bottom).sum(axis=1)) / bucket


def planted_edge_summary(
    tickers: Iterable[str],
    sessions: Iterable[dt.date | str | pd.Timestamp],
    seed: int = DEFAULT_SEED,
) -> dict[str, float | int]:
    """The planted edge as measured on the generated data of ``tickers`` over ``sessions``.

    For each session D (whose next five sessions exist in the span) it compares the latent
    sentiment s_D with the forward close-to-close log-returns from D's close: cross-sectional
    Spearman rank IC per session, averaged (``ic_1``, ``ic_5``), and the mean top-minus-bottom
    quintile forward return (``quintile_spread_1``, ``quintile_spread_5``, log-return units).
    ``ic_same_session_innovation`` correlates the new information in s_D (s_D minus its AR(1)
    forecast) with D's own return: about zero, because D's price never sees D's sentiment.
    """
    symbols = unique_tickers(tickers)
    if len(symbols) < MIN_TICKERS_FOR_EDGE:
        raise ValueError(
            f"planted_edge_summary needs at least {MIN_TICKERS_FOR_EDGE} tickers for a "
            f"cross-sectional IC, got {len(symbols)}"
        )
    ordinals = session_ordinals(sessions)
    ordinals = ordinals[(ordinals >= 1) & (ordinals + 5 < session_count())]
    if len(ordinals) == 0:
        raise ValueError("no session with a previous session and five following ones in the span")
    paths = [ticker_path(ticker, seed) for ticker in symbols]

    def matrix(field: str, offset: int = 0) -> np.ndarray:
        return np.column_stack([getattr(p, field)[ordinals + offset] for p in paths]).astype(
            np.float64
        )

    sentiment = matrix("sentiment")
    close = matrix("log_close")
    forward_1 = matrix("log_close", 1) - close
    forward_5 = matrix("log_close", 5) - close
    same_session_return = close - matrix("log_close", -1)
    innovation = sentiment - SENTIMENT_PERSISTENCE * matrix("sentiment", -1)

    ic_1 = row_rank_ic(sentiment, forward_1)
    ic_5 = row_rank_ic(sentiment, forward_5)
    return {
        "tickers": len(symbols),
        "sessions": len(ordinals),
        "observations": int(sentiment.size),
        "edge_beta": EDGE_BETA,
        "sentiment_persistence": SENTIMENT_PERSISTENCE,
        "ic_1": float(ic_1.mean()),
        "ic_5": float(ic_5.mean()),
        # Naive t-statistic over sessions (5-session returns overlap: read it as an upper bound).
        "ic_5_t_stat": float(ic_5.mean() / (ic_5.std(ddof=1) / np.sqrt(len(ic_5))))
        if len(ic_5) > 1
        else float("nan"),
        "quintile_spread_1": float(_quintile_spread(sentiment, forward_1).mean()),
        "quintile_spread_5": float(_quintile_spread(sentiment, forward_5).mean()),
        "ic_same_session_innovation": float(row_rank_ic(innovation, same_session_return).mean()),
    }


# The catalyst trade, as ``tft_pipeline.model.labels.DEFAULT_RULE`` places its barriers: target
# CATALYST_TARGET_ATR and stop CATALYST_STOP_ATR Wilder ATR(ATR_PERIOD)s from the entry, at most
# CATALYST_HORIZON sessions. The entry is D+1's open, the ATR the one known at D's close.
CATALYST_TARGET_ATR, CATALYST_STOP_ATR, CATALYST_HORIZON = 2.0, 1.0, 10
ATR_PERIOD = 14
# As in tft_pipeline.features.snapshots: each Wilder average is the ewm of the last ATR_WINDOW
# true ranges only (it forgets its seed), so the ATR here is the feature snapshots' atr_14.
ATR_WINDOW = 100
TRADE_BLOCK_SESSIONS = 512  # sessions per block of trade windows (about 40 MB at 1,000 tickers)


def _wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Wilder ATR (ewm alpha=1/period, adjust=False, over the last ATR_WINDOW true ranges) down
    each column of (sessions, tickers) bars; the first row (no previous close) is NaN."""
    previous_close = close[:-1]
    true_range = np.maximum(
        high[1:] - low[1:],
        np.maximum(np.abs(high[1:] - previous_close), np.abs(low[1:] - previous_close)),
    )
    alpha = 1.0 / ATR_PERIOD
    unbounded, _ = lfilter(
        [alpha], [1.0, alpha - 1.0], true_range, axis=0, zi=(1 - alpha) * true_range[:1]
    )
    # Restarting the ewm at s = p - lag differs from it by (1 - alpha) ** lag * (x[s] - E[s]).
    lag = ATR_WINDOW - 1
    windowed = unbounded.copy()
    windowed[lag:] += (1.0 - alpha) ** lag * (true_range[:-lag] - unbounded[:-lag])
    return np.vstack([np.full((1, close.shape[1]), np.nan), windowed])


def _target_first(
    entry: np.ndarray, atr: np.ndarray, high: np.ndarray, low: np.ndarray, side: int
) -> np.ndarray:
    """Did a ``side`` (+1 long, -1 short) trade reach its target before its stop?

    ``entry`` and ``atr`` are (entries, tickers); ``high`` and ``low`` (entries, horizon, tickers)
    hold the bars from the entry's session on. A bar touching both barriers counts as the stop;
    neither within the horizon is a miss (expiry), as in ``triple_barrier_labels``.
    """
    stop = (entry - side * CATALYST_STOP_ATR * atr)[:, None, :]
    target = (entry + side * CATALYST_TARGET_ATR * atr)[:, None, :]
    if side > 0:
        stop_hit, target_hit = low <= stop, high >= target
    else:
        stop_hit, target_hit = high >= stop, low <= target
    never = high.shape[1]
    first_stop = np.where(stop_hit.any(axis=1), stop_hit.argmax(axis=1), never)
    first_target = np.where(target_hit.any(axis=1), target_hit.argmax(axis=1), never)
    return first_target < first_stop


@dataclass(frozen=True, eq=False)
class CatalystTrades:
    """The catalyst trade on every (session, ticker): matrices of shape (sessions, tickers)."""

    tickers: tuple[str, ...]
    ordinals: np.ndarray  # the sessions D, as ordinals
    direction: np.ndarray  # the event of D: +1, -1, 0 for none
    entry: np.ndarray  # D+1's open
    atr: np.ndarray  # Wilder ATR(14) at D's close
    long_hit: np.ndarray  # the long trade reached its target first
    short_hit: np.ndarray  # the short trade reached its target first
    forward_return: np.ndarray  # log(close of D+horizon / D+1's open)
    session_return: np.ndarray  # D's close-to-close log-return, in the ticker's daily volatility
    next_session_return: np.ndarray  # the same for D+1


def catalyst_trades(
    tickers: Iterable[str],
    sessions: Iterable[dt.date | str | pd.Timestamp],
    seed: int = DEFAULT_SEED,
) -> CatalystTrades:
    """The catalyst trade of every ticker-session D with ATR_PERIOD sessions before it and
    CATALYST_HORIZON after it in the span, on the generated (clean) bars. Vectorized: one wide
    matrix per price column over the sessions needed, windows by fancy indexing."""
    symbols = unique_tickers(tickers)
    if not symbols:
        raise ValueError("the catalyst trades need at least one ticker")
    ordinals = session_ordinals(sessions)
    ordinals = ordinals[(ordinals >= ATR_PERIOD) & (ordinals + CATALYST_HORIZON < session_count())]
    if len(ordinals) == 0:
        raise ValueError(
            f"no session with {ATR_PERIOD} sessions before it and {CATALYST_HORIZON} after it "
            "in the span"
        )
    first = max(0, int(ordinals[0]) - ATR_WINDOW)
    last = int(ordinals[-1]) + CATALYST_HORIZON
    bars = clean_price_bars(symbols, np.arange(first, last + 1), seed)
    shape = (len(symbols), last - first + 1)  # bars come ticker by ticker, sessions in order

    def wide(column: str) -> np.ndarray:
        return bars[column].to_numpy(dtype=np.float64).reshape(shape).T

    open_, high, low, close = wide("open"), wide("high"), wide("low"), wide("close")
    atr = _wilder_atr(high, low, close)

    rows = ordinals - first  # row of D in the wide bars
    entry, entry_atr = open_[rows + 1], atr[rows]
    long_hit, short_hit = np.zeros(entry.shape, dtype=bool), np.zeros(entry.shape, dtype=bool)
    # The (sessions, horizon, tickers) windows go a block of sessions at a time to bound memory.
    for block in range(0, len(rows), TRADE_BLOCK_SESSIONS):
        part = slice(block, block + TRADE_BLOCK_SESSIONS)
        ahead = rows[part, None] + np.arange(1, CATALYST_HORIZON + 1)[None, :]  # D+1..D+horizon
        high_ahead, low_ahead = high[ahead], low[ahead]
        long_hit[part] = _target_first(entry[part], entry_atr[part], high_ahead, low_ahead, +1)
        short_hit[part] = _target_first(entry[part], entry_atr[part], high_ahead, low_ahead, -1)
    daily_vol = np.array([ticker_profile(t, seed).daily_volatility for t in symbols])[None, :]
    log_close = np.log(close)
    return CatalystTrades(
        tickers=symbols,
        ordinals=ordinals,
        direction=np.column_stack(
            [catalyst_path(ticker, seed).direction[ordinals] for ticker in symbols]
        ).astype(np.int64),
        entry=entry,
        atr=entry_atr,
        long_hit=long_hit,
        short_hit=short_hit,
        forward_return=log_close[rows + CATALYST_HORIZON] - np.log(entry),
        session_return=(log_close[rows] - log_close[rows - 1]) / daily_vol,
        next_session_return=(log_close[rows + 1] - log_close[rows]) / daily_vol,
    )


def catalyst_edge_summary(
    tickers: Iterable[str],
    sessions: Iterable[dt.date | str | pd.Timestamp],
    seed: int = DEFAULT_SEED,
) -> dict[str, float | int]:
    """The catalyst edge as measured on the generated bars of ``tickers`` over ``sessions``.

    For every ticker-session D (with ATR_PERIOD sessions before it and CATALYST_HORIZON after it in
    the span) a trade enters at D+1's open with the Wilder ATR(14) known at D's close: target
    CATALYST_TARGET_ATR ATRs and stop CATALYST_STOP_ATR ATR away, CATALYST_HORIZON sessions at most,
    a bar touching both counts as the stop. ``hit_rate*`` is the share of event sessions whose
    trade in the event's direction (long after bullish news, short after bearish) reached its
    target first; ``base_hit_rate_long`` (``_short``) the same trade on the sessions without an
    event. ``mean_event_return_10`` is the event-direction log-return from D+1's open to D+10's
    close (``mean_base_return_10`` the long one without events). ``event_session_return`` is the
    event-direction close-to-close log-return of D itself in the ticker's daily volatilities, with
    its t-statistic: about zero, D never sees its news; ``event_next_session_return`` the same for
    D+1, where the drift starts.
    """
    trades = catalyst_trades(tickers, sessions, seed)
    direction = trades.direction
    bullish, bearish = direction > 0, direction < 0
    event = bullish | bearish
    hit = np.where(bullish, trades.long_hit, trades.short_hit)
    signed_session_return = (direction * trades.session_return)[event]
    count = int(event.sum())

    def mean(mask: np.ndarray, values: np.ndarray) -> float:
        return float(values[mask].mean()) if mask.any() else float("nan")

    return {
        "tickers": len(trades.tickers),
        "sessions": len(trades.ordinals),
        "ticker_sessions": int(direction.size),
        "events": count,
        "bullish_events": int(bullish.sum()),
        "bearish_events": int(bearish.sum()),
        "events_per_1000": 1000.0 * count / direction.size,
        "hit_rate": mean(event, hit),
        "hit_rate_bullish": mean(bullish, trades.long_hit),
        "hit_rate_bearish": mean(bearish, trades.short_hit),
        "base_hit_rate_long": mean(~event, trades.long_hit),
        "base_hit_rate_short": mean(~event, trades.short_hit),
        "mean_event_return_10": mean(event, direction * trades.forward_return),
        "mean_base_return_10": mean(~event, trades.forward_return),
        "event_session_return": float(signed_session_return.mean()) if count else float("nan"),
        "event_session_return_t": float(
            signed_session_return.mean() / (signed_session_return.std(ddof=1) / np.sqrt(count))
        )
        if count > 1
        else float("nan"),
        "event_next_session_return": mean(event, direction * trades.next_session_return),
    }
