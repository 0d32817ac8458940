"""The daily schedule requests the session that just closed and skips holidays and weekends."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_schedule_context

from tft_pipeline.definitions import build_definitions
from tft_pipeline.defs.jobs import DAILY_JOB_NAME
from tft_pipeline.defs.schedules import DAILY_CRON, daily_session_schedule
from tft_pipeline.settings import load_settings

NEW_YORK = ZoneInfo("America/New_York")


def tick(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T16:30").replace(tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    "day, label",
    [("2024-01-12", "Friday"), ("2024-01-08", "Monday"), ("2024-11-29", "half day"), ("2024-03-11", "after DST change")],
)
def test_a_session_day_requests_its_own_partition(day, label):
    result = daily_session_schedule(build_schedule_context(scheduled_execution_time=tick(day)))
    assert isinstance(result, RunRequest), label
    assert result.partition_key == day and result.run_key == day


@pytest.mark.parametrize("day", ["2024-01-15", "2024-03-29", "2024-12-25"])
def test_a_holiday_is_skipped_with_a_reason(day):
    result = daily_session_schedule(build_schedule_context(scheduled_execution_time=tick(day)))
    assert isinstance(result, SkipReason)
    assert day in result.skip_message and "not an NYSE trading session" in result.skip_message


def test_a_weekend_is_skipped_even_if_asked():
    # The cron never fires on weekends; if evaluated anyway (manual tick), it still skips.
    result = daily_session_schedule(build_schedule_context(scheduled_execution_time=tick("2024-01-13")))
    assert isinstance(result, SkipReason)


def test_cron_fires_after_the_close_on_weekdays_only():
    assert DAILY_CRON == "30 16 * * 1-5"
    assert daily_session_schedule.execution_timezone == "America/New_York"


def test_requested_partitions_exist_in_the_job():
    job = build_definitions(load_settings(None)).resolve_job_def(DAILY_JOB_NAME)
    keys = set(job.partitions_def.get_partition_keys(dt.datetime(2024, 12, 31, tzinfo=NEW_YORK)))
    with DagsterInstance.ephemeral() as instance:
        for day in ["2024-01-12", "2024-11-29", "2024-12-24"]:
            request = daily_session_schedule(build_schedule_context(instance=instance, scheduled_execution_time=tick(day)))
            assert request.partition_key in keys
    assert "2024-01-15" not in keys and "2024-12-25" not in keys


def test_the_partitions_start_at_the_start_date_of_the_settings_passed():
    """Not at the one read from the environment when the module was imported."""
    settings = load_settings(None, TFT_START_DATE="2024-06-03")
    job = build_definitions(settings).resolve_job_def(DAILY_JOB_NAME)
    assert job.partitions_def.get_first_partition_key() == "2024-06-03"
    default = build_definitions(load_settings(None)).resolve_job_def(DAILY_JOB_NAME)
    assert default.partitions_def.get_first_partition_key() == "2024-01-02"
