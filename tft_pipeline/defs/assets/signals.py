"""Signal assets: the walk-forward model's signals and the model versions behind them.

``TFT_SIGNAL_MODEL`` picks the model: the logistic baseline (default) or the Temporal Fusion
Transformer (``tft_pipeline.model.tft``, imported only then: torch is an optional extra). With the
TFT, versions are kept under ``data/models/tft-<version>/`` (checkpoint loaded by path), a run
reuses the versions already there and warm-starts new ones from earlier ones, model_versions carries
each version's variable importance, and ``signals.signal_attention`` the attention of the accepted
signals over their past sessions.
"""

import dataclasses
import io
import json
import pickle
from pathlib import Path

import numpy as np
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
from tft_pipeline.defs.io_manager import warehouse_asset, warehouse_out
from tft_pipeline.defs.metadata import describe_each_session, png, preview, reliability_markdown
from tft_pipeline.defs.resources import WarehouseResource
from tft_pipeline.model.baseline import LogisticBaseline, SignalModel
from tft_pipeline.model.walk_forward import (
    SIGNAL_COLUMNS,
    ModelStore,
    TrainedModel,
    WalkForwardConfig,
    retrain_session,
    walk_forward,
)
from tft_pipeline.settings import Settings, SignalModelName
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
SIGNAL_ATTENTION = AssetKey(["signals", "signal_attention"])
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
    "training_seconds": "float64",  # wall time of the version's fits (holdout and final)
    "epochs": "int64",  # epochs of the final fit (0: the baseline has none)
    "warm_start_from": "object",  # the version whose weights the fit started from (None: cold)
    "checkpoint": "object",  # the TFT's weights, loaded by path (relative to the warehouse)
    "variable_importance": "object",  # TFT: JSON [{variable, importance}], mean selection weight
    # TFT: whether the network adds to the confidence; false when the fit kept its linear start
    # alone (the importance is then the linear path's, and no attention is stored).
    "network_kept": "boolean",
}

SIGNAL_ATTENTION_COLUMNS = {
    "ticker": "object",
    "session_date": "datetime64[ns]",
    "model": "object",
    "model_version": "object",
    "confidence": "float64",
    # JSON list: the attention of the decision over its encoder sessions, oldest first, ending
    # with the signal's own session; sums to 1.
    "attention": "object",
    # JSON [{session_date, weight}]: the five past sessions it attended to most.
    "top_sessions": "object",
}
ATTENTION_HISTORY_SESSIONS = 80  # the TFT's encoder (60) and the history inputs, with margin


def signal_model(settings: Settings) -> SignalModel:
    """The walk-forward model TFT_SIGNAL_MODEL names (the TFT's module, and torch, load only then)."""
    if settings.signal_model is SignalModelName.TFT:
        from tft_pipeline.model.tft import TFTSignalModel

        return TFTSignalModel()
    return LogisticBaseline()


def walk_forward_config(settings: Settings) -> WalkForwardConfig:
    """The walk-forward with labels that fill the way the paper portfolio fills (TFT_FILL_AT)."""
    rule = dataclasses.replace(WALK_FORWARD.rule, entry_at=str(settings.fill_at.value))
    return dataclasses.replace(WALK_FORWARD, rule=rule)


def _stored_paths(trained: TrainedModel, artifacts: Path) -> tuple[str, str | None]:
    """The version's pickle and checkpoint paths relative to the warehouse's folder; written here
    unless a ModelStore already holds the version."""
    folder = ModelStore(artifacts).folder(trained.name, trained.version)
    if (folder / "trained.pkl").exists():
        checkpoint = folder / "checkpoint.pt"
        return (
            f"models/{folder.name}/trained.pkl",
            f"models/{folder.name}/checkpoint.pt" if checkpoint.exists() else None,
        )
    path = artifacts / f"{trained.name}-{trained.version}.pkl"
    if not path.exists():
        path.write_bytes(pickle.dumps(trained))
    return f"models/{path.name}", None


