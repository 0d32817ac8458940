"""The run-failure sensor records failed runs of the real chain (redacted) and alerts the webhook."""

from __future__ import annotations

import logging

import pytest
from dagster import (
    AssetKey,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    build_run_status_sensor_context,
    job,
    op,
)

from tft_pipeline.alerts import FailureLog
from tft_pipeline.definitions import build_definitions
from tft_pipeline.defs.jobs import DAILY_JOB_NAME
from tft_pipeline.defs.run_tags import PARTITION_RANGE_END as ASSET_PARTITION_RANGE_END_TAG
from tft_pipeline.defs.run_tags import PARTITION_RANGE_START as ASSET_PARTITION_RANGE_START_TAG
from tft_pipeline.defs.security import warn_about_env_file_permissions
from tft_pipeline.defs.sensors import (
    RUN_FAILURE_SENSOR_NAME,
    operations_db_path,
    run_failure_alert_sensor,
)
from tft_pipeline.settings import load_settings
from tft_pipeline_tests.operations_support import webhook_receiver

TICKERS = "AAPL,MSFT,NVDA"
CLEAN_KEYS = [
    AssetKey(["clean", name]) for name in ("price_history", "reddit_posts", "reddit_comments", "rejected_rows")
]


def _call_sensor(sensor, instance, result) -> None:
    context = build_run_status_sensor_context(
        sensor_name=RUN_FAILURE_SENSOR_NAME,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    )
    sensor(context)


def test_a_failed_backfill_of_the_chain_is_recorded_and_posted(tmp_path):
    # The clean step of an empty warehouse fails: its raw inputs were never materialized. (Clean
    # steps have no retry policy, so the failure is immediate, as a user would first see it.)
    with webhook_receiver() as receiver:
        settings = load_settings(
            None, TFT_WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"), TFT_TICKERS=TICKERS,
            TFT_FAILURE_WEBHOOK_URL=receiver.url,
        )
        defs = build_definitions(settings)
        with DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(
                instance=instance,
                asset_selection=CLEAN_KEYS,
                tags={ASSET_PARTITION_RANGE_START_TAG: "2024-01-08", ASSET_PARTITION_RANGE_END_TAG: "2024-01-12"},
                raise_on_error=False,
            )
            assert not result.success
            # The sensor the definitions ship (on by default), called as the daemon calls it.
            sensor = defs.resolve_sensor_def(RUN_FAILURE_SENSOR_NAME)
            assert sensor.default_status == DefaultSensorStatus.RUNNING
            _call_sensor(sensor, instance, result)

    (failure,) = FailureLog(operations_db_path(settings)).recent()
    assert failure.run_id == result.run_id and failure.job_name == DAILY_JOB_NAME
    assert (failure.first_session, failure.last_session) == ("2024-01-08", "2024-01-12")
    # The failed step, with every asset key it was to write.
    # Each clean table is its own step: all four failed, each naming its asset.
    assert failure.failed_steps == tuple(sorted(f"clean__{key.path[1]}" for key in CLEAN_KEYS))
    assert failure.failed_assets == tuple(sorted(key.to_user_string() for key in CLEAN_KEYS))
    assert "is not in the warehouse" in failure.error
    (body,) = receiver.posts
    assert body["run_id"] == result.run_id and body["first_session"] == "2024-01-08"
    assert body["text"].startswith(
        f"tft_pipeline: run {result.run_id[:8]} of daily_session_chain for 2024-01-08..2024-01-12 failed at clean__"
    )
    assert FailureLog(operations_db_path(settings)).webhook_statuses() == {result.run_id: "delivered (200)"}


@op
def leaky_op() -> None:
    raise RuntimeError(
        "login failed for client secret Zx9-very-secret-Qq and "
        "postgresql+psycopg2://dagster:pg-passw0rd@db.internal:5432/dagster"
    )


@job
def leaky_job() -> None:
    leaky_op()


