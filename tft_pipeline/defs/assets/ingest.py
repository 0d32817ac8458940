"""Raw assets: Reddit posts and comments, and daily price bars, as fetched (dirt included)."""

from collections.abc import Callable
from typing import TypeVar

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetOut,
    Failure,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)

from tft_pipeline.defs.constants import (
    INGEST_GROUP,
    SCRAPER_RETRY_POLICY,
    SESSION_PARTITIONS,
    SINGLE_RUN,
    WAREHOUSE_POOL,
)
from tft_pipeline.defs.history import partition_sessions
from tft_pipeline.defs.metadata import counts_table, preview
from tft_pipeline.defs.resources import PriceSourceResource, RedditSourceResource, UniverseResource
from tft_pipeline.sources.base import RedditFetch
from tft_pipeline.tables import (
    PRICE_FETCH_FAILURE_COLUMNS,
    RAW_COMMENT_COLUMNS,
    RAW_POST_COLUMNS,
    RAW_PRICE_COLUMNS,
    conform,
)
from tft_pipeline.trading_calendar import (
    reddit_window_for_range,
    session_close,
    session_of_timestamps,
)

T = TypeVar("T")


def run_sessions(context: AssetExecutionContext) -> pd.DatetimeIndex:
    """The sessions this run materializes (one, or a backfill's range), oldest first."""
    sessions = partition_sessions(context)
    last_close = session_close(sessions[-1])
    if last_close > pd.Timestamp.now(tz="UTC"):
        raise Failure(
            description=(
                f"session {sessions[-1].date()} has not closed yet (close at {last_close} UTC): "
                "its data is incomplete; materialize it after the close"
            ),
            allow_retries=False,
        )
    return sessions


def _source_failure(error: Exception, *, permanent: bool) -> Failure:
    """The source's own message (it never holds credentials) and what it knows, as a Failure."""
    facts = {
        "http_status": getattr(error, "status", None),
        "subreddit": getattr(error, "subreddit", None),
        "attempts": getattr(error, "attempts", None) or None,
        "failed_tickers": ", ".join(getattr(error, "failed_tickers", ())) or None,
    }
    metadata = {"error_type": type(error).__name__, "retryable": not permanent}
    metadata.update({key: value for key, value in facts.items() if value is not None})
    return Failure(description=str(error), metadata=metadata, allow_retries=not permanent)


def _fetch_or_fail(fetch: Callable[[], T]) -> T:
    """Call a source; its errors become Failures that Dagster retries only when they are transient.

    A source error says whether it is permanent (bad credentials, a private subreddit, unknown
    tickers): those fail the step once, with no Dagster retry. Transient ones (the source's own
    retries exhausted on 5xx, 429 or the network) are retried by ``SCRAPER_RETRY_POLICY``. Either
    way the UI shows the source's readable message and its facts, not a bare traceback.
    ``fetch`` builds the source too: building one can fail permanently (praw not configured).
    """
    try:
        return fetch()
    except Exception as error:
        if not hasattr(error, "permanent"):
            raise
        raise _source_failure(error, permanent=bool(error.permanent)) from error


def _reddit_rows(fetch: RedditFetch, columns: dict[str, str], sessions: pd.DatetimeIndex) -> pd.DataFrame:
    frame = fetch.frame.copy()
    # The window rule decides the session, whatever the source says.
    frame["session_date"] = session_of_timestamps(
        pd.to_datetime(frame["created_utc"], utc=True)
    ).to_numpy() if len(frame) else pd.Series(dtype="datetime64[ns]")
    frame = conform(frame, columns)
    return frame[frame["session_date"].isin(sessions)].reset_index(drop=True)


def _reddit_metadata(frame: pd.DataFrame, fetch: RedditFetch, sessions: pd.DatetimeIndex) -> dict:
    per_session = frame.groupby("session_date").size()
    return {
        "rows": MetadataValue.int(len(frame)),
        "sessions": MetadataValue.int(len(sessions)),
        "rows_per_session_min": MetadataValue.int(int(per_session.min()) if len(per_session) else 0),
        "rows_per_session_max": MetadataValue.int(int(per_session.max()) if len(per_session) else 0),
        "by_subreddit": counts_table(frame["subreddit"].value_counts(), "subreddit"),
        "coverage_complete": MetadataValue.bool(fetch.complete),
        "coverage_notes": MetadataValue.md("\n".join(f"- {n}" for n in fetch.notes) or "_complete_"),
        "requests": MetadataValue.int(fetch.requests),
        "preview": preview(frame),
    }


