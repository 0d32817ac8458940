"""Dagster wiring: partitions, resources, the IO manager, assets, jobs, schedules, sensors."""

import warnings

from dagster import BetaWarning, PreviewWarning

# backfill_policy and pool are marked beta/preview; they are what this project is built on.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
