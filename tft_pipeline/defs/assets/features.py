"""Feature assets: ticker mentions with sentiment, and point-in-time feature snapshots."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output, asset

from tft_pipeline.defs.constants import (
    FEATURES_GROUP,
    SESSION_PARTITIONS,
    SINGLE_RUN,
    WAREHOUSE_POOL,
)
from tft_pipeline.defs.history import partition_sessions, read_history
from tft_pipeline.defs.metadata import counts_table, preview
from tft_pipeline.defs.resources import UniverseResource, WarehouseResource
from tft_pipeline.features import (
    LOOKBACK_SESSIONS,
    TRAILING_WINDOW,
    build_feature_snapshots,
    extract_ticker_mentions,
)
from tft_pipeline.features.mentions import TICKER_MENTION_COLUMNS
from tft_pipeline.tables import conform


@asset(
    key=["features", "ticker_mentions"],
    ins={
        "clean_reddit_posts": AssetIn(key=["clean", "reddit_posts"]),
        "clean_reddit_comments": AssetIn(key=["clean", "reddit_comments"]),
    },
    group_name=FEATURES_GROUP,
    partitions_def=SESSION_PARTITIONS,
    backfill_policy=SINGLE_RUN,
    pool=WAREHOUSE_POOL,
    io_manager_key="warehouse_io_manager",
    kinds={"python", "duckdb"},
    description="Tickers found in posts and comments (cashtags; bare symbols of the universe, "
    "ambiguous ones only as cashtags), with VADER sentiment extended by a trading lexicon.",
)
def ticker_mentions(
    context: AssetExecutionContext,
    clean_reddit_posts: pd.DataFrame,
    clean_reddit_comments: pd.DataFrame,
    universe: UniverseResource,
) -> Output:
    mentions = extract_ticker_mentions(clean_reddit_posts, clean_reddit_comments, universe.tickers)
    mentions = conform(mentions, TICKER_MENTION_COLUMNS)
    sources = len(clean_reddit_posts) + len(clean_reddit_comments)
    return Output(
        mentions,
        metadata={
            "mentions": MetadataValue.int(len(mentions)),
            "sources_scanned": MetadataValue.int(sources),
            "sources_with_a_mention": MetadataValue.int(int(mentions["source_id"].nunique())),
            "mean_sentiment": MetadataValue.float(float(mentions["sentiment"].mean()) if len(mentions) else 0.0),
            "top_tickers": counts_table(mentions["ticker"].value_counts().head(10), "ticker", "mentions"),
            "by_kind": counts_table(mentions["mention_kind"].value_counts(), "kind", "mentions"),
            "preview": preview(mentions),
        },
    )


@asset(
    key=["features", "feature_snapshots"],
    deps=[["clean", "price_history"], ["features", "ticker_mentions"]],
    group_name=FEATURES_GROUP,
    partitions_def=SESSION_PARTITIONS,
    backfill_policy=SINGLE_RUN,
    pool=WAREHOUSE_POOL,
    io_manager_key="warehouse_io_manager",
    kinds={"python", "duckdb"},
    description=f"One row per (ticker, session): mentions, sentiment, mention momentum and price "
    f"technicals, built only from data known at that session's close (reads {LOOKBACK_SESSIONS} "
    "sessions of history from the warehouse).",
)
def feature_snapshots(
    context: AssetExecutionContext, warehouse: WarehouseResource, universe: UniverseResource
) -> Output:
    sessions = partition_sessions(context)
    store = warehouse.warehouse()
    prices = read_history(store, "clean.price_history", sessions[0], sessions[-1], LOOKBACK_SESSIONS)
    mentions = read_history(store, "features.ticker_mentions", sessions[0], sessions[-1], TRAILING_WINDOW)
    snapshots = build_feature_snapshots(mentions, prices, sessions, universe.tickers)
    history = prices["session_date"].nunique() - len(sessions) if len(prices) else 0
    warm = snapshots["atr_14"].notna().mean() if len(snapshots) else 0.0
    return Output(
        snapshots,
        metadata={
            "rows": MetadataValue.int(len(snapshots)),
            "tickers": MetadataValue.int(int(snapshots["ticker"].nunique())),
            "history_sessions_available": MetadataValue.int(int(max(history, 0))),
            "share_with_full_technicals": MetadataValue.float(round(float(warm), 4)),
            "preview": preview(snapshots),
        },
    )
