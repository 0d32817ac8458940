"""Trading assets: the risk manager's verdicts on the model's signals, booked session by session
into the paper portfolio (equity and position book)."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Failure,
    MetadataValue,
    Output,
    PartitionsDefinition,
    multi_asset,
)

from tft_pipeline.defs.assets.signals import CLEAN_PRICE_HISTORY, TRADING_SIGNALS
from tft_pipeline.defs.constants import PORTFOLIO_GROUP, SIGNALS_GROUP, SINGLE_RUN, WAREHOUSE_POOL
from tft_pipeline.defs.history import partition_sessions, read_history
from tft_pipeline.defs.io_manager import warehouse_out
from tft_pipeline.defs.metadata import counts_table, describe_each_session, preview
from tft_pipeline.defs.resources import WarehouseResource
from tft_pipeline.model.walk_forward import SIGNAL_COLUMNS
from tft_pipeline.paper_trading import BOOK_COLUMNS, state_after, trade_sessions
from tft_pipeline.portfolio import EQUITY_COLUMNS, PortfolioConfig
from tft_pipeline.risk import RiskManager
from tft_pipeline.settings import Settings
from tft_pipeline.tables import conform
from tft_pipeline.trading_calendar import previous_session

# Closes before the range mark the positions still open (a ticker may miss a bar or two).
MARK_HISTORY_SESSIONS = 20

RISK_DECISIONS = AssetKey(["signals", "risk_decisions"])
RISK_FILTERED_SIGNALS = AssetKey(["signals", "risk_filtered_signals"])
PORTFOLIO_EQUITY = AssetKey(["portfolio", "equity"])
POSITION_BOOK = AssetKey(["portfolio", "position_book"])

DECISION_COLUMNS = {
    **SIGNAL_COLUMNS,
    "accepted": "bool",
    "reasons": "object",
    "messages": "object",
    "shares": "int64",
    "position_value": "float64",
    "risk_dollars": "float64",
    "reward_risk": "float64",
}


def read_previous_state(store, first: pd.Timestamp):
    """The paper portfolio after the session before ``first`` (None: nothing booked before it)."""
    before = previous_session(first)
    if not store.table_exists("portfolio.equity"):
        return None
    equity = store.query(
        "SELECT * FROM portfolio.equity WHERE session_date <= ?::DATE "
        "ORDER BY session_date DESC LIMIT 1",
        [before.date()],
    )
    if equity.empty:
        return None
    booked = pd.Timestamp(equity["session_date"].iloc[0])
    if booked != before:
        raise Failure(
            description=(
                f"the paper portfolio was last booked on {booked.date()}, but {first.date()} "
                f"needs the state after {before.date()}: materialize the sessions after "
                f"{booked.date()} up to {before.date()} first (the book carries over from one "
                "session to the next)"
            ),
            allow_retries=False,
        )
    book = (
        store.read_sessions("portfolio.position_book", before, before)
        if store.table_exists("portfolio.position_book")
        else conform(pd.DataFrame(), BOOK_COLUMNS)
    )
    return state_after(book, equity)


def _risk_assets(partitions: PartitionsDefinition, settings: Settings) -> AssetsDefinition:
    limits = settings.risk_limits
    portfolio_config = PortfolioConfig(
        initial_equity=settings.initial_equity,
        commission_bps=settings.commission_bps,
        slippage_bps=settings.slippage_bps,
    )

    @multi_asset(
        ins={"trading_signals": AssetIn(key=TRADING_SIGNALS)},
        outs={
            "risk_decisions": warehouse_out(
                RISK_DECISIONS,
                "Every signal with the risk manager's verdict: accepted, reasons, "
                "shares, position value, risk dollars, reward/risk.",
                group_name=SIGNALS_GROUP,
            ),
            "risk_filtered_signals": warehouse_out(
                RISK_FILTERED_SIGNALS,
                "The accepted signals only, sized.",
                group_name=SIGNALS_GROUP,
            ),
            "portfolio_equity": warehouse_out(
                PORTFOLIO_EQUITY,
                "Paper portfolio equity at each session's close, with cash, peak and "
                "drawdown.",
                group_name=PORTFOLIO_GROUP,
            ),
            "position_book": warehouse_out(
                POSITION_BOOK,
                "Each session's book: the paper positions open at its close, and those "
                "closed during it with their exits. The next session starts from it.",
                group_name=PORTFOLIO_GROUP,
            ),
        },
        deps=[CLEAN_PRICE_HISTORY],
        name="risk_checked_signals",
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        can_subset=True,
    )
    def risk_checked_signals(
        context: AssetExecutionContext, trading_signals: pd.DataFrame, warehouse: WarehouseResource
    ):
        """The gatekeeper: session by session, against the paper portfolio after the session before.

        The range starts from ``portfolio.equity`` and ``portfolio.position_book`` of the session
        before it, read from the warehouse. That dependency on the asset's own previous partition
        is not declared to Dagster: 1.13 backfills a self-dependent multi-asset apart from its
        upstream, in several runs (seen: three runs of this step for one range, one of them past
        the range's end), which breaks one run per range. A missing previous session fails the
        step and names the sessions to materialize first.
        """
        sessions = partition_sessions(context)
        store = warehouse.warehouse()
        previous = read_previous_state(store, sessions[0])
        prices = read_history(store, "clean.price_history", sessions[0], sessions[-1], MARK_HISTORY_SESSIONS)
        manager = RiskManager(limits)
        result = trade_sessions(trading_signals, previous, prices, sessions, manager, portfolio_config)
        decisions = conform(result.decisions, DECISION_COLUMNS)
        selected = context.selected_asset_keys

        def describe_decisions(rows: pd.DataFrame, _: str) -> dict:
            rejected = rows.loc[~rows["accepted"], "reasons"]
            reasons = rejected.str.split(";").explode().value_counts() if len(rejected) else pd.Series(dtype="int64")
            return {
                "evaluated": MetadataValue.int(len(rows)),
                "accepted": MetadataValue.int(int(rows["accepted"].sum())),
                "acceptance_rate": MetadataValue.float(
                    round(float(rows["accepted"].mean()), 4) if len(rows) else 0.0
                ),
                "rejections_by_reason": counts_table(reasons, "reason", "signals"),
            }

        if PORTFOLIO_EQUITY in selected:
            equity = conform(result.equity, EQUITY_COLUMNS)

            def describe_equity(rows: pd.DataFrame, _: str) -> dict:
                if rows.empty:
                    return {}
                row = rows.iloc[-1]
                return {
                    "equity": MetadataValue.float(round(float(row["equity"]), 2)),
                    "cash": MetadataValue.float(round(float(row["cash"]), 2)),
                    "peak_equity": MetadataValue.float(round(float(row["peak_equity"]), 2)),
                    "drawdown": MetadataValue.float(round(float(row["drawdown"]), 4)),
                    "open_positions": MetadataValue.int(int(row["open_positions"])),
                }

            shared = describe_each_session(context, equity, describe_equity, asset_key=PORTFOLIO_EQUITY)
            yield Output(
                equity,
                output_name="portfolio_equity",
                metadata={**shared, "initial_equity": MetadataValue.float(portfolio_config.initial_equity)},
            )
        if POSITION_BOOK in selected:
            book = conform(result.book, BOOK_COLUMNS)
            shared = describe_each_session(
                context,
                book,
                lambda rows, _: {
                    "open_at_close": MetadataValue.int(int(rows["closed_on"].isna().sum())),
                    "closed_during_session": MetadataValue.int(int(rows["closed_on"].notna().sum())),
                    "preview": preview(rows),
                },
                asset_key=POSITION_BOOK,
            )
            yield Output(book, output_name="position_book", metadata=shared)
        if RISK_DECISIONS in selected:
            shared = describe_each_session(context, decisions, describe_decisions, asset_key=RISK_DECISIONS)
            yield Output(
                decisions,
                output_name="risk_decisions",
                metadata={**shared, "limits": MetadataValue.json(limits.model_dump())},
            )
        if RISK_FILTERED_SIGNALS in selected:
            accepted = decisions[decisions["accepted"]].reset_index(drop=True)
            shared = describe_each_session(
                context, accepted, lambda rows, _: {"preview": preview(rows)},
                asset_key=RISK_FILTERED_SIGNALS,
            )
            yield Output(accepted, output_name="risk_filtered_signals", metadata=shared)

    return risk_checked_signals


def trading_assets(partitions: PartitionsDefinition, settings: Settings) -> list[AssetsDefinition]:
    """The risk-checked, booked decisions over ``partitions``."""
    return [_risk_assets(partitions, settings)]
