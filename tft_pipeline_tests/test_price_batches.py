"""The price scrape fanned out in ticker batches (issue 12, "Past one machine"): a universe larger
than ``TFT_PRICE_BATCH_TICKERS`` is fetched by several steps, one per batch, and the tables are
the ones a single fetch writes; ``TFT_PRICE_MAX_FAILED_SHARE`` judges the whole universe, never
one batch; the fetch steps run in the ``yahoo_prices`` pool and share ``TFT_PRICE_RPS``.
"""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from tft_pipeline.defs.assets.ingest import (
    PriceBatch,
    concurrent_price_fetches,
    merge_price_fetches,
    price_batches,
    refetched,
)
from tft_pipeline.defs.constants import WAREHOUSE_POOL, YAHOO_POOL
from tft_pipeline.defs.jobs import DAILY_JOB_NAME
from tft_pipeline.defs.resources import LivePriceResource
from tft_pipeline.settings import SettingsError, load_settings
from tft_pipeline.sources.prices_live import LivePriceSource, PriceSourceError
from tft_pipeline.sources.sample import SamplePriceSource
from tft_pipeline_tests.conftest import SAMPLE_TICKERS, Pipeline
from tft_pipeline_tests.test_celery import _warehouse_tables

FIRST, LAST = "2024-03-04", "2024-03-08"
PRICE_KEYS = [
    AssetKey(["raw", "price_history"]),
    AssetKey(["raw", "price_fetch_failures"]),
    AssetKey(["raw", "corporate_actions"]),
]
FETCH_STEP = "raw_price_history.fetch_price_batch"


def _succeeded(result, prefix: str) -> list[str]:
    return sorted(
        event.step_key
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_SUCCESS
        and (event.step_key or "").startswith(prefix)
    )


# --- planning and merging (pure) ---------------------------------------------------------------


def test_batches_cut_the_universe_in_order_and_an_empty_universe_is_one_empty_batch():
    batches = price_batches(["A", "B", "C", "B", "D", "E"], 2)
    assert [batch.tickers for batch in batches] == [("A", "B"), ("C", "D"), ("E",)]
    assert {(batch.count, batch.universe_size) for batch in batches} == {(3, 5)}
    assert [batch.mapping_key for batch in batches] == ["batch_0001", "batch_0002", "batch_0003"]
    assert price_batches(["A", "B"], 100) == [PriceBatch(1, 1, ("A", "B"), 2)]
    assert price_batches([], 100) == [PriceBatch(1, 1, (), 0)]
    with pytest.raises(ValueError, match="at least 1"):
        price_batches(["A"], 0)


def test_the_batch_size_is_a_validated_setting(tmp_path):
    assert load_settings(None, TFT_WAREHOUSE_PATH=str(tmp_path / "w")).price_batch_tickers == 100
    assert load_settings(None, TFT_PRICE_BATCH_TICKERS="7").price_batch_tickers == 7
    for wrong in ("0", "-3", "many"):
        with pytest.raises(SettingsError, match="TFT_PRICE_BATCH_TICKERS"):
            load_settings(None, TFT_PRICE_BATCH_TICKERS=wrong)


