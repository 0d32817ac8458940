"""Any asset can be materialized alone over a range of sessions, as one run: from the command line
(`dagster asset materialize --select X --partition-range`) and in-process on an instance. (The UI's
and the job page's backfills are launched through a real webserver and daemon in test_daemon.py.)"""

from __future__ import annotations

import itertools
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


# --- the risk step and the ledger alone, on fake upstream tables ----------------------------------

RISK_OUTPUTS = [
    AssetKey(["signals", "risk_decisions"]),
    AssetKey(["signals", "risk_filtered_signals"]),
    AssetKey(["portfolio", "equity"]),
    AssetKey(["portfolio", "position_book"]),
]
RISK_TABLES = [
    "signals.risk_decisions", "signals.risk_filtered_signals", "portfolio.equity",
    "portfolio.position_book",
]
TRADED = sessions_between("2024-03-01", "2024-03-20")
# Tight protections so halts, cooldowns and daily-loss stops all happen within a few sessions.
TIGHT = {
    "TFT_RISK_MIN_CONFIDENCE": "0.5",
    "TFT_RISK_MAX_POSITION_FRACTION": "0.5",
    "TFT_RISK_RISK_PER_TRADE": "0.05",
    "TFT_RISK_MAX_DRAWDOWN": "0.03",
    "TFT_RISK_DRAWDOWN_LOOKBACK_SESSIONS": "4",
    "TFT_RISK_DRAWDOWN_STOP_SESSIONS": "2",
    "TFT_RISK_COOLDOWN_SESSIONS": "3",
    "TFT_RISK_MAX_DAILY_LOSS": "0.01",
}


def _fake_upstream(warehouse) -> None:
    """Gappy random-walk bars (one ticker misses a bar) and daily long signals on every ticker."""
    import numpy as np

    from tft_pipeline.model.walk_forward import SIGNAL_COLUMNS
    from tft_pipeline.tables import conform

    rng = np.random.default_rng(7)
    history = sessions_between("2024-02-01", TRADED[-1])
    tickers = ["AAPL", "MSFT", "NVDA", "TSLA", "GME", "AMC"]
    bars, signals = [], []
    for ticker in tickers:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.03, len(history))))
        gap = np.exp(rng.normal(0, 0.02, len(history)))
        open_ = np.concatenate([[close[0]], close[:-1]]) * gap
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.03, len(history)))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.03, len(history)))
        for i, day in enumerate(history):
            if ticker == "GME" and day == TRADED[6]:
                continue  # no bar: an order for that open is not filled
            bars.append(
                {"ticker": ticker, "session_date": day, "open": open_[i], "high": high[i],
                 "low": low[i], "close": close[i], "adj_close": close[i], "volume": 1e6}
            )
            if day in TRADED:
                atr = 0.04 * close[i]
                signals.append(
                    {"ticker": ticker, "session_date": day, "model": "fake", "direction": "long",
                     "confidence": rng.uniform(0.4, 0.95), "entry": close[i],
                     "stop_loss": close[i] - atr, "take_profit": close[i] + 2 * atr,
                     "model_version": "v1", "model_auc": 0.6, "model_brier_skill": 0.02}
                )
    prices = pd.DataFrame(bars)
    prices["fetched_at"] = pd.Timestamp("2024-04-01")
    warehouse.replace_partitions("clean.price_history", prices, history)
    warehouse.replace_partitions(
        "signals.trading_signals", conform(pd.DataFrame(signals), SIGNAL_COLUMNS), TRADED
    )


def _risk_run(pipeline, first, last, **kwargs):
    job = pipeline.defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=pipeline.instance, asset_selection=RISK_OUTPUTS,
        tags=range_tags(f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"), **kwargs,
    )


def _tables(pipeline) -> dict[str, pd.DataFrame]:
    return {
        table: pipeline.table(table).sort_values(
            [c for c in ("session_date", "ticker", "opened_on") if c in pipeline.table(table)]
        ).reset_index(drop=True)
        for table in RISK_TABLES
    }


def test_the_risk_step_over_a_range_equals_one_run_per_session_with_next_open_fills(tmp_path):
    """The real assets, one run for the range against one run per session: the state carried from
    one session to the next (pending orders, drawdown window and halt, cooldowns) is complete."""
    import shutil

    from tft_pipeline_tests.conftest import Pipeline

    with DagsterInstance.ephemeral() as instance:
        ranged = Pipeline(tmp_path / "range.duckdb", instance, TIGHT)
        _fake_upstream(ranged.warehouse)
        shutil.copy(ranged.warehouse_path, tmp_path / "daily.duckdb")
        daily = Pipeline(tmp_path / "daily.duckdb", instance, TIGHT)
        assert _risk_run(ranged, TRADED[0], TRADED[-1]).success
        for day in TRADED:
            assert _risk_run(daily, day, day).success, day
        in_range, one_by_one = _tables(ranged), _tables(daily)

    for table in RISK_TABLES:
        pd.testing.assert_frame_equal(one_by_one[table], in_range[table], obj=table)
    book, equity = in_range["portfolio.position_book"], in_range["portfolio.equity"]
    decisions = in_range["signals.risk_decisions"]
    filled = book[book["shares"] > 0]
    # Decided at a close, filled at the next session's open: never on the signal's own session.
    following = dict(itertools.pairwise(TRADED))
    assert (filled["opened_on"] == filled["signal_date"].map(following)).all()
    assert (book["exit_reason"] == "not_filled").any()
    reasons = set(decisions["reasons"].str.split(";").explode())
    assert {"max_drawdown", "ticker_cooldown", "daily_loss_limit"} <= reasons
    assert equity["halted_until"].notna().any() and equity["halted_until"].isna().any()
    # No leverage: at every close the long book fits in equity and cash stays >= 0.
    assert (equity["cash"] >= -1e-6).all() and (equity["market_value"] <= equity["equity"] + 1e-6).all()


def test_the_risk_step_refuses_a_session_whose_previous_one_is_not_booked(tmp_path):
    from tft_pipeline_tests.conftest import Pipeline

    with DagsterInstance.ephemeral() as instance:
        pipeline = Pipeline(tmp_path / "warehouse.duckdb", instance, TIGHT)
        _fake_upstream(pipeline.warehouse)
        assert _risk_run(pipeline, TRADED[0], TRADED[2]).success
        result = _risk_run(pipeline, TRADED[4], TRADED[4], raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.error.message
    assert (
        f"the paper portfolio was last booked on {TRADED[2]:%Y-%m-%d}, but {TRADED[4]:%Y-%m-%d} "
        f"needs the state after {TRADED[3]:%Y-%m-%d}"
    ) in message
