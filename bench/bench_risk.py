"""Benchmark of the risk manager: per-signal evaluate and evaluate_batch on session-sized frames."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from tft_pipeline.risk import PortfolioState, RiskManager, Signal
from tft_pipeline.universe import synthetic_universe

# A session holds about this many signals (one per ticker the model scores).
SESSION_SIGNALS = 50


def synthetic_signals(count: int, seed: int = 7) -> pd.DataFrame:
    """A model's worth of signals: mostly well-formed, with every rule failing somewhere."""
    rng = np.random.default_rng(seed)
    tickers = np.array(synthetic_universe(500), dtype=object)
    direction = np.where(rng.random(count) < 0.7, "long", "short").astype(object)
    entry = np.round(rng.lognormal(mean=4.5, sigma=1.0, size=count), 2)
    risk = entry * rng.uniform(0.01, 0.10, count)
    reward = risk * rng.uniform(1.0, 4.0, count)
    sign = np.where(direction == "long", 1.0, -1.0)
    frame = pd.DataFrame(
        {
            "ticker": tickers[rng.integers(0, len(tickers), count)],
            "confidence": rng.uniform(0.4, 1.0, count),
            "entry": entry,
            "stop_loss": entry - sign * risk,
            "take_profit": entry + sign * reward,
            "direction": direction,
            "model": "bench",
        }
    )
    broken = rng.random(count) < 0.01
    frame.loc[broken, "entry"] = np.nan
    swapped = rng.random(count) < 0.02
    frame.loc[swapped, ["stop_loss", "take_profit"]] = frame.loc[
        swapped, ["take_profit", "stop_loss"]
    ].to_numpy()
    return frame


def _best_of(repeats: int, action) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def run(quick: bool = False) -> dict[str, float | int | str]:
    sessions = 40 if quick else 400
    count = sessions * SESSION_SIGNALS
    manager = RiskManager()
    portfolio = PortfolioState(
        value=1_000_000.0, peak_value=1_050_000.0, open_tickers=("AAPL", "MSFT")
    )
    frame = synthetic_signals(count)
    signals = [
        Signal(*fields)
        for fields in frame[
            ["ticker", "confidence", "entry", "stop_loss", "take_profit", "direction"]
        ].itertuples(index=False)
    ]
    session_frames = [
        frame.iloc[start : start + SESSION_SIGNALS] for start in range(0, count, SESSION_SIGNALS)
    ]

    def evaluate_each() -> None:
        for signal in signals:
            manager.evaluate(signal, portfolio)

    def evaluate_sessions() -> None:
        for session in session_frames:
            manager.evaluate_batch(session, portfolio)

    evaluate_seconds = _best_of(3, evaluate_each)
    batch_seconds = _best_of(3, evaluate_sessions)
    evaluate_rate = count / evaluate_seconds
    batch_rate = count / batch_seconds
    return {
        "signals": count,
        "evaluate_signals_per_s": round(evaluate_rate),
        "session_signals": SESSION_SIGNALS,
        "evaluate_batch_sessions": sessions,
        "evaluate_batch_ms_per_session": round(batch_seconds / sessions * 1000, 3),
        "evaluate_batch_signals_per_s": round(batch_rate),
        # evaluate_batch is the evaluate loop plus building the frame: this is that overhead's cost.
        "batch_vs_evaluate_rate": round(batch_rate / evaluate_rate, 2),
    }


if __name__ == "__main__":
    for name, figure in run().items():
        print(f"{name}: {figure}")
