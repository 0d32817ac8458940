"""Failure records carry no secrets, the SQLite log keeps them, the webhook post never raises."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time

from tft_pipeline.alerts import (
    FailureLog,
    RunFailure,
    partition_span,
    post_webhook,
    secret_values,
)
from tft_pipeline.redaction import REDACTED
from tft_pipeline_tests.operations_support import free_port, webhook_receiver

FAILED_AT = dt.datetime(2024, 1, 12, 21, 45, tzinfo=dt.UTC)


def test_secret_values_come_from_secret_looking_variables_only():
    environ = {
        "REDDIT_CLIENT_SECRET": "s-e-c-r-e-t",
        "DAGSTER_PG_PASSWORD": "pg-pass",
        "praw_password": "praw-pass",
        "TFT_FAILURE_WEBHOOK_URL": "https://hooks.example.com/T/B/XYZ",
        "GITHUB_TOKEN": "ghp_x",
        "DAGSTER_PG_USER": "postgres",
        "TFT_TICKERS": "AAPL",
        "EMPTY_PASSWORD": "",
    }
    values = set(secret_values(environ, extra=["from-settings", None]))
    assert values == {
        "s-e-c-r-e-t", "pg-pass", "praw-pass", "https://hooks.example.com/T/B/XYZ", "ghp_x", "from-settings",
    }


def test_partition_span_from_single_runs_and_ranges():
    assert partition_span({"dagster/partition": "2024-01-12"}) == ("2024-01-12", "2024-01-12")
    assert partition_span(
        {"dagster/asset_partition_range_start": "2024-01-02", "dagster/asset_partition_range_end": "2024-01-31"}
    ) == ("2024-01-02", "2024-01-31")
    assert partition_span({}) == (None, None)


def _failure(**tags) -> RunFailure:
    return RunFailure.build(
        run_id="0123456789abcdef",
        job_name="daily_session_chain",
        failed_at=FAILED_AT,
        error="raw_price_history: 401 Unauthorized with client_secret=abc123\ncaused by: more",
        tags={"dagster/partition": "2024-01-12", "dagster/schedule_name": "daily_session_schedule", **tags},
        secrets=["abc123"],
        failed_steps=["raw_price_history", "raw_price_history"],
        failed_assets=["raw/price_history", "raw/price_fetch_failures"],
    )


def test_a_failure_record_is_redacted_bounded_and_summarised():
    failure = _failure()
    assert "abc123" not in failure.error and REDACTED in failure.error
    assert failure.failed_steps == ("raw_price_history",)
    assert failure.failed_assets == ("raw/price_fetch_failures", "raw/price_history")
    assert (failure.first_session, failure.last_session) == ("2024-01-12", "2024-01-12")
    assert failure.trigger == "schedule daily_session_schedule"
    assert failure.summary() == (
        "tft_pipeline: run 01234567 of daily_session_chain for 2024-01-12 failed at raw_price_history: "
        "raw_price_history: 401 Unauthorized with client_secret=***"
    )
    huge = RunFailure.build(
        run_id="r", job_name="j", failed_at=FAILED_AT, error="x" * 100_000, tags={}, secrets=[]
    )
    assert len(huge.error) <= 4000 and huge.error.endswith("(truncated)")


def test_the_log_keeps_failures_and_a_repeated_tick_does_not_duplicate(tmp_path):
    log = FailureLog(tmp_path / "ops" / "operations.sqlite")
    assert log.recent() == []
    first = _failure()
    log.record(first)
    log.record(first)  # the sensor's tick repeated after a crash
    later = RunFailure.build(
        run_id="fedcba9876543210", job_name="daily_session_chain", failed_at=FAILED_AT + dt.timedelta(days=1),
        error="boom", tags={"dagster/asset_partition_range_start": "2024-01-02",
                            "dagster/asset_partition_range_end": "2024-01-31", "dagster/retry_number": "1"},
        secrets=[],
    )
    log.record(later)
    log.set_webhook_status(later.run_id, "delivered (200)")
    assert log.recent() == [later, first]
    assert log.recent()[0].retry_number == 1
    assert log.webhook_statuses() == {first.run_id: None, later.run_id: "delivered (200)"}
    # A plain SQLite table any tool can read.
    with sqlite3.connect(log.path) as connection:
        assert connection.execute("SELECT count(*) FROM run_failures").fetchone() == (2,)


def test_the_webhook_receives_the_json_message():
    failure = _failure()
    with webhook_receiver() as receiver:
        result = post_webhook(receiver.url, failure.to_message())
    assert result.delivered and result.status == 200
    (body,) = receiver.posts
    assert body["text"] == failure.summary()
    assert body["run_id"] == failure.run_id and body["failed_steps"] == ["raw_price_history"]
    assert body["failed_at"] == "2024-01-12T21:45:00+00:00" and body["event"] == "run_failure"
    assert receiver.headers[0]["Content-Type"] == "application/json"


def test_webhook_failures_come_back_as_results_never_as_exceptions():
    message = _failure().to_message()
    with webhook_receiver(status=500) as receiver:
        server_error = post_webhook(receiver.url, message)
    assert not server_error.delivered and server_error.status == 500

    refused_url = f"http://127.0.0.1:{free_port()}/hooks/SECRET-TOKEN"
    refused = post_webhook(refused_url, message)
    assert not refused.delivered and refused.status is None
    assert "SECRET-TOKEN" not in refused.describe()

    with webhook_receiver(delay_s=2.0) as receiver:
        started = time.monotonic()
        stalled = post_webhook(receiver.url, message, timeout_s=0.3)
        elapsed = time.monotonic() - started
    assert not stalled.delivered and elapsed < 1.5
    assert "T0KEN-in-the-path" not in stalled.describe()

    local_file = post_webhook("file:///etc/passwd", message)
    assert not local_file.delivered and "http(s)" in local_file.error
