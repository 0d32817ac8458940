"""Operations figures: schedule tick to a finished daily run on the PostgreSQL instance under the real
daemon, and the idle memory of `make dev` (webserver + daemon + code servers).

The process helpers are the operations tests' own (tft_pipeline_tests/operations_support.py), so the
benchmark starts Dagster exactly as those tests do.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
import time
from pathlib import Path

from tft_pipeline_tests.operations_support import (
    PROJECT_ROOT,
    WebserverClient,
    dagster_cli,
    dagster_home_env,
    free_port,
    latest_session_tick,
    make_dagster_home,
    pipeline_env,
    postgres_env,
    postgres_unavailable_reason,
    start_service,
    temporary_postgres_database,
    wait_for,
)

TICKERS = "AAPL,MSFT,NVDA,TSLA,GME"
SCHEDULE_NAME = "daily_session_schedule"


# --- process memory from /proc (psutil is not a dependency) ---------------------------------------


def _session_processes(session_id: int) -> list[int]:
    """Every live process of a session (a service started with start_new_session has sid = its pid)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id:  # fields after "(comm)": state ppid pgrp session ...
            pids.append(int(entry.name))
    return pids


def _memory_kib(pid: int) -> tuple[int, int, str]:
    """RSS and PSS (shared pages split between sharers) of ``pid`` in KiB, and its command line."""
    try:
        rollup = (Path("/proc") / str(pid) / "smaps_rollup").read_text()
        command = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return 0, 0, ""
    values = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:] if line.split()[1].isdigit()}
    return values.get("Rss", 0), values.get("Pss", 0), command


def _role(command: str) -> str:
    for marker, role in (
        ("dagster-webserver", "webserver"), ("dagster_webserver", "webserver"),
        ("dagster-daemon", "daemon"), ("dagster._daemon", "daemon"),
        ("api grpc", "code_server"), ("code-server", "code_server"), ("dagster dev", "dev_supervisor"),
    ):
        if marker in command:
            return role
    return "other"


