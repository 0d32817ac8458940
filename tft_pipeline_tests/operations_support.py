"""Test helpers for the operations tests: a recording webhook on 127.0.0.1, a throwaway PostgreSQL
database, Dagster homes and processes started the way an operator starts them."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NEW_YORK = ZoneInfo("America/New_York")
PG_HOST = os.environ.get("DAGSTER_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DAGSTER_PG_PORT", "5432"))
PG_USER = os.environ.get("DAGSTER_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("DAGSTER_PG_PASSWORD", "")


# --- a webhook receiver ---------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records JSON posts and answers with ``status``."""

    status: int = 200
    delay_s: float = 0.0
    posts: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T0KEN-in-the-path"


@contextmanager
def webhook_receiver(status: int = 200, delay_s: float = 0.0) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(status=status, delay_s=delay_s)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.posts.append(json.loads(body))
            receiver.headers.append(dict(self.headers))
            if receiver.delay_s:
                time.sleep(receiver.delay_s)  # a stalled server, to exercise the client's timeout
            self.send_response(receiver.status)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def latest_session_tick(now: dt.datetime) -> dt.datetime:
    """The most recent 16:30 New York tick of the daily cron that fell on a trading session."""
    from tft_pipeline.trading_calendar import is_session

    local = now.astimezone(NEW_YORK)
    for days_back in range(10):
        day = (local - dt.timedelta(days=days_back)).date()
        tick = dt.datetime.combine(day, dt.time(16, 30), NEW_YORK)
        if tick <= local and day.weekday() < 5 and is_session(day):
            return tick
    raise AssertionError(f"no session tick in the ten days before {local}")


# --- PostgreSQL -----------------------------------------------------------------------------------


def postgres_unavailable_reason() -> str | None:
    """Why the PostgreSQL server cannot be used (None when it can)."""
    try:
        import psycopg2
    except ImportError as error:  # pragma: no cover - psycopg2-binary is a dependency
        return f"psycopg2 is not installed: {error}"
    try:
        psycopg2.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg2.OperationalError as error:
        return f"no PostgreSQL server at {PG_USER}@{PG_HOST}:{PG_PORT}: {str(error).strip()}"
    return None


def require_postgres() -> None:
    """Skip without a server; under CI (CI=true) a missing server fails the test instead."""
    import pytest

    reason = postgres_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI needs the PostgreSQL server: {reason}", pytrace=False)
    pytest.skip(f"{reason} (set DAGSTER_PG_HOST/PORT/USER/PASSWORD; under CI=true this fails)")


@contextmanager
def temporary_postgres_database(prefix: str = "tft_test") -> Iterator[str]:
    """A database of its own with a random name, dropped afterwards (connections terminated)."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname="postgres"
    )
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def postgres_env(database: str) -> dict[str, str]:
    return {
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": str(PG_PORT),
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": PG_PASSWORD,
        "DAGSTER_PG_DB": database,
    }


# --- Redis (the Celery broker and result backend) -------------------------------------------------

REDIS_HOST = os.environ.get("TFT_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("TFT_TEST_REDIS_PORT", "6379"))
# A database number of the tests' own: they flush it before and after, and only it.
REDIS_DB = int(os.environ.get("TFT_TEST_REDIS_DB", "13"))


def redis_url() -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


def redis_unavailable_reason() -> str | None:
    """Why the Redis server cannot be used (None when it can)."""
    try:
        import redis
    except ImportError as error:
        return f"the redis client is not installed (extra `celery`): {error}"
    try:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as error:
        return f"no Redis server at {REDIS_HOST}:{REDIS_PORT}: {error}"
    return None


def require_redis() -> None:
    """Skip without a server; under CI (CI=true) a missing server fails the test instead."""
    import pytest

    reason = redis_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI needs the Redis server: {reason}", pytrace=False)
    pytest.skip(f"{reason} (set TFT_TEST_REDIS_HOST/PORT; under CI=true this fails)")


def flush_redis_db() -> None:
    """Empty the tests' own Redis database (FLUSHDB on it alone, never FLUSHALL)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=3)
    client.flushdb()
    client.close()


# --- Dagster homes and processes ------------------------------------------------------------------


def make_dagster_home(directory: Path, backend: str, extra_yaml: str = "") -> Path:
    """A DAGSTER_HOME holding a copy of the shipped instance config (``sqlite`` or ``postgres``)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = (PROJECT_ROOT / "deploy" / backend / "dagster.yaml").read_text()
    (directory / "dagster.yaml").write_text(config + ("\n" + extra_yaml if extra_yaml else ""))
    return directory


def pipeline_env(home: Path, warehouse: Path, tickers: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a Dagster process over the sample data and a throwaway warehouse."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFT_", "REDDIT_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        TFT_DATA_SOURCE="sample",
        TFT_WAREHOUSE_PATH=str(warehouse),
        TFT_TICKERS=tickers,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


def dagster_cli(*arguments: str) -> list[str]:
    """A command of the virtualenv's ``dagster`` CLI (its console scripts live beside python)."""
    scripts = Path(sys.executable).parent
    name, *rest = arguments
    executable = scripts / name
    return [str(executable) if executable.exists() else shutil.which(name) or name, *rest]


