"""The executor of every job, chosen by ``TFT_EXECUTOR``: Dagster's in-process executor (default)
or Dagster's Celery executor (``dagster-celery``, the extra ``celery``).

Under Celery each step of a run is a task that a worker process (on this host or another) runs;
the run's own process only orchestrates. The warehouse rule holds either way: every step that
opens the DuckDB file is in the ``duckdb_warehouse`` pool, and dagster-celery claims a pool slot
in the orchestrating process *before* it hands the step to Celery and frees it when the step's
events come back, so with the shipped limit of one slot no two warehouse steps run at once,
whichever workers pick them up (``tft_pipeline_tests/test_celery.py`` checks it on the run's
event log).

Workers are started with ``celery -A tft_pipeline.celery_app worker`` (see docs/deploy.md): that
app is dagster-celery's own tasks on the same broker, backend and settings as the executor here.
"""

from __future__ import annotations

from typing import Any

from dagster import ExecutorDefinition, in_process_executor

from tft_pipeline.settings import ExecutorKind, Settings

# The module every worker imports before forking its processes, so each step's task finds the
# project's definitions already loaded instead of importing them per process.
CELERY_INCLUDE = ["tft_pipeline.definitions"]


def celery_config_source(queue: str) -> dict[str, Any]:
    """Celery settings beyond broker and backend, shared by the executor and the workers."""
    return {
        # dagster-celery's defaults, plus Redis' visibility timeout: a task not acknowledged within
        # it is delivered again. Steps are acknowledged on receipt (Celery's default), so this only
        # matters for tasks still waiting in a worker's prefetch; a day is longer than any step.
        "broker_transport_options": {
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
            "visibility_timeout": 86_400,
        },
        "worker_prefetch_multiplier": 1,  # a worker process takes one step at a time
        # Where steps go (TFT_CELERY_QUEUE, default dagster-celery's "dagster"); workers -Q it.
        "task_default_queue": queue,
        "broker_connection_retry_on_startup": True,
    }


def celery_executor_config(settings: Settings) -> dict[str, Any]:
    """The ``celery_executor`` config from the settings (broker and backend are secrets)."""
    return {
        "broker": settings.celery_broker.get_secret_value(),
        "backend": settings.celery_backend.get_secret_value(),
        "include": list(CELERY_INCLUDE),
        "config_source": celery_config_source(settings.celery_queue),
    }


def job_executor(settings: Settings) -> ExecutorDefinition:
    """The executor every job of the code location uses."""
    if settings.executor is ExecutorKind.IN_PROCESS:
        return in_process_executor
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_executor_config(settings), name="celery")
