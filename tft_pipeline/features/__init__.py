"""Features of the pipeline: ticker mentions, their sentiment and point-in-time snapshots (pure, no Dagster)."""

from tft_pipeline.features.mentions import (
    AMBIGUOUS_SYMBOLS,
    MENTION_PATTERN,
    TICKER_MENTION_COLUMNS,
    extract_ticker_mentions,
    find_mentions,
)
from tft_pipeline.features.sentiment import TRADING_LEXICON, score_sentiment
from tft_pipeline.features.snapshots import (
    FEATURE_SNAPSHOT_COLUMNS,
    LOOKBACK_SESSIONS,
    TRAILING_WINDOW,
    WILDER_PERIOD,
    WILDER_WINDOW,
    build_feature_snapshots,
    mention_features,
    price_technicals,
)

__all__ = [
    "AMBIGUOUS_SYMBOLS",
    "FEATURE_SNAPSHOT_COLUMNS",
    "LOOKBACK_SESSIONS",
    "MENTION_PATTERN",
    "TICKER_MENTION_COLUMNS",
    "TRADING_LEXICON",
    "TRAILING_WINDOW",
    "WILDER_PERIOD",
    "WILDER_WINDOW",
    "build_feature_snapshots",
    "extract_ticker_mentions",
    "find_mentions",
    "mention_features",
    "price_technicals",
    "score_sentiment",
]