def _importance_json(trained: TrainedModel) -> str | None:
    importance = getattr(trained.estimator, "variable_importance", None)
    if importance is None:
        return None
    return importance.round(6).to_json(orient="records")


def _model_version_rows(result, sessions: pd.DatetimeIndex, artifacts: Path) -> pd.DataFrame:
    """One row per session: the version that scored it, its metrics and its stored artifact."""
    artifacts.mkdir(parents=True, exist_ok=True)
    by_anchor = {}
    for trained in result.models:
        by_anchor[trained.as_of] = (trained, _stored_paths(trained, artifacts))
    rows = []
    for session in sessions:
        found = by_anchor.get(retrain_session(session, WALK_FORWARD.retrain_every))
        if found is None:
            continue
        trained, (artifact, checkpoint) = found
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
                "artifact": artifact,
                "training_seconds": trained.training_seconds,
                "epochs": trained.epochs,
                "warm_start_from": trained.warm_start_from,
                "checkpoint": checkpoint,
                "variable_importance": _importance_json(trained),
                "network_kept": getattr(trained.estimator, "network_kept", pd.NA),
            }
        )
    return conform(pd.DataFrame(rows), MODEL_VERSION_COLUMNS)


def _earlier_versions(store, first: pd.Timestamp, name: str, models: Path) -> list[TrainedModel]:
    """The stored versions of ``name`` trained before the run's first retrain session (the ones a
    new version may warm-start from), read by their paths in signals.model_versions."""
    if not store.table_exists("signals.model_versions"):
        return []
    versions = store.read_sessions(
        "signals.model_versions", None, first, columns=["model", "trained_as_of", "artifact"]
    )
    anchor = retrain_session(first, WALK_FORWARD.retrain_every)
    versions = versions[
        (versions["model"] == name)
        & (pd.to_datetime(versions["trained_as_of"]) < anchor)
        & versions["artifact"].fillna("").str.endswith("/trained.pkl")
    ].drop_duplicates("artifact")
    latest = versions.sort_values("trained_as_of").tail(WARM_START_CANDIDATES)
    earlier = []
    for artifact in latest["artifact"]:
        path = models.parent / artifact
        if path.exists():
            earlier.append(pickle.loads(path.read_bytes()))
    return earlier


# How many earlier versions a run loads as warm-start candidates: the parent must predate the new
# fit's validation part (100 sessions of a 500-session window), five or six retrains back.
WARM_START_CANDIDATES = 8


