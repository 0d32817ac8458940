"""End to end: the real chain materialized in-process into a temporary warehouse."""

from __future__ import annotations

import pandas as pd
import pytest

from tft_pipeline.trading_calendar import sessions_between
from tft_pipeline.warehouse import Warehouse

pytestmark = pytest.mark.slow

FIRST, LAST = "2024-01-08", "2024-01-19"  # ten sessions around MLK Day (2024-01-15)
PARTITIONED_TABLES = [
    "raw.reddit_posts", "raw.reddit_comments", "raw.price_history",
    "clean.reddit_posts", "clean.reddit_comments", "clean.price_history", "clean.rejected_rows",
]
KEYS = {
    "price_history": ["ticker", "session_date"],
    "reddit_posts": ["post_id"],
    "reddit_comments": ["comment_id"],
}


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def metadata_sum(pipeline, asset_path: list[str], key: str) -> int:
    from dagster import AssetKey

    total = 0
    for record in pipeline.instance.fetch_materializations(AssetKey(asset_path), limit=1000).records:
        value = record.asset_materialization.metadata.get(key)
        total += value.value if value is not None else 0
    return total


@pytest.fixture
def ten_sessions(pipeline):
    result = pipeline.run(FIRST, LAST)
    assert result.success
    return pipeline


def test_one_run_materializes_every_session_of_the_range(ten_sessions):
    expected = set(sessions_between(FIRST, LAST))
    assert len(expected) == 9  # MLK Day is not a session
    for table in PARTITIONED_TABLES:
        frame = ten_sessions.table(table)
        assert len(frame), table
        assert set(pd.to_datetime(frame["session_date"])) <= expected, table
    assert set(pd.to_datetime(ten_sessions.table("clean.price_history")["session_date"])) == expected
    runs = ten_sessions.instance.get_runs()
    assert len(runs) == 1


def test_clean_tables_are_unique_per_key_and_valid(ten_sessions):
    prices = ten_sessions.table("clean.price_history")
    assert not prices.duplicated(KEYS["price_history"]).any()
    assert (prices[["open", "high", "low", "close", "adj_close"]] > 0).all().all()
    assert (prices["high"] >= prices[["open", "close", "low"]].max(axis=1)).all()
    assert (prices["low"] <= prices[["open", "close"]].min(axis=1)).all()
    assert (prices["volume"] >= 0).all()
    for name in ("reddit_posts", "reddit_comments"):
        clean = ten_sessions.table(f"clean.{name}")
        assert not clean.duplicated(KEYS[name]).any(), name


def test_nothing_is_lost_raw_equals_clean_plus_rejected_plus_duplicates(ten_sessions):
    rejected = ten_sessions.table("clean.rejected_rows")
    for name, key in KEYS.items():
        raw = ten_sessions.table(f"raw.{name}")
        clean = ten_sessions.table(f"clean.{name}")
        rejected_here = rejected[rejected["source"] == f"raw.{name}"]
        duplicates = metadata_sum(ten_sessions, ["clean", name], "duplicates_dropped")
        # Every materialization of the range carries the run's totals: count them once.
        duplicates //= len(sessions_between(FIRST, LAST))
        assert len(raw) == len(clean) + len(rejected_here) + duplicates, name
        assert len(rejected_here) > 0, f"the sample feed carries dirt in raw.{name}"
        assert duplicates > 0, f"the sample feed carries repeated fetches in raw.{name}"
        assert rejected_here["reason"].str.len().min() > 5
        if len(key) == 1:  # every fetched post and comment id survives: clean or quarantined
            survivors = set(clean[key[0]]) | set(rejected_here["record_key"])
            assert set(raw[key[0]].dropna()) <= survivors, name


def test_dirty_rows_are_quarantined_with_reason_and_payload(ten_sessions):
    rejected = ten_sessions.table("clean.rejected_rows")
    prices = rejected[rejected["source"] == "raw.price_history"]
    assert prices["payload"].str.startswith("{").all()
    reasons = " ".join(prices["reason"])
    assert "high" in reasons or "volume" in reasons or "finite" in reasons


def test_rematerializing_is_idempotent(ten_sessions):
    before = {table: sorted_frame(ten_sessions.table(table)) for table in PARTITIONED_TABLES}
    assert ten_sessions.run(FIRST, LAST).success
    for table, frame in before.items():
        pd.testing.assert_frame_equal(sorted_frame(ten_sessions.table(table)), frame, obj=table)


def test_one_run_per_session_gives_the_same_tables_as_one_range_run(pipeline, tmp_path):
    from tft_pipeline_tests.conftest import Pipeline

    assert pipeline.run("2024-01-10", "2024-01-12").success
    daily = Pipeline(tmp_path / "daily.duckdb", pipeline.instance)
    for day in ["2024-01-12", "2024-01-10", "2024-01-11"]:  # any order
        assert daily.run(day).success
    for table in PARTITIONED_TABLES:
        pd.testing.assert_frame_equal(sorted_frame(daily.table(table)), sorted_frame(pipeline.table(table)), obj=table)


def test_a_failed_write_leaves_the_previous_partition(ten_sessions, monkeypatch):
    before = sorted_frame(ten_sessions.table("clean.price_history"))
    original = Warehouse.replace_partitions

    def crash_while_writing_clean_prices(self, table, frame, partitions, **kwargs):
        if table == "clean.price_history":
            def crash(connection):
                raise OSError("disk full while writing")
            return original(self, table, frame.assign(close=frame["close"] * 2), partitions, before_insert=crash)
        return original(self, table, frame, partitions, **kwargs)

    monkeypatch.setattr(Warehouse, "replace_partitions", crash_while_writing_clean_prices)
    result = ten_sessions.run("2024-01-10", raise_on_error=False)
    assert not result.success
    pd.testing.assert_frame_equal(sorted_frame(ten_sessions.table("clean.price_history")), before)


def test_parquet_export_mirrors_the_clean_tables(ten_sessions):
    import duckdb

    export_dir = ten_sessions.warehouse_path.parent / "export"
    for table in ("clean.price_history", "clean.reddit_posts"):
        folders = sorted(p.name for p in (export_dir / table).iterdir())
        assert folders == [f"session_date={d:%Y-%m-%d}" for d in sessions_between(FIRST, LAST)]
        exported = duckdb.connect().execute(
            f"SELECT count(*) FROM read_parquet('{export_dir}/{table}/*/*.parquet', hive_partitioning=true)"
        ).fetchone()[0]
        assert exported == len(ten_sessions.table(table))


def test_materializations_carry_ui_metadata(ten_sessions):
    from dagster import AssetKey

    record = ten_sessions.instance.fetch_materializations(AssetKey(["clean", "price_history"]), limit=1).records[0]
    metadata = record.asset_materialization.metadata
    for key in ("raw_rows", "clean_rows", "rejected_rows", "duplicates_dropped", "acceptance_rate", "rejected_by_check", "preview", "dagster/row_count"):
        assert key in metadata, key
    assert 0.9 < metadata["acceptance_rate"].value <= 1.0

