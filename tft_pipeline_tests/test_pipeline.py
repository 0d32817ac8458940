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
        # Each session's materialization carries that session's own count, so they add up.
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



def test_each_partition_page_after_a_range_run_describes_its_own_session(ten_sessions):
    from dagster import AssetKey

    prices = ten_sessions.table("clean.price_history")
    per_session = prices.groupby(pd.to_datetime(prices["session_date"]).dt.strftime("%Y-%m-%d")).size()
    rejected = ten_sessions.table("clean.rejected_rows")
    rejected = rejected[rejected["source"] == "raw.price_history"]
    rejected_per_session = rejected.groupby(
        pd.to_datetime(rejected["session_date"]).dt.strftime("%Y-%m-%d")
    ).size()
    raw = ten_sessions.table("raw.price_history")
    raw_per_session = raw.groupby(pd.to_datetime(raw["session_date"]).dt.strftime("%Y-%m-%d")).size()
    records = ten_sessions.instance.fetch_materializations(
        AssetKey(["clean", "price_history"]), limit=100
    ).records
    assert len(records) == len(per_session) == 9
    for record in records:
        key = record.partition_key
        metadata = record.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == per_session[key], key
        assert metadata["clean_rows"].value == per_session[key], key
        assert metadata["raw_rows"].value == raw_per_session[key], key
        assert metadata["rejected_rows"].value == rejected_per_session.get(key, 0), key
        preview = metadata["preview"].value
        other_days = [day for day in per_session.index if day != key]
        assert key in preview and not any(day in preview for day in other_days), key
        # The page says plainly that the run covered a range, and which.
        assert metadata["materialized_in_range"].value.startswith(f"{FIRST}..{LAST}")


def test_a_session_whose_previous_session_was_never_booked_fails_naming_the_gap(pipeline):
    assert pipeline.run("2024-01-10").success
    result = pipeline.run("2024-01-12", raise_on_error=False)
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "risk_checked_signals"
    message = failure.step_failure_data.user_failure_data.description
    assert "last booked on 2024-01-10" in message and "after 2024-01-11" in message


def test_a_backtest_without_trades_says_why_instead_of_blank_cells(ten_sessions):
    from dagster import AssetKey

    (record,) = ten_sessions.instance.fetch_materializations(
        AssetKey(["portfolio", "backtest_report"]), limit=1
    ).records
    metadata = record.asset_materialization.metadata
    assert metadata["trades"].value == 0
    assert metadata["why_no_trades"].value.startswith(f"No trade was opened in {FIRST}..{LAST}")
    assert "hit_rate_pct" not in metadata and "profit_factor" not in metadata
    # Ten sessions give the walk-forward nothing to train on yet, and the report says so.
    assert metadata["sessions_with_signals"].value.startswith("0 of 9 ")
