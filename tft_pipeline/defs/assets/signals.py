"""Signal assets: the walk-forward baseline model's signals, and the risk manager's verdicts
booked into the paper portfolio."""

import pickle
from pathlib import Path

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

from tft_pipeline.defs.constants import (
    PORTFOLIO_GROUP,
    SIGNALS_GROUP,
    SINGLE_RUN,
    WAREHOUSE_POOL,
)
from tft_pipeline.defs.history import partition_sessions, read_history
from tft_pipeline.defs.io_manager import warehouse_out
from tft_pipeline.defs.metadata import counts_table, describe_each_session, preview
from tft_pipeline.defs.resources import WarehouseResource
from tft_pipeline.model.walk_forward import (
    SIGNAL_COLUMNS,
    WalkForwardConfig,
    retrain_session,
    walk_forward,
)
from tft_pipeline.paper_trading import BOOK_COLUMNS, state_after, trade_sessions
from tft_pipeline.portfolio import EQUITY_COLUMNS, PortfolioConfig
from tft_pipeline.risk import RiskManager
from tft_pipeline.settings import Settings
from tft_pipeline.tables import conform
from tft_pipeline.trading_calendar import previous_session

WALK_FORWARD = WalkForwardConfig()
# Training reads this many sessions of snapshots before the run: the training window plus the
# labels' horizon, so every label the model may learn from is available.
TRAINING_HISTORY_SESSIONS = (WALK_FORWARD.train_window_sessions or 500) + WALK_FORWARD.rule.horizon + 20
# Closes before the range mark the positions still open (a ticker may miss a bar or two).
MARK_HISTORY_SESSIONS = 20
NO_MODEL_YET = (
    f"no model version yet: the walk-forward needs at least {WALK_FORWARD.min_train_rows} labelled "
    "rows from earlier sessions before it scores a session"
)

TRADING_SIGNALS = AssetKey(["signals", "trading_signals"])
MODEL_VERSIONS = AssetKey(["signals", "model_versions"])
RISK_DECISIONS = AssetKey(["signals", "risk_decisions"])
RISK_FILTERED_SIGNALS = AssetKey(["signals", "risk_filtered_signals"])
PORTFOLIO_EQUITY = AssetKey(["portfolio", "equity"])
POSITION_BOOK = AssetKey(["portfolio", "position_book"])
CLEAN_PRICE_HISTORY = AssetKey(["clean", "price_history"])

MODEL_VERSION_COLUMNS = {
    "session_date": "datetime64[ns]",
    "model": "object",
    "model_version": "object",
    "trained_as_of": "datetime64[ns]",
    "train_start": "datetime64[ns]",
    "train_end": "datetime64[ns]",
    "n_train": "int64",
    "n_holdout": "int64",
    "holdout_auc": "float64",
    "holdout_brier": "float64",
    "holdout_hit_rate": "float64",
    "holdout_base_rate": "float64",
    "artifact": "object",
}

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


def _model_version_rows(result, sessions: pd.DatetimeIndex, artifacts: Path) -> pd.DataFrame:
    """One row per session: the version that scored it, its metrics and its pickled artifact."""
    artifacts.mkdir(parents=True, exist_ok=True)
    by_anchor = {}
    for trained in result.models:
        path = artifacts / f"{trained.name}-{trained.version}.pkl"
        if not path.exists():
            path.write_bytes(pickle.dumps(trained))
        by_anchor[trained.as_of] = (trained, path)
    rows = []
    for session in sessions:
        found = by_anchor.get(retrain_session(session, WALK_FORWARD.retrain_every))
        if found is None:
            continue
        trained, path = found
        metrics = trained.metrics
        rows.append(
            {
                "session_date": session, "model": trained.name, "model_version": trained.version,
                "trained_as_of": trained.as_of, "train_start": trained.train_start,
                "train_end": trained.train_end, "n_train": metrics.n_train,
                "n_holdout": metrics.n_holdout, "holdout_auc": metrics.auc,
                "holdout_brier": metrics.brier, "holdout_hit_rate": metrics.hit_rate,
                # Relative to the warehouse's folder, so a copied or moved warehouse still finds it.
                "holdout_base_rate": metrics.base_rate, "artifact": f"models/{path.name}",
            }
        )
    return conform(pd.DataFrame(rows), MODEL_VERSION_COLUMNS)


