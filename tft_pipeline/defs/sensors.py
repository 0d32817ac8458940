"""Run-failure alerts: each failed run is recorded in the operations log and posted to the webhook."""


import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorDefinition,
    run_failure_sensor,
)

from tft_pipeline.alerts import FailureLog, RunFailure, post_webhook, secret_values
from tft_pipeline.settings import Settings

RUN_FAILURE_SENSOR_NAME = "run_failure_alerts"
OPERATIONS_DB_NAME = "operations.sqlite"
WEBHOOK_TIMEOUT_S = 5.0


def operations_db_path(settings: Settings) -> Path:
    """The operations log: a SQLite file beside the warehouse (never the DuckDB file itself)."""
    return settings.resolved_warehouse_path().parent / OPERATIONS_DB_NAME


def settings_secrets(settings: Settings) -> tuple[str, ...]:
    """Secret values held by the settings, whatever the environment variables were named."""
    values = [settings.failure_webhook_url]
    for secret in (settings.reddit_client_secret, settings.reddit_password):
        if secret is not None:
            values.append(secret.get_secret_value())
    return tuple(value for value in values if value)


def _error_text(error) -> str:
    """The message of a serialized error and of its causes, without the stack trace."""
    lines, seen = [], 0
    while error is not None and seen < 5:
        message = (error.message or "").strip()
        if message:
            lines.append(message if not lines else f"caused by: {message}")
        error, seen = error.cause or error.context, seen + 1
    return "\n".join(lines)


def _step_asset_keys(instance: DagsterInstance, run: DagsterRun) -> dict[str, list[str]]:
    """Asset keys each step of ``run`` materializes, from the run's execution plan snapshot."""
    if not run.execution_plan_snapshot_id:
        return {}
    snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    keys: dict[str, list[str]] = {}
    for step in snapshot.steps:
        for output in step.outputs:
            properties = output.properties
            if properties is not None and properties.asset_key is not None:
                keys.setdefault(step.key, []).append(properties.asset_key.to_user_string())
    return keys


def _interrupted_steps(instance: DagsterInstance, run_id: str) -> tuple[list[str], str | None]:
    """Steps of ``run_id`` that started but never finished, and the run's last engine message."""
    records = instance.get_records_for_run(
        run_id,
        of_type={
            DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE,
            DagsterEventType.STEP_SKIPPED, DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.ENGINE_EVENT,
        },
    ).records
    started: dict[str, None] = {}
    engine_message = None
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.ENGINE_EVENT:
            engine_message = event.message or engine_message
        elif event.event_type == DagsterEventType.STEP_START:
            started[event.step_key] = None
        else:
            started.pop(event.step_key, None)
    return list(started), engine_message


def failure_from_context(context: RunFailureSensorContext, secrets: Iterable[str]) -> RunFailure:
    """The redacted record of the failed run the sensor was called for."""
    run = context.dagster_run
    step_failures = context.get_step_failure_events()
    failed_steps = [event.step_key for event in step_failures if event.step_key]
    if step_failures:
        error = "\n".join(
            f"{event.step_key}: {_error_text(event.step_failure_data.error)}" for event in step_failures
        )
    else:
        # No step failed: the run worker crashed, was canceled or could not start. Dagster's own
        # message says only "marked as failed"; the last engine event says why, and the steps
        # that had started but not finished are where it stopped.
        interrupted, engine_message = _interrupted_steps(context.instance, run.run_id)
        failed_steps = interrupted
        run_error = getattr(context.failure_event.event_specific_data, "error", None)
        parts = [context.failure_event.message, engine_message, _error_text(run_error)]
        if interrupted:
            parts.append(f"interrupted steps: {', '.join(interrupted)}")
        error = "\n".join(part for part in parts if part)
    step_assets = _step_asset_keys(context.instance, run)
    failed_assets = [key for step in failed_steps for key in step_assets.get(step, [])]
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record is not None else None
    failed_at = dt.datetime.fromtimestamp(ended, dt.UTC) if ended else dt.datetime.now(dt.UTC)
    location = run.remote_job_origin.location_name if run.remote_job_origin else None
    return RunFailure.build(
        run_id=run.run_id,
        job_name=run.job_name,
        failed_at=failed_at,
        error=error,
        tags=run.tags,
        secrets=secrets,
        failed_steps=failed_steps,
        failed_assets=failed_assets,
        location=location,
    )


def run_failure_alert_sensor(settings: Settings) -> SensorDefinition:
    """The sensor that records every failed run of this code location and alerts the webhook."""
    log_path = operations_db_path(settings)

    @run_failure_sensor(
        name=RUN_FAILURE_SENSOR_NAME,
        description=(
            f"Records each failed run in {OPERATIONS_DB_NAME} (table run_failures, beside the "
            "warehouse) and posts a JSON message to TFT_FAILURE_WEBHOOK_URL when it is set."
        ),
        minimum_interval_seconds=15,
        # On by default: an alert that must be switched on is an alert nobody gets.
        default_status=DefaultSensorStatus.RUNNING,
    )
    def run_failure_alerts(context: RunFailureSensorContext) -> None:
        secrets = secret_values(os.environ, extra=settings_secrets(settings))
        failure = failure_from_context(context, secrets)
        failure_log = FailureLog(log_path)
        failure_log.record(failure)
        webhook_status = None
        if settings.failure_webhook_url:
            result = post_webhook(settings.failure_webhook_url, failure.to_message(), timeout_s=WEBHOOK_TIMEOUT_S)
            webhook_status = result.describe()
            failure_log.set_webhook_status(failure.run_id, webhook_status)
            if not result.delivered:
                context.log.warning(f"failure webhook for run {failure.run_id}: {webhook_status}")
        context.log.info(f"recorded failure of run {failure.run_id} in {log_path.name}"
                         + (f"; webhook {webhook_status}" if webhook_status else ""))

    return run_failure_alerts
