"""The warehouse: atomic partition replacement, inserts by column name, export, lock waiting."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pandas as pd
import pytest

from tft_pipeline.warehouse import Warehouse, WarehouseError


def bars(sessions, close=1.0, tickers=("AAA", "BBB")) -> pd.DataFrame:
    rows = [
        {"ticker": t, "session_date": pd.Timestamp(s), "close": close, "volume": 100}
        for s in sessions
        for t in tickers
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


def test_replace_writes_only_the_given_partitions(warehouse):
    warehouse.replace_partitions("raw.bars", bars(["2024-01-02", "2024-01-03"]), ["2024-01-02", "2024-01-03"])
    warehouse.replace_partitions("raw.bars", bars(["2024-01-03"], close=9.0, tickers=("CCC",)), ["2024-01-03"])
    table = warehouse.read_table("raw.bars").sort_values(["session_date", "ticker"])
    assert table[["ticker", "close"]].values.tolist() == [["AAA", 1.0], ["BBB", 1.0], ["CCC", 9.0]]
    assert warehouse.query("SELECT typeof(session_date) t FROM raw.bars LIMIT 1")["t"][0] == "DATE"


def test_inserts_by_column_name_not_position(warehouse):
    warehouse.replace_partitions("raw.bars", bars(["2024-01-02"]), ["2024-01-02"])
    reordered = bars(["2024-01-03"], close=7.0)[["volume", "close", "session_date", "ticker"]]
    warehouse.replace_partitions("raw.bars", reordered, ["2024-01-03"])
    row = warehouse.read_sessions("raw.bars", "2024-01-03", "2024-01-03").iloc[0]
    assert (row["ticker"], row["close"], row["volume"]) == ("AAA", 7.0, 100)


def test_new_columns_are_added_and_missing_ones_become_null(warehouse):
    warehouse.replace_partitions("raw.bars", bars(["2024-01-02"]), ["2024-01-02"])
    extended = bars(["2024-01-03"]).drop(columns=["volume"]).assign(source="sample")
    warehouse.replace_partitions("raw.bars", extended, ["2024-01-03"])
    new = warehouse.read_sessions("raw.bars", "2024-01-03", "2024-01-03")
    assert new["source"].tolist() == ["sample", "sample"] and new["volume"].isna().all()


READERS = {
    "read_sessions": lambda w: w.read_sessions("raw.stamps", "2024-01-02", "2024-01-03"),
    "read_table": lambda w: w.read_table("raw.stamps"),
    "query": lambda w: w.query("SELECT * FROM raw.stamps"),
}


@pytest.mark.parametrize("read", READERS.values(), ids=READERS.keys())
def test_dates_and_timestamps_read_back_as_naive_nanoseconds(warehouse, read):
    # DuckDB 2 hands DATE and TIMESTAMP to pandas as datetime64[us]; the package works in [ns].
    with warehouse.connect() as connection:
        connection.execute("CREATE SCHEMA raw")
        connection.execute(
            "CREATE TABLE raw.stamps (session_date DATE, fetched_at TIMESTAMP, "
            "aware TIMESTAMPTZ, close DOUBLE)"
        )
        connection.execute(
            "INSERT INTO raw.stamps VALUES "
            "('2024-01-02', '2024-01-02 21:15:30.123456', '2024-01-02 21:15:00+00', 1.0), "
            "('2024-01-03', NULL, NULL, 2.0)"
        )
    frame = read(warehouse).sort_values("close", ignore_index=True)
    assert frame["session_date"].dtype == "datetime64[ns]"
    assert frame["fetched_at"].dtype == "datetime64[ns]"
    assert frame["session_date"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    assert frame["fetched_at"].iloc[0] == pd.Timestamp("2024-01-02 21:15:30.123456")
    assert pd.isna(frame["fetched_at"].iloc[1])
    # Aware columns keep their zone: dropping it would silently change what the value means.
    assert frame["aware"].dt.tz is not None


def test_failure_mid_write_leaves_the_old_partition(warehouse):
    warehouse.replace_partitions("raw.bars", bars(["2024-01-02"]), ["2024-01-02"])

    def crash_after_delete(connection):
        # The delete already ran inside the transaction: the old rows are gone in here...
        assert connection.execute("SELECT count(*) FROM raw.bars").fetchone()[0] == 0
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        warehouse.replace_partitions("raw.bars", bars(["2024-01-02"], close=5.0), ["2024-01-02"], before_insert=crash_after_delete)
    # ...but not outside it.
    assert warehouse.read_table("raw.bars")["close"].tolist() == [1.0, 1.0]


def test_a_failing_insert_rolls_back_the_delete(warehouse):
    warehouse.replace_partitions("raw.bars", bars(["2024-01-02"]), ["2024-01-02"])
    bad = bars(["2024-01-02"]).assign(close=["not a number", "x"])
    with pytest.raises(duckdb.Error):
        warehouse.replace_partitions("raw.bars", bad, ["2024-01-02"])
    assert len(warehouse.read_table("raw.bars")) == 2


def test_rows_outside_the_partitions_are_refused(warehouse):
    with pytest.raises(WarehouseError, match="session\\(s\\) 2024-01-03 outside the partitions"):
        warehouse.replace_partitions("raw.bars", bars(["2024-01-02", "2024-01-03"]), ["2024-01-02"])


def test_empty_frame_clears_the_partition(warehouse):
    warehouse.replace_partitions("raw.bars", bars(["2024-01-02"]), ["2024-01-02"])
    empty = bars(["2024-01-02"]).iloc[0:0]
    warehouse.replace_partitions("raw.bars", empty, ["2024-01-02"])
    assert warehouse.read_table("raw.bars").empty


def test_bad_table_names_are_refused(warehouse):
    for name in ("bars", "raw.bars; DROP TABLE x", "Raw.Bars"):
        with pytest.raises(WarehouseError):
            warehouse.replace_partitions(name, bars(["2024-01-02"]), ["2024-01-02"])


def test_parquet_export_is_partitioned_and_idempotent(warehouse, tmp_path):
    warehouse.replace_partitions("clean.bars", bars(["2024-01-02", "2024-01-03"]), ["2024-01-02", "2024-01-03"])
    export = tmp_path / "export"
    first = warehouse.export_parquet("clean.bars", export, ["2024-01-02", "2024-01-03"])
    second = warehouse.export_parquet("clean.bars", export, ["2024-01-02", "2024-01-03"])
    assert first == second
    assert [p.parent.name for p in first] == ["session_date=2024-01-02", "session_date=2024-01-03"]
    back = duckdb.sql(f"SELECT * FROM read_parquet('{export}/clean.bars/*/*.parquet', hive_partitioning=true)").df()
    assert len(back) == 4


def test_waits_for_another_process_holding_the_lock(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    Warehouse(path).replace_partitions("raw.bars", bars(["2024-01-02"]), ["2024-01-02"])
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            connection = duckdb.connect({str(path)!r})
            print("locked", flush=True)
            time.sleep(1.5)
            connection.close()
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        waits: list[float] = []
        import time as real_time

        patient = Warehouse(path, lock_timeout_s=30, sleep=lambda s: (waits.append(s), real_time.sleep(s)))
        patient.replace_partitions("raw.bars", bars(["2024-01-03"]), ["2024-01-03"])
        assert waits, "the writer should have waited for the lock"
        assert len(patient.read_table("raw.bars")) == 4
    finally:
        holder.wait(timeout=10)


def test_gives_up_on_the_lock_after_the_timeout(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    clock = iter(range(0, 10_000, 10))
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('locked', flush=True); time.sleep(5)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        impatient = Warehouse(path, lock_timeout_s=30, sleep=lambda s: None, clock=lambda: next(clock))
        with pytest.raises(duckdb.IOException, match="lock"):
            impatient.replace_partitions("raw.bars", bars(["2024-01-02"]), ["2024-01-02"])
    finally:
        holder.kill()
        holder.wait()
