"""The team's deployment for real: webserver and `dagster-daemon run` on the PostgreSQL instance
(deploy/postgres/dagster.yaml). The daemon launches the schedule's run for the last closed session
and drains a backfill launched through the webserver's GraphQL API, while the duckdb_warehouse pool
keeps the runs off the DuckDB file at the same time.

The schedule is driven by its real cron: it is switched on through the API (as the UI's toggle
does), then its start is moved to just before the latest 16:30 tick of a trading session, as if
the daemon had been down at that tick. On start the daemon catches up missed ticks (up to 5 by
default), so it evaluates exactly that tick, deterministically, without a test-only cron.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import pytest

from tft_pipeline.alerts import FailureLog
from tft_pipeline_tests.operations_support import (
    GraphQLError,
    WebserverClient,
    dagster_cli,
    dagster_home_env,
    free_port,
    latest_session_tick,
    make_dagster_home,
    pipeline_env,
    postgres_env,
    require_postgres,
    start_service,
    temporary_postgres_database,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TICKERS = "AAPL,MSFT,NVDA"
BACKFILL_RANGE = ("2024-02-05", "2024-02-09")  # five sessions, Monday to Friday
SCHEDULE_NAME = "daily_session_schedule"
DRAIN_TIMEOUT_S = 300


@dataclass
class RunFacts:
    run_id: str
    status: str
    tags: dict[str, str]
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    check_results: dict[str, bool] = field(default_factory=dict)


@dataclass
class Drained:
    """What the deployment did, collected while its database existed."""

    tick: dt.datetime
    runs: list[RunFacts]
    backfill_status: str
    ui_names_backfill_error: str | None
    schedule_ticks: list[tuple[str, list[str]]]
    price_sessions: list[str]
    failures_alerted: int
    seconds: dict[str, float]


def _run_facts(instance, run) -> RunFacts:
    from dagster import DagsterEventType

    facts = RunFacts(run.run_id, run.status.value, dict(run.tags))
    starts: dict[str, float] = {}
    for record in instance.get_records_for_run(run.run_id).records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            facts.steps[entry.step_key] = (starts[entry.step_key], entry.timestamp)
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            facts.check_results[evaluation.check_name] = evaluation.passed
    return facts


def drain(tmp_path_factory) -> Drained:
    require_postgres()
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import InstigatorType, ScheduleInstigatorData

    workdir = tmp_path_factory.mktemp("daemon")
    tick = latest_session_tick(dt.datetime.now(dt.UTC))
    seconds: dict[str, float] = {}
    started = time.monotonic()
    with temporary_postgres_database() as database:
        pg = postgres_env(database)
        home = make_dagster_home(workdir / "dagster_home", "postgres")
        env = pipeline_env(home, workdir / "warehouse.duckdb", TICKERS, pg)
        port = free_port()
        webserver = start_service(
            "webserver",
            dagster_cli("dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)),
            env, workdir,
        )
        daemon = None
        try:
            client = WebserverClient(f"http://127.0.0.1:{port}")
            location = _wait(client.loaded_location, 180, "the webserver to load the code", webserver)
            seconds["webserver_ready"] = time.monotonic() - started
            assert client.start_schedule(location, SCHEDULE_NAME) == "RUNNING"
            nodes = client.asset_nodes()
            keys = [list(key) for key in nodes]
            try:  # what the UI's asset "Materialize → Launch backfill" sends (see the xfail test)
                ui_backfill_id = client.launch_asset_backfill(keys, partitions=["2024-02-12"], title="ui")
                ui_error = None
            except GraphQLError as error:
                ui_backfill_id, ui_error = None, str(error)
            backfill_id = client.launch_asset_backfill(
                keys, partition_range=BACKFILL_RANGE, partitioned=nodes, title="test backfill"
            )
            with dagster_home_env(home, pg), DagsterInstance.get() as instance:
                if ui_backfill_id is not None:  # Dagster fixed it: keep this run's plan as it is
                    from dagster._core.execution.backfill import BulkActionStatus

                    ui_backfill = instance.get_backfill(ui_backfill_id)
                    instance.update_backfill(ui_backfill.with_status(BulkActionStatus.CANCELED))
                (state,) = instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
                cron = state.instigator_data.cron_schedule
                instance.update_instigator_state(
                    state.with_data(ScheduleInstigatorData(cron, start_timestamp=tick.timestamp() - 60))
                )
                daemon_started = time.monotonic()
                daemon = start_service(
                    "daemon", dagster_cli("dagster-daemon", "run", "-w", "workspace.yaml"), env, workdir
                )

                def finished():
                    backfill = instance.get_backfill(backfill_id)
                    runs = instance.get_runs()
                    scheduled = [run for run in runs if run.tags.get("dagster/schedule_name") == SCHEDULE_NAME]
                    done = backfill.status.value not in ("REQUESTED", "CANCELING") and scheduled and all(
                        run.is_finished for run in runs
                    )
                    return (backfill, runs) if done else None

                backfill, runs = _wait(finished, DRAIN_TIMEOUT_S, "the daemon to drain the runs", daemon)
                seconds["daemon_to_drained"] = time.monotonic() - daemon_started
                facts = [_run_facts(instance, run) for run in runs]
                ticks = [
                    (tick_record.status.value, list(tick_record.run_ids))
                    for tick_record in instance.get_ticks(state.instigator_origin_id, state.selector_id)
                ]
        finally:
            for service in (daemon, webserver):
                if service is not None:
                    service.stop()
    import duckdb

    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as connection:
        sessions = [
            str(row[0]) for row in connection.execute(
                "SELECT DISTINCT session_date FROM clean.price_history ORDER BY 1"
            ).fetchall()
        ]
    seconds["total"] = time.monotonic() - started
    return Drained(
        tick=tick,
        runs=facts,
        backfill_status=backfill.status.value,
        ui_names_backfill_error=ui_error,
        schedule_ticks=ticks,
        price_sessions=sessions,
        failures_alerted=len(FailureLog(workdir / "operations.sqlite").recent()),
        seconds=seconds,
    )


def _wait(predicate, timeout_s: float, what: str, service):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if service.process.poll() is not None:
            raise AssertionError(f"{service.name} exited ({service.process.returncode}):\n{service.output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s}s for {what}; {service.name} log:\n{service.output()}")
        time.sleep(1.0)


def _assert_the_missed_tick_ran_its_session(drained: Drained) -> None:
    (scheduled,) = [run for run in drained.runs if run.tags.get("dagster/schedule_name") == SCHEDULE_NAME]
    session = drained.tick.date().isoformat()
    assert scheduled.status == "SUCCESS"
    assert scheduled.tags["dagster/partition"] == session
    assert scheduled.tags["dagster/run_key"] == session
    # The tick time rides on the run: the freshness check inside it judged "as of 16:30".
    assert scheduled.tags[".dagster/scheduled_execution_time"] == drained.tick.astimezone(dt.UTC).isoformat()
    assert scheduled.check_results == {"latest_closed_session_loaded": True}
    assert ("SUCCESS", [scheduled.run_id]) in drained.schedule_ticks
    assert session in drained.price_sessions


def _assert_the_backfill_drained_as_one_run_for_the_range(drained: Drained) -> None:
    assert drained.backfill_status == "COMPLETED_SUCCESS"
    backfill_runs = [run for run in drained.runs if "dagster/backfill" in run.tags]
    ranged = [run for run in backfill_runs if "dagster/asset_partition_range_start" in run.tags]
    # Every partitioned asset of the range in ONE run (BackfillPolicy.single_run); the two
    # unpartitioned portfolio summaries (positions, backtest report) get a run of their own.
    assert len(ranged) == 1
    (run,) = ranged
    assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == BACKFILL_RANGE
    assert {"raw_price_history", "clean_tables", "risk_checked_signals"} <= set(run.steps)
    assert all(other.status == "SUCCESS" for other in backfill_runs)
    assert len(backfill_runs) <= 2
    assert {"2024-02-05", "2024-02-06", "2024-02-07", "2024-02-08", "2024-02-09"} <= set(drained.price_sessions)
    assert drained.failures_alerted == 0


def _assert_no_two_runs_held_the_duckdb_file_at_once(drained: Drained) -> None:
    intervals = [
        (run.run_id, step, start, end) for run in drained.runs for step, (start, end) in run.steps.items()
    ]
    assert len({run_id for run_id, *_ in intervals}) >= 2
    for index, (run_a, step_a, start_a, end_a) in enumerate(intervals):
        for run_b, step_b, start_b, end_b in intervals[index + 1:]:
            if run_a != run_b:
                assert end_a <= start_b or end_b <= start_a, f"{step_a} ({run_a[:8]}) overlapped {step_b} ({run_b[:8]})"


def test_the_daemon_runs_the_schedule_and_drains_a_backfill_on_postgres(tmp_path_factory):
    # One test, one deployment: under pytest-xdist a module fixture would start it once per worker.
    drained = drain(tmp_path_factory)
    _assert_the_missed_tick_ran_its_session(drained)
    _assert_the_backfill_drained_as_one_run_for_the_range(drained)
    _assert_no_two_runs_held_the_duckdb_file_at_once(drained)
    # dagster 1.13: the webserver refuses an asset backfill *by partition names* that covers a
    # non-subsettable, time-partitioned multi-asset (ours: clean tables, raw prices):
    # TimeWindowPartitionsSubset defines __eq__ but not __ne__, so equal subsets compare unequal in
    # its validation. The range form (partitionsByAssets) works, as above; docs/operations.md says
    # which ways to use. If the error is gone, Dagster fixed it: update docs/operations.md.
    if drained.ui_names_backfill_error is not None:
        assert "Targeted subset must match between every key in a non-subsettable multi-asset" in (
            drained.ui_names_backfill_error
        )