def idle_dev_memory(settle_s: float = 20.0) -> dict[str, float | int | str]:
    """Start `dagster dev` as `make dev` does, wait until the UI serves the loaded code, let it idle,
    sum the memory of its process tree, then stop it with SIGTERM."""
    figures: dict[str, float | int | str] = {}
    with tempfile.TemporaryDirectory(prefix="bench_ops_dev_") as directory:
        workdir = Path(directory)
        home = make_dagster_home(workdir / "dagster_home", "sqlite")
        env = pipeline_env(home, workdir / "warehouse.duckdb", TICKERS)
        port = free_port()
        started = time.monotonic()
        dev = start_service(
            "dagster-dev",
            dagster_cli("dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)),
            env, workdir,
        )
        try:
            client = WebserverClient(f"http://127.0.0.1:{port}")
            wait_for(client.loaded_location, 240, 1.0, "dagster dev to serve the code location")
            figures["dev_ready_s"] = round(time.monotonic() - started, 1)
            time.sleep(settle_s)  # idle: the daemon's first iterations and the sensor ticks are done
            by_role: dict[str, list[int]] = {}
            rss_total = pss_total = 0
            for pid in _session_processes(dev.process.pid):
                rss, pss, command = _memory_kib(pid)
                rss_total += rss
                pss_total += pss
                by_role.setdefault(_role(command), []).append(rss)
            figures["dev_processes"] = sum(len(values) for values in by_role.values())
            figures["dev_idle_rss_mib"] = round(rss_total / 1024, 1)
            figures["dev_idle_pss_mib"] = round(pss_total / 1024, 1)
            for role, values in sorted(by_role.items()):
                figures[f"dev_idle_rss_mib_{role}"] = round(sum(values) / 1024, 1)
        finally:
            stop_started = time.monotonic()
            dev.stop(timeout_s=60)
            figures["dev_stop_s"] = round(time.monotonic() - stop_started, 1)
    return figures


# --- schedule tick to finished run on PostgreSQL --------------------------------------------------


def tick_to_finished_run() -> dict[str, float | int | str]:
    """Switch the schedule on (CLI), move its start before the latest session tick, start the
    daemon and time the run the tick created: created → queued → launched → succeeded."""
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import InstigatorType, ScheduleInstigatorData

    figures: dict[str, float | int | str] = {}
    tick = latest_session_tick(dt.datetime.now(dt.UTC))
    with tempfile.TemporaryDirectory(prefix="bench_ops_pg_") as directory, \
            temporary_postgres_database("tft_bench") as database:
        workdir = Path(directory)
        pg = postgres_env(database)
        home = make_dagster_home(workdir / "dagster_home", "postgres")
        env = pipeline_env(home, workdir / "warehouse.duckdb", TICKERS, pg)
        subprocess.run(
            dagster_cli("dagster", "schedule", "start", SCHEDULE_NAME, "-w", "workspace.yaml"),
            cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, text=True, timeout=300,
        )
        with dagster_home_env(home, pg), DagsterInstance.get() as instance:
            (state,) = instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
            instance.update_instigator_state(
                state.with_data(ScheduleInstigatorData(state.instigator_data.cron_schedule,
                                                       start_timestamp=tick.timestamp() - 60))
            )
            daemon_started = time.time()
            daemon = start_service(
                "daemon", dagster_cli("dagster-daemon", "run", "-w", "workspace.yaml"), env, workdir
            )
            try:
                def finished_run():
                    runs = [run for run in instance.get_runs() if run.tags.get("dagster/schedule_name")]
                    return runs[0] if runs and runs[0].is_finished else None

                run = wait_for(finished_run, 400, 0.5, "the scheduled run to finish")
            finally:
                daemon.stop()
            record = instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp.timestamp()
    figures["session"] = tick.date().isoformat()
    figures["tickers"] = len(TICKERS.split(","))
    figures["run_status"] = run.status.value
    figures["daemon_start_to_tick_s"] = round(created - daemon_started, 1)
    figures["tick_to_run_success_s"] = round(record.end_time - created, 1)
    figures["tick_to_worker_start_s"] = round(record.start_time - created, 1)
    figures["run_worker_execution_s"] = round(record.end_time - record.start_time, 1)
    return figures


def _quick_figures() -> dict[str, float | int | str]:
    """The per-failure and per-check costs of the alert and freshness logic (a few seconds)."""
    import pandas as pd

    from tft_pipeline.alerts import RunFailure, secret_values
    from tft_pipeline.freshness import check_freshness

    secrets = secret_values(os.environ, extra=["s3cr3t-value-1234"])
    error = "step failed: 401 for client_secret=abc and postgresql://u:pw@db/x\n" * 40
    started = time.perf_counter()
    for index in range(200):
        RunFailure.build(run_id=str(index), job_name="daily_session_chain", failed_at=dt.datetime.now(dt.UTC),
                         error=error, tags={"dagster/partition": "2024-01-12"}, secrets=secrets)
    per_failure_us = (time.perf_counter() - started) / 200 * 1e6
    check_freshness("2024-01-10", "2024-01-12T23:00")  # builds the exchange calendar once
    started = time.perf_counter()
    for day in pd.date_range("2024-01-01", periods=200, freq="D"):
        check_freshness("2024-01-10", day.tz_localize("America/New_York") + pd.Timedelta(hours=18))
    per_check_us = (time.perf_counter() - started) / 200 * 1e6
    return {"failure_record_us": round(per_failure_us, 1), "freshness_verdict_us": round(per_check_us, 1)}


def run(quick: bool = False) -> dict[str, float | int | str]:
    figures = _quick_figures()
    if quick:
        return figures
    reason = postgres_unavailable_reason()
    if reason is None:
        figures.update(tick_to_finished_run())
    else:
        figures["postgres"] = f"skipped: {reason}"
    figures.update(idle_dev_memory())
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
