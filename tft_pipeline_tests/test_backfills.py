"""Any asset can be materialized alone over a range of sessions, as one run: from the command line
(`dagster asset materialize --select X --partition-range`) and in-process on an instance. (The UI's
and the job page's backfills are launched through a real webserver and daemon in test_daemon.py.)"""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from tft_pipeline.defs.run_tags import range_tags
from tft_pipeline.trading_calendar import sessions_between
from tft_pipeline_tests.operations_support import dagster_cli, make_dagster_home, pipeline_env

pytestmark = pytest.mark.slow

FIRST, LAST = "2024-03-04", "2024-03-08"


def _sessions_in(warehouse, table: str) -> list[pd.Timestamp]:
    return sorted(set(pd.to_datetime(warehouse.read_table(table)["session_date"])))


def test_the_cli_materializes_one_asset_alone_over_a_range_in_one_run(tmp_path):
    home = make_dagster_home(tmp_path / "dagster_home", "sqlite")
    warehouse_path = tmp_path / "warehouse.duckdb"
    env = pipeline_env(home, warehouse_path, "AAPL,MSFT")
    for selection in ("raw/price_history", "clean/price_history"):
        done = subprocess.run(
            dagster_cli(
                "dagster", "asset", "materialize", "-m", "tft_pipeline.definitions",
                "--select", selection, "--partition-range", f"{FIRST}...{LAST}",
            ),
            check=False, env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    from tft_pipeline.warehouse import Warehouse

    warehouse = Warehouse(warehouse_path)
    assert _sessions_in(warehouse, "clean.price_history") == list(sessions_between(FIRST, LAST))
    assert not warehouse.table_exists("raw.reddit_posts")  # nothing else was materialized
    assert not warehouse.table_exists("raw.price_fetch_failures")  # not even its sibling table

    import os

    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            runs = instance.get_runs()
            assert len(runs) == 2  # one per command, each for the whole range
            for run in runs:
                assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (FIRST, LAST)
            records = instance.fetch_materializations(AssetKey(["clean", "price_history"]), limit=10).records
            assert sorted(record.partition_key for record in records) == [
                day.strftime("%Y-%m-%d") for day in sessions_between(FIRST, LAST)
            ]
    finally:
        del os.environ["DAGSTER_HOME"]


@pytest.mark.parametrize(
    "selection, written, not_written",
    [
        ([["raw", "price_fetch_failures"]], "raw.price_fetch_failures", "raw.price_history"),
        ([["raw", "reddit_posts"]], "raw.reddit_posts", "raw.reddit_comments"),
    ],
)
def test_in_process_one_table_of_a_multi_table_step_alone(pipeline, selection, written, not_written):
    job = pipeline.defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=pipeline.instance,
        asset_selection=[AssetKey(path) for path in selection],
        tags=range_tags(FIRST, LAST),
    )
    assert result.success
    assert len(pipeline.instance.get_runs()) == 1
    assert pipeline.warehouse.table_exists(written)
    assert not pipeline.warehouse.table_exists(not_written)


def test_in_process_each_signal_table_alone_after_the_features(pipeline):
    """The walk-forward's two tables and the risk step's four can each be rebuilt alone."""
    assert pipeline.run(FIRST, LAST).success
    before = pipeline.table("portfolio.equity")
    job = pipeline.defs.resolve_implicit_global_asset_job_def()
    for path in (["signals", "model_versions"], ["portfolio", "equity"], ["portfolio", "position_book"]):
        result = job.execute_in_process(
            instance=pipeline.instance, asset_selection=[AssetKey(path)], tags=range_tags(FIRST, LAST)
        )
        assert result.success, path
        materialized = {event.asset_key for event in result.get_asset_materialization_events()}
        assert materialized == {AssetKey(path)}, path
    pd.testing.assert_frame_equal(pipeline.table("portfolio.equity"), before)
