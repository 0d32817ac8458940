"""Development export: the clean tables as Parquet files partitioned by session."""


from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)

from tft_pipeline.defs.constants import SINGLE_RUN, WAREHOUSE_POOL
from tft_pipeline.defs.progress import report_step_progress
from tft_pipeline.defs.resources import WarehouseResource

EXPORTED_TABLES = (
    "clean.price_history",
    "clean.reddit_posts",
    "clean.reddit_comments",
    "clean.rejected_rows",
)


def export_assets(partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """The Parquet export of the clean tables over ``partitions``."""

    @asset(
        key=["export", "clean_parquet"],
        deps=[table.split(".") for table in EXPORTED_TABLES],
        group_name="export",
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        kinds={"parquet"},
        description="The clean tables under <export_dir>/<table>/session_date=…/ (DuckDB COPY … PARTITION_BY).",
    )
    def clean_parquet_export(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> MaterializeResult:
        store = warehouse.warehouse()
        sessions = context.partition_keys
        files = {table: store.export_parquet(table, warehouse.export_dir, sessions) for table in EXPORTED_TABLES}
        report_step_progress(context.get_step_execution_context(), "export/clean_parquet", list(sessions))
        return MaterializeResult(
            metadata={
                "export_dir": MetadataValue.path(str(warehouse.export_dir)),
                "files": MetadataValue.int(sum(len(paths) for paths in files.values())),
                "sessions": MetadataValue.int(len(sessions)),
            }
        )

    return [clean_parquet_export]
