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

from tft_pipeline.corporate_actions import CORPORATE_ACTIONS_TABLE
from tft_pipeline.defs.assets.signals import CLEAN_PRICE_HISTORY, TRADING_SIGNALS
from tft_pipeline.defs.constants import PORTFOLIO_GROUP, SIGNALS_GROUP, SINGLE_RUN, WAREHOUSE_POOL
from tft_pipeline.defs.history import partition_sessions, read_history, sessions_back
from tft_pipeline.defs.io_manager import warehouse_out
from tft_pipeline.defs.metadata import counts_table, describe_each_session, preview
from tft_pipeline.defs.resources import WarehouseResource
from tft_pipeline.model.walk_forward import SIGNAL_COLUMNS
from tft_pipeline.paper_trading import BOOK_COLUMNS, state_after, trade_sessions
from tft_pipeline.portfolio import EQUITY_COLUMNS, NOT_FILLED, PortfolioConfig
from tft_pipeline.risk import RiskLimits, RiskManager
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
    # The model's out-of-sample figures the skill gate read (they are signal columns too; kept
    # here so the decisions hold them whatever the signals table carries).
    "model_auc": "float64",
    "model_brier_skill": "float64",
    "accepted": "bool",
    "reasons": "object",
    "messages": "object",
    "shares": "int64",
    "position_value": "float64",
    "risk_dollars": "float64",
    "reward_risk": "float64",
    # The order of judgement within the session (1 = most confident), and so of the fills.
    "rank": "int64",
}


def read_previous_state(store, first: pd.Timestamp, limits: RiskLimits | None = None):
    """The paper portfolio after the session before ``first`` (None: nothing booked before it).

    Bounded reads, whatever the history's length (see ``tft_pipeline.paper_trading``): the equity
    rows of the last ``drawdown_lookback_sessions`` sessions, the book of the session before and
    the stop-outs of the ``cooldown_sessions`` before it, and the accepted decisions of the session
    before (its orders fill at ``first``'s open).
    """
    limits = limits or RiskLimits()
    before = previous_session(first)
    if not store.table_exists("portfolio.equity"):
        return None
    equity = store.query(
        "SELECT * FROM portfolio.equity WHERE session_date <= ?::DATE "
        "ORDER BY session_date DESC LIMIT ?",
        [before.date(), limits.drawdown_lookback_sessions],
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
    # Stop-outs of the sessions before ``first`` that its cooldown still covers.
    cooldown_from = min(sessions_back(first, max(limits.cooldown_sessions - 1, 0)), before)
    book = (
        store.query(
            "SELECT * FROM portfolio.position_book WHERE session_date BETWEEN ?::DATE AND ?::DATE "
            "AND (session_date = ?::DATE OR (exit_reason = 'stop' AND closed_on = session_date))",
            [cooldown_from.date(), before.date(), before.date()],
        )
        if store.table_exists("portfolio.position_book")
        else conform(pd.DataFrame(), BOOK_COLUMNS)
    )
    return state_after(book, equity, _orders_of(store, before))


def _orders_of(store, session: pd.Timestamp) -> pd.DataFrame:
    """The accepted decisions of ``session``: its orders for the next session's open."""
    decided = (
        store.query(
            "SELECT * FROM signals.risk_decisions WHERE session_date = ?::DATE AND accepted",
            [session.date()],
        )
        if store.table_exists("signals.risk_decisions")
        else pd.DataFrame()
    )
    if decided.empty and store.table_exists("signals.trading_signals"):
        judged = store.table_exists("signals.risk_decisions") and not store.query(
            "SELECT 1 FROM signals.risk_decisions WHERE session_date = ?::DATE LIMIT 1",
            [session.date()],
        ).empty
        signalled = not store.query(
            "SELECT 1 FROM signals.trading_signals WHERE session_date = ?::DATE LIMIT 1",
            [session.date()],
        ).empty
        if signalled and not judged:
            raise Failure(
                description=(
                    f"{session.date()} has trading signals but no risk decisions, so its orders "
                    f"(filled at the next open) are unknown: materialize signals/risk_decisions "
                    f"for {session.date()} first"
                ),
                allow_retries=False,
            )
    return decided


def _risk_assets(partitions: PartitionsDefinition, settings: Settings) -> AssetsDefinition:
    limits = settings.risk_limits
    portfolio_config = PortfolioConfig(
        initial_equity=settings.initial_equity,
        commission_bps=settings.commission_bps,
        slippage_bps=settings.slippage_bps,
        fill_at=settings.fill_at.value,
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
        deps=[CLEAN_PRICE_HISTORY, AssetKey(["clean", "corporate_actions"])],
        name="risk_checked_signals",
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        can_subset=True,
    )
    def risk_checked_signals(
        context: AssetExecutionContext, trading_signals: pd.DataFrame, warehouse: WarehouseResource
    ):
        """The gatekeeper and the ledger, session by session (``tft_pipeline.portfolio``): a
        session's signals are judged at its close against the paper portfolio at that close, and
        the accepted ones fill at the next session's open (``TFT_FILL_AT``).

        The range starts from the state after the session before it, read from the warehouse in
        bounded reads (``read_previous_state``): equity rows, book rows and that session's
        accepted decisions (its orders). That dependency on the asset's own previous partition
        is not declared to Dagster: 1.13 backfills a self-dependent multi-asset apart from its
        upstream, in several runs (seen: three runs of this step for one range, one of them past
        the range's end), which breaks one run per range. A missing previous session fails the
        step and names the sessions to materialize first.
        """
        sessions = partition_sessions(context)
        store = warehouse.warehouse()
        previous = read_previous_state(store, sessions[0], limits)
        prices = read_history(store, "clean.price_history", sessions[0], sessions[-1], MARK_HISTORY_SESSIONS)
        manager = RiskManager(limits)
        # Splits roll the open positions and orders, dividends are credited on their ex-date.
        actions = read_history(
            store, CORPORATE_ACTIONS_TABLE, sessions[0], sessions[-1], MARK_HISTORY_SESSIONS
        )
        result = trade_sessions(
            trading_signals, previous, prices, sessions, manager, portfolio_config, actions=actions
        )
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
                    "window_drawdown": MetadataValue.float(round(float(row["window_drawdown"]), 4)),
                    "halted_until": MetadataValue.text(
                        "no halt" if pd.isna(row["halted_until"])
                        else f"{pd.Timestamp(row['halted_until']):%Y-%m-%d}"
                    ),
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
                    "closed_during_session": MetadataValue.int(
                        int((rows["closed_on"].notna() & (rows["exit_reason"] != NOT_FILLED)).sum())
                    ),
                    "orders_not_filled": MetadataValue.int(int((rows["exit_reason"] == NOT_FILLED).sum())),
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
