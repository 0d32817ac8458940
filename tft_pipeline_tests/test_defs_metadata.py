"""Per-partition metadata of a range run, written in one step (defs.metadata.add_partition_metadata),
and the column schema on the range's latest session only (defs.io_manager)."""


import pandas as pd
import pytest
from dagster import (
    AssetExecutionContext,
    AssetKey,
    DagsterInstance,
    MetadataValue,
    Output,
    TimeWindowPartitionsDefinition,
    materialize,
)

from tft_pipeline.defs.io_manager import WarehouseIOManager, warehouse_asset
from tft_pipeline.defs.metadata import add_partition_metadata, describe_each_session

DAYS = TimeWindowPartitionsDefinition(start="2024-01-01", cron_schedule="0 0 * * *", fmt="%Y-%m-%d")
KEYS = [f"2024-01-{day:02d}" for day in range(1, 8)]


def _toy_asset():
    @warehouse_asset(key=["raw", "toy"], group_name="toy", partitions=DAYS, description="toy")
    def toy(context: AssetExecutionContext) -> Output:
        keys = sorted(context.partition_keys)
        # Session i has i rows (the first none).
        frame = pd.DataFrame(
            {
                "session_date": pd.to_datetime([k for i, k in enumerate(keys) for _ in range(i)]),
                "value": [float(i) for i, _ in enumerate(keys) for _ in range(i)],
            }
        )
        shared = describe_each_session(
            context, frame, lambda rows, key: {"own_key": MetadataValue.text(key)}
        )
        # A second helper call merges into the entries of the first (later ones win, key by key).
        add_partition_metadata(
            context, {key: {"second": MetadataValue.int(index)} for index, key in enumerate(keys)}
        )
        return Output(frame, metadata=shared)

    return toy


def _materializations(instance: DagsterInstance) -> dict[str, dict]:
    records = instance.fetch_materializations(AssetKey(["raw", "toy"]), limit=100).records
    return {record.partition_key: record.asset_materialization.metadata for record in records}


def test_a_range_run_gives_each_partition_its_own_metadata_and_the_schema_once(tmp_path):
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [_toy_asset()],
        instance=instance,
        resources={"warehouse_io_manager": WarehouseIOManager(database=str(tmp_path / "w.duckdb"))},
        tags={
            "dagster/asset_partition_range_start": KEYS[0],
            "dagster/asset_partition_range_end": KEYS[-1],
        },
    )
    assert result.success
    by_key = _materializations(instance)
    assert sorted(by_key) == KEYS
    for index, key in enumerate(KEYS):
        metadata = by_key[key]
        assert metadata["dagster/row_count"].value == index
        assert metadata["own_key"].value == key
        assert metadata["second"].value == index
        assert metadata["materialized_in_range"].value.startswith(f"{KEYS[0]}..{KEYS[-1]}")
        # The column schema rides on the latest session's event only (the asset's latest).
        assert ("dagster/column_schema" in metadata) == (key == KEYS[-1])
    schema = by_key[KEYS[-1]]["dagster/column_schema"].value
    assert [column.name for column in schema.columns] == ["session_date", "value"]


def test_a_one_session_run_keeps_the_schema_and_row_count(tmp_path):
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [_toy_asset()],
        instance=instance,
        partition_key=KEYS[0],
        resources={"warehouse_io_manager": WarehouseIOManager(database=str(tmp_path / "w.duckdb"))},
    )
    assert result.success
    metadata = _materializations(instance)[KEYS[0]]
    assert metadata["dagster/row_count"].value == 0
    assert "dagster/column_schema" in metadata


class _PublicOnly:
    """A context with only the public API (another Dagster): the helper falls back to the loop."""

    partition_keys = KEYS

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def add_asset_metadata(self, metadata, asset_key=None, partition_key=None) -> None:
        self.calls.append((partition_key, dict(metadata), asset_key))


def test_without_dagsters_accumulator_the_public_call_is_made_per_partition():
    context = _PublicOnly()
    add_partition_metadata(context, {key: {"n": 1} for key in KEYS[:3]}, asset_key=["raw", "toy"])
    assert context.calls == [(key, {"n": 1}, ["raw", "toy"]) for key in KEYS[:3]]


def test_the_private_accumulator_it_relies_on_still_exists(tmp_path):
    """A Dagster upgrade that moves it fails here instead of silently taking the slow path."""
    from dagster._core.execution.context.metadata_logging import OutputMetadataAccumulator

    seen = []

    @warehouse_asset(key=["raw", "toy"], group_name="toy", partitions=DAYS, description="toy")
    def toy(context: AssetExecutionContext) -> pd.DataFrame:
        step = context.get_step_execution_context()
        seen.append(type(getattr(step, "_metadata_accumulator", None)))
        return pd.DataFrame({"session_date": pd.to_datetime([KEYS[0]])})

    result = materialize(
        [toy],
        instance=DagsterInstance.ephemeral(),
        partition_key=KEYS[0],
        resources={"warehouse_io_manager": WarehouseIOManager(database=str(tmp_path / "w.duckdb"))},
    )
    assert result.success
    assert seen == [OutputMetadataAccumulator]


@pytest.mark.parametrize("sessions", [1, 3])
def test_partition_keys_outside_the_run_are_refused(tmp_path, sessions):
    @warehouse_asset(key=["raw", "toy"], group_name="toy", partitions=DAYS, description="toy")
    def toy(context: AssetExecutionContext) -> pd.DataFrame:
        add_partition_metadata(context, {"2023-12-31": {"n": 1}})
        return pd.DataFrame({"session_date": pd.to_datetime([KEYS[0]])})

    tags = (
        {
            "dagster/asset_partition_range_start": KEYS[0],
            "dagster/asset_partition_range_end": KEYS[sessions - 1],
        }
        if sessions > 1
        else {}
    )
    result = materialize(
        [toy],
        instance=DagsterInstance.ephemeral(),
        partition_key=KEYS[0] if sessions == 1 else None,
        resources={"warehouse_io_manager": WarehouseIOManager(database=str(tmp_path / "w.duckdb"))},
        tags=tags,
        raise_on_error=False,
    )
    assert not result.success
