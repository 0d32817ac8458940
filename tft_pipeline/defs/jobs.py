"""The daily job: the whole chain for one session (or a range, as one run)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

DAILY_JOB_NAME = "daily_session_chain"

# The partitions come from the assets (the trading sessions from the settings' start date).
daily_session_chain = define_asset_job(
    name=DAILY_JOB_NAME,
    selection=AssetSelection.all(),
    description="Scrape, validate, build features, score, risk-check and book one NYSE session.",
    # No executor of its own: the code location's (TFT_EXECUTOR, tft_pipeline.defs.executors).
    # By default the in-process one: one DuckDB writer and small steps, so running them in the
    # run's own process, one after another, avoids a process start per step; with
    # TFT_EXECUTOR=celery, Dagster's Celery executor. The warehouse pool queues steps either way.
)
