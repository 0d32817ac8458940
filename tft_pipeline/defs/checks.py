"""Freshness: an asset check that the latest closed session's prices are loaded, and its schedule."""


import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    MetadataValue,
    RunRequest,
    ScheduleEvaluationContext,
    asset_check,
    define_asset_job,
    in_process_executor,
    schedule,
)

from tft_pipeline.defs.constants import WAREHOUSE_POOL
from tft_pipeline.defs.resources import WarehouseResource
from tft_pipeline.defs.run_tags import EVALUATED_AS_OF, TRIGGER
from tft_pipeline.freshness import DEFAULT_GRACE, FreshnessVerdict, check_freshness
from tft_pipeline.trading_calendar import NEW_YORK

PRICE_HISTORY = AssetKey(["clean", "price_history"])
PRICE_HISTORY_TABLE = "clean.price_history"
FRESHNESS_JOB_NAME = "warehouse_freshness"
# Our schedules tag each run with its tick time: the check judges the warehouse as of the tick,
# so a run that starts late still asks the question its schedule meant.
SCHEDULED_TIME_TAG = EVALUATED_AS_OF
# 18:00 New York every day: an hour and a half after the daily run's 16:30 tick (weekends too, so
# a failed Friday is reported before Monday's open).
FRESHNESS_CRON = "0 18 * * *"


def latest_loaded_session(warehouse: WarehouseResource) -> pd.Timestamp | None:
    """The most recent session in ``clean.price_history`` (None when the table is missing or empty)."""
    store = warehouse.warehouse()
    if not store.table_exists(PRICE_HISTORY_TABLE):
        return None
    latest = store.query(f"SELECT max(session_date) AS latest FROM {PRICE_HISTORY_TABLE}")["latest"].iloc[0]
    return None if pd.isna(latest) else pd.Timestamp(latest)


def evaluation_time(tags: dict[str, str]) -> pd.Timestamp:
    """The scheduled tick time of the run, or now for a run launched by hand."""
    scheduled = tags.get(SCHEDULED_TIME_TAG)
    return pd.Timestamp(scheduled).tz_convert("UTC") if scheduled else pd.Timestamp.now(tz="UTC")


def freshness_result(verdict: FreshnessVerdict) -> AssetCheckResult:
    return AssetCheckResult(
        passed=verdict.is_fresh,
        severity=AssetCheckSeverity.ERROR,
        description=verdict.describe(),
        metadata={
            "expected_session": MetadataValue.text(str(verdict.expected_session.date())),
            "latest_loaded_session": MetadataValue.text(
                str(verdict.latest_loaded.date()) if verdict.latest_loaded is not None else "none"
            ),
            "sessions_behind": MetadataValue.int(len(verdict.missing_sessions)),
            "evaluated_at": MetadataValue.text(verdict.now.tz_convert(NEW_YORK).isoformat()),
            "grace_minutes": MetadataValue.int(int(DEFAULT_GRACE.total_seconds() // 60)),
        },
    )


@asset_check(
    asset=PRICE_HISTORY,
    name="latest_closed_session_loaded",
    description=(
        "Fails when the most recent NYSE session that closed more than 90 minutes ago is not in "
        "clean.price_history (holidays and weekends are not sessions)."
    ),
    # Reads the DuckDB file: queue with the writers rather than race them for the lock.
    pool=WAREHOUSE_POOL,
)
def latest_closed_session_loaded(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    verdict = check_freshness(latest_loaded_session(warehouse), evaluation_time(context.run.tags))
    return freshness_result(verdict)


warehouse_freshness_job = define_asset_job(
    name=FRESHNESS_JOB_NAME,
    selection=AssetSelection.checks(latest_closed_session_loaded),
    description="Checks that the latest closed session is in the warehouse.",
    executor_def=in_process_executor,
)

def tick_tags(context: ScheduleEvaluationContext) -> dict[str, str]:
    """The tags every scheduled run of the project carries: its tick, in UTC."""
    tick = pd.Timestamp(context.scheduled_execution_time)
    tick = tick.tz_localize("UTC") if tick.tzinfo is None else tick.tz_convert("UTC")
    return {EVALUATED_AS_OF: tick.isoformat(), TRIGGER: "schedule"}


@schedule(
    name="warehouse_freshness_schedule",
    job=warehouse_freshness_job,
    cron_schedule=FRESHNESS_CRON,
    execution_timezone=NEW_YORK,
    description="Every day at 18:00 New York: is the latest closed session loaded?",
)
def warehouse_freshness_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest(tags=tick_tags(context))
