"""The freshness check, run as its schedule runs it, against a real warehouse file."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from dagster import AssetCheckSeverity, DagsterInstance, build_schedule_context

from tft_pipeline.definitions import build_definitions
from tft_pipeline.defs.checks import (
    FRESHNESS_JOB_NAME,
    SCHEDULED_TIME_TAG,
    warehouse_freshness_schedule,
)
from tft_pipeline.settings import load_settings
from tft_pipeline.warehouse import Warehouse

NEW_YORK = ZoneInfo("America/New_York")


def _load_prices(path, sessions: list[str]) -> None:
    frame = pd.DataFrame(
        {"ticker": "AAPL", "session_date": pd.to_datetime(sessions), "close": 100.0}
    )
    Warehouse(path).replace_partitions("clean.price_history", frame, sessions)


def _evaluate(warehouse_path, tick: str):
    defs = build_definitions(load_settings(None, TFT_WAREHOUSE_PATH=str(warehouse_path), TFT_TICKERS="AAPL"))
    scheduled = dt.datetime.fromisoformat(tick).replace(tzinfo=NEW_YORK)
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(FRESHNESS_JOB_NAME).execute_in_process(
            instance=instance, tags={SCHEDULED_TIME_TAG: scheduled.isoformat()}
        )
    assert result.success  # a failed check is a finding, not a failed run
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_the_evening_check_passes_when_the_days_session_is_loaded(tmp_path):
    _load_prices(tmp_path / "w.duckdb", ["2024-01-11", "2024-01-12"])
    evaluation = _evaluate(tmp_path / "w.duckdb", "2024-01-12T18:00")
    assert evaluation.passed
    assert evaluation.metadata["expected_session"].value == "2024-01-12"


def test_a_missing_session_fails_the_check_with_how_far_behind(tmp_path):
    _load_prices(tmp_path / "w.duckdb", ["2024-01-11", "2024-01-12"])
    # Wednesday evening after MLK day: Tuesday's and Wednesday's sessions are missing.
    evaluation = _evaluate(tmp_path / "w.duckdb", "2024-01-17T18:00")
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    assert evaluation.metadata["sessions_behind"].value == 2
    assert evaluation.metadata["latest_loaded_session"].value == "2024-01-12"
    assert "2024-01-17 is missing" in evaluation.description


def test_an_empty_warehouse_fails_the_check(tmp_path):
    evaluation = _evaluate(tmp_path / "absent.duckdb", "2024-01-12T18:00")
    assert not evaluation.passed and "nothing loaded" in evaluation.description


@pytest.mark.parametrize("day", ["2024-01-12", "2024-01-13", "2024-01-15"])
def test_the_schedule_runs_the_check_every_evening(day):
    tick = dt.datetime.fromisoformat(f"{day}T18:00").replace(tzinfo=NEW_YORK)
    context = build_schedule_context(scheduled_execution_time=tick)
    (request,) = list(warehouse_freshness_schedule.evaluate_tick(context).run_requests)
    assert request.job_name in (None, FRESHNESS_JOB_NAME)
    # The run carries its tick, so the check judges "as of 18:00" however late it starts.
    assert pd.Timestamp(request.tags[SCHEDULED_TIME_TAG]) == pd.Timestamp(tick)
    assert warehouse_freshness_schedule.execution_timezone == "America/New_York"
    assert warehouse_freshness_schedule.cron_schedule == "0 18 * * *"
