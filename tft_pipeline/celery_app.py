"""The Celery app of tft_pipeline's workers: ``celery -A tft_pipeline.celery_app worker -Q dagster``.

It is dagster-celery's own app and tasks (``dagster_celery.app`` builds the same ones), on the
broker, result backend and Celery settings that ``TFT_EXECUTOR=celery`` gives the executor, so a
worker needs only the project installed and the same ``TFT_*`` and ``DAGSTER_*`` environment as
the code server (docs/deploy.md). Needs the extra ``celery``.
"""

from __future__ import annotations

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from tft_pipeline.defs.executors import celery_executor_config
from tft_pipeline.settings import get_settings

# CeleryExecutor.for_cli is how dagster-celery's own `dagster-celery worker start` turns the
# executor's config into the app's arguments (retries stay the orchestrator's business).
app = make_app(CeleryExecutor.for_cli(**celery_executor_config(get_settings())).app_args())

execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