def _signal_assets(partitions: PartitionsDefinition) -> AssetsDefinition:
    @multi_asset(
        outs={
            "trading_signals": warehouse_out(
                TRADING_SIGNALS,
                "One long signal per (ticker, session, model): entry at the close, stop "
                "1 ATR below, target 2 ATR above, confidence = P(target before stop).",
                kinds=frozenset({"scikitlearn"}),
            ),
            "model_versions": warehouse_out(
                MODEL_VERSIONS,
                "Which model version scored each session, with its out-of-sample "
                "metrics and the path of its pickled artifact.",
            ),
        },
        name="baseline_signals",
        deps=[["features", "feature_snapshots"], ["clean", "price_history"]],
        group_name=SIGNALS_GROUP,
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        # Either table alone: the walk-forward is the same, only what is stored differs.
        can_subset=True,
    )
    def baseline_signals(context: AssetExecutionContext, warehouse: WarehouseResource):
        """Walk-forward: each session is scored by a model trained only on labels known before it."""
        sessions = partition_sessions(context)
        store = warehouse.warehouse()
        first, last = sessions[0], sessions[-1]
        snapshots = read_history(store, "features.feature_snapshots", first, last, TRAINING_HISTORY_SESSIONS)
        prices = read_history(store, "clean.price_history", first, last, TRAINING_HISTORY_SESSIONS)
        result = walk_forward(snapshots, prices, sessions, config=WALK_FORWARD)
        selected = context.selected_asset_keys
        if TRADING_SIGNALS in selected:
            signals = conform(result.signals, SIGNAL_COLUMNS)
            shared = describe_each_session(
                context,
                signals,
                lambda rows, _: (
                    {
                        "mean_confidence": MetadataValue.float(round(float(rows["confidence"].mean()), 4)),
                        "max_confidence": MetadataValue.float(round(float(rows["confidence"].max()), 4)),
                        "preview": preview(rows.sort_values("confidence", ascending=False)),
                    }
                    if len(rows)
                    else {"no_signals": MetadataValue.text(NO_MODEL_YET)}
                ),
                asset_key=TRADING_SIGNALS,
            )
            yield Output(signals, output_name="trading_signals", metadata=shared)
        if MODEL_VERSIONS in selected:
            versions = _model_version_rows(result, sessions, Path(warehouse.path).parent / "models")

            def describe_version(rows: pd.DataFrame, _: str) -> dict:
                if rows.empty:
                    return {"model_version": MetadataValue.text(NO_MODEL_YET)}
                row = rows.iloc[0]
                return {
                    "model_version": MetadataValue.text(str(row["model_version"])),
                    "holdout_auc": MetadataValue.float(round(float(row["holdout_auc"]), 4)),
                    "holdout_brier": MetadataValue.float(round(float(row["holdout_brier"]), 4)),
                    "holdout_hit_rate": MetadataValue.float(round(float(row["holdout_hit_rate"]), 4)),
                    "n_train": MetadataValue.int(int(row["n_train"])),
                }

            shared = describe_each_session(context, versions, describe_version, asset_key=MODEL_VERSIONS)
            yield Output(
                versions,
                output_name="model_versions",
                metadata={**shared, "models_trained_in_run": MetadataValue.int(len(result.models))},
            )

    return baseline_signals


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


def signal_assets(partitions: PartitionsDefinition, settings: Settings) -> list[AssetsDefinition]:
    """The model's signals and the risk-checked, booked decisions over ``partitions``."""
    return [_signal_assets(partitions), _risk_assets(partitions, settings)]