@dataclass
class Service:
    """A long-running Dagster process (daemon, webserver, dev) with its output in a file."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def output(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM the process group (its code servers and run workers), then SIGKILL if needed."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Children left behind in the group (a run worker mid-step) go too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.process.returncode


def start_service(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Service:
    """Start ``command`` in its own process group (so stopping it stops its children)."""
    log_path = log_dir / f"{name}.log"
    handle = log_path.open("w")
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    return Service(name, process, log_path)


def wait_for(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 1.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError with ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f}s for {what or predicate}")
        time.sleep(interval_s)


@contextmanager
def dagster_home_env(home: Path, extra: dict[str, str] | None = None) -> Iterator[None]:
    """Point this process at ``home`` (and the PG variables) while the block runs."""
    saved = {key: os.environ.get(key) for key in ("DAGSTER_HOME", *(extra or {}))}
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.update(extra or {})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- the webserver's GraphQL API (what the UI calls) ----------------------------------------------


class GraphQLError(RuntimeError):
    pass


@dataclass
class WebserverClient:
    """The few GraphQL calls the UI makes for a schedule toggle and a backfill launch."""

    base_url: str

    def query(self, document: str, variables: dict[str, Any] | None = None, timeout_s: float = 60.0) -> dict:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            f"{self.base_url}/graphql",
            data=json.dumps({"query": document, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:  # GraphQL errors come with a JSON body
            raise GraphQLError(f"HTTP {error.code}: {error.read()[:2000]!r}") from None
        if payload.get("errors"):
            raise GraphQLError(json.dumps(payload["errors"])[:2000])
        return payload["data"]

    def is_up(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.base_url}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def loaded_location(self) -> str | None:
        """The name of the loaded code location (None while starting or loading); raises on a load error."""
        if not self.is_up():
            return None
        data = self.query(
            """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
                 locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        )
        entries = data["workspaceOrError"].get("locationEntries", [])
        for entry in entries:
            error = entry["locationOrLoadError"]
            if error and error["__typename"] == "PythonError":
                raise GraphQLError(f"code location {entry['name']} failed to load: {error['message']}")
            if entry["loadStatus"] == "LOADED" and error:
                return entry["name"]
        return None

    def start_schedule(self, location: str, schedule: str, repository: str = "__repository__") -> str:
        data = self.query(
            """mutation($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
                 __typename ... on ScheduleStateResult { scheduleState { status } }
                 ... on PythonError { message } } }""",
            {"selector": {"repositoryLocationName": location, "repositoryName": repository, "scheduleName": schedule}},
        )
        result = data["startSchedule"]
        if result["__typename"] != "ScheduleStateResult":
            raise GraphQLError(str(result))
        return result["scheduleState"]["status"]

    def asset_keys(self) -> list[list[str]]:
        data = self.query("{ assetNodes { assetKey { path } } }")
        return [node["assetKey"]["path"] for node in data["assetNodes"]]

    def asset_nodes(self) -> dict[tuple[str, ...], bool]:
        """Every asset key, and whether it is partitioned."""
        data = self.query("{ assetNodes { assetKey { path } partitionDefinition { type } } }")
        return {tuple(node["assetKey"]["path"]): node["partitionDefinition"] is not None for node in data["assetNodes"]}

    def launch_asset_backfill(
        self, asset_keys: list[list[str]], partitions: list[str] | None = None,
        partition_range: tuple[str, str] | None = None, partitioned: dict | None = None, title: str = "",
    ) -> str:
        """Backfill ``asset_keys``: by partition names (what the UI's asset "Materialize → Launch
        backfill" sends) or by a range per asset (``partitionsByAssets``, the range form of the API)."""
        if partition_range is not None:
            start, end = partition_range
            params = {"partitionsByAssets": [
                {"assetKey": {"path": key},
                 "partitions": {"range": {"start": start, "end": end}} if (partitioned or {}).get(tuple(key), True) else None}
                for key in asset_keys
            ]}
        else:
            params = {"assetSelection": [{"path": key} for key in asset_keys], "partitionNames": partitions}
        data = self.query(
            """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
                 __typename ... on LaunchBackfillSuccess { backfillId }
                 ... on PythonError { message } ... on PartitionKeysNotFoundError { message } } }""",
            {"params": {**params, "title": title}},
        )
        result = data["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(str(result))
        return result["backfillId"]


def launch_run(
    client: WebserverClient, location: str, job: str, partition: str, asset_keys: list[list[str]],
    repository: str = "__repository__",
) -> str:
    """Launch one partition of ``job`` for ``asset_keys``, as the UI's launchpad does (``launchRun``)."""
    data = client.query(
        """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
             __typename ... on LaunchRunSuccess { run { runId } }
             ... on PythonError { message } ... on InvalidSubsetError { message }
             ... on RunConfigValidationInvalid { errors { message } } } }""",
        {"params": {
            "selector": {
                "repositoryLocationName": location, "repositoryName": repository, "jobName": job,
                "assetSelection": [{"path": key} for key in asset_keys],
                "assetCheckSelection": [],
            },
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }},
    )
    result = data["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise GraphQLError(str(result))
    return result["run"]["runId"]


def launch_job_backfill(
    client: WebserverClient, location: str, job: str, partitions: list[str], title: str = "",
    repository: str = "__repository__",
) -> str:
    """What the job page's *Partitions → Launch backfill* sends: the job's partition set, by names."""
    data = client.query(
        """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
             __typename ... on LaunchBackfillSuccess { backfillId }
             ... on PythonError { message } ... on PartitionKeysNotFoundError { message } } }""",
        {"params": {
            "selector": {
                "partitionSetName": f"{job}_partition_set",
                "repositorySelector": {"repositoryLocationName": location, "repositoryName": repository},
            },
            "partitionNames": partitions,
            "title": title,
        }},
    )
    result = data["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise GraphQLError(str(result))
    return result["backfillId"]
