"""Dagster wiring: partitions, resources, the IO manager, assets, jobs, schedules, sensors."""
