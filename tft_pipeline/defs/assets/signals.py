"""Signal assets: the walk-forward baseline model's signals, and the risk manager's verdicts."""

import pickle
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    Config,
    MetadataValue,
    Output,
    multi_asset,
)
from pydantic import Field

from tft_pipeline.defs.constants import (
    PORTFOLIO_GROUP,
    SESSION_PARTITIONS,
    SIGNALS_GROUP,
    SINGLE_RUN,
    WAREHOUSE_POOL,
)
from tft_pipeline.defs.history import partition_sessions, read_history
from tft_pipeline.defs.metadata import counts_table, preview
from tft_pipeline.defs.resources import WarehouseResource
from tft_pipeline.model.walk_forward import (
    SIGNAL_COLUMNS,
    WalkForwardConfig,
    retrain_session,
    walk_forward,
)
from tft_pipeline.paper_trading import trade_sessions
from tft_pipeline.portfolio import EQUITY_COLUMNS, PortfolioConfig
from tft_pipeline.risk import RiskLimits, RiskManager
from tft_pipeline.tables import conform

WALK_FORWARD = WalkForwardConfig()
# Training reads this many sessions of snapshots before the run: the training window plus the
# labels' horizon, so every label the model may learn from is available.
TRAINING_HISTORY_SESSIONS = (WALK_FORWARD.train_window_sessions or 500) + WALK_FORWARD.rule.horizon + 20

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


