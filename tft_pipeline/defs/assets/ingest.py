"""Raw assets: Reddit posts and comments, and daily price bars, as fetched (dirt included)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DynamicOut,
    DynamicOutput,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    PartitionsDefinition,
    graph_multi_asset,
    op,
)

from tft_pipeline.defs.constants import (
    HANDOVER_IO_MANAGER_KEY,
    INGEST_GROUP,
    SCRAPER_RETRY_POLICY,
    SINGLE_RUN,
    WAREHOUSE_POOL,
    YAHOO_POOL,
)
from tft_pipeline.defs.history import partition_sessions
from tft_pipeline.defs.io_manager import WAREHOUSE_IO_MANAGER_KEY, warehouse_asset, warehouse_out
from tft_pipeline.defs.metadata import counts_table, describe_each_session, preview
from tft_pipeline.defs.resources import PriceSourceResource, RedditSourceResource, UniverseResource
from tft_pipeline.sources.base import PriceFetch, RedditFetch
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


@dataclass(frozen=True)
class PriceBatch:
    """The tickers of one price fetch step, and the universe they are a batch of."""

    number: int  # 1-based
    count: int  # batches in the run
    tickers: tuple[str, ...]
    universe_size: int

    @property
    def mapping_key(self) -> str:
        """The batch's part of its step key: ``raw_price_history.fetch_price_batch[batch_0001]``."""
        return f"batch_{self.number:04d}"


def price_batches(tickers: Sequence[str], batch_tickers: int) -> list[PriceBatch]:
    """``tickers`` (distinct, in order) cut into batches of at most ``batch_tickers``.

    Always at least one batch, empty for an empty universe, so the tables are still written (empty)
    as they were before the fan-out.
    """
    if batch_tickers < 1:
        raise ValueError(f"batch_tickers must be at least 1, got {batch_tickers}")
    distinct = tuple(dict.fromkeys(tickers))
    chunks = [distinct[i : i + batch_tickers] for i in range(0, len(distinct), batch_tickers)]
    chunks = chunks or [()]
    return [
        PriceBatch(number, len(chunks), chunk, len(distinct))
        for number, chunk in enumerate(chunks, start=1)
    ]


def merge_price_fetches(fetches: Sequence[PriceFetch]) -> PriceFetch:
    """The batches' fetches as one fetch of the whole universe (in batch order)."""
    if len(fetches) == 1:
        return fetches[0]

    def stacked(frames: list[pd.DataFrame], columns: dict[str, str]) -> pd.DataFrame:
        frames = [frame for frame in frames if len(frame)]
        if not frames:
            return conform(pd.DataFrame(), columns)
        return conform(pd.concat(frames, ignore_index=True), columns, lenient=True)

    failures = [fetch.failures for fetch in fetches]
    failure_columns = {c: str(t) for c, t in fetches[0].failures.dtypes.items()}
    nonempty_failures = [frame for frame in failures if len(frame)]
    return PriceFetch(
        bars=stacked([fetch.bars for fetch in fetches], RAW_PRICE_COLUMNS),
        failures=(
            pd.concat(nonempty_failures, ignore_index=True).astype(failure_columns)
            if nonempty_failures
            else fetches[0].failures.iloc[0:0].reset_index(drop=True)
        ),
        requests=sum(fetch.requests for fetch in fetches),
        notes=tuple(note for fetch in fetches for note in fetch.notes),
        actions=stacked([fetch.actions for fetch in fetches], CORPORATE_ACTION_COLUMNS),
        transient_failures=tuple(t for fetch in fetches for t in fetch.transient_failures),
    )


def refetched(fetch: PriceFetch, again: PriceFetch) -> PriceFetch:
    """``fetch`` with the tickers of ``again`` (asked once more) replaced by what ``again`` got."""
    asked = set(again.failures["ticker"]) | set(again.bars["ticker"])
    asked |= set(fetch.transient_failures)
    kept = PriceFetch(
        bars=fetch.bars,
        failures=fetch.failures[~fetch.failures["ticker"].isin(asked)].reset_index(drop=True),
        requests=fetch.requests,
        notes=fetch.notes,
        actions=fetch.actions,
        transient_failures=(),
    )
    return merge_price_fetches([kept, again])


def _pool_slots(instance, pool: str) -> int | None:
    """How many steps of ``pool`` may run at once on this instance: its limit, else the instance's
    default pool limit; None when unknown or unlimited."""
    try:
        slots = instance.event_log_storage.get_concurrency_info(pool).slot_count
    except Exception:  # noqa: BLE001 - a storage without pools (an in-memory instance)
        slots = 0
    if slots:
        return int(slots)
    try:
        default = instance.global_op_concurrency_default_limit
    except Exception:  # noqa: BLE001
        default = None
    return int(default) if default else None


def concurrent_price_fetches(instance, batches: int) -> int:
    """How many price fetch steps can ask Yahoo at once: the run's batches, at most the
    ``yahoo_prices`` pool's slots. Each step gets ``TFT_PRICE_RPS`` divided by this."""
    slots = _pool_slots(instance, YAHOO_POOL)
    return max(1, min(batches, slots) if slots else batches)


