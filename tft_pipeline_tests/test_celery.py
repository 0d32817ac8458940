"""Dagster's Celery executor (dagster-celery) end to end, on the Redis and PostgreSQL servers of this
machine: a real Celery worker process, the daily job launched as an operator launches it, every step
run by the worker, the warehouse written by one step at a time, and the same tables as in-process.

Needs Redis (127.0.0.1:6379, database ``TFT_TEST_REDIS_DB``=13, flushed before and after, alone)
and PostgreSQL (the instance of several hosts); without them the test skips, under CI it fails.
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import uuid
from contextlib import ExitStack

import pandas as pd
import pytest

from tft_pipeline.definitions import build_definitions
from tft_pipeline.defs.constants import WAREHOUSE_POOL, YAHOO_POOL, YAHOO_POOL_SLOTS
from tft_pipeline.defs.executors import celery_executor_config, job_executor
from tft_pipeline.defs.jobs import DAILY_JOB_NAME
from tft_pipeline.defs.run_tags import range_tags
from tft_pipeline.settings import ExecutorKind, SettingsError, load_settings
from tft_pipeline.warehouse import Warehouse
from tft_pipeline_tests.conftest import Pipeline
from tft_pipeline_tests.operations_support import (
    PROJECT_ROOT,
    dagster_cli,
    dagster_home_env,
    flush_redis_db,
    make_dagster_home,
    pipeline_env,
    postgres_env,
    redis_url,
    require_postgres,
    require_redis,
    start_service,
    temporary_postgres_database,
    wait_for,
)

FIRST, LAST = "2024-03-04", "2024-03-06"
TICKERS = "AAPL,MSFT,NVDA,TSLA,GME,AMC"
# Batches of 2: the price scrape fans out into 3 fetch steps (the in-process reference: 1).
BATCH_TICKERS = "2"
FETCH_STEP = "raw_price_history.fetch_price_batch"


# --- the setting ------------------------------------------------------------------------------------


def test_the_executor_is_in_process_unless_set_to_celery(tmp_path):
    warehouse = str(tmp_path / "w.duckdb")
    default = load_settings(None, TFT_WAREHOUSE_PATH=warehouse, TFT_TICKERS="AAPL")
    assert default.executor is ExecutorKind.IN_PROCESS
    assert (
        build_definitions(default).resolve_job_def(DAILY_JOB_NAME).executor_def.name == "in_process"
    )

    celery = load_settings(
        None, TFT_WAREHOUSE_PATH=warehouse, TFT_TICKERS="AAPL", TFT_EXECUTOR=" Celery "
    )
    assert celery.executor is ExecutorKind.CELERY
    defs = build_definitions(celery)
    assert defs.resolve_job_def(DAILY_JOB_NAME).executor_def.name == "celery"
    # The implicit asset job (UI launches, `dagster asset materialize`) follows the same setting.
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "celery"
    assert job_executor(celery).name == "celery"


def test_a_wrong_executor_or_broker_is_a_startup_error_that_does_not_echo_the_url():
    with pytest.raises(
        SettingsError, match="TFT_EXECUTOR='dask': allowed values are 'in_process' or 'celery'"
    ):
        load_settings(None, TFT_EXECUTOR="dask")
    with pytest.raises(SettingsError) as error:
        load_settings(None, TFT_EXECUTOR="celery", TFT_CELERY_BROKER="http://:hunter2@10.0.0.5/0")
    assert "TFT_CELERY_BROKER: expected a URL such as redis://" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_the_broker_password_stays_out_of_settings_output_and_the_job_snapshot(tmp_path):
    from dagster._serdes import serialize_value

    settings = load_settings(
        None,
        TFT_WAREHOUSE_PATH=str(tmp_path / "w.duckdb"),
        TFT_TICKERS="AAPL",
        TFT_EXECUTOR="celery",
        TFT_CELERY_BROKER="redis://:hunter2@10.0.0.5:6379/0",
        TFT_CELERY_BACKEND="redis://:hunter2@10.0.0.5:6379/1",
    )
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    job = build_definitions(settings).resolve_job_def(DAILY_JOB_NAME)
    assert "hunter2" not in serialize_value(job.get_job_snapshot())
    # …while the executor and the workers do get it.
    assert celery_executor_config(settings)["broker"] == "redis://:hunter2@10.0.0.5:6379/0"


# --- end to end -------------------------------------------------------------------------------------


def _step_events(instance, run_id: str) -> dict[str, dict]:
    """Per step key: start and end timestamps, the pid that ran it, and the Celery worker named."""
    from dagster import DagsterEventType

    steps: dict[str, dict] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or record.step_key is None:
            continue
        step = steps.setdefault(record.step_key, {})
        if event.event_type is DagsterEventType.STEP_START:
            step["start"], step["pid"] = record.timestamp, event.pid
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            step["end"], step["outcome"] = record.timestamp, event.event_type.value
        elif (
            event.event_type is DagsterEventType.ENGINE_EVENT
            and "in celery worker" in record.message
        ):
            step["celery_worker"] = event.engine_event_data.metadata["Celery worker"].value
    return steps


def _step_pools(job) -> dict[str, str | None]:
    """The pool of every op of ``job`` by its step key (without a dynamic mapping key), the ops
    inside graph-backed assets included."""
    from dagster import GraphDefinition

    pools: dict[str, str | None] = {}

    def walk(graph, prefix: str) -> None:
        for node in graph.nodes:
            if isinstance(node.definition, GraphDefinition):
                walk(node.definition, f"{prefix}{node.name}.")
            else:
                pools[f"{prefix}{node.name}"] = node.definition.pool

    walk(job.graph, "")
    return pools


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals (start, end) open at one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, change in edges:  # an end sorts before a start at the same instant
        running += change
        most = max(most, running)
    return most


def _warehouse_tables(path) -> dict[str, pd.DataFrame]:
    warehouse = Warehouse(path)
    names = warehouse.query(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables ORDER BY 1"
    )["name"]
    tables = {}
    for name in names:
        frame = warehouse.read_table(name)
        tables[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


@pytest.mark.slow
@pytest.mark.postgres
def test_the_daily_job_runs_on_a_celery_worker_one_warehouse_step_at_a_time(tmp_path):
    require_redis()
    require_postgres()
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

    flush_redis_db()
    # A queue of this test's own: a worker left over on the same Redis database takes nothing.
    worker_name = queue = f"tft-test-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        stack.callback(flush_redis_db)
        database = stack.enter_context(temporary_postgres_database("tft_celery"))
        pg = postgres_env(database)
        home = make_dagster_home(tmp_path / "home", "postgres")
        warehouse = tmp_path / "celery" / "warehouse.duckdb"
        env = pipeline_env(
            home,
            warehouse,
            TICKERS,
            {
                **pg,
                "TFT_EXECUTOR": "celery",
                "TFT_CELERY_BROKER": redis_url(),
                "TFT_CELERY_BACKEND": redis_url(),
                "TFT_CELERY_QUEUE": queue,
                "TFT_PRICE_BATCH_TICKERS": BATCH_TICKERS,
            },
        )
        # The instance schema and the pools' slots, up front, as docs/deploy.md does it.
        with dagster_home_env(home, pg), DagsterInstance.get() as instance:
            instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
            instance.event_log_storage.set_concurrency_slots(YAHOO_POOL, YAHOO_POOL_SLOTS)

        # Two worker processes: enough for two independent warehouse steps (the three raw ones
        # are) to run at once if the pool did not hold them.
        worker = start_service(
            "celery-worker",
            dagster_cli(
                "celery",
                "-A",
                "tft_pipeline.celery_app",
                "worker",
                "-Q",
                queue,
                "--concurrency",
                "2",
                "--prefetch-multiplier",
                "1",
                "-n",
                f"{worker_name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ),
            env,
            tmp_path,
        )
        stack.callback(worker.stop)
        wait_for(
            lambda: " ready." in worker.output(tail=20_000) or worker.process.poll() is not None,
            timeout_s=90,
            interval_s=0.5,
            what="the Celery worker to connect to Redis",
        )
        assert worker.process.poll() is None, worker.output()

        # The run's own process orchestrates only: `dagster job execute`, as an operator runs it.
        launched = subprocess.run(
            dagster_cli(
                "dagster",
                "job",
                "execute",
                "-m",
                "tft_pipeline.definitions",
                "-j",
                DAILY_JOB_NAME,
                "--tags",
                json.dumps(range_tags(FIRST, LAST)),
            ),
            check=False,
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert launched.returncode == 0, (
            launched.stdout[-3000:],
            launched.stderr[-3000:],
            worker.output(),
        )

        with dagster_home_env(home, pg), DagsterInstance.get() as instance:
            [run] = instance.get_runs()
            assert run.status is DagsterRunStatus.SUCCESS
            assert run.tags["dagster/asset_partition_range_end"] == LAST
            steps = _step_events(instance, run.run_id)
            run_pid = next(
                record.dagster_event.pid
                for record in instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_START)
            )
        worker_output = worker.output(tail=200_000)

    job = build_definitions(
        load_settings(None, TFT_WAREHOUSE_PATH=str(warehouse), TFT_TICKERS=TICKERS)
    ).resolve_job_def(DAILY_JOB_NAME)
    pools = _step_pools(job)
    assert {key.split("[")[0] for key in steps} == set(pools), "every op ran, and only those"
    # The price scrape fanned out: one fetch step per batch of 2 of the 6 tickers.
    fetches = sorted(key for key in steps if key.startswith(FETCH_STEP))
    assert fetches == [f"{FETCH_STEP}[batch_000{n}]" for n in (1, 2, 3)]
    pool_of = {key: pools[key.split("[")[0]] for key in steps}

    # Every step ran in the worker's processes, none in the run's own.
    host = socket.gethostname()
    assert {step["celery_worker"] for step in steps.values()} == {f"{worker_name}@{host}"}
    assert all(step["outcome"] == "STEP_SUCCESS" for step in steps.values())
    assert run_pid not in {step["pid"] for step in steps.values()}
    assert worker_output.count("Task execute_plan[") >= len(steps)

    # The single-writer rule: the steps of the warehouse pool never overlap in time.
    warehouse_steps = sorted(
        (step["start"], step["end"], key)
        for key, step in steps.items()
        if pool_of[key] == WAREHOUSE_POOL
    )
    assert {
        "raw__reddit_posts", "raw__reddit_comments", "raw_price_history.store_price_tables"
    } <= {k for *_, k in warehouse_steps}
    # The fetch steps are outside it: they may run beside a warehouse step and each other.
    assert not {pool_of[key] for key in fetches} & {WAREHOUSE_POOL}
    for (_, end, key), (start, _, following) in itertools.pairwise(warehouse_steps):
        assert start >= end, f"{following} started {end - start:.2f}s before {key} ended"
    # The Yahoo pool holds too: never more fetch steps at once than its slots.
    yahoo = [(steps[k]["start"], steps[k]["end"]) for k in steps if pool_of[k] == YAHOO_POOL]
    assert len(yahoo) == 4  # 3 batches and the collecting step
    assert _most_at_once(yahoo) <= YAHOO_POOL_SLOTS
    print(
        "fetch steps (start, end, pid):",
        [(steps[k]["start"], steps[k]["end"], steps[k]["pid"]) for k in fetches],
        "most at once:", _most_at_once([(steps[k]["start"], steps[k]["end"]) for k in fetches]),
    )

    # The same tables as the in-process executor writes for the same range.
    from dagster import DagsterInstance as Instance

    with Instance.ephemeral() as ephemeral:
        reference = Pipeline(
            tmp_path / "in_process" / "warehouse.duckdb", ephemeral, {"TFT_TICKERS": TICKERS}
        )
        assert reference.run(FIRST, LAST).success
    expected = _warehouse_tables(reference.warehouse_path)
    actual = _warehouse_tables(warehouse)
    assert set(actual) == set(expected)
    assert len(actual["clean.price_history"]) == 6 * 3
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(actual[name], frame, obj=name)
