"""Clean assets: validated, deduplicated tables, and the quarantine of every rejected raw row."""


import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    MetadataValue,
    Output,
    multi_asset,
)
from dagster_pandera import pandera_schema_to_dagster_type

from tft_pipeline import validation
from tft_pipeline.defs.constants import CLEAN_GROUP, SESSION_PARTITIONS, SINGLE_RUN, WAREHOUSE_POOL
from tft_pipeline.defs.metadata import counts_table, preview
from tft_pipeline.tables import conform

RAW_INPUTS = {
    "raw_price_history": AssetIn(key=["raw", "price_history"]),
    "raw_reddit_posts": AssetIn(key=["raw", "reddit_posts"]),
    "raw_reddit_comments": AssetIn(key=["raw", "reddit_comments"]),
}


def _out(name: str, schema, description: str) -> AssetOut:
    return AssetOut(
        key=["clean", name],
        io_manager_key="warehouse_io_manager",
        dagster_type=pandera_schema_to_dagster_type(schema),
        description=description,
    )


def rejection_check(rejected: pd.DataFrame) -> pd.Series:
    """The failed check of each rejected row (the first one when several failed)."""
    if "check" in rejected.columns:
        return rejected["check"].astype(str)
    return rejected["reason"].astype(str).str.split(r"[;(]", n=1, regex=True).str[0].str.strip()


def _accounting(raw: pd.DataFrame, result) -> dict[str, MetadataValue]:
    accepted = len(result.clean) / len(raw) if len(raw) else 1.0
    return {
        "raw_rows": MetadataValue.int(len(raw)),
        "clean_rows": MetadataValue.int(len(result.clean)),
        "rejected_rows": MetadataValue.int(len(result.rejected)),
        "duplicates_dropped": MetadataValue.int(int(result.duplicates)),
        "acceptance_rate": MetadataValue.float(round(accepted, 4)),
        "rejected_by_check": counts_table(rejection_check(result.rejected).value_counts(), "check"),
        "preview": preview(result.clean),
    }


@multi_asset(
    ins=RAW_INPUTS,
    outs={
        "clean_price_history": _out(
            "price_history", validation.CleanPriceHistory,
            "Validated daily bars, one per (ticker, session_date); the latest valid fetch wins.",
        ),
        "clean_reddit_posts": _out(
            "reddit_posts", validation.CleanRedditPosts,
            "Validated posts, one per post_id; the latest valid fetch wins.",
        ),
        "clean_reddit_comments": _out(
            "reddit_comments", validation.CleanRedditComments,
            "Validated comments, one per comment_id; the latest valid fetch wins.",
        ),
        "clean_rejected_rows": _out(
            "rejected_rows", validation.RejectedRows,
            "Every rejected raw row with its source, key, readable reason and payload.",
        ),
    },
    internal_asset_deps={
        "clean_price_history": {AssetKey(["raw", "price_history"])},
        "clean_reddit_posts": {AssetKey(["raw", "reddit_posts"])},
        "clean_reddit_comments": {AssetKey(["raw", "reddit_comments"])},
        "clean_rejected_rows": {AssetKey(k.key.path) for k in RAW_INPUTS.values()},
    },
    group_name=CLEAN_GROUP,
    partitions_def=SESSION_PARTITIONS,
    backfill_policy=SINGLE_RUN,
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def clean_tables(
    context: AssetExecutionContext,
    raw_price_history: pd.DataFrame,
    raw_reddit_posts: pd.DataFrame,
    raw_reddit_comments: pd.DataFrame,
):
    """Validate the three raw tables; rows = clean + rejected + duplicates, per partition."""
    results = {
        "clean_price_history": (raw_price_history, validation.validate_prices(raw_price_history)),
        "clean_reddit_posts": (raw_reddit_posts, validation.validate_posts(raw_reddit_posts)),
        "clean_reddit_comments": (
            raw_reddit_comments, validation.validate_comments(raw_reddit_comments),
        ),
    }
    for output_name, (raw, result) in results.items():
        yield Output(result.clean, output_name=output_name, metadata=_accounting(raw, result))

    rejected = pd.concat(
        [result.rejected for _, result in results.values()], ignore_index=True
    )
    rejected = rejected if len(rejected) else conform(rejected, validation.REJECTED_COLUMNS)
    by_source_and_check = (
        rejected.assign(check=rejection_check(rejected)).groupby(["source", "check"]).size()
    )
    yield Output(
        rejected,
        output_name="clean_rejected_rows",
        metadata={
            "rejected_rows": MetadataValue.int(len(rejected)),
            "by_source_and_check": MetadataValue.md(
                by_source_and_check.rename("rows").reset_index().to_markdown(index=False)
                if len(by_source_and_check)
                else "_none_"
            ),
            "preview": preview(rejected),
        },
    )
