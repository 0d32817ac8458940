"""The one Definitions object of tft_pipeline: assembles assets, resources, jobs and schedules."""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, EnvVar, FilesystemIOManager

from tft_pipeline.defs.assets.clean import clean_assets
from tft_pipeline.defs.assets.export import export_assets
from tft_pipeline.defs.assets.features import feature_assets
from tft_pipeline.defs.assets.ingest import ingest_assets
from tft_pipeline.defs.assets.portfolio import portfolio_assets
from tft_pipeline.defs.assets.signals import signal_assets
from tft_pipeline.defs.assets.trading import trading_assets
from tft_pipeline.defs.checks import (
    latest_closed_session_loaded,
    warehouse_freshness_job,
    warehouse_freshness_schedule,
)
from tft_pipeline.defs.constants import HANDOVER_IO_MANAGER_KEY
from tft_pipeline.defs.executors import job_executor
from tft_pipeline.defs.io_manager import WarehouseIOManager
from tft_pipeline.defs.jobs import daily_session_chain
from tft_pipeline.defs.partitions import trading_session_partitions
from tft_pipeline.defs.resources import (
    LivePriceResource,
    LiveRedditResource,
    SamplePriceResource,
    SampleRedditResource,
    UniverseResource,
    WarehouseResource,
    live_reddit_credentials,
)
from tft_pipeline.defs.schedules import daily_session_schedule
from tft_pipeline.defs.security import warn_about_env_file_permissions
from tft_pipeline.defs.sensors import run_failure_alert_sensor
from tft_pipeline.settings import PROJECT_ROOT, DataSource, Settings, get_settings


def source_resources(settings: Settings) -> dict:
    """The Reddit and price sources of the configured data source."""
    if settings.data_source is DataSource.SAMPLE:
        return {
            "reddit": SampleRedditResource(
                subreddits=list(settings.subreddits),
                tickers=list(settings.tickers),
                seed=settings.sample_seed,
                scale=settings.sample_scale,
            ),
            "prices": SamplePriceResource(
                seed=settings.sample_seed,
                scale=settings.sample_scale,
                batch_tickers=settings.price_batch_tickers,
            ),
        }
    optional = {
        field: EnvVar(variable)
        for field, variable, value in (
            ("username", "REDDIT_USERNAME", settings.reddit_username),
            ("password", "REDDIT_PASSWORD", settings.reddit_password),
        )
        if value is not None
    }
    return {
        "reddit": LiveRedditResource(
            subreddits=list(settings.subreddits),
            oauth_url=settings.reddit_oauth_url,
            reddit_url=settings.reddit_url,
            top_posts_for_comments=settings.reddit_top_posts_for_comments,
            requests_per_second=settings.reddit_requests_per_second,
            more_comments_budget=settings.reddit_more_comments_budget,
            new_listing_margin_hours=settings.reddit_new_listing_margin_hours,
            **live_reddit_credentials(),
            **optional,
        ),
        "prices": LivePriceResource(
            requests_per_second=settings.price_requests_per_second,
            max_failed_share=settings.price_max_failed_share,
            batch_tickers=settings.price_batch_tickers,
        ),
    }


def build_definitions(settings: Settings) -> Definitions:
    """Everything Dagster needs, from one settings object (tests pass their own)."""
    warehouse_path = str(settings.resolved_warehouse_path())
    export_dir = Path(warehouse_path).parent / "export"
    sessions = trading_session_partitions(settings.start_date)
    return Definitions(
        assets=[
            *ingest_assets(sessions),
            *clean_assets(sessions),
            *feature_assets(sessions),
            *signal_assets(sessions, settings),
            *trading_assets(sessions, settings),
            *portfolio_assets(settings),
            *export_assets(sessions),
        ],
        asset_checks=[latest_closed_session_loaded],
        jobs=[daily_session_chain, warehouse_freshness_job],
        # Every job, the implicit asset job of `dagster asset materialize` and UI launches included,
        # runs its steps in the run's own process by default: steps are short and share one DuckDB
        # writer, and a process start per step costs more than the step. TFT_EXECUTOR=celery runs
        # them on Celery workers instead (defs/executors.py; docs/deploy.md).
        executor=job_executor(settings),
        schedules=[daily_session_schedule, warehouse_freshness_schedule],
        sensors=[run_failure_alert_sensor(settings)],
        resources={
            **source_resources(settings),
            "universe": UniverseResource(
                tickers=list(settings.tickers),
                ranges=[
                    f"{ticker}|{first or ''}|{last or ''}"
                    for ticker, pairs in settings.universe_ranges().items()
                    for first, last in pairs
                ],
            ),
            "warehouse_io_manager": WarehouseIOManager(database=warehouse_path),
            # Price batches between steps: pickles under $DAGSTER_HOME/storage (base_dir unset:
            # the instance's storage directory), readable by every step process of this host. Set
            # explicitly, so in-process runs (`make run`, tests) hand them over the same way as
            # Celery workers instead of through Dagster's in-memory default.
            HANDOVER_IO_MANAGER_KEY: FilesystemIOManager(),
            "warehouse": WarehouseResource(path=warehouse_path, export_dir=str(export_dir)),
        },
    )


warn_about_env_file_permissions(PROJECT_ROOT / ".env")
defs = build_definitions(get_settings())
