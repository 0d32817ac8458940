"""Clean assets: validated, deduplicated tables, and the quarantine of every rejected raw row.

Each clean table is its own asset, so any one can be materialized or backfilled alone. The
quarantine validates the three raw tables again: validation is deterministic and cheap (millions
of rows a second), and one asset per table keeps lineage exact (a clean table depends on its raw
table only; the quarantine on all three).
"""

from collections.abc import Callable

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    MetadataValue,
    Output,
    PartitionsDefinition,
)
from dagster_pandera import pandera_schema_to_dagster_type

from tft_pipeline import validation
from tft_pipeline.defs.constants import CLEAN_GROUP
from tft_pipeline.defs.io_manager import warehouse_asset
from tft_pipeline.defs.metadata import (
    add_partition_metadata,
    counts_table,
    describe_each_session,
    preview,
)
from tft_pipeline.tables import conform


def rejection_check(rejected: pd.DataFrame) -> pd.Series:
    """The failed check of each rejected row (the first one when several failed)."""
    if "check" in rejected.columns:
        return rejected["check"].astype(str)
    return rejected["reason"].astype(str).str.split(r"[;(]", n=1, regex=True).str[0].str.strip()


def _rows_per_session(frame: pd.DataFrame) -> pd.Series:
    if not len(frame):
        return pd.Series(dtype="int64")
    return frame.groupby(frame["session_date"].dt.strftime("%Y-%m-%d")).size()


def session_accounting(
    context: AssetExecutionContext, raw: pd.DataFrame, result: validation.ValidationResult
) -> dict[str, MetadataValue]:
    """Per partition: raw = clean + rejected + duplicates, the acceptance rate and a preview."""
    raw_counts = _rows_per_session(raw)
    rejected_counts = _rows_per_session(result.rejected)
    checks_by_session = (
        dict(tuple(rejection_check(result.rejected).groupby(
            result.rejected["session_date"].dt.strftime("%Y-%m-%d")
        )))
        if len(result.rejected)
        else {}
    )

    shared = describe_each_session(
        context,
        result.clean,
        lambda rows, _: {"clean_rows": MetadataValue.int(len(rows)), "preview": preview(rows)},
    )
    # Counts that need the session's key, not only its clean rows (a session may have none).
    clean_counts = _rows_per_session(result.clean)
    by_session = {}
    for key in sorted(context.partition_keys):
        raw_n, clean_n = int(raw_counts.get(key, 0)), int(clean_counts.get(key, 0))
        rejected_n = int(rejected_counts.get(key, 0))
        checks = checks_by_session.get(key, pd.Series(dtype="object"))
        by_session[key] = {
            "raw_rows": MetadataValue.int(raw_n),
            "rejected_rows": MetadataValue.int(rejected_n),
            "duplicates_dropped": MetadataValue.int(raw_n - clean_n - rejected_n),
            "acceptance_rate": MetadataValue.float(round(clean_n / raw_n, 4) if raw_n else 1.0),
            "rejected_by_check": counts_table(checks.value_counts(), "check"),
        }
    add_partition_metadata(context, by_session)
    return shared


def _clean_asset(
    name: str,
    raw_key: list[str],
    validate: Callable[[pd.DataFrame], validation.ValidationResult],
    schema,
    description: str,
    partitions: PartitionsDefinition,
) -> AssetsDefinition:
    @warehouse_asset(
        key=["clean", name],
        ins={"raw": AssetIn(key=raw_key)},
        dagster_type=pandera_schema_to_dagster_type(schema),
        group_name=CLEAN_GROUP,
        partitions=partitions,
        kinds=frozenset({"pandera"}),
        description=description,
    )
    def clean_asset(context: AssetExecutionContext, raw: pd.DataFrame) -> Output:
        result = validate(raw)
        return Output(result.clean, metadata=session_accounting(context, raw, result))

    return clean_asset


RAW_TABLES = {
    "raw_price_history": ["raw", "price_history"],
    "raw_corporate_actions": ["raw", "corporate_actions"],
    "raw_reddit_posts": ["raw", "reddit_posts"],
    "raw_reddit_comments": ["raw", "reddit_comments"],
}


def _rejected_rows_asset(partitions: PartitionsDefinition) -> AssetsDefinition:
    @warehouse_asset(
        key=["clean", "rejected_rows"],
        ins={name: AssetIn(key=key) for name, key in RAW_TABLES.items()},
        dagster_type=pandera_schema_to_dagster_type(validation.RejectedRows),
        group_name=CLEAN_GROUP,
        partitions=partitions,
        kinds=frozenset({"pandera"}),
        description="Every rejected raw row with its source, key, readable reason and payload.",
    )
    def rejected_rows(
        context: AssetExecutionContext,
        raw_price_history: pd.DataFrame,
        raw_corporate_actions: pd.DataFrame,
        raw_reddit_posts: pd.DataFrame,
        raw_reddit_comments: pd.DataFrame,
    ) -> Output:
        results = (
            validation.validate_prices(raw_price_history),
            validation.validate_corporate_actions(raw_corporate_actions),
            validation.validate_posts(raw_reddit_posts),
            validation.validate_comments(raw_reddit_comments),
        )
        rejected = pd.concat([result.rejected for result in results], ignore_index=True)
        rejected = rejected if len(rejected) else conform(rejected, validation.REJECTED_COLUMNS)

        def describe(rows: pd.DataFrame, session: str) -> dict[str, MetadataValue]:
            by_source_and_check = (
                rows.assign(check=rejection_check(rows)).groupby(["source", "check"]).size()
            )
            # Plain string formatting: pandas' to_markdown costs milliseconds, once per session.
            lines = ["| source | check | rows |", "|:---|:---|---:|"] + [
                f"| {source} | {check} | {int(count)} |"
                for (source, check), count in by_source_and_check.items()
            ]
            return {
                "by_source_and_check": MetadataValue.md(
                    "\n".join(lines) if len(by_source_and_check) else "_none_"
                ),
                "preview": preview(rows),
            }

        return Output(rejected, metadata=describe_each_session(context, rejected, describe))

    return rejected_rows


def clean_assets(partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """The validated tables and the quarantine over ``partitions``."""
    return [
        _clean_asset(
            "price_history", RAW_TABLES["raw_price_history"], validation.validate_prices,
            validation.CleanPriceHistory,
            "Validated daily bars, one per (ticker, session_date); the latest valid fetch wins.",
            partitions,
        ),
        _clean_asset(
            "corporate_actions", RAW_TABLES["raw_corporate_actions"],
            validation.validate_corporate_actions, validation.CleanCorporateActions,
            "Validated splits and dividends, one per (ticker, ex-date session); the latest valid "
            "fetch wins.",
            partitions,
        ),
        _clean_asset(
            "reddit_posts", RAW_TABLES["raw_reddit_posts"], validation.validate_posts,
            validation.CleanRedditPosts,
            "Validated posts, one per post_id; the latest valid fetch wins.",
            partitions,
        ),
        _clean_asset(
            "reddit_comments", RAW_TABLES["raw_reddit_comments"], validation.validate_comments,
            validation.CleanRedditComments,
            "Validated comments, one per comment_id; the latest valid fetch wins.",
            partitions,
        ),
        _rejected_rows_asset(partitions),
    ]