def test_the_record_and_the_alert_hold_no_secret_and_a_broken_webhook_is_survived(tmp_path, monkeypatch):
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "Zx9-very-secret-Qq")
    with webhook_receiver(status=500) as receiver:
        settings = load_settings(
            None, TFT_WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"), TFT_TICKERS=TICKERS,
            TFT_FAILURE_WEBHOOK_URL=receiver.url,
        )
        with DagsterInstance.ephemeral() as instance:
            result = leaky_job.execute_in_process(instance=instance, raise_on_error=False)
            _call_sensor(run_failure_alert_sensor(settings), instance, result)  # must not raise
            instance_end_time = instance.get_run_record_by_id(result.run_id).end_time

    (failure,) = FailureLog(operations_db_path(settings)).recent()
    (body,) = receiver.posts
    for text in (failure.error, str(body)):
        assert "Zx9-very-secret-Qq" not in text and "pg-passw0rd" not in text
        assert receiver.url not in text
    assert "leaky_op: " in failure.error and "dagster:***@db.internal" in failure.error
    assert failure.failed_steps == ("leaky_op",) and failure.failed_assets == ()
    assert abs(failure.failed_at.timestamp() - instance_end_time) < 1e-3
    assert FailureLog(operations_db_path(settings)).webhook_statuses()[result.run_id] == "not delivered (500)"


def test_without_a_webhook_the_failure_is_still_recorded(tmp_path):
    settings = load_settings(None, TFT_WAREHOUSE_PATH=str(tmp_path / "w.duckdb"), TFT_TICKERS=TICKERS)
    with DagsterInstance.ephemeral() as instance:
        result = leaky_job.execute_in_process(instance=instance, raise_on_error=False)
        _call_sensor(run_failure_alert_sensor(settings), instance, result)
    assert [f.run_id for f in FailureLog(tmp_path / "operations.sqlite").recent()] == [result.run_id]


@pytest.mark.parametrize("mode, warns", [(0o644, True), (0o640, True), (0o600, False)])
def test_a_readable_env_file_is_warned_about_once(tmp_path, caplog, mode, warns):
    env_file = tmp_path / ".env"
    env_file.write_text("REDDIT_CLIENT_SECRET=x\n")
    env_file.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="tft_pipeline.security"):
        first = warn_about_env_file_permissions(env_file)
        second = warn_about_env_file_permissions(env_file)  # definitions load again in one process
    assert (first is not None) is warns and first == second
    logged = [record.getMessage() for record in caplog.records if record.name == "tft_pipeline.security"]
    assert logged == ([first] if warns else [])
    if warns:
        assert f"chmod 600 {env_file}" in first


def test_a_crashed_run_is_recorded_with_the_step_it_stopped_in(tmp_path):
    settings = load_settings(None, TFT_WAREHOUSE_PATH=str(tmp_path / "w.duckdb"), TFT_TICKERS=TICKERS)
    with DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(job_def=leaky_job, tags={"dagster/partition": "2024-01-12"})
        # What a code server reports when a run worker is killed (OOM, SIGKILL) mid-step.
        instance.report_dagster_event(
            DagsterEvent(DagsterEventType.STEP_START.value, job_name=run.job_name, step_key="leaky_op"),
            run.run_id,
        )
        instance.report_engine_event(
            f"Run execution process for {run.run_id} unexpectedly exited with exit code -9.", run
        )
        failure_event = instance.report_run_failed(run)
        context = build_run_status_sensor_context(
            sensor_name=RUN_FAILURE_SENSOR_NAME, dagster_event=failure_event,
            dagster_instance=instance, dagster_run=instance.get_run_by_id(run.run_id),
        )
        run_failure_alert_sensor(settings)(context)

    (failure,) = FailureLog(operations_db_path(settings)).recent()
    assert failure.failed_steps == ("leaky_op",)
    assert "exited with exit code -9" in failure.error and "interrupted steps: leaky_op" in failure.error
    assert (failure.first_session, failure.last_session) == ("2024-01-12", "2024-01-12")