@multi_asset(
    outs={
        "trading_signals": AssetOut(
            key=["signals", "trading_signals"],
            io_manager_key="warehouse_io_manager",
            description="One long signal per (ticker, session, model): entry at the close, stop "
            "1 ATR below, target 2 ATR above, confidence = P(target before stop).",
        ),
        "model_versions": AssetOut(
            key=["signals", "model_versions"],
            io_manager_key="warehouse_io_manager",
            description="Which model version scored each session, with its out-of-sample metrics "
            "and the path of its pickled artifact.",
        ),
    },
    deps=[["features", "feature_snapshots"], ["clean", "price_history"]],
    group_name=SIGNALS_GROUP,
    partitions_def=SESSION_PARTITIONS,
    backfill_policy=SINGLE_RUN,
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def baseline_signals(context: AssetExecutionContext, warehouse: WarehouseResource):
    """Walk-forward: each session is scored by a model trained only on labels known before it."""
    sessions = partition_sessions(context)
    store = warehouse.warehouse()
    snapshots = read_history(store, "features.feature_snapshots", sessions[0], sessions[-1], TRAINING_HISTORY_SESSIONS)
    prices = read_history(store, "clean.price_history", sessions[0], sessions[-1], TRAINING_HISTORY_SESSIONS)
    result = walk_forward(snapshots, prices, sessions, config=WALK_FORWARD)
    signals = conform(result.signals, SIGNAL_COLUMNS)

    artifacts = Path(warehouse.path).parent / "models"
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
    versions = conform(pd.DataFrame(rows), MODEL_VERSION_COLUMNS)
    unscored = len(sessions) - int(signals["session_date"].nunique())
    yield Output(
        signals,
        output_name="trading_signals",
        metadata={
            "signals": MetadataValue.int(len(signals)),
            "sessions_without_a_model": MetadataValue.int(unscored),
            "mean_confidence": MetadataValue.float(float(signals["confidence"].mean()) if len(signals) else 0.0),
            "max_confidence": MetadataValue.float(float(signals["confidence"].max()) if len(signals) else 0.0),
            "preview": preview(signals.sort_values("confidence", ascending=False)),
        },
    )
    latest = versions.iloc[-1] if len(versions) else None
    yield Output(
        versions,
        output_name="model_versions",
        metadata={
            "models_trained": MetadataValue.int(len(result.models)),
            "latest_version": MetadataValue.text(str(latest["model_version"]) if latest is not None else "none"),
            "latest_holdout_auc": MetadataValue.float(float(latest["holdout_auc"]) if latest is not None else float("nan")),
            "latest_holdout_hit_rate": MetadataValue.float(float(latest["holdout_hit_rate"]) if latest is not None else float("nan")),
            "latest_n_train": MetadataValue.int(int(latest["n_train"]) if latest is not None else 0),
        },
    )


class RiskConfig(Config):
    """Run-config overrides of the risk limits (on top of ``TFT_RISK_*`` and the seed's defaults)."""

    min_confidence: float | None = Field(default=None, description="minimum confidence (0..1)")
    min_reward_risk: float | None = Field(default=None, description="minimum reward/risk")
    risk_per_trade: float | None = Field(default=None, description="risk budget per trade, share of value")
    max_position_fraction: float | None = Field(default=None, description="largest position, share of value")
    max_positions: int | None = Field(default=None, description="most open positions")
    max_drawdown: float | None = Field(default=None, description="drawdown at which trading stops")
    initial_equity: float = Field(default=100_000.0, description="paper portfolio's starting cash")


@multi_asset(
    ins={"trading_signals": AssetIn(key=["signals", "trading_signals"])},
    outs={
        "risk_decisions": AssetOut(
            key=["signals", "risk_decisions"],
            io_manager_key="warehouse_io_manager",
            group_name=SIGNALS_GROUP,
            description="Every signal with the risk manager's verdict: accepted, reasons, shares, "
            "position value, risk dollars, reward/risk.",
        ),
        "risk_filtered_signals": AssetOut(
            key=["signals", "risk_filtered_signals"],
            io_manager_key="warehouse_io_manager",
            group_name=SIGNALS_GROUP,
            description="The accepted signals only, sized.",
        ),
        "portfolio_equity": AssetOut(
            key=["portfolio", "equity"],
            io_manager_key="warehouse_io_manager",
            group_name=PORTFOLIO_GROUP,
            description="Paper portfolio equity at each session's close, with peak and drawdown.",
        ),
    },
    internal_asset_deps={
        "risk_decisions": {AssetKey(["signals", "trading_signals"])},
        "risk_filtered_signals": {AssetKey(["signals", "trading_signals"])},
        "portfolio_equity": {AssetKey(["signals", "trading_signals"]), AssetKey(["clean", "price_history"])},
    },
    deps=[["clean", "price_history"]],
    partitions_def=SESSION_PARTITIONS,
    backfill_policy=SINGLE_RUN,
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def risk_checked_signals(
    context: AssetExecutionContext, config: RiskConfig, trading_signals: pd.DataFrame, warehouse: WarehouseResource
):
    """The gatekeeper: session by session, against the paper portfolio's state after the session before."""
    from tft_pipeline.settings import load_risk_settings

    sessions = partition_sessions(context)
    overrides = {**load_risk_settings().overrides(), **config.model_dump(exclude_none=True)}
    initial_equity = overrides.pop("initial_equity")
    limits = RiskLimits(**overrides)
    store = warehouse.warehouse()
    accepted_before = (
        store.query(
            "SELECT * FROM signals.risk_filtered_signals WHERE session_date < ?::DATE",
            [sessions[0].date()],
        )
        if store.table_exists("signals.risk_filtered_signals")
        else pd.DataFrame(columns=list(DECISION_COLUMNS))
    )
    accepted_before["session_date"] = pd.to_datetime(accepted_before["session_date"])
    first_needed = accepted_before["session_date"].min() if len(accepted_before) else sessions[0]
    prices = store.read_sessions("clean.price_history", min(first_needed, sessions[0]) - pd.Timedelta(days=7), sessions[-1])
    prices["session_date"] = pd.to_datetime(prices["session_date"]).astype("datetime64[ns]")
    trading_signals["session_date"] = pd.to_datetime(trading_signals["session_date"]).astype("datetime64[ns]")

    manager = RiskManager(limits)
    result = trade_sessions(
        trading_signals, accepted_before, prices, sessions, manager,
        PortfolioConfig(initial_equity=initial_equity),
    )
    decisions = conform(result.decisions, DECISION_COLUMNS) if len(result.decisions) else conform(pd.DataFrame(), DECISION_COLUMNS)
    accepted = decisions[decisions["accepted"]].reset_index(drop=True)
    stats = manager.stats
    reasons = (
        decisions.loc[~decisions["accepted"], "reasons"].str.split(";").explode().value_counts()
        if (~decisions["accepted"]).any() else pd.Series(dtype="int64")
    )
    yield Output(
        decisions,
        output_name="risk_decisions",
        metadata={
            "evaluated": MetadataValue.int(int(stats.evaluated)),
            "accepted": MetadataValue.int(int(stats.accepted)),
            "acceptance_rate": MetadataValue.float(round(float(stats.acceptance_rate), 4)),
            "rejections_by_reason": counts_table(reasons, "reason", "signals"),
            "limits": MetadataValue.json(limits.model_dump()),
        },
    )
    yield Output(
        accepted,
        output_name="risk_filtered_signals",
        metadata={"accepted": MetadataValue.int(len(accepted)), "preview": preview(accepted)},
    )
    equity = conform(result.equity, EQUITY_COLUMNS)
    last = equity.iloc[-1]
    yield Output(
        equity,
        output_name="portfolio_equity",
        metadata={
            "equity": MetadataValue.float(round(float(last["equity"]), 2)),
            "peak_equity": MetadataValue.float(round(float(last["peak_equity"]), 2)),
            "drawdown": MetadataValue.float(round(float(last["drawdown"]), 4)),
            "open_positions": MetadataValue.int(int(last["open_positions"])),
        },
    )
