"""The team's deployment for real: webserver and `dagster-daemon run` on the PostgreSQL instance
(deploy/postgres/dagster.yaml). A backfill launched through the webserver's GraphQL API exactly as
the asset graph's "Materialize all → Launch backfill" sends it (every asset, the range's partition
names) drains as whole-range runs; then the schedule's run for the last closed session carries the
paper portfolio's book forward from the backfill's last session.

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
    WebserverClient,
    dagster_cli,
    dagster_home_env,
    free_port,
    latest_session_tick,
    launch_job_backfill,
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
    backfill_sessions: list[str]
    backfills: dict[str, str]  # title -> final status
    runs: list[RunFacts]
    schedule_ticks: list[tuple[str, list[str]]]
    price_sessions: list[str]
    equity: list[tuple[str, float]]
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
    """Backfill from the asset graph (as the UI's button does), then let the schedule go on."""
    require_postgres()
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import InstigatorType, ScheduleInstigatorData

    from tft_pipeline.trading_calendar import previous_session

    workdir = tmp_path_factory.mktemp("daemon")
    tick = latest_session_tick(dt.datetime.now(dt.UTC))
    # The five sessions before the tick's: the schedule's run then carries the book forward.
    sessions = [previous_session(tick.date())]
    while len(sessions) < 5:
        sessions.insert(0, previous_session(sessions[0]))
    backfill_sessions = [day.strftime("%Y-%m-%d") for day in sessions]
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
            nodes = client.asset_nodes()
            # What the asset graph's "Materialize all" → "Launch backfill" sends: every asset and
            # the partition names of the range picked.
            ui = client.launch_asset_backfill([list(key) for key in nodes], partitions=backfill_sessions, title="ui")
            # One asset alone over a range, the API's range form.
            alone = client.launch_asset_backfill(
                [["raw", "price_history"]], partition_range=(backfill_sessions[0], backfill_sessions[-1]),
                title="raw prices alone",
            )
            # The job page's Partitions tab: a backfill of the job's partition set, by names.
            job_backfill = launch_job_backfill(client, location, "daily_session_chain", backfill_sessions, "job page")
            with dagster_home_env(home, pg), DagsterInstance.get() as instance:
                daemon = start_service(
                    "daemon", dagster_cli("dagster-daemon", "run", "-w", "workspace.yaml"), env, workdir
                )

                def backfills_done():
                    found = {backfill_id: instance.get_backfill(backfill_id) for backfill_id in (ui, alone, job_backfill)}
                    done = all(b.status.value not in ("REQUESTED", "CANCELING") for b in found.values())
                    return found if done and all(run.is_finished for run in instance.get_runs()) else None

                found = _wait(backfills_done, DRAIN_TIMEOUT_S, "the daemon to drain the backfills", daemon)
                seconds["backfills_drained"] = time.monotonic() - started
                backfills = {b.title: b.status.value for b in found.values()}
                daemon.stop()

                # The daemon was down at the tick: switched on again, it catches the tick up.
                assert client.start_schedule(location, SCHEDULE_NAME) == "RUNNING"
                (state,) = instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
                cron = state.instigator_data.cron_schedule
                instance.update_instigator_state(
                    state.with_data(ScheduleInstigatorData(cron, start_timestamp=tick.timestamp() - 60))
                )
                daemon = start_service(
                    "daemon2", dagster_cli("dagster-daemon", "run", "-w", "workspace.yaml"), env, workdir
                )

                def scheduled_done():
                    runs = instance.get_runs()
                    scheduled = [run for run in runs if run.tags.get("dagster/schedule_name") == SCHEDULE_NAME]
                    return runs if scheduled and all(run.is_finished for run in runs) else None

                runs = _wait(scheduled_done, DRAIN_TIMEOUT_S, "the scheduled run", daemon)
                seconds["scheduled_run_done"] = time.monotonic() - started
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
        price_sessions = [
            str(row[0]) for row in connection.execute(
                "SELECT DISTINCT session_date FROM clean.price_history ORDER BY 1"
            ).fetchall()
        ]
        equity = [
            (str(day), float(value)) for day, value in connection.execute(
                "SELECT session_date, cash FROM portfolio.equity ORDER BY 1"
            ).fetchall()
        ]
    seconds["total"] = time.monotonic() - started
    return Drained(
        tick=tick,
        backfill_sessions=backfill_sessions,
        backfills=backfills,
        runs=facts,
        schedule_ticks=ticks,
        price_sessions=price_sessions,
        equity=equity,
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


def _assert_the_ui_backfill_ran_each_range_as_one_run(drained: Drained) -> None:
    assert drained.backfills == {
        "ui": "COMPLETED_SUCCESS", "raw prices alone": "COMPLETED_SUCCESS", "job page": "COMPLETED_SUCCESS",
    }
    first, last = drained.backfill_sessions[0], drained.backfill_sessions[-1]
    backfill_runs = [run for run in drained.runs if "dagster/backfill" in run.tags]
    assert all(run.status == "SUCCESS" for run in backfill_runs)
    ranged = [run for run in backfill_runs if "dagster/asset_partition_range_start" in run.tags]
    # Never a run per session: the asset graph's backfill is one run for the whole range, and one
    # for the two summaries that span all sessions (Dagster runs unpartitioned assets apart); the
    # single asset's backfill is one run of that asset's step alone.
    shown = [(run.tags.get("dagster/backfill"), run.tags.get("dagster/asset_partition_range_end"), sorted(run.steps)) for run in backfill_runs]
    for run in ranged:
        assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (first, last), shown
    # The job page's backfill: the whole job over the range in one run too.
    assert len(ranged) == 3, shown
    assert len(backfill_runs) == 4, shown
    steps = [set(run.steps) for run in ranged]
    # The price asset is a graph (plan, one fetch step per ticker batch, collect, store); the few
    # tickers here are one batch.
    price_steps = {
        "raw_price_history.plan_price_batches",
        "raw_price_history.fetch_price_batch[batch_0001]",
        "raw_price_history.collect_price_batches",
        "raw_price_history.store_price_tables",
    }
    assert price_steps in steps  # the asset alone: no other step in its run
    assert any(price_steps | {"clean__price_history", "baseline_signals"} <= s for s in steps)
    assert any("risk_checked_signals" in s and price_steps <= s for s in steps)
    assert sum("risk_checked_signals" in s and "portfolio__positions" in s for s in steps) == 1
    summaries = [run for run in backfill_runs if run not in ranged]
    assert set(summaries[0].steps) == {"portfolio__positions", "portfolio__backtest_report"}
    assert set(drained.backfill_sessions) <= set(drained.price_sessions)
    assert drained.failures_alerted == 0


def _assert_the_schedule_carried_the_book_forward(drained: Drained) -> None:
    (scheduled,) = [run for run in drained.runs if run.tags.get("dagster/schedule_name") == SCHEDULE_NAME]
    session = drained.tick.date().isoformat()
    assert scheduled.status == "SUCCESS"
    assert scheduled.tags["dagster/partition"] == session
    assert scheduled.tags["dagster/run_key"] == session
    # The tick time rides on the run: the freshness check inside it judged "as of 16:30".
    assert scheduled.tags["tft/evaluated_as_of"] == drained.tick.astimezone(dt.UTC).isoformat()
    assert scheduled.check_results == {"latest_closed_session_loaded": True}
    assert ("SUCCESS", [scheduled.run_id]) in drained.schedule_ticks
    assert session in drained.price_sessions
    # The paper portfolio has one equity row per booked session, the scheduled one last.
    assert [day for day, _ in drained.equity] == [*drained.backfill_sessions, session]


def test_a_ui_backfill_then_the_schedule_on_postgres(tmp_path_factory):
    # One test, one deployment: under pytest-xdist a module fixture would start it once per worker.
    drained = drain(tmp_path_factory)
    _assert_the_ui_backfill_ran_each_range_as_one_run(drained)
    _assert_the_schedule_carried_the_book_forward(drained)
