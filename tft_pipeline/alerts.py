"""Run-failure alerts: a redacted failure record, a durable SQLite log of them, a webhook post (pure).

The log is a small SQLite file beside the warehouse, not a table in it: the Dagster daemon
evaluates the failure sensor and must never wait for (or take) the DuckDB writer lock, and a
SQLite file survives a wiped or replaced Dagster instance and is readable with any SQL tool.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tft_pipeline.redaction import redact

MAX_ERROR_CHARS = 4000
# Environment variables whose values must never leave the process in a message.
SECRET_NAME_MARKERS = (
    "SECRET", "PASSWORD", "PASSWD", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL",
    "WEBHOOK",
)
# Dagster's own run tags (plain strings: this module imports no Dagster).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
BACKFILL_TAG = "dagster/backfill"
SCHEDULE_TAG = "dagster/schedule_name"
RETRY_NUMBER_TAG = "dagster/retry_number"
TRIGGER_TAG = "tft/trigger"


def secret_values(environ: Mapping[str, str], extra: Iterable[str | None] = ()) -> tuple[str, ...]:
    """Values of environment variables named like secrets, plus ``extra``; empty values ignored."""
    named = (
        value for name, value in environ.items()
        if any(marker in name.upper() for marker in SECRET_NAME_MARKERS)
    )
    return tuple(sorted({value for value in (*named, *extra) if value}, key=len, reverse=True))


def partition_span(tags: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The first and last session a run covered, from its tags (``(None, None)`` if unpartitioned)."""
    if RANGE_START_TAG in tags or RANGE_END_TAG in tags:
        return tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    single = tags.get(PARTITION_TAG)
    return single, single


@dataclass(frozen=True)
class RunFailure:
    """One failed run, as recorded and alerted: no secrets, bounded size."""

    run_id: str
    job_name: str
    failed_at: dt.datetime
    error: str
    failed_steps: tuple[str, ...] = ()
    failed_assets: tuple[str, ...] = ()
    first_session: str | None = None
    last_session: str | None = None
    trigger: str | None = None
    retry_number: int = 0
    location: str | None = None

    @classmethod
    def build(
        cls,
        *,
        run_id: str,
        job_name: str,
        failed_at: dt.datetime,
        error: str,
        tags: Mapping[str, str],
        secrets: Iterable[str],
        failed_steps: Iterable[str] = (),
        failed_assets: Iterable[str] = (),
        location: str | None = None,
    ) -> RunFailure:
        """A record from a run's facts: the error redacted and truncated, the span from its tags."""
        secrets = tuple(secrets)
        message = redact(error.strip(), secrets)
        if len(message) > MAX_ERROR_CHARS:
            message = message[: MAX_ERROR_CHARS - 20] + " … (truncated)"
        first, last = partition_span(tags)
        trigger = (
            tags.get(TRIGGER_TAG)
            or (f"schedule {tags[SCHEDULE_TAG]}" if SCHEDULE_TAG in tags else None)
            or (f"backfill {tags[BACKFILL_TAG]}" if BACKFILL_TAG in tags else None)
        )
        return cls(
            run_id=run_id,
            job_name=job_name,
            failed_at=failed_at.astimezone(dt.UTC),
            error=message,
            failed_steps=tuple(sorted(set(failed_steps))),
            failed_assets=tuple(sorted(set(failed_assets))),
            first_session=first,
            last_session=last,
            trigger=redact(trigger, secrets) if trigger else None,
            retry_number=int(tags.get(RETRY_NUMBER_TAG, 0) or 0),
            location=location,
        )

    def summary(self) -> str:
        """One line for a chat channel."""
        span = ""
        if self.first_session:
            span = (
                f" for {self.first_session}" if self.first_session == self.last_session
                else f" for {self.first_session}..{self.last_session}"
            )
        steps = f" at {', '.join(self.failed_steps)}" if self.failed_steps else ""
        first_line = self.error.splitlines()[0] if self.error else "no error message"
        return f"tft_pipeline: run {self.run_id[:8]} of {self.job_name}{span} failed{steps}: {first_line}"

    def to_message(self) -> dict[str, Any]:
        """The webhook's JSON body (``text`` is what Slack-style incoming webhooks display)."""
        body = asdict(self)
        body["failed_at"] = self.failed_at.isoformat()
        body["failed_steps"] = list(self.failed_steps)
        body["failed_assets"] = list(self.failed_assets)
        return {"text": self.summary(), "event": "run_failure", **body}


