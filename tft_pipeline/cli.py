"""Command line: ``python -m tft_pipeline run`` (one single-run backfill, then the report) and
``python -m tft_pipeline report``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
from rich.console import Console

from tft_pipeline.settings import PROJECT_ROOT, SettingsError, env_file_permissions_warning


def _materialize_range(sessions: pd.DatetimeIndex, console: Console) -> str:
    """Run the daily job over ``sessions`` as ONE run (a single-run backfill of the range)."""
    from dagster import DagsterInstance

    from tft_pipeline.definitions import defs
    from tft_pipeline.defs.jobs import DAILY_JOB_NAME
    from tft_pipeline.defs.partitions import partition_key_of
    from tft_pipeline.defs.run_tags import TRIGGER, range_tags

    first, last = partition_key_of(sessions[0]), partition_key_of(sessions[-1])
    # One ASSET_MATERIALIZATION_PLANNED event per asset for the range instead of one per asset
    # and session (Dagster's documented switch; 21,250 fewer events for five years). Its cost: a
    # failed run leaves its sessions "missing" rather than "failed" in the UI (README, Backfilling
    # years).
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    job = defs.resolve_job_def(DAILY_JOB_NAME)
    with _progress_bar(console, f"{len(sessions)} sessions {first}..{last}"):
        result = job.execute_in_process(
            instance=instance,
            tags={**range_tags(first, last), TRIGGER: "make run"},
            # The terminal shows INFO and up (the per-step progress lines, warnings); the DEBUG
            # event stream (one line per materialization: over a thousand for 60 sessions) stays
            # in the instance's event log, where the UI reads it.
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
            raise_on_error=False,
        )
    if not result.success:
        failed = [event for event in result.all_events if event.is_step_failure]
        for event in failed:
            error = event.step_failure_data.error
            console.print(f"[red]step {event.step_key} failed:[/red] {error.message.strip() if error else ''}")
        raise SystemExit(1)
    return result.run_id


@contextmanager
def _progress_bar(console: Console, what: str) -> Iterator[None]:
    """A bar of the run's steps (each writes every session of the range), with the step that
    finished last and the ETA the run's log states (``tft_pipeline.progress``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tft_pipeline.progress import RUN_PROGRESS, format_duration

    columns = (
        TextColumn("[bold]materializing[/bold] {task.fields[what]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("run", total=None, what=what, note="starting")

        def update(progress) -> None:
            eta = "" if progress.eta_seconds is None else f", ETA {format_duration(progress.eta_seconds)}"
            bar.update(
                task,
                total=progress.steps_total,
                completed=progress.steps_done,
                note=f"{progress.label} {progress.sessions_done:,}/{progress.sessions_total:,}{eta}",
            )

        unsubscribe = RUN_PROGRESS.subscribe(update)
        try:
            yield
        finally:
            unsubscribe()


def run(sessions: int, console: Console) -> None:
    from tft_pipeline.report import print_report
    from tft_pipeline.settings import get_settings
    from tft_pipeline.trading_calendar import latest_sessions

    settings = get_settings()
    chosen = latest_sessions(sessions, pd.Timestamp.now(tz="UTC"))
    chosen = chosen[chosen >= pd.Timestamp(settings.start_date)]
    if chosen.empty:
        raise SettingsError(f"no closed session on or after TFT_START_DATE={settings.start_date}")
    started = time.perf_counter()
    run_id = _materialize_range(chosen, console)
    elapsed = time.perf_counter() - started
    console.print(
        f"[green]materialized[/green] {len(chosen)} sessions {chosen[0].date()} .. {chosen[-1].date()} "
        f"({settings.data_source.value} data) in {elapsed:.1f}s, run {run_id[:8]}"
    )
    print_report(settings.resolved_warehouse_path(), console)


def report(console: Console) -> None:
    from tft_pipeline.report import print_report
    from tft_pipeline.settings import get_settings

    print_report(get_settings().resolved_warehouse_path(), console)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tft_pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="materialize the latest sessions as one run, then report")
    run_parser.add_argument("--sessions", type=int, default=60, help="how many recent sessions (default 60)")
    commands.add_parser("report", help="print the warehouse report")
    args = parser.parse_args(argv)

    # Wide enough for the report's tables when output is not a terminal (CI logs, pipes).
    console = Console(width=None if sys.stdout.isatty() else 120)
    warning = env_file_permissions_warning(PROJECT_ROOT / ".env")
    if warning:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    try:
        if args.command == "run":
            run(args.sessions, console)
        else:
            report(console)
    except SettingsError as error:
        console.print(f"[red]{error}[/red]")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
