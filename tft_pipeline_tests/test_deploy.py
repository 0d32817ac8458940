"""The shipped deployment: both instance configs, the PostgreSQL instance for real, the systemd
layout (code server + webserver + daemon) for real, the compose file, and loopback-only binding."""

from __future__ import annotations

import contextlib
import datetime
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tft_pipeline_tests.operations_support import (
    PROJECT_ROOT,
    GraphQLError,
    WebserverClient,
    dagster_cli,
    dagster_home_env,
    free_port,
    make_dagster_home,
    pipeline_env,
    postgres_env,
    require_postgres,
    start_service,
    temporary_postgres_database,
    wait_for,
)

DEPLOY = PROJECT_ROOT / "deploy"
OPERATIONAL_SECTIONS = ("concurrency", "run_queue", "run_retries", "run_monitoring", "telemetry")


def _instance_config(backend: str) -> dict:
    return yaml.safe_load((DEPLOY / backend / "dagster.yaml").read_text())


def test_both_instance_configs_share_pools_retries_and_monitoring():
    sqlite, postgres = _instance_config("sqlite"), _instance_config("postgres")
    for section in OPERATIONAL_SECTIONS:
        assert sqlite[section] == postgres[section], section
    # One DuckDB writer: every pool one slot, claimed per step.
    assert sqlite["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    # Crashed runs are retried once; failed steps have their own RetryPolicy.
    assert sqlite["run_retries"] == {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}
    # A killed run keeps its pool slot until run monitoring frees it.
    assert sqlite["run_monitoring"]["enabled"] is True
    assert 0 < sqlite["run_monitoring"]["free_slots_after_run_end_seconds"] <= 300
    assert sqlite["run_monitoring"]["max_resume_run_attempts"] == 0
    # A run dequeued while the code server restarts waits for it (minutes), instead of failing.
    queue = sqlite["run_queue"]
    assert queue["max_user_code_failure_retries"] * queue["user_code_failure_retry_delay"] >= 120
    assert postgres["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_dagster_reads_the_config_as_meant(tmp_path, backend):
    from dagster import DagsterInstance

    home = make_dagster_home(tmp_path / "home", backend)
    with contextlib.ExitStack() as stack:
        environment = {}
        if backend == "postgres":
            require_postgres()
            environment = postgres_env(stack.enter_context(temporary_postgres_database()))
        stack.enter_context(dagster_home_env(home, environment))
        instance = stack.enter_context(DagsterInstance.get())
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert instance.run_monitoring_enabled
        assert "MonitoringDaemon" in {name for name in _daemon_class_names(instance)}
        run_queue = instance.get_concurrency_config().run_queue_config
        assert (run_queue.max_user_code_failure_retries, run_queue.user_code_failure_retry_delay) == (10, 30)
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1 and pools.pool_granularity.value == "op"
        if backend == "postgres":
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"


def _daemon_class_names(instance) -> list[str]:
    from dagster._daemon.controller import create_daemons_from_instance

    return [type(daemon).__name__ for daemon in create_daemons_from_instance(instance)]


@pytest.mark.slow
@pytest.mark.postgres
def test_the_postgres_instance_holds_a_real_run_and_its_pool(tmp_path):
    """The daily chain for one session, on the PostgreSQL instance (a database of its own)."""
    require_postgres()
    import psycopg2
    from dagster import DagsterInstance
    from dagster._core.storage.tags import PARTITION_NAME_TAG

    from tft_pipeline.definitions import build_definitions
    from tft_pipeline.defs.jobs import DAILY_JOB_NAME
    from tft_pipeline.settings import load_settings

    settings = load_settings(None, TFT_WAREHOUSE_PATH=str(tmp_path / "w.duckdb"), TFT_TICKERS="AAPL,MSFT")
    job = build_definitions(settings).resolve_job_def(DAILY_JOB_NAME)
    with temporary_postgres_database() as database:
        home = make_dagster_home(tmp_path / "home", "postgres")
        with dagster_home_env(home, postgres_env(database)), DagsterInstance.get() as instance:
            result = job.execute_in_process(instance=instance, partition_key="2024-03-01")
            assert result.success
            assert instance.event_log_storage.get_concurrency_info("duckdb_warehouse").slot_count == 1
        pg = postgres_env(database)
        connection = psycopg2.connect(
            host=pg["DAGSTER_PG_HOST"], port=pg["DAGSTER_PG_PORT"], user=pg["DAGSTER_PG_USER"],
            password=pg["DAGSTER_PG_PASSWORD"], dbname=database,
        )
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT run_id, status FROM runs")
            assert cursor.fetchall() == [(result.run_id, "SUCCESS")]
            cursor.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                (result.run_id,),
            )
            assert cursor.fetchone()[0] >= 10
            cursor.execute("SELECT value FROM run_tags WHERE run_id = %s AND key = %s", (result.run_id, PARTITION_NAME_TAG))
            assert cursor.fetchone() == ("2024-03-01",)
        connection.close()


# --- the systemd layout ---------------------------------------------------------------------------


def _unit(name: str) -> str:
    return (DEPLOY / "systemd" / name).read_text()


def _exec_start(unit: str) -> str:
    match = re.search(r"^ExecStart=(.*?)(?<!\\)$", unit, re.MULTILINE | re.DOTALL)
    return " ".join(match.group(1).replace("\\\n", " ").split())


def test_systemd_units_bind_loopback_and_share_one_workspace():
    webserver = _exec_start(_unit("tft-dagster-webserver.service"))
    code_server = _exec_start(_unit("tft-code-server.service"))
    daemon = _exec_start(_unit("tft-dagster-daemon.service"))
    assert " -h 127.0.0.1 " in f"{webserver} " and " -h 127.0.0.1 " in f"{code_server} "
    assert "code-server start" in code_server and "-m tft_pipeline.definitions" in code_server
    workspace = yaml.safe_load((DEPLOY / "systemd" / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    assert (grpc["host"], str(grpc["port"])) == ("127.0.0.1", re.search(r"-p (\d+)", code_server).group(1))
    assert grpc["location_name"] in code_server
    for command in (webserver, daemon):
        assert "deploy/systemd/workspace.yaml" in command
    for name in ("tft-dagster-webserver.service", "tft-code-server.service", "tft-dagster-daemon.service"):
        assert "EnvironmentFile=/etc/tft_pipeline/env" in _unit(name)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    # Point the units at this checkout so only real problems are reported.
    for unit in (DEPLOY / "systemd").glob("*.service"):
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/tft_pipeline", str(PROJECT_ROOT)))
    result = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(path) for path in tmp_path.glob("*.service"))],
        check=False, capture_output=True, text=True, timeout=60,
    )
    problems = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 0 and not problems, result.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_the_systemd_layout_runs_a_job_launched_from_the_ui(tmp_path):
    """Code server with the settings; webserver and daemon with none, over gRPC on loopback."""
    require_postgres()
    from dagster import DagsterInstance

    with temporary_postgres_database() as database:
        home = make_dagster_home(tmp_path / "home", "postgres")
        code_env = pipeline_env(home, tmp_path / "warehouse.duckdb", "AAPL,MSFT", postgres_env(database))
        # The webserver and the daemon load no code: they get the instance, never TFT_* or secrets.
        service_env = {key: value for key, value in code_env.items() if not key.startswith("TFT_")}
        grpc_port, web_port = free_port(), free_port()
        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(
            (DEPLOY / "systemd" / "workspace.yaml").read_text().replace("port: 4000", f"port: {grpc_port}")
        )
        # The unit's own command line, on a free port.
        executable, *arguments = _exec_start(_unit("tft-code-server.service")).replace(
            "-p 4000", f"-p {grpc_port}"
        ).split()
        services = [
            start_service("code-server", dagster_cli(Path(executable).name, *arguments), code_env, tmp_path),
            start_service("webserver", dagster_cli("dagster-webserver", "-w", str(workspace), "-h", "127.0.0.1",
                                                   "-p", str(web_port)), service_env, tmp_path),
            start_service("daemon", dagster_cli("dagster-daemon", "run", "-w", str(workspace)), service_env, tmp_path),
        ]
        try:
            client = WebserverClient(f"http://127.0.0.1:{web_port}")

            def loaded():
                try:
                    return client.loaded_location()
                except GraphQLError:  # the code server is still starting: the webserver retries
                    return None

            location = wait_for(loaded, 180, 2, "the webserver to reach the code server")
            launched = client.query(
                """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
                     ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
                {"p": {"selector": {"repositoryLocationName": location, "repositoryName": "__repository__",
                                    "jobName": "daily_session_chain"},
                       "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "2024-03-01"}]}}},
            )["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_id = launched["run"]["runId"]
            with dagster_home_env(home, postgres_env(database)), DagsterInstance.get() as instance:
                run = wait_for(
                    lambda: (found := instance.get_run_by_id(run_id)) is not None and found.is_finished and found,
                    240, 1, "the queued run to finish",
                )
                assert run.status.value == "SUCCESS", services[0].output()
        finally:
            for service in reversed(services):
                service.stop()
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM clean.price_history").fetchone() == (2,)


# --- compose ----------------------------------------------------------------------------------------

# Keys of a compose service this file may use (compose-spec); anything else is a typo.
COMPOSE_SERVICE_KEYS = {
    "build", "image", "restart", "command", "environment", "env_file", "volumes", "ports", "expose",
    "depends_on", "healthcheck",
}


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_is_well_formed():
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"postgres", "code-server", "webserver", "daemon"}
    for name, service in services.items():
        assert set(service) <= COMPOSE_SERVICE_KEYS, (name, set(service) - COMPOSE_SERVICE_KEYS)
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services and condition["condition"] in ("service_started", "service_healthy")
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], volume
    for name in ("code-server", "webserver", "daemon"):
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()
        assert services[name]["environment"]["DAGSTER_PG_HOST"] == "postgres"
    (env_file,) = services["code-server"]["env_file"]
    assert env_file == {"path": "../.env", "required": False}
    workspace = yaml.safe_load((DEPLOY / "compose" / "workspace.yaml").read_text())
    grpc = workspace["load_from"][0]["grpc_server"]
    assert grpc["host"] == "code-server" and f"-p {grpc['port']}" in services["code-server"]["command"]
    assert "deploy/postgres/dagster.yaml" in (DEPLOY / "Dockerfile").read_text()


def test_compose_publishes_only_the_ui_and_only_on_loopback():
    services = _compose()["services"]
    published = {name: service.get("ports", []) for name, service in services.items()}
    assert published == {"postgres": [], "code-server": [], "webserver": ["127.0.0.1:3000:3000"], "daemon": []}
    assert services["code-server"]["expose"] == ["4000"]


def test_make_dev_binds_the_ui_to_loopback_by_default():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert re.search(r"^HOST \?= 127\.0\.0\.1$", makefile, re.MULTILINE)
    dev_recipes = re.findall(r"^dev(?:-postgres)?:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert len(dev_recipes) == 2
    assert all("dagster dev" in recipe and "-h $(HOST)" in recipe for recipe in dev_recipes)


def test_docker_build_context_leaves_secrets_and_local_state_out():
    ignored = set((DEPLOY / "Dockerfile.dockerignore").read_text().split())
    assert {".env", ".git", ".venv", "data"} <= ignored


@pytest.mark.parametrize(
    "now, tick",
    [
        ("2024-01-16T10:00", "2024-01-12T16:30"),  # Tuesday morning after MLK day: Friday's tick
        ("2024-01-12T16:29", "2024-01-11T16:30"),  # a minute before Friday's tick
        ("2024-01-12T16:30", "2024-01-12T16:30"),
        ("2024-11-30T12:00", "2024-11-29T16:30"),  # Saturday: the half day's tick (cron is 16:30)
    ],
)
def test_the_daemon_tests_rewind_to_the_latest_session_tick(now, tick):
    from tft_pipeline_tests.operations_support import NEW_YORK, latest_session_tick

    local = datetime.datetime.fromisoformat(now).replace(tzinfo=NEW_YORK)
    assert latest_session_tick(local) == datetime.datetime.fromisoformat(tick).replace(tzinfo=NEW_YORK)
