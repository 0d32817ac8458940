"""The warehouse IO manager: asset ``schema/name`` ↔ DuckDB table ``schema.name``.

Partitioned outputs replace exactly their sessions in one transaction, inserting by column name
(see ``tft_pipeline.warehouse`` for why the stock DuckDB IO manager is not used). Inputs load the
sessions of the upstream partitions being read, or the whole table when unpartitioned.
"""

from __future__ import annotations

import pandas as pd
from dagster import (
    AssetKey,
    AssetOut,
    ConfigurableIOManager,
    DagsterInvariantViolationError,
    InputContext,
    MetadataValue,
    OutputContext,
    PartitionsDefinition,
    TableColumn,
    TableSchema,
    asset,
)

from tft_pipeline.defs.constants import SINGLE_RUN, WAREHOUSE_POOL
from tft_pipeline.defs.progress import report_step_progress
from tft_pipeline.warehouse import PARTITION_COLUMN, Warehouse


def table_name(asset_key_path: list[str]) -> str:
    """``["raw", "price_history"]`` → ``"raw.price_history"``."""
    if len(asset_key_path) != 2:
        raise ValueError(
            f"warehouse assets are keyed schema/name, got {'/'.join(asset_key_path)!r}"
        )
    return ".".join(asset_key_path)


def _table_schema(frame: pd.DataFrame) -> TableSchema:
    return TableSchema(columns=[TableColumn(str(c), str(t)) for c, t in frame.dtypes.items()])


WAREHOUSE_IO_MANAGER_KEY = "warehouse_io_manager"


def warehouse_out(
    key: AssetKey, description: str, *, group_name: str | None = None, kinds: frozenset[str] = frozenset()
) -> AssetOut:
    """One table of a subsettable multi-asset: stored in the warehouse, produced only if selected."""
    return AssetOut(
        key=key,
        io_manager_key=WAREHOUSE_IO_MANAGER_KEY,
        group_name=group_name,
        is_required=False,
        kinds={"python", "duckdb", *kinds},
        description=description,
    )


def warehouse_asset(
    key: list[str],
    *,
    group_name: str,
    description: str,
    partitions: PartitionsDefinition | None = None,
    kinds: frozenset[str] = frozenset(),
    **asset_arguments,
):
    """``@asset`` for a warehouse table: stored by this IO manager, in the warehouse pool, and
    backfilled as one run per range (unpartitioned ones too: CLI range runs need the policy)."""
    return asset(
        key=key,
        group_name=group_name,
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        io_manager_key=WAREHOUSE_IO_MANAGER_KEY,
        kinds={"python", "duckdb", *kinds},
        description=description,
        **asset_arguments,
    )


class WarehouseIOManager(ConfigurableIOManager):
    """Stores pandas DataFrames in the DuckDB warehouse, one table per asset."""

    database: str

    def _warehouse(self) -> Warehouse:
        return Warehouse(self.database)

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: the warehouse stores DataFrames, "
                f"got {type(obj).__name__}"
            )
        table = table_name(context.asset_key.path)
        warehouse = self._warehouse()
        schema = _table_schema(obj)
        metadata = {
            "dagster/relation_identifier": MetadataValue.text(f"warehouse.{table}"),
            "dagster/column_schema": schema,
            "table": MetadataValue.text(table),
        }
        try:
            step_context = context.step_context
        except DagsterInvariantViolationError:  # a context built outside a run (tests)
            step_context = None
        if context.has_asset_partitions:
            # Output metadata lands on every partition of a range run: the row count of each
            # session is the asset's to give (defs.metadata.describe_each_session), not the range's.
            sessions = sorted(context.asset_partition_keys)
            rows = warehouse.replace_partitions(table, obj, sessions)
            if len(sessions) == 1:
                metadata["dagster/row_count"] = MetadataValue.int(rows)
            elif step_context is not None:
                # The column schema on the range's latest session only (its event is the asset's
                # latest, which the UI's schema view reads): copied to every session it was most
                # of a range run's event bytes, serialized twice per event.
                del metadata["dagster/column_schema"]
                step_context.add_asset_metadata(
                    {"dagster/column_schema": schema},
                    asset_key=context.asset_key,
                    partition_key=sessions[-1],
                )
        else:
            sessions = []
            rows = warehouse.replace_table(table, obj)
            metadata["dagster/row_count"] = MetadataValue.int(rows)
        context.add_output_metadata(metadata)
        # One line per step in the run's log: sessions written, steps done of the run's, ETA.
        if step_context is not None:
            report_step_progress(step_context, table, list(sessions))

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        if upstream is None or upstream.asset_key is None:
            raise ValueError("the warehouse IO manager only loads assets")
        table = table_name(upstream.asset_key.path)
        warehouse = self._warehouse()
        if not warehouse.table_exists(table):
            raise FileNotFoundError(
                f"{table} is not in the warehouse {self.database}: materialize "
                f"{upstream.asset_key.to_user_string()} first"
            )
        if context.has_asset_partitions:
            # Partition keys of one run are a contiguous range of sessions: one range scan.
            keys = sorted(context.asset_partition_keys)
            return warehouse.read_sessions(table, keys[0], keys[-1])
        return warehouse.read_table(table)


__all__ = ["PARTITION_COLUMN", "WAREHOUSE_IO_MANAGER_KEY", "WarehouseIOManager", "table_name", "warehouse_asset", "warehouse_out"]
