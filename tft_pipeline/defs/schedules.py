"""The daily schedule: after each weekday close, the session that just closed; holidays skipped."""


import pandas as pd
from dagster import RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from tft_pipeline.defs.checks import tick_tags
from tft_pipeline.defs.jobs import daily_session_chain
from tft_pipeline.defs.partitions import partition_key_of
from tft_pipeline.trading_calendar import NEW_YORK, is_session

# 16:30 New York: half an hour after the regular close (13:00 on half days) so the day's last bars
# and posts have settled. build_schedule_from_partitioned_job is not used: it ignores partition
# exclusions on its inferred path, so holidays would be requested.
DAILY_CRON = "30 16 * * 1-5"


@schedule(
    job=daily_session_chain,
    cron_schedule=DAILY_CRON,
    execution_timezone=NEW_YORK,
    description="Materializes the day's session after the close; skips exchange holidays.",
)
def daily_session_schedule(context: ScheduleEvaluationContext):
    tick = pd.Timestamp(context.scheduled_execution_time)
    tick = tick.tz_localize("UTC") if tick.tzinfo is None else tick
    day = tick.tz_convert(NEW_YORK).normalize().tz_localize(None)
    if not is_session(day):
        return SkipReason(f"{day.date()} is not an NYSE trading session (exchange holiday)")
    key = partition_key_of(day)
    return RunRequest(run_key=key, partition_key=key, tags=tick_tags(context))
