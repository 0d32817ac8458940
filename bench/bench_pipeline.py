"""End-to-end figures: a single-run backfill against one run per session through the CLI, and
``make run`` (wall time and peak memory)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TABLES = (
    "raw.reddit_posts", "raw.reddit_comments", "raw.price_history",
    "clean.reddit_posts", "clean.reddit_comments", "clean.price_history", "clean.rejected_rows",
)


def _environment(warehouse: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFT_", "REDDIT_"))}
    env.update(TFT_DATA_SOURCE="sample", TFT_WAREHOUSE_PATH=str(warehouse), DAGSTER_HOME=str(home))
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "deploy/sqlite/dagster.yaml", home / "dagster.yaml")
    return env


def _materialize(env: dict[str, str], partition_args: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "tft_pipeline.definitions",
         "--select", "*", *partition_args],
        cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, text=True,
    )


def _tables(path: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return {
            table: connection.sql(f"SELECT * FROM {table}").df().pipe(
                lambda f: f.sort_values(list(f.columns)).reset_index(drop=True)
            )
            for table in TABLES
        }


def backfill_vs_daily_runs(sessions: list[str]) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        single_env = _environment(root / "single.duckdb", root / "home_single")
        started = time.perf_counter()
        _materialize(single_env, ["--partition-range", f"{sessions[0]}...{sessions[-1]}"])
        single_s = time.perf_counter() - started

        daily_env = _environment(root / "daily.duckdb", root / "home_daily")
        started = time.perf_counter()
        for session in sessions:
            _materialize(daily_env, ["--partition", session])
        daily_s = time.perf_counter() - started

        single, daily = _tables(root / "single.duckdb"), _tables(root / "daily.duckdb")
        identical = all(single[t].equals(daily[t]) for t in TABLES)
    return {
        "sessions": len(sessions),
        "single_run_backfill_s": round(single_s, 2),
        "one_run_per_session_s": round(daily_s, 2),
        "backfill_speedup": round(daily_s / single_s, 2),
        "identical_tables": str(identical),
    }


def make_run() -> dict[str, float]:
    """``make run`` after install: wall time and the peak RSS of its processes."""
    with tempfile.TemporaryDirectory() as scratch:
        env = _environment(Path(scratch) / "warehouse.duckdb", Path(scratch) / "home")
        env["UV_OFFLINE"] = "1"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        subprocess.run(
            ["make", "run", f"DAGSTER_HOME={env['DAGSTER_HOME']}"],
            cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, text=True,
        )
        elapsed = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"make_run_s": round(elapsed, 2), "make_run_peak_rss_mb": round(max(peak_kb, before) / 1024, 1)}


def run(quick: bool = False) -> dict[str, float | int | str]:
    from tft_pipeline.trading_calendar import sessions_between

    sessions = [d.strftime("%Y-%m-%d") for d in sessions_between("2024-02-01", "2024-03-01")]
    figures = backfill_vs_daily_runs(sessions[: 3 if quick else 10])
    if not quick:
        figures.update(make_run())
    return figures
