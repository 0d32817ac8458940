"""The SQLite event log storage of the shipped instance config (tft_pipeline/defs/sqlite_event_log.py):
the private methods it overrides still exist in Dagster's class, and events written through it
round-trip, through it and through the stock class reading the same files."""

import shutil

import pandas as pd
from dagster import AssetKey, DagsterInstance, StaticPartitionsDefinition, asset, materialize
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from tft_pipeline.defs.sqlite_event_log import ReusedConnectionSqliteEventLogStorage
from tft_pipeline.settings import PROJECT_ROOT

KEYS = ["a", "b", "c"]


def test_the_overridden_private_methods_still_exist_in_dagsters_classes():
    assert callable(getattr(SqliteEventLogStorage, "_connect", None))
    assert callable(getattr(SqliteEventLogStorage, "has_table", None))
    assert callable(getattr(SqlEventLogStorage, "_has_asset_key_col_on_connection", None))


def test_materializations_round_trip_through_the_shipped_config(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    shutil.copy(PROJECT_ROOT / "deploy/sqlite/dagster.yaml", home / "dagster.yaml")

    @asset(partitions_def=StaticPartitionsDefinition(KEYS))
    def toy(context) -> None:
        context.add_output_metadata({"rows": 1})

    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, ReusedConnectionSqliteEventLogStorage)
        for key in KEYS:
            assert materialize([toy], instance=instance, partition_key=key).success
        # Twice: the second pass runs on the cached schema answers.
        assert materialize([toy], instance=instance, partition_key="a").success
        records = instance.fetch_materializations(AssetKey("toy"), limit=10).records
        assert sorted(record.partition_key for record in records) == ["a", "a", "b", "c"]
        assert instance.get_latest_materialization_event(AssetKey("toy")) is not None
        assert instance.event_log_storage.has_asset_key_index_cols()

    stock = SqliteEventLogStorage(str(home / "history" / "runs"))
    try:
        records = stock.fetch_materializations(AssetKey("toy"), limit=10).records
        assert len(records) == 4
        assert pd.Series([r.partition_key for r in records]).value_counts()["a"] == 2
    finally:
        stock.dispose()
