"""Signal assets: the walk-forward baseline model's signals and the model versions behind them."""

import dataclasses
import io
import pickle
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    Output,
    PartitionsDefinition,
    multi_asset,
)

from tft_pipeline.corporate_actions import CORPORATE_ACTIONS_TABLE
from tft_pipeline.defs.constants import (
    SIGNALS_GROUP,
    SINGLE_RUN,
    WAREHOUSE_POOL,
)
from tft_pipeline.defs.history import partition_sessions, read_history
from tft_pipeline.defs.io_manager import warehouse_out
from tft_pipeline.defs.metadata import describe_each_session, preview, reliability_markdown
from tft_pipeline.defs.resources import WarehouseResource
from tft_pipeline.model.walk_forward import (
    SIGNAL_COLUMNS,
    WalkForwardConfig,
    retrain_session,
    walk_forward,
)
from tft_pipeline.settings import Settings
from tft_pipeline.tables import conform

# The defaults every deployment shares; the barrier rule's fill timing comes from the settings.
WALK_FORWARD = WalkForwardConfig()
# Training reads this many sessions of snapshots before the run: the training window plus the
# labels' horizon, so every label the model may learn from is available.
TRAINING_HISTORY_SESSIONS = (
    (WALK_FORWARD.train_window_sessions or 500) + WALK_FORWARD.rule.horizon + 20
)
NO_MODEL_YET = (
    f"no model version yet: the walk-forward needs at least {WALK_FORWARD.min_train_rows} labelled "
    "rows from earlier sessions before it scores a session"
)

TRADING_SIGNALS = AssetKey(["signals", "trading_signals"])
MODEL_VERSIONS = AssetKey(["signals", "model_versions"])
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
    "holdout_brier_skill": "float64",  # 1 - Brier / Brier of the base rate known before the holdout
    "has_skill": "bool",  # AUC > 0.5 and Brier skill > 0: otherwise no signal of it is tradable
    "holdout_reliability": "object",  # JSON: [{band, count, mean_confidence, hit_rate}, ...]
    "artifact": "object",
}


def walk_forward_config(settings: Settings) -> WalkForwardConfig:
    """The walk-forward with labels that fill the way the paper portfolio fills (TFT_FILL_AT)."""
    rule = dataclasses.replace(WALK_FORWARD.rule, entry_at=str(settings.fill_at.value))
    return dataclasses.replace(WALK_FORWARD, rule=rule)


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
                "session_date": session,
                "model": trained.name,
                "model_version": trained.version,
                "trained_as_of": trained.as_of,
                "train_start": trained.train_start,
                "train_end": trained.train_end,
                "n_train": metrics.n_train,
                "n_holdout": metrics.n_holdout,
                "holdout_auc": metrics.auc,
                "holdout_brier": metrics.brier,
                "holdout_hit_rate": metrics.hit_rate,
                # Relative to the warehouse's folder, so a copied or moved warehouse still finds it.
                "holdout_base_rate": metrics.base_rate,
                "holdout_brier_skill": metrics.brier_skill,
                "has_skill": metrics.has_skill,
                "holdout_reliability": metrics.reliability_frame().to_json(orient="records"),
                "artifact": f"models/{path.name}",
            }
        )
    return conform(pd.DataFrame(rows), MODEL_VERSION_COLUMNS)


def _signal_assets(partitions: PartitionsDefinition, config: WalkForwardConfig) -> AssetsDefinition:
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
        deps=[
            ["features", "feature_snapshots"],
            ["clean", "price_history"],
            ["clean", "corporate_actions"],
        ],
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
        snapshots = read_history(
            store, "features.feature_snapshots", first, last, TRAINING_HISTORY_SESSIONS
        )
        prices = read_history(store, "clean.price_history", first, last, TRAINING_HISTORY_SESSIONS)
        # Labels read the bars after each session in its units (splits between them applied).
        actions = read_history(
            store, CORPORATE_ACTIONS_TABLE, first, last, TRAINING_HISTORY_SESSIONS
        )
        result = walk_forward(snapshots, prices, sessions, config=config, actions=actions)
        selected = context.selected_asset_keys
        if TRADING_SIGNALS in selected:
            signals = conform(result.signals, SIGNAL_COLUMNS)
            shared = describe_each_session(
                context,
                signals,
                lambda rows, _: (
                    {
                        "mean_confidence": MetadataValue.float(
                            round(float(rows["confidence"].mean()), 4)
                        ),
                        "max_confidence": MetadataValue.float(
                            round(float(rows["confidence"].max()), 4)
                        ),
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
                reliability = pd.read_json(
                    io.StringIO(row["holdout_reliability"]), orient="records"
                )
                return {
                    "model_version": MetadataValue.text(str(row["model_version"])),
                    "has_skill": MetadataValue.bool(bool(row["has_skill"])),
                    "holdout_auc": MetadataValue.float(round(float(row["holdout_auc"]), 4)),
                    "holdout_brier_skill": MetadataValue.float(
                        round(float(row["holdout_brier_skill"]), 4)
                    ),
                    "holdout_reliability": reliability_markdown(reliability),
                    "holdout_brier": MetadataValue.float(round(float(row["holdout_brier"]), 4)),
                    "holdout_hit_rate": MetadataValue.float(
                        round(float(row["holdout_hit_rate"]), 4)
                    ),
                    "n_train": MetadataValue.int(int(row["n_train"])),
                }

            shared = describe_each_session(
                context, versions, describe_version, asset_key=MODEL_VERSIONS
            )
            yield Output(
                versions,
                output_name="model_versions",
                metadata={**shared, "models_trained_in_run": MetadataValue.int(len(result.models))},
            )

    return baseline_signals


def signal_assets(partitions: PartitionsDefinition, settings: Settings) -> list[AssetsDefinition]:
    """The walk-forward model's signals and its versions over ``partitions``."""
    return [_signal_assets(partitions, walk_forward_config(settings))]
