"""Synthetic prices and feature snapshots with a planted sentiment edge, for tests and benchmarks.

Not the bundled sample market (``tft_pipeline.sample_market`` builds that from Reddit-like text):
this generator skips the text and writes snapshot rows directly, so a test can plant an edge of a
known size and check the model finds it. Each session's mention sentiment shifts the ticker's
drift over the next ``edge_sessions`` sessions by ``edge_per_session · sentiment``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tft_pipeline.trading_calendar import next_session, sessions_between
from tft_pipeline.universe import synthetic_universe

WINDOW = 20


@dataclass(frozen=True)
class SyntheticMarket:
    """Long frames: ``prices`` as clean.price_history, ``snapshots`` as feature_snapshots."""

    prices: pd.DataFrame
    snapshots: pd.DataFrame


def _sessions(first_session: str, count: int) -> pd.DatetimeIndex:
    # About 1.46 calendar days per session; ask for a little more and cut.
    start = pd.Timestamp(first_session)
    sessions = sessions_between(start, start + pd.Timedelta(days=int(count * 1.5) + 10))
    if len(sessions) < count:  # pragma: no cover - the factor above always suffices
        last = sessions[-1]
        while len(sessions) < count:
            last = next_session(last)
            sessions = sessions.append(pd.DatetimeIndex([last]))
    return pd.DatetimeIndex(sessions[:count], name="session_date")


def _wilder(values: pd.DataFrame, period: int) -> pd.DataFrame:
    return values.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()


def _long(wide: dict[str, pd.DataFrame]) -> pd.DataFrame:
    stacked = {name: frame.stack(future_stack=True) for name, frame in wide.items()}
    frame = pd.DataFrame(stacked).reset_index()
    return frame.rename(columns={"level_1": "ticker"})


def synthetic_market(
    n_tickers: int = 20,
    n_sessions: int = 300,
    *,
    seed: int = 7,
    edge_per_session: float = 0.004,
    edge_sessions: int = 5,
    first_session: str = "2022-01-03",
) -> SyntheticMarket:
    """Prices and snapshots of ``n_tickers`` over ``n_sessions`` sessions, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    sessions = _sessions(first_session, n_sessions)
    tickers = list(synthetic_universe(n_tickers))
    shape = (n_sessions, n_tickers)

    buzz = rng.uniform(0.3, 6.0, size=n_tickers)
    mentions = rng.poisson(buzz, size=shape)
    sentiment = np.where(mentions > 0, np.clip(rng.normal(0.05, 0.35, size=shape), -1.0, 1.0), 0.0)
    # Sentiment at D moves the drift of D+1..D+edge_sessions: a causal filter along time.
    drift = np.zeros(shape)
    for lag in range(1, edge_sessions + 1):  # loop over a handful of lags, not over rows
        drift[lag:] += edge_per_session * sentiment[:-lag]
    sigma = rng.uniform(0.012, 0.03, size=n_tickers)
    log_returns = drift + sigma * rng.standard_normal(shape)
    log_returns[0] = 0.0
    close = 50.0 * rng.uniform(0.5, 4.0, size=n_tickers) * np.exp(np.cumsum(log_returns, axis=0))
    previous_close = np.vstack([close[:1], close[:-1]])
    open_ = previous_close * np.exp(0.3 * sigma * rng.standard_normal(shape))
    high = np.maximum(open_, close) * np.exp(np.abs(0.5 * sigma * rng.standard_normal(shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(0.5 * sigma * rng.standard_normal(shape)))
    volume = np.round(rng.lognormal(14.0, 0.4, size=shape) * (1 + 0.05 * mentions))

    def wide(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=sessions, columns=tickers)

    close_w, high_w, low_w, volume_w, mentions_w = (
        wide(close),
        wide(high),
        wide(low),
        wide(volume),
        wide(mentions.astype("float64")),
    )
    prev_close_w = close_w.shift(1)
    true_range = np.maximum(
        high_w - low_w, np.maximum((high_w - prev_close_w).abs(), (low_w - prev_close_w).abs())
    )
    change = close_w.diff()
    average_gain = _wilder(change.clip(lower=0), 14)
    average_loss = _wilder((-change).clip(lower=0), 14)
    trailing_volume = volume_w.shift(1).rolling(WINDOW, min_periods=WINDOW)
    trailing_mentions = mentions_w.shift(1).rolling(WINDOW, min_periods=WINDOW).mean()

    snapshots = _long(
        {
            "close": close_w,
            "mentions": mentions_w,
            "mention_sentiment": wide(sentiment),
            "mention_momentum": np.log((mentions_w + 1) / (trailing_mentions + 1)),
            "ret_1": close_w.pct_change(1, fill_method=None),
            "ret_5": close_w.pct_change(5, fill_method=None),
            "ret_20": close_w.pct_change(20, fill_method=None),
            "volatility_20": np.log(close_w).diff().rolling(WINDOW, min_periods=WINDOW).std(),
            "atr_14": _wilder(true_range, 14),
            "rsi_14": 100.0 - 100.0 / (1.0 + average_gain / average_loss),
            "volume_z": (volume_w - trailing_volume.mean()) / trailing_volume.std(),
        }
    )
    snapshots["mentions"] = snapshots["mentions"].astype("int64")
    snapshots = snapshots[
        ["ticker", "session_date", *snapshots.columns.drop(["ticker", "session_date"])]
    ]
    snapshots = snapshots.sort_values(["session_date", "ticker"], ignore_index=True)

    prices = _long(
        {
            "open": wide(open_),
            "high": high_w,
            "low": low_w,
            "close": close_w,
            "adj_close": close_w,
            "volume": volume_w,
        }
    )
    prices["volume"] = prices["volume"].astype("int64")
    prices = prices[
        ["ticker", "session_date", "open", "high", "low", "close", "adj_close", "volume"]
    ]
    prices = prices.sort_values(["session_date", "ticker"], ignore_index=True)
    return SyntheticMarket(prices=prices, snapshots=snapshots)
