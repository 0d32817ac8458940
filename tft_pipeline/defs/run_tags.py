"""Run tags the project reads or writes, by their documented names (no private Dagster imports)."""

# Dagster's documented tags of a single-run backfill: a run materializing a range of partitions
# carries its first and last key (docs: "Backfilling data", single-run backfills).
PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"

# Ours: the tick a scheduled run was meant for, so a check that runs late still judges "as of" it.
EVALUATED_AS_OF = "tft/evaluated_as_of"
# Ours: what launched the run (schedule, make run, …), for people reading the runs list.
TRIGGER = "tft/trigger"


def range_tags(first: str, last: str) -> dict[str, str]:
    """The tags that make one run materialize the partitions ``first..last``."""
    return {PARTITION_RANGE_START: first, PARTITION_RANGE_END: last}