def _importance_chart(importance: pd.DataFrame, version: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ordered = importance.sort_values("importance")
    figure, axes = plt.subplots(figsize=(5, 3.6), dpi=80)
    axes.barh(ordered["variable"], ordered["importance"], color="#4c72b0")
    axes.set_xlabel("mean variable-selection weight")
    axes.set_title(f"TFT variable importance\n{version}", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _signal_assets(
    partitions: PartitionsDefinition, config: WalkForwardConfig, model: SignalModel
) -> AssetsDefinition:
    sequence_model = bool(getattr(model, "uses_history", False))

    @multi_asset(
        outs={
            "trading_signals": warehouse_out(
                TRADING_SIGNALS,
                "One long signal per (ticker, session, model): entry at the close, stop "
                "1 ATR below, target 2 ATR above, confidence = P(target before stop).",
                kinds=frozenset({"pytorch" if sequence_model else "scikitlearn"}),
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
        models = Path(warehouse.path).parent / "models"
        # Every version is kept (content-addressed): a re-run loads it instead of fitting it
        # again, so the same run twice leaves the same rows, training_seconds included.
        store_of_models = ModelStore(models)
        earlier = _earlier_versions(store, first, model.name, models) if sequence_model else []
        result = walk_forward(
            snapshots,
            prices,
            sessions,
            model=model,
            config=config,
            actions=actions,
            earlier=earlier,
            store=store_of_models,
        )
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
            versions = _model_version_rows(result, sessions, models)
            charts: dict[str, MetadataValue] = {}

            def interpretability(row: pd.Series) -> dict:
                if not isinstance(row["variable_importance"], str):
                    return {}
                version = str(row["model_version"])
                importance = pd.DataFrame(json.loads(row["variable_importance"]))
                if version not in charts:
                    charts[version] = png(_importance_chart(importance, version), "importance")
                return {
                    "variable_importance": MetadataValue.md(
                        importance.to_markdown(index=False, floatfmt=".3f")
                    ),
                    "variable_importance_chart": charts[version],
                    "epochs": MetadataValue.int(int(row["epochs"])),
                    "network_kept": MetadataValue.bool(bool(row["network_kept"])),
                    "warm_start_from": MetadataValue.text(str(row["warm_start_from"] or "cold")),
                    "checkpoint": MetadataValue.path(str(row["checkpoint"])),
                }

            # One version scores 20 sessions: its reliability table is rendered once.
            reliability_tables: dict[str, MetadataValue] = {}

            def describe_version(rows: pd.DataFrame, _: str) -> dict:
                if rows.empty:
                    return {"model_version": MetadataValue.text(NO_MODEL_YET)}
                row = rows.iloc[0]
                text = row["holdout_reliability"]
                if text not in reliability_tables:
                    reliability_tables[text] = reliability_markdown(
                        pd.read_json(io.StringIO(text), orient="records")
                    )
                return {
                    "model": MetadataValue.text(str(row["model"])),
                    "training_seconds": MetadataValue.float(float(row["training_seconds"])),
                    **interpretability(row),
                    "model_version": MetadataValue.text(str(row["model_version"])),
                    "has_skill": MetadataValue.bool(bool(row["has_skill"])),
                    "holdout_auc": MetadataValue.float(round(float(row["holdout_auc"]), 4)),
                    "holdout_brier_skill": MetadataValue.float(
                        round(float(row["holdout_brier_skill"]), 4)
                    ),
                    "holdout_reliability": reliability_tables[text],
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


def _attention_asset(partitions: PartitionsDefinition) -> AssetsDefinition:
    @warehouse_asset(
        key=list(SIGNAL_ATTENTION.path),
        deps=[
            ["signals", "risk_filtered_signals"],
            ["signals", "model_versions"],
            ["features", "feature_snapshots"],
        ],
        group_name=SIGNALS_GROUP,
        partitions=partitions,
        kinds=frozenset({"pytorch"}),
        description="The TFT's attention over past sessions for each accepted signal: which of "
        "the encoder's sessions the decision looked at (the version's checkpoint, loaded by path).",
    )
    def signal_attention(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> pd.DataFrame:
        """For each session's accepted signals, the attention weights of the model version that
        scored them, recomputed from its checkpoint and the snapshots the decision saw."""
        sessions = partition_sessions(context)
        store = warehouse.warehouse()
        first, last = sessions[0], sessions[-1]
        accepted = (
            store.read_sessions("signals.risk_filtered_signals", first, last)
            if store.table_exists("signals.risk_filtered_signals")
            else pd.DataFrame()
        )
        versions = store.read_sessions(
            "signals.model_versions", first, last, columns=["model_version", "artifact"]
        ).drop_duplicates("model_version")
        snapshots = read_history(
            store, "features.feature_snapshots", first, last, ATTENTION_HISTORY_SESSIONS
        )
        frame = attention_rows(accepted, versions, snapshots, Path(warehouse.path).parent)

        def describe(rows: pd.DataFrame, _: str) -> dict:
            if rows.empty:
                return {"accepted_tft_signals": MetadataValue.int(0)}
            weights = np.array([json.loads(text) for text in rows["attention"]])
            lags = pd.DataFrame(
                {
                    "sessions_back": np.arange(weights.shape[1] - 1, -1, -1),
                    "mean_attention": weights.mean(axis=0),
                }
            )
            top = rows.assign(
                top_sessions=rows["top_sessions"].map(
                    lambda text: ", ".join(
                        f"{item['session_date']} ({item['weight']:.3f})"
                        for item in json.loads(text)[:3]
                    )
                )
            )[["ticker", "confidence", "top_sessions"]]
            return {
                "accepted_tft_signals": MetadataValue.int(len(rows)),
                "most_attended_sessions": MetadataValue.md(
                    top.to_markdown(index=False, floatfmt=".3f")
                ),
                "mean_attention_by_lag": png(_attention_chart(lags), "attention by lag"),
            }

        shared = describe_each_session(context, frame, describe)
        context.add_output_metadata(shared)
        return conform(frame, SIGNAL_ATTENTION_COLUMNS)

    return signal_attention


def attention_rows(
    accepted: pd.DataFrame, versions: pd.DataFrame, snapshots: pd.DataFrame, folder: Path
) -> pd.DataFrame:
    """``SIGNAL_ATTENTION_COLUMNS`` rows for the accepted signals of TFT versions (``versions``:
    model_version and artifact, relative to the warehouse ``folder``)."""
    if accepted.empty or snapshots.empty:
        return pd.DataFrame(columns=list(SIGNAL_ATTENTION_COLUMNS))
    accepted = accepted[accepted["model"] == "tft"]
    artifacts = dict(zip(versions["model_version"], versions["artifact"], strict=True))
    frames = []
    for version, rows in accepted.groupby("model_version", sort=True):
        path = folder / str(artifacts.get(version, ""))
        if version not in artifacts or not path.is_file():
            continue
        trained: TrainedModel = pickle.loads(path.read_bytes())
        if not getattr(trained.estimator, "network_kept", True):
            continue  # the version is its linear path alone: its network's attention says nothing
        history = snapshots.assign(session_date=pd.to_datetime(snapshots["session_date"]))
        keyed = rows[["ticker", "session_date", "confidence"]].assign(
            session_date=lambda r: pd.to_datetime(r["session_date"])
        )
        decisions = history.merge(keyed[["ticker", "session_date"]], on=["ticker", "session_date"])
        decisions = decisions.drop_duplicates(["ticker", "session_date"], keep="last")
        weights = trained.estimator.attention(decisions, history)
        calendar = pd.DatetimeIndex(history["session_date"].unique()).sort_values()
        records = []
        for (_, decision), row_weights in zip(decisions.iterrows(), weights, strict=True):
            position = calendar.get_loc(decision["session_date"])
            dates = [
                calendar[position - lag] if position - lag >= 0 else None
                for lag in range(len(row_weights) - 1, -1, -1)
            ]
            order = np.argsort(-row_weights, kind="stable")[:5]
            records.append(
                {
                    "ticker": decision["ticker"],
                    "session_date": decision["session_date"],
                    "attention": json.dumps([round(float(w), 5) for w in row_weights]),
                    "top_sessions": json.dumps(
                        [
                            {
                                "session_date": f"{dates[i]:%Y-%m-%d}" if dates[i] else None,
                                "weight": round(float(row_weights[i]), 5),
                            }
                            for i in order
                        ]
                    ),
                }
            )
        frames.append(
            keyed.merge(pd.DataFrame(records), on=["ticker", "session_date"]).assign(
                model=trained.name, model_version=version
            )
        )
    if not frames:
        return pd.DataFrame(columns=list(SIGNAL_ATTENTION_COLUMNS))
    return pd.concat(frames, ignore_index=True).sort_values(
        ["session_date", "ticker"], ignore_index=True
    )


def _attention_chart(lags: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 2.6), dpi=80)
    axes.bar(lags["sessions_back"], lags["mean_attention"], color="#dd8452")
    axes.invert_xaxis()
    axes.set_xlabel("sessions before the signal (0 = its own session)")
    axes.set_ylabel("mean attention")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def signal_assets(partitions: PartitionsDefinition, settings: Settings) -> list[AssetsDefinition]:
    """The walk-forward model's signals and its versions over ``partitions``; with the TFT also
    the attention of its accepted signals."""
    model = signal_model(settings)
    assets = [_signal_assets(partitions, walk_forward_config(settings), model)]
    if settings.signal_model is SignalModelName.TFT:
        assets.append(_attention_asset(partitions))
    return assets
