"""Measure the sample market's planted edge on generated data, as a yardstick for models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd

from tft_pipeline.metrics import row_rank_ic
from tft_pipeline.sample_market.prices import (
    EDGE_BETA,
    SENTIMENT_PERSISTENCE,
    ticker_path,
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