def _raw_price_assets(partitions: PartitionsDefinition):
    """``raw/price_history``, ``raw/price_fetch_failures`` and ``raw/corporate_actions``: one fetch
    of the universe, fanned out in ticker batches; any of the three tables can be kept alone.

    A graph: ``plan_price_batches`` cuts the run's universe into batches of
    ``TFT_PRICE_BATCH_TICKERS``; ``fetch_price_batch`` (one step per batch, in the
    ``yahoo_prices`` pool, outside the warehouse's) fetches each with its share of the rate;
    ``collect_price_batches`` merges them and judges ``TFT_PRICE_MAX_FAILED_SHARE`` on the whole
    universe (a Dagster retry of it asks again for the tickers whose failure was transient);
    ``store_price_tables`` (the warehouse pool) writes the tables. Batches are handed from step to
    step through ``HANDOVER_IO_MANAGER_KEY``. Under the Celery executor the batches run on several
    worker processes at once while the warehouse is still written by one step at a time.
    """

    @op(
        out=DynamicOut(PriceBatch, io_manager_key=HANDOVER_IO_MANAGER_KEY),
        description="Cuts the run's universe into batches of TFT_PRICE_BATCH_TICKERS tickers.",
    )
    def plan_price_batches(
        context: OpExecutionContext, prices: PriceSourceResource, universe: UniverseResource
    ):
        sessions = run_sessions(context)
        # Only the tickers in the universe on some session of the run (TFT_UNIVERSE_FILE ranges).
        batches = price_batches(universe.tickers_during(sessions), prices.batch_tickers)
        context.log.info(
            f"{batches[0].universe_size} tickers in {len(batches)} batch(es) of at most "
            f"{prices.batch_tickers}"
        )
        for batch in batches:
            yield DynamicOutput(batch, mapping_key=batch.mapping_key)

    @op(
        pool=YAHOO_POOL,
        retry_policy=SCRAPER_RETRY_POLICY,
        out=Out(PriceFetch, io_manager_key=HANDOVER_IO_MANAGER_KEY),
        description="Fetches one batch of tickers for the run's sessions (failures recorded).",
    )
    def fetch_price_batch(
        context: OpExecutionContext, batch: PriceBatch, prices: PriceSourceResource
    ) -> PriceFetch:
        sessions = partition_sessions(context)
        concurrent = concurrent_price_fetches(context.instance, batch.count)
        fetch = _fetch_or_fail(
            lambda: prices.build_source(concurrent).fetch_batch(batch.tickers, sessions)
        )
        context.add_output_metadata(
            {
                "batch": MetadataValue.text(f"{batch.number} of {batch.count}"),
                "tickers": MetadataValue.int(len(batch.tickers)),
                "tickers_failed": MetadataValue.int(len(fetch.failures)),
                "fetch_requests": MetadataValue.int(fetch.requests),
                "concurrent_fetch_steps": MetadataValue.int(concurrent),
            }
        )
        return fetch

    @op(
        pool=YAHOO_POOL,
        retry_policy=SCRAPER_RETRY_POLICY,
        out=Out(PriceFetch, io_manager_key=HANDOVER_IO_MANAGER_KEY),
        description=(
            "Merges the batches and fails past TFT_PRICE_MAX_FAILED_SHARE of the whole universe; "
            "a retry asks again for the tickers whose failure was transient."
        ),
    )
    def collect_price_batches(
        context: OpExecutionContext,
        fetches: list,
        prices: PriceSourceResource,
        universe: UniverseResource,
    ) -> PriceFetch:
        sessions = partition_sessions(context)
        universe_size = len(dict.fromkeys(universe.tickers_during(sessions)))
        fetch = merge_price_fetches(fetches)
        if context.retry_number > 0 and fetch.transient_failures:
            # The step was retried because the budget was exceeded with transient failures among
            # them: ask again for those tickers only (the batches' own steps succeeded).
            again_tickers = fetch.transient_failures
            context.log.info(
                f"retry {context.retry_number}: fetching again the {len(again_tickers)} "
                "ticker(s) whose failure was transient"
            )
            concurrent = concurrent_price_fetches(context.instance, 1)
            again = _fetch_or_fail(
                lambda: prices.build_source(concurrent).fetch_batch(again_tickers, sessions)
            )
            fetch = refetched(fetch, again)
        _fetch_or_fail(lambda: prices.build_source().check_failures(fetch, universe_size))
        return fetch

    @op(
        pool=WAREHOUSE_POOL,
        out={
            name: Out(io_manager_key=WAREHOUSE_IO_MANAGER_KEY, is_required=False)
            for name in ("raw_price_history", "raw_price_fetch_failures", "raw_corporate_actions")
        },
        description="Writes the fetched bars, failures and corporate actions to the warehouse.",
    )
    def store_price_tables(
        context: OpExecutionContext, fetch: PriceFetch, universe: UniverseResource
    ):
        sessions = partition_sessions(context)
        tickers = universe.tickers_during(sessions)
        selected = context.selected_output_names
        if "raw_price_history" in selected:
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
        if "raw_corporate_actions" in selected:
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
        if "raw_price_fetch_failures" in selected:
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

    @graph_multi_asset(
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
        # Any of the tables can be materialized alone; the fetch is the same, only what is stored differs.
        can_subset=True,
    )
    def raw_price_history():
        fetches = plan_price_batches().map(fetch_price_batch).collect()
        return store_price_tables(collect_price_batches(fetches))._asdict()

    return raw_price_history


def ingest_assets(partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """The raw assets over ``partitions`` (the trading sessions from the settings' start date)."""
    return [
        _raw_reddit_asset("posts", RAW_POST_COLUMNS, partitions),
        _raw_reddit_asset("comments", RAW_COMMENT_COLUMNS, partitions),
        _raw_price_assets(partitions),
    ]
