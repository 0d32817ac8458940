"""Raw assets: Reddit posts and comments, and daily price bars, as fetched (dirt included)."""

from collections.abc import Callable
from typing import TypeVar

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MetadataValue,
    Output,
    PartitionsDefinition,
    multi_asset,
)

from tft_pipeline.defs.constants import (
    INGEST_GROUP,
    SCRAPER_RETRY_POLICY,
    SINGLE_RUN,
    WAREHOUSE_POOL,
)
from tft_pipeline.defs.history import partition_sessions
from tft_pipeline.defs.io_manager import warehouse_asset, warehouse_out
from tft_pipeline.defs.metadata import counts_table, describe_each_session, preview
from tft_pipeline.defs.resources import PriceSourceResource, RedditSourceResource, UniverseResource
from tft_pipeline.sources.base import RedditFetch
from tft_pipeline.tables import (
    CORPORATE_ACTION_COLUMNS,
    PRICE_FETCH_FAILURE_COLUMNS,
    RAW_COMMENT_COLUMNS,
    RAW_POST_COLUMNS,
    RAW_PRICE_COLUMNS,
    conform,
)
from tft_pipeline.trading_calendar import (
    fetch_lag_hours,
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
    # Raw rows: a bad value becomes a null that validation quarantines, not a crashed run.
    frame = conform(frame, columns, lenient=True)
    # Scores, comment counts and edits are as of the fetch: how long after the close was that.
    frame["fetch_lag_hours"] = fetch_lag_hours(frame["fetched_at"], frame["session_date"]).to_numpy()
    return frame[frame["session_date"].isin(sessions)].reset_index(drop=True)


def _reddit_session_metadata(rows: pd.DataFrame, session: str) -> dict:
    return {
        "by_subreddit": counts_table(rows["subreddit"].value_counts(), "subreddit"),
        "preview": preview(rows),
    }


def _reddit_fetch_metadata(fetch: RedditFetch) -> dict:
    """What the fetch behind the run knew: it covered the run's whole range, so it says so."""
    return {
        "fetch_coverage_complete": MetadataValue.bool(fetch.complete),
        "fetch_coverage_notes": MetadataValue.md(
            "\n".join(f"- {n}" for n in fetch.notes) or "_complete_"
        ),
        "fetch_requests": MetadataValue.int(fetch.requests),
        # Posts seen and kept per subreddit; comments Reddit reported vs fetched per session window.
        "fetch_coverage": MetadataValue.md(
            pd.DataFrame(list(fetch.coverage)).to_markdown(index=False)
            if fetch.coverage
            else "_not reported by this source_"
        ),
    }


def _raw_reddit_asset(kind: str, columns: dict[str, str], partitions: PartitionsDefinition):
    """``raw/reddit_<kind>``: the source's ``fetch_<kind>`` over the run's Reddit windows."""

    @warehouse_asset(
        key=["raw", f"reddit_{kind}"],
        group_name=INGEST_GROUP,
        partitions=partitions,
        retry_policy=SCRAPER_RETRY_POLICY,
        description=f"Reddit {kind} as fetched, each in the session whose window contains it.",
    )
    def raw_reddit_asset(context: AssetExecutionContext, reddit: RedditSourceResource) -> Output:
        sessions = run_sessions(context)
        start, end = reddit_window_for_range(sessions[0], sessions[-1])
        fetch = _fetch_or_fail(lambda: getattr(reddit.build_source(), f"fetch_{kind}")(start, end))
        frame = _reddit_rows(fetch, columns, sessions)
        shared = describe_each_session(context, frame, _reddit_session_metadata)
        return Output(frame, metadata={**shared, **_reddit_fetch_metadata(fetch)})

    return raw_reddit_asset


RAW_PRICE_HISTORY = AssetKey(["raw", "price_history"])
RAW_PRICE_FETCH_FAILURES = AssetKey(["raw", "price_fetch_failures"])
RAW_CORPORATE_ACTIONS = AssetKey(["raw", "corporate_actions"])


def _raw_price_assets(partitions: PartitionsDefinition):
    """``raw/price_history`` and ``raw/price_fetch_failures``: one fetch, either or both kept."""

    @multi_asset(
        outs={
            "raw_price_history": warehouse_out(
                RAW_PRICE_HISTORY,
                "Daily bars as fetched, one call per ticker for the run's whole range.",
            ),
            "raw_price_fetch_failures": warehouse_out(
                RAW_PRICE_FETCH_FAILURES,
                "Tickers the price source could not fetch, one row per ticker and session.",
            ),
            "raw_corporate_actions": warehouse_out(
                RAW_CORPORATE_ACTIONS,
                "Splits and dividends as the price source reported them, per ex-date session.",
            ),
        },
        name="raw_price_history",
        group_name=INGEST_GROUP,
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        retry_policy=SCRAPER_RETRY_POLICY,
        pool=WAREHOUSE_POOL,
        # Either table can be materialized alone; the fetch is the same, only what is stored differs.
        can_subset=True,
    )
    def raw_price_history(
        context: AssetExecutionContext, prices: PriceSourceResource, universe: UniverseResource
    ):
        sessions = run_sessions(context)
        # Only the tickers in the universe on some session of the run (TFT_UNIVERSE_FILE ranges),
        # and of their bars only those of sessions they belong to.
        tickers = universe.tickers_during(sessions)
        fetch = _fetch_or_fail(lambda: prices.build_source().fetch_prices(tickers, sessions))
        selected = context.selected_asset_keys
        if RAW_PRICE_HISTORY in selected:
            bars = conform(fetch.bars, RAW_PRICE_COLUMNS, lenient=True)
            bars = bars[bars["session_date"].isin(sessions) | bars["session_date"].isna()]
            bars = bars[universe.members(bars) | bars["session_date"].isna().to_numpy()]
            # A bar without a date cannot be placed in a partition; it is kept in the first session
            # so validation quarantines it with its reason rather than losing it.
            bars.loc[bars["session_date"].isna(), "session_date"] = sessions[0]
            bars = bars.reset_index(drop=True)
            shared = describe_each_session(
                context,
                bars,
                lambda rows, _: {
                    "tickers_fetched": MetadataValue.int(int(rows["ticker"].nunique())),
                    "preview": preview(rows),
                },
                asset_key=RAW_PRICE_HISTORY,
            )
            yield Output(
                bars,
                output_name="raw_price_history",
                metadata={
                    **shared,
                    "tickers_requested": MetadataValue.int(len(tickers)),
                    "tickers_failed": MetadataValue.int(len(fetch.failures)),
                    "fetch_requests": MetadataValue.int(fetch.requests),
                },
            )
        if RAW_CORPORATE_ACTIONS in selected:
            actions = conform(fetch.actions, CORPORATE_ACTION_COLUMNS, lenient=True)
            actions = actions[actions["session_date"].isin(sessions)]
            actions = actions[universe.members(actions)].reset_index(drop=True)
            shared = describe_each_session(
                context, actions, lambda rows, _: {"preview": preview(rows)},
                asset_key=RAW_CORPORATE_ACTIONS,
            )
            yield Output(
                actions,
                output_name="raw_corporate_actions",
                metadata={**shared, "actions": MetadataValue.int(len(actions))},
            )
        if RAW_PRICE_FETCH_FAILURES in selected:
            failures = fetch.failures
            failed = (
                failures.merge(pd.DataFrame({"session_date": sessions}), how="cross")
                if len(failures)
                else failures.assign(session_date=pd.Series(dtype="datetime64[ns]"))
            )
            failed = conform(failed, PRICE_FETCH_FAILURE_COLUMNS)
            shared = describe_each_session(
                context, failed, lambda rows, _: {"preview": preview(rows)},
                asset_key=RAW_PRICE_FETCH_FAILURES,
            )
            yield Output(
                failed,
                output_name="raw_price_fetch_failures",
                metadata={
                    **shared,
                    "fetch_failed_tickers": MetadataValue.md(
                        failures[["ticker", "error_type", "message"]].to_markdown(index=False)
                        if len(failures)
                        else "_none_"
                    ),
                },
            )

    return raw_price_history


def ingest_assets(partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """The raw assets over ``partitions`` (the trading sessions from the settings' start date)."""
    return [
        _raw_reddit_asset("posts", RAW_POST_COLUMNS, partitions),
        _raw_reddit_asset("comments", RAW_COMMENT_COLUMNS, partitions),
        _raw_price_assets(partitions),
    ]
