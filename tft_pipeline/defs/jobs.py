"""The daily job: the whole chain for one session (or a range, as one run)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

DAILY_JOB_NAME = "daily_session_chain"

# The partitions come from the assets (the trading sessions from the settings' start date).
daily_session_chain = define_asset_job(
    name=DAILY_JOB_NAME,
    selection=AssetSelection.all(),
    description="Scrape, validate, build features, score, risk-check and book one NYSE session.",
    # One DuckDB writer and small steps: running them in the run's own process, one after another,
    # avoids a process start per step. The warehouse pool queues steps of other runs.
    executor_def=in_process_executor,
)