def _raw_reddit_asset(kind: str, columns: dict[str, str]):
    """``raw/reddit_<kind>``: the source's ``fetch_<kind>`` over the run's Reddit windows."""

    @asset(
        key=["raw", f"reddit_{kind}"],
        group_name=INGEST_GROUP,
        partitions_def=SESSION_PARTITIONS,
        backfill_policy=SINGLE_RUN,
        retry_policy=SCRAPER_RETRY_POLICY,
        pool=WAREHOUSE_POOL,
        io_manager_key="warehouse_io_manager",
        kinds={"python", "duckdb"},
        description=f"Reddit {kind} as fetched, each in the session whose window contains it.",
    )
    def raw_reddit_asset(context: AssetExecutionContext, reddit: RedditSourceResource) -> Output:
        sessions = run_sessions(context)
        start, end = reddit_window_for_range(sessions[0], sessions[-1])
        fetch = _fetch_or_fail(lambda: getattr(reddit.build_source(), f"fetch_{kind}")(start, end))
        frame = _reddit_rows(fetch, columns, sessions)
        return Output(frame, metadata=_reddit_metadata(frame, fetch, sessions))

    return raw_reddit_asset


raw_reddit_posts = _raw_reddit_asset("posts", RAW_POST_COLUMNS)
raw_reddit_comments = _raw_reddit_asset("comments", RAW_COMMENT_COLUMNS)


@multi_asset(
    outs={
        "raw_price_history": AssetOut(
            key=["raw", "price_history"],
            io_manager_key="warehouse_io_manager",
            description="Daily bars as fetched, one call per ticker for the run's whole range.",
        ),
        "raw_price_fetch_failures": AssetOut(
            key=["raw", "price_fetch_failures"],
            io_manager_key="warehouse_io_manager",
            description="Tickers the price source could not fetch, one row per ticker and session.",
        ),
    },
    group_name=INGEST_GROUP,
    partitions_def=SESSION_PARTITIONS,
    backfill_policy=SINGLE_RUN,
    retry_policy=SCRAPER_RETRY_POLICY,
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def raw_price_history(
    context: AssetExecutionContext, prices: PriceSourceResource, universe: UniverseResource
):
    sessions = run_sessions(context)
    tickers = tuple(universe.tickers)
    fetch = _fetch_or_fail(lambda: prices.build_source().fetch_prices(tickers, sessions))
    bars = conform(fetch.bars, RAW_PRICE_COLUMNS)
    bars = bars[bars["session_date"].isin(sessions) | bars["session_date"].isna()]
    # A bar without a date cannot be placed in a partition; it is kept in the first session so
    # validation quarantines it with its reason rather than losing it.
    bars.loc[bars["session_date"].isna(), "session_date"] = sessions[0]
    failures = fetch.failures
    failed = (
        failures.merge(pd.DataFrame({"session_date": sessions}), how="cross")
        if len(failures)
        else failures.assign(session_date=pd.Series(dtype="datetime64[ns]"))
    )
    failed = conform(failed, PRICE_FETCH_FAILURE_COLUMNS)
    yield Output(
        bars.reset_index(drop=True),
        output_name="raw_price_history",
        metadata={
            "rows": MetadataValue.int(len(bars)),
            "tickers_requested": MetadataValue.int(len(tickers)),
            "tickers_fetched": MetadataValue.int(int(bars["ticker"].nunique())),
            "tickers_failed": MetadataValue.int(len(failures)),
            "requests": MetadataValue.int(fetch.requests),
            "preview": preview(bars),
        },
    )
    yield Output(
        failed,
        output_name="raw_price_fetch_failures",
        metadata={
            "failed_tickers": MetadataValue.md(
                failures[["ticker", "error_type", "message"]].to_markdown(index=False)
                if len(failures)
                else "_none_"
            ),
        },
    )

