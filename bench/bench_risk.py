"""Benchmark of the risk manager: vectorized evaluate_batch against the per-signal evaluate loop."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from tft_pipeline.risk import PortfolioState, RiskManager, Signal
from tft_pipeline.universe import synthetic_universe


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
    batch_size, loop_size = (20_000, 2_000) if quick else (200_000, 20_000)
    manager = RiskManager()
    portfolio = PortfolioState(
        value=1_000_000.0, peak_value=1_050_000.0, open_tickers=("AAPL", "MSFT")
    )
    frame = synthetic_signals(batch_size)

    batch_seconds = _best_of(3, lambda: manager.evaluate_batch(frame, portfolio))

    # The loop a caller would write: most confident first, each acceptance opening a position.
    loop_frame = frame.head(loop_size).sort_values("confidence", ascending=False, kind="stable")
    signals = [
        Signal(t, c, e, s, p, d)
        for t, c, e, s, p, d in loop_frame[
            ["ticker", "confidence", "entry", "stop_loss", "take_profit", "direction"]
        ].itertuples(index=False)
    ]

    def loop() -> list[str]:
        state = portfolio
        reasons = []
        for signal in signals:
            decision = manager.evaluate(signal, state)
            if decision.accepted:
                state = state.with_opened(signal.ticker)
            reasons.append(";".join(decision.reasons))
        return reasons

    loop_seconds = _best_of(3, loop)
    # The speed is only worth having if both paths decide alike.
    batch_reasons = manager.evaluate_batch(loop_frame, portfolio)["reasons"].tolist()
    disagreements = sum(a != b for a, b in zip(loop(), batch_reasons, strict=True))
    batch_rate = batch_size / batch_seconds
    loop_rate = loop_size / loop_seconds
    return {
        "evaluate_batch_signals": batch_size,
        "evaluate_batch_seconds": round(batch_seconds, 4),
        "evaluate_batch_signals_per_s": round(batch_rate),
        "evaluate_loop_signals": loop_size,
        "evaluate_loop_signals_per_s": round(loop_rate),
        "batch_vs_loop_speedup": round(batch_rate / loop_rate, 1),
        "batch_vs_loop_disagreements": disagreements,
    }


if __name__ == "__main__":
    for name, figure in run().items():
        print(f"{name}: {figure}")
