"""Benchmark of price validation + dedup against one DuckDB SQL query doing the same work."""

from __future__ import annotations

import time
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from tft_pipeline.universe import synthetic_universe
from tft_pipeline.validation import validate_prices

FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000
SEED = 20240102
DIRT_SHARE = 0.015
DUPLICATE_SHARE = 0.03
TICKERS = 400

# The same rules as tft_pipeline.validation.PRICE_CHECKS, then latest fetch per key.
DUCKDB_QUERY = r"""
SELECT *
FROM raw_prices
WHERE regexp_full_match(ticker, '[A-Z]{1,5}([.-][A-Z]{1,2})?')
  AND session_date IS NOT NULL
  AND isfinite(open) AND open > 0
  AND isfinite(high) AND high > 0
  AND isfinite(low) AND low > 0
  AND isfinite(close) AND close > 0
  AND isfinite(adj_close) AND adj_close > 0
  AND isfinite(volume) AND volume >= 0 AND volume < 9223372036854775808.0
  AND fetched_at IS NOT NULL
  AND high >= low AND high >= open AND high >= close
  AND low <= open AND low <= close
QUALIFY row_number() OVER (PARTITION BY ticker, session_date ORDER BY fetched_at DESC) = 1
"""


def build_raw_prices(rows: int, seed: int = SEED) -> pd.DataFrame:
    """``rows`` raw bars: ~3 % re-fetched duplicates and ~1.5 % dirty rows, shuffled."""
    rng = np.random.default_rng(seed)
    duplicate_count = int(rows * DUPLICATE_SHARE)
    unique_count = rows - duplicate_count
    tickers = np.array(synthetic_universe(TICKERS), dtype=object)
    sessions = pd.bdate_range("2000-01-03", periods=-(-unique_count // TICKERS)).to_numpy()
    ticker_index = np.arange(unique_count) % TICKERS
    session_index = np.arange(unique_count) // TICKERS

    close = rng.uniform(5.0, 500.0, unique_count)
    open_ = close * (1 + rng.normal(0, 0.01, unique_count))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, unique_count)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, unique_count)))
    session_date = sessions[session_index]
    frame = pd.DataFrame(
        {
            "ticker": tickers[ticker_index],
            "session_date": session_date,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": close * 0.98,
            "volume": rng.integers(0, 50_000_000, unique_count).astype("float64"),
            "fetched_at": session_date + np.timedelta64(22, "h"),
        }
    )

    # Re-fetches of existing bars, some later (they win) and some earlier, with a moved close.
    refetched = frame.iloc[rng.choice(unique_count, duplicate_count, replace=False)].copy()
    shift_minutes = rng.integers(-600, 600, duplicate_count)
    refetched["fetched_at"] += pd.to_timedelta(shift_minutes, unit="min")
    refetched["adj_close"] *= 1.001
    frame = pd.concat([frame, refetched], ignore_index=True)

    _add_dirt(frame, rng)
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def _add_dirt(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    """Spoil ~DIRT_SHARE of the rows in place, each in one of several realistic ways."""
    dirty = rng.choice(len(frame), int(len(frame) * DIRT_SHARE), replace=False)
    kinds = np.array_split(dirty, 8)
    frame.loc[kinds[0], "close"] = -frame.loc[kinds[0], "close"]
    frame.loc[kinds[1], "close"] = np.nan
    frame.loc[kinds[2], ["high", "low"]] = frame.loc[kinds[2], ["low", "high"]].to_numpy()
    frame.loc[kinds[3], "volume"] = np.nan
    frame.loc[kinds[4], "ticker"] = "aapl"
    frame.loc[kinds[5], "ticker"] = None
    frame.loc[kinds[6], "open"] = np.inf
    frame.loc[kinds[7], "fetched_at"] = pd.NaT


def _timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def run(quick: bool = False) -> dict[str, float | int | str]:
    """Time ``validate_prices`` and the equivalent DuckDB query (best of 3) on the same frame."""
    rows = QUICK_ROWS if quick else FULL_ROWS
    raw = build_raw_prices(rows)

    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    connection.register("raw_prices", raw)
    # Interleaved, so a busy machine slows both sides alike; the best of 3 of each is kept.
    validation_seconds = duckdb_seconds = float("inf")
    for _ in range(3):
        seconds, result = _timed(lambda: validate_prices(raw))
        validation_seconds = min(validation_seconds, seconds)
        seconds, duckdb_clean = _timed(lambda: connection.execute(DUCKDB_QUERY).df())
        duckdb_seconds = min(duckdb_seconds, seconds)
    connection.close()

    if len(result.clean) != len(duckdb_clean):
        raise AssertionError(
            f"validate_prices kept {len(result.clean)} rows, the DuckDB query {len(duckdb_clean)}"
        )
    return {
        "validation_rows": rows,
        "validation_clean_rows": len(result.clean),
        "validation_rejected_rows": len(result.rejected),
        "validation_duplicate_rows": result.duplicates,
        "validation_seconds": round(validation_seconds, 4),
        "duckdb_seconds": round(duckdb_seconds, 4),
        "validation_rows_per_s": round(rows / validation_seconds),
        "duckdb_rows_per_s": round(rows / duckdb_seconds),
        "validation_vs_duckdb_ratio": round(validation_seconds / duckdb_seconds, 3),
    }


if __name__ == "__main__":
    import sys

    for name, value in run(quick="--quick" in sys.argv).items():
        print(f"{name}: {value}")