def test_merged_batches_equal_one_fetch_of_the_whole_universe():
    source = SamplePriceSource(seed=7)
    sessions = pd.DatetimeIndex(pd.to_datetime(["2024-03-04", "2024-03-05", "2024-03-06"]))
    tickers = SAMPLE_TICKERS.split(",")
    whole = source.fetch_prices(tickers, sessions)
    merged = merge_price_fetches(
        [source.fetch_batch(batch.tickers, sessions) for batch in price_batches(tickers, 5)]
    )
    order = ["ticker", "session_date", "fetched_at", "close"]
    pd.testing.assert_frame_equal(
        merged.bars.sort_values(order).reset_index(drop=True),
        whole.bars.sort_values(order).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(merged.failures, whole.failures)
    pd.testing.assert_frame_equal(merged.actions, whole.actions)


def _failure_fetch(failed: dict[str, bool]) -> object:
    """A fetch whose ``failed`` tickers (ticker -> transient) failed, as the live source records."""
    from tft_pipeline.sources.base import PriceFetch
    from tft_pipeline.sources.prices_live import FAILURE_COLUMNS
    from tft_pipeline.tables import RAW_PRICE_COLUMNS, conform

    failures = conform(
        pd.DataFrame(
            {
                "ticker": list(failed),
                "error_type": ["YFRateLimitError" if t else "YFTzMissingError" for t in failed.values()],
                "message": ["failed"] * len(failed),
                "attempts": [4 if t else 1 for t in failed.values()],
            }
        ),
        FAILURE_COLUMNS,
    )
    return PriceFetch(
        bars=conform(pd.DataFrame(), RAW_PRICE_COLUMNS),
        failures=failures,
        requests=len(failed),
        transient_failures=tuple(ticker for ticker, transient in failed.items() if transient),
    )


def test_the_failure_share_is_judged_on_the_whole_universe_not_on_a_batch():
    source = LivePriceSource(max_failed_share=0.2)
    # Two batches of 5 tickers of a universe of 10, one failed ticker each: 20 % of a batch would
    # be the limit, and the universe's 2 of 10 is exactly the allowed share.
    first, second = _failure_fetch({"AAA": False}), _failure_fetch({"BBB": True})
    merged = merge_price_fetches([first, second])
    source.check_failures(merged, 10)  # passes: exactly the allowed share
    assert merged.transient_failures == ("BBB",)
    with pytest.raises(PriceSourceError) as raised:
        source.check_failures(merge_price_fetches([merged, _failure_fetch({"CCC": False})]), 10)
    error = raised.value
    assert error.failed_tickers == ("AAA", "BBB", "CCC")
    assert "3 of 10 tickers (30%)" in str(error)
    assert error.permanent is False, "one failure was transient: worth asking again"
    with pytest.raises(PriceSourceError) as raised:
        source.check_failures(_failure_fetch({"AAA": False, "CCC": False, "DDD": False}), 10)
    assert raised.value.permanent is True


def test_a_refetch_replaces_the_tickers_asked_again():
    before = merge_price_fetches([_failure_fetch({"AAA": False}), _failure_fetch({"BBB": True})])
    again = _failure_fetch({})  # BBB fetched this time (no failure, bars not needed here)
    after = refetched(before, again)
    assert list(after.failures["ticker"]) == ["AAA"]
    assert after.transient_failures == ()
    assert after.requests == before.requests + again.requests


def test_fetch_steps_share_the_rate_by_the_pool_slots_and_the_batches(tmp_path, monkeypatch):
    resource = LivePriceResource(requests_per_second=2.0)
    assert resource.build_source(4)._limiter.per_second == pytest.approx(0.5)
    assert resource.build_source()._limiter.per_second == pytest.approx(2.0)
    with DagsterInstance.ephemeral() as instance:
        # No pool on an in-memory instance: every batch may run at once.
        assert concurrent_price_fetches(instance, 3) == 3
    from tft_pipeline_tests.operations_support import make_dagster_home

    home = make_dagster_home(tmp_path / "home", "sqlite")
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the shipped config locates its files by it
    with DagsterInstance.from_config(str(home)) as instance:
        # The shipped default pool limit (1) until the pool is set.
        assert concurrent_price_fetches(instance, 3) == 1
        instance.event_log_storage.set_concurrency_slots(YAHOO_POOL, 2)
        assert concurrent_price_fetches(instance, 3) == 2
        assert concurrent_price_fetches(instance, 1) == 1


# --- the fan-out in the real chain ---------------------------------------------------------------


def test_a_universe_larger_than_a_batch_is_fetched_in_several_steps_into_the_same_tables(tmp_path):
    results, tables, metadata = {}, {}, {}
    for batch in ("100", "5"):
        with DagsterInstance.ephemeral() as instance:
            pipeline = Pipeline(
                tmp_path / batch / "warehouse.duckdb", instance, {"TFT_PRICE_BATCH_TICKERS": batch}
            )
            result = pipeline.run(FIRST, LAST)
            assert result.success
            results[batch] = result
            tables[batch] = _warehouse_tables(pipeline.warehouse_path)
            metadata[batch] = {
                (record.partition_key, name): value.value
                for key in PRICE_KEYS
                for record in instance.fetch_materializations(key, limit=100).records
                for name, value in record.asset_materialization.metadata.items()
                if name != "preview"
            }

    # 12 tickers: one fetch step at the default size, three of 5, 5 and 2 tickers.
    assert _succeeded(results["100"], FETCH_STEP) == [f"{FETCH_STEP}[batch_0001]"]
    assert _succeeded(results["5"], FETCH_STEP) == [
        f"{FETCH_STEP}[batch_000{n}]" for n in (1, 2, 3)
    ]
    for result in results.values():
        assert _succeeded(result, "raw_price_history.store_price_tables") == [
            "raw_price_history.store_price_tables"
        ]
    assert set(tables["5"]) == set(tables["100"])
    for name, frame in tables["100"].items():
        pd.testing.assert_frame_equal(tables["5"][name], frame, obj=name)
    assert len(tables["5"]["clean.price_history"]) == 12 * 5
    # The materializations say the same (rows per session, tickers requested and fetched).
    assert metadata["5"] == metadata["100"]
    assert metadata["5"][(LAST, "tickers_requested")] == 12


def test_only_the_store_step_is_in_the_warehouse_pool_and_the_fetches_in_the_yahoo_pool(tmp_path):
    settings = load_settings(None, TFT_WAREHOUSE_PATH=str(tmp_path / "w.duckdb"))
    from tft_pipeline.definitions import build_definitions

    job = build_definitions(settings).resolve_job_def(DAILY_JOB_NAME)
    [prices] = [node for node in job.graph.nodes if node.name == "raw_price_history"]
    pools = {node.name: node.definition.pool for node in prices.definition.nodes}
    assert pools == {
        "plan_price_batches": None,
        "fetch_price_batch": YAHOO_POOL,
        "collect_price_batches": YAHOO_POOL,
        "store_price_tables": WAREHOUSE_POOL,
    }


# --- live: failures spread over batches (fake Yahoo on 127.0.0.1) ------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("max_share", ["0.3", "0.2"])
def test_unknown_tickers_spread_over_batches_are_judged_on_the_whole_universe(tmp_path, max_share):
    from tft_pipeline_tests.test_live_pipeline import _events, live_world

    # Batches of 2: each unknown ticker is half of its batch, and 2 of the 7 tickers (29 %).
    tickers = ("AAPL", "ZZZQ", "MSFT", "ZZZX", "NVDA", "TSLA", "AMD")
    unknown = {"ZZZQ", "ZZZX"}
    with live_world(tmp_path) as world, pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFT_TICKERS", ",".join(tickers))
        patch.setenv("TFT_PRICE_BATCH_TICKERS", "2")
        patch.setenv("TFT_PRICE_MAX_FAILED_SHARE", max_share)
        world.__post_init__()  # the settings and definitions of this environment
        result = world.run(asset_selection=PRICE_KEYS)

        # Every batch step succeeded: no batch fails on its own share (50 % here).
        assert _succeeded(result, FETCH_STEP) == [f"{FETCH_STEP}[batch_000{n}]" for n in range(1, 5)]
        assert not _events(result, DagsterEventType.STEP_UP_FOR_RETRY)
        if max_share == "0.3":
            assert result.success
            failures = world.table("raw.price_fetch_failures")
            assert set(failures["ticker"]) == unknown
            assert (failures["attempts"] == 1).all(), "an unknown ticker is not retried"
            prices = world.table("raw.price_history")
            assert set(prices["ticker"]) == {"AAPL", "MSFT", "NVDA", "TSLA", "AMD"}
        else:
            assert not result.success
            [failure] = _events(result, DagsterEventType.STEP_FAILURE)
            assert failure.step_key == "raw_price_history.collect_price_batches"
            data = failure.step_failure_data.user_failure_data
            assert "2 of 7 tickers (29%) could not be fetched" in data.description
            facts = {key: value.value for key, value in data.metadata.items()}
            assert facts["retryable"] is False, "unknown tickers: asking again will not help"
            assert facts["failed_tickers"] == "ZZZQ, ZZZX"
            # Nothing was written: the store step never ran.
            assert not _succeeded(result, "raw_price_history.store_price_tables")
        # One history request per known ticker, and the unknown ones asked for: nobody asked again.
        history = world.yahoo.requests(kind="history")
        assert sorted(request.symbol for request in history) == sorted(set(tickers) - unknown)
        assert all(world.yahoo.requests(ticker) for ticker in unknown)


@pytest.mark.slow
def test_transient_failures_spread_over_batches_are_asked_again_by_the_collect_retry(tmp_path):
    from tft_pipeline.retry import YFINANCE_CONFIG
    from tft_pipeline_tests.test_live_pipeline import KNOWN_TICKERS, _events, live_world

    with live_world(tmp_path) as world, pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFT_TICKERS", ",".join(KNOWN_TICKERS))  # AAPL, MSFT, NVDA, TSLA, AMD
        patch.setenv("TFT_PRICE_BATCH_TICKERS", "2")
        world.__post_init__()
        # MSFT (batch 1) and TSLA (batch 2) rate-limited through every attempt of our layer: 1 of
        # 5 each, 2 of 5 together, more than the allowed 20 %.
        # (yfinance asks once more by itself after any answer of 400 or more: 2 requests a call.)
        rate_limited = 2 * YFINANCE_CONFIG.max_attempts
        for ticker in ("MSFT", "TSLA"):
            world.yahoo.fail_next(ticker, 429, times=rate_limited)
        result = world.run(asset_selection=PRICE_KEYS)

        assert result.success, [e.message for e in _events(result, DagsterEventType.STEP_FAILURE)]
        assert _succeeded(result, FETCH_STEP) == [f"{FETCH_STEP}[batch_000{n}]" for n in (1, 2, 3)]
        retries = _events(result, DagsterEventType.STEP_UP_FOR_RETRY)
        assert [event.step_key for event in retries] == ["raw_price_history.collect_price_batches"]
        assert "2 of 5 tickers (40%)" in retries[0].step_retry_data.error.to_string()
        assert len(world.dagster_delays) == 1, "the shipped retry policy's delay was asked for"
        # The retry asked again for the two rate-limited tickers only, and they came.
        for ticker in ("MSFT", "TSLA"):
            statuses = [r.status for r in world.yahoo.requests(ticker, kind="history")]
            assert statuses == [429] * rate_limited + [200], ticker
        for ticker in ("AAPL", "NVDA", "AMD"):
            assert len(world.yahoo.requests(ticker, kind="history")) == 1, ticker
        assert world.table("raw.price_fetch_failures").empty
        prices = world.table("raw.price_history")
        assert set(prices["ticker"]) == set(KNOWN_TICKERS)