_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_failures (
    run_id TEXT PRIMARY KEY,
    job_name TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    first_session TEXT,
    last_session TEXT,
    failed_steps TEXT NOT NULL,
    failed_assets TEXT NOT NULL,
    error TEXT NOT NULL,
    trigger TEXT,
    retry_number INTEGER NOT NULL,
    location TEXT,
    webhook_status TEXT
)
"""


class FailureLog:
    """The durable log of failed runs: table ``run_failures`` in a SQLite file."""

    def __init__(self, path: str | Path, timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=self.timeout_s)
        connection.execute(_SCHEMA)
        return connection

    def record(self, failure: RunFailure, webhook_status: str | None = None) -> None:
        """Store ``failure``; recording the same run again replaces its row (sensor ticks may repeat)."""
        row = (
            failure.run_id, failure.job_name, failure.failed_at.isoformat(), failure.first_session,
            failure.last_session, json.dumps(list(failure.failed_steps)),
            json.dumps(list(failure.failed_assets)), failure.error, failure.trigger,
            failure.retry_number, failure.location, webhook_status,
        )
        with closing(self._connect()) as connection, connection:
            connection.execute(f"INSERT OR REPLACE INTO run_failures VALUES ({', '.join('?' * len(row))})", row)

    def set_webhook_status(self, run_id: str, status: str) -> None:
        with closing(self._connect()) as connection, connection:
            connection.execute("UPDATE run_failures SET webhook_status = ? WHERE run_id = ?", (status, run_id))

    def recent(self, limit: int = 50) -> list[RunFailure]:
        """The latest failures, newest first."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT run_id, job_name, failed_at, error, failed_steps, failed_assets, first_session,"
                " last_session, trigger, retry_number, location FROM run_failures"
                " ORDER BY failed_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            RunFailure(
                run_id=run_id, job_name=job, failed_at=dt.datetime.fromisoformat(failed_at),
                error=error, failed_steps=tuple(json.loads(steps)), failed_assets=tuple(json.loads(assets)),
                first_session=first, last_session=last, trigger=trigger, retry_number=retry, location=location,
            )
            for run_id, job, failed_at, error, steps, assets, first, last, trigger, retry, location in rows
        ]

    def webhook_statuses(self) -> dict[str, str | None]:
        if not self.path.exists():
            return {}
        with closing(self._connect()) as connection:
            return dict(connection.execute("SELECT run_id, webhook_status FROM run_failures").fetchall())


@dataclass(frozen=True)
class WebhookResult:
    """What happened to one webhook post (never an exception)."""

    delivered: bool
    status: int | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.delivered:
            return f"delivered ({self.status})"
        return f"not delivered: {self.error}" if self.status is None else f"not delivered ({self.status})"


Opener = Callable[..., Any]


def post_webhook(
    url: str,
    message: Mapping[str, Any],
    *,
    timeout_s: float = 5.0,
    opener: Opener = urllib.request.urlopen,
) -> WebhookResult:
    """POST ``message`` as JSON to ``url`` with a short timeout; failures come back, never raise.

    Only http(s) URLs are used (urllib would also open file:// and ftp://). Errors never include
    the URL: incoming-webhook URLs carry their token in the path.
    """
    if not url.lower().startswith(("http://", "https://")):
        return WebhookResult(False, error="TFT_FAILURE_WEBHOOK_URL must be an http(s) URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(message, default=str).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "tft_pipeline-alerts"},
        method="POST",
    )
    try:
        with opener(request, timeout=timeout_s) as response:
            status = int(getattr(response, "status", 200))
            return WebhookResult(200 <= status < 300, status=status)
    except urllib.error.HTTPError as error:
        return WebhookResult(False, status=error.code, error=f"HTTP {error.code}")
    except Exception as error:  # noqa: BLE001 - an alert must never break the sensor
        reason = getattr(error, "reason", None) or error
        return WebhookResult(False, error=f"{type(error).__name__}: {redact(str(reason), [url])}")
