"""A run's progress in its log: after each step that writes sessions, one line with the step's
sessions done / total and the run's ETA (``tft_pipeline.progress`` does the arithmetic)."""

from __future__ import annotations

import time

from tft_pipeline.progress import RUN_PROGRESS, ProgressUpdate


def _asset_steps(step_context) -> int:
    """How many steps of the run materialize assets (asset checks are not counted)."""
    plan = step_context.execution_plan
    keys = set(plan.step_keys_to_execute)
    # Every step of the plan, the not yet resolved ones included: the steps after the price
    # scrape's fan-in are only "to execute in topo order" once its batches are known, which
    # made the first lines count 5 steps of 15.
    return sum(
        1
        for step in plan.step_dict.values()
        if step.key in keys
        and any(
            output.properties is not None and output.properties.asset_key is not None
            for output in step.step_outputs
        )
    )


def report_step_progress(step_context, label: str, sessions: list[str]) -> ProgressUpdate:
    """Log (and tell this process's listeners) that the current step wrote ``sessions``."""
    run = step_context.dagster_run
    record = step_context.instance.get_run_record_by_id(run.run_id)
    started_wall = record.start_time if record is not None and record.start_time else None
    # The run's start on the tracker's clock (monotonic): now minus how long ago it started.
    run_started = time.monotonic() - max(0.0, time.time() - started_wall) if started_wall else None
    update = RUN_PROGRESS.step_done(
        run.run_id,
        step_context.step.key,
        label,
        steps_total=_asset_steps(step_context),
        sessions=sessions,
        sessions_total=len(sessions),
        run_started=run_started,
    )
    step_context.log.info(update.line())
    return update
