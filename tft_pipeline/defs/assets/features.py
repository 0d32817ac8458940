"""Feature assets: ticker mentions with sentiment, and point-in-time feature snapshots."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    MetadataValue,
    Output,
    PartitionsDefinition,
)

from tft_pipeline.corporate_actions import CORPORATE_ACTIONS_TABLE
from tft_pipeline.defs.constants import FEATURES_GROUP
from tft_pipeline.defs.history import partition_sessions, read_history
from tft_pipeline.defs.io_manager import warehouse_asset
from tft_pipeline.defs.metadata import counts_table, describe_each_session, preview
from tft_pipeline.defs.resources import UniverseResource, WarehouseResource
from tft_pipeline.features import (
    LOOKBACK_SESSIONS,
    TRAILING_WINDOW,
    build_feature_snapshots,
    extract_ticker_mentions,
)
from tft_pipeline.features.mentions import TICKER_MENTION_COLUMNS
from tft_pipeline.tables import conform


def feature_assets(partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """Ticker mentions and feature snapshots over ``partitions``."""

    @warehouse_asset(
        key=["features", "ticker_mentions"],
        ins={
            "clean_reddit_posts": AssetIn(key=["clean", "reddit_posts"]),
            "clean_reddit_comments": AssetIn(key=["clean", "reddit_comments"]),
        },
        group_name=FEATURES_GROUP,
        partitions=partitions,
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
        scanned = pd.concat(
            [clean_reddit_posts[["session_date"]], clean_reddit_comments[["session_date"]]]
        )
        scanned_per_session = scanned.groupby(scanned["session_date"].dt.strftime("%Y-%m-%d")).size()

        def describe(rows: pd.DataFrame, session: str) -> dict:
            return {
                "sources_with_a_mention": MetadataValue.int(int(rows["source_id"].nunique())),
                "sources_scanned": MetadataValue.int(int(scanned_per_session.get(session, 0))),
                "mean_sentiment": MetadataValue.float(
                    round(float(rows["sentiment"].mean()), 4) if len(rows) else 0.0
                ),
                "top_tickers": counts_table(rows["ticker"].value_counts().head(10), "ticker", "mentions"),
                "by_kind": counts_table(rows["mention_kind"].value_counts(), "kind", "mentions"),
                "preview": preview(rows),
            }

        return Output(mentions, metadata=describe_each_session(context, mentions, describe))


    @warehouse_asset(
        key=["features", "feature_snapshots"],
        deps=[
            ["clean", "price_history"],
            ["clean", "corporate_actions"],
            ["features", "ticker_mentions"],
        ],
        group_name=FEATURES_GROUP,
        partitions=partitions,
        description=f"One row per (ticker, session): mentions, sentiment, mention momentum and price "
        f"technicals, built only from data known at that session's close (reads {LOOKBACK_SESSIONS} "
        "sessions of history from the warehouse); prices as traded, adjusted for splits and "
        "dividends with clean/corporate_actions.",
    )
    def feature_snapshots(
        context: AssetExecutionContext, warehouse: WarehouseResource, universe: UniverseResource
    ) -> Output:
        sessions = partition_sessions(context)
        store = warehouse.warehouse()
        prices = read_history(store, "clean.price_history", sessions[0], sessions[-1], LOOKBACK_SESSIONS)
        actions = read_history(
            store, CORPORATE_ACTIONS_TABLE, sessions[0], sessions[-1], LOOKBACK_SESSIONS
        )
        mentions = read_history(store, "features.ticker_mentions", sessions[0], sessions[-1], TRAILING_WINDOW)
        snapshots = build_feature_snapshots(
            mentions, prices, sessions, universe.tickers, actions=actions
        )
        history = prices["session_date"].nunique() - len(sessions) if len(prices) else 0
        shared = describe_each_session(
            context,
            snapshots,
            lambda rows, _: {
                "tickers": MetadataValue.int(int(rows["ticker"].nunique())),
                "share_with_full_technicals": MetadataValue.float(
                    round(float(rows["atr_14"].notna().mean()), 4) if len(rows) else 0.0
                ),
                "preview": preview(rows),
            },
        )
        return Output(
            snapshots,
            metadata={
                **shared,
                "history_sessions_before_the_run": MetadataValue.int(int(max(history, 0))),
            },
        )

    return [ticker_mentions, feature_snapshots]
