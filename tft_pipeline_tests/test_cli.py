"""The commands users type: `python -m tft_pipeline run|report` and `dagster definitions validate`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFT_", "REDDIT_", "DAGSTER_HOME"))}
    env.update(TFT_WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"), TFT_TICKERS="AAPL,MSFT,GME,TSLA,NVDA", **extra)
    return env


def test_definitions_validate_with_the_workspace():
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, env=environment(Path("/tmp")), capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


@pytest.mark.slow
def test_run_materializes_the_latest_sessions_and_prints_the_report(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "deploy/sqlite/dagster.yaml").read_text())
    env = environment(tmp_path, DAGSTER_HOME=str(home))
    result = subprocess.run(
        [sys.executable, "-m", "tft_pipeline", "run", "--sessions", "3"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "materialized 3 sessions" in out
    for table in ("raw.price_history", "clean.price_history", "clean.rejected_rows", "signals.risk_decisions", "portfolio.equity"):
        assert table in out
    assert "Rejected raw rows by reason" in out
    # The terminal shows the steps' progress, not Dagster's per-event DEBUG stream.
    terminal = out + result.stderr
    assert "progress: step 15/15" in terminal
    # The run's step count is known from its first line on (the price scrape's fan-out included).
    assert set(re.findall(r"progress: step \d+/(\d+) ", terminal)) == {"15"}
    assert " - DEBUG - " not in terminal and "ASSET_MATERIALIZATION" not in terminal
    # Three sessions are too few to train the walk-forward model: the report says why, no crash.
    assert "No trading signal yet" in out
    # The run is in the instance's history (make dev shows it).
    assert any(p.is_dir() for p in (home / "history").glob("runs*")) or (home / "history").exists()


def test_a_wrong_setting_is_a_clear_startup_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tft_pipeline", "report"],
        cwd=PROJECT_ROOT, env=environment(tmp_path, TFT_DATA_SOURCE="foo"), capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 2
    assert "TFT_DATA_SOURCE='foo': allowed values are 'sample' or 'live'" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_report_before_any_run_says_what_to_do(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tft_pipeline", "report"],
        cwd=PROJECT_ROOT, env=environment(tmp_path), capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 1
    assert "does not exist yet: run `make run` first" in result.stdout + result.stderr
