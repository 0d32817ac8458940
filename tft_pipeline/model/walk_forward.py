"""Walk-forward training and scoring: no session is scored by a model that saw its future.

The model that scores session D was trained at the retrain session R <= D, on labels known strictly
before R (``label_known_on < R``). Retrain sessions fall every ``retrain_every`` sessions of the
NYSE calendar (counted from a fixed origin, not from the requested range), so a single-run
backfill and daily runs pick the same retrain sessions and produce the same signals.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tft_pipeline.model.baseline import LogisticBaseline, SignalModel, add_history_inputs
from tft_pipeline.model.calibration import (
    RELIABILITY_COLUMNS,
    brier_skill,
    has_skill,
    reliability_table,
)
from tft_pipeline.model.labels import DEFAULT_RULE, BarrierRule, triple_barrier_labels
from tft_pipeline.trading_calendar import nyse_calendar

DIRECTION_LONG = "long"

# The columns of signals.trading_signals.
SIGNAL_COLUMNS: dict[str, str] = {
    "ticker": "object",
    "session_date": "datetime64[ns]",
    "model": "object",
    "direction": "object",
    "confidence": "float64",
    "entry": "float64",
    "stop_loss": "float64",
    "take_profit": "float64",
    "model_version": "object",
    # Out-of-sample skill of that model version on its holdout (the risk manager's skill gate).
    "model_auc": "float64",
    "model_brier_skill": "float64",
}

DEFAULT_MODEL = LogisticBaseline()


class NotEnoughTrainingData(ValueError):
    """Too few labels were known before the training session to fit a model."""


@dataclass(frozen=True)
class WalkForwardConfig:
    """How often to retrain and on what."""

    retrain_every: int = 20
    min_train_rows: int = 250
    # Only labels of the last this-many sessions before the retrain session (None: all history),
    # so the model follows regime changes and training time stays bounded.
    train_window_sessions: int | None = 500
    # The latest share of training sessions kept out of a first fit to measure it out of sample.
    holdout_fraction: float = 0.2
    rule: BarrierRule = DEFAULT_RULE

    def __post_init__(self) -> None:
        if self.retrain_every < 1:
            raise ValueError("retrain_every must be at least 1")
        if self.min_train_rows < 2:
            raise ValueError("min_train_rows must be at least 2")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError("holdout_fraction must lie strictly between 0 and 1")


@dataclass(frozen=True)
class ModelMetrics:
    """Out-of-sample quality of a fit, measured on the latest training sessions held out.

    The held-out rows are scored by a model fitted only on labels known before the holdout began.
    ``hit_rate`` is the share of target-first outcomes among the top fifth of holdout rows by
    confidence; ``base_rate`` the share among all holdout rows. ``brier_skill`` is 1 − Brier /
    Brier of always predicting the fitting part's base rate (what was known before the holdout);
    ``reliability`` the holdout's reliability table as (band, count, mean confidence, hit rate)
    rows. ``has_skill``: AUC > 0.5 and Brier skill > 0; without it no signal is tradable.
    """

    auc: float
    brier: float
    log_loss: float
    hit_rate: float
    base_rate: float
    n_train: int
    n_holdout: int
    brier_skill: float = float("nan")
    reliability: tuple[tuple[str, int, float, float], ...] = ()

    @property
    def has_skill(self) -> bool:
        return has_skill(self.auc, self.brier_skill)

    def reliability_frame(self) -> pd.DataFrame:
        """The holdout's reliability table (``RELIABILITY_COLUMNS``)."""
        return pd.DataFrame(list(self.reliability), columns=list(RELIABILITY_COLUMNS)).astype(
            RELIABILITY_COLUMNS
        )

    def as_dict(self) -> dict[str, float | int]:
        figures = dataclasses.asdict(self)
        figures.pop("reliability")
        return figures


@dataclass(frozen=True)
class TrainedModel:
    """A fitted signal model with its provenance; picklable, so it can be stored as an asset."""

    name: str
    version: str
    as_of: pd.Timestamp  # the retrain session: every training label was known before it
    train_start: pd.Timestamp  # first session_date of a training row
    train_end: pd.Timestamp  # last session_date of a training row
    last_label_known_on: pd.Timestamp  # latest label_known_on among training rows (< as_of)
    features: tuple[str, ...]
    params: Mapping[str, Any]
    metrics: ModelMetrics
    estimator: SignalModel = field(repr=False)
    # Wall time of the version's fits (holdout fit and final fit); epochs of the final fit
    # (0: a model without epochs); the version whose weights it started from (warm start).
    training_seconds: float = float("nan")
    epochs: int = 0
    warm_start_from: str | None = None

    def predict_proba(
        self, snapshots: pd.DataFrame, history: pd.DataFrame | None = None
    ) -> np.ndarray:
        """P(target before stop) for snapshot rows; a sequence model (the TFT) reads each row's
        past sessions from ``history`` (default: the rows themselves)."""
        return np.clip(_predict(self.estimator, snapshots, history), 0.0, 1.0)

    def signals(
        self,
        snapshots: pd.DataFrame,
        sessions: Iterable | None = None,
        rule: BarrierRule = DEFAULT_RULE,
    ) -> pd.DataFrame:
        """Signals (``SIGNAL_COLUMNS``) for the snapshot rows of ``sessions`` (default: all rows)
        with a usable close and ATR. Pass ``HISTORY_SESSIONS`` sessions of snapshots before the
        first scored session: the history inputs read them."""
        snapshots = _with_history(snapshots)
        usable = _has_levels(snapshots, rule)
        if sessions is not None:
            usable &= pd.DatetimeIndex(snapshots["session_date"]).isin(
                _as_sessions(sessions, snapshots)
            )
        rows = snapshots[usable]
        return signal_frame(
            rows, self.predict_proba(rows, snapshots), self.name, self.version, rule, self.metrics
        )


@dataclass(frozen=True)
class WalkForward:
    """The signals of a walk-forward run and every model trained for it, oldest first."""

    signals: pd.DataFrame
    models: tuple[TrainedModel, ...]


def _uses_history(model: SignalModel) -> bool:
    """A sequence model (the TFT) reads each row's earlier sessions: it is handed the snapshots."""
    return bool(getattr(model, "uses_history", False))


def _fit(
    model: SignalModel,
    rows: pd.DataFrame,
    labels: np.ndarray,
    history: pd.DataFrame,
    previous: SignalModel | None = None,
) -> SignalModel:
    if _uses_history(model):
        return model.fit(rows, labels, history=history, previous=previous)  # type: ignore[call-arg]
    return model.fit(rows, labels)


def _predict(model: SignalModel, rows: pd.DataFrame, history: pd.DataFrame | None) -> np.ndarray:
    if _uses_history(model):
        return model.predict_proba(rows, history=history)  # type: ignore[call-arg]
    return model.predict_proba(rows)


def warm_start_parent(
    model: SignalModel, rows: pd.DataFrame, earlier: Sequence[TrainedModel]
) -> TrainedModel | None:
    """The latest earlier version a fit of ``model`` on ``rows`` may start from: one trained only on
    labels known before the fit's validation part (so its validation loss and the calibration
    fitted on it stay out of sample). None without warm start."""
    if not getattr(model, "warm_start", False) or not earlier or not len(rows):
        return None
    start = model.validation_start(rows)  # type: ignore[attr-defined]
    usable = [
        trained
        for trained in earlier
        if trained.name == model.name and trained.last_label_known_on < start
    ]
    return max(usable, key=lambda trained: trained.as_of) if usable else None


class ModelStore:
    """Fitted versions under a folder, one sub-folder per version: ``<name>-<version>/`` holding
    ``trained.pkl`` (the ``TrainedModel``) and, for a checkpointed model (one with ``save``),
    its ``checkpoint.pt``, which the pickled model loads by path. Versions are content-addressed
    (settings, training rows, warm-start parent), so a stored version is what a fit would give."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, name: str, version: str) -> Path:
        return self.root / f"{name}-{version}"

    def load(self, name: str, version: str) -> TrainedModel | None:
        path = self.folder(name, version) / "trained.pkl"
        if not path.exists():
            return None
        return pickle.loads(path.read_bytes())

    def save(self, trained: TrainedModel) -> TrainedModel:
        """Store ``trained``; returns it as stored (a checkpointed estimator now loads by path)."""
        folder = self.folder(trained.name, trained.version)
        folder.mkdir(parents=True, exist_ok=True)
        save = getattr(trained.estimator, "save", None)
        if callable(save):
            trained = dataclasses.replace(trained, estimator=save(folder / "checkpoint.pt"))
        temporary = folder / "trained.pkl.tmp"
        temporary.write_bytes(pickle.dumps(trained))
        temporary.replace(folder / "trained.pkl")
        return trained


def _with_history(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Inputs that read each ticker's earlier rows are added once, on the whole frame, before any
    subset (training rows, one session) is taken from it."""
    if "sentiment_trend" in snapshots.columns and "catalyst_recent" in snapshots.columns:
        return snapshots
    return add_history_inputs(snapshots)


def _has_levels(snapshots: pd.DataFrame, rule: BarrierRule) -> np.ndarray:
    entry = snapshots["close"].to_numpy(dtype="float64")
    atr = snapshots["atr_14"].to_numpy(dtype="float64")
    stop, _ = rule.levels(entry, atr)
    return np.isfinite(entry) & (entry > 0) & np.isfinite(atr) & (atr > 0) & (stop > 0)


def signal_frame(
    rows: pd.DataFrame,
    confidence: np.ndarray,
    name: str,
    version: str,
    rule: BarrierRule,
    metrics: ModelMetrics | None = None,
) -> pd.DataFrame:
    """Long signals for snapshot rows: entry at the close, stop and target ATRs away, with the
    out-of-sample skill of the model version that scored them (NaN: not measured)."""
    entry = rows["close"].to_numpy(dtype="float64")
    stop, target = rule.levels(entry, rows["atr_14"].to_numpy(dtype="float64"))
    frame = pd.DataFrame(
        {
            "ticker": rows["ticker"].astype("object").to_numpy(),
            "session_date": pd.to_datetime(rows["session_date"]).to_numpy(dtype="datetime64[ns]"),
            "model": name,
            "direction": DIRECTION_LONG,
            "confidence": np.asarray(confidence, dtype="float64"),
            "entry": entry,
            "stop_loss": stop,
            "take_profit": target,
            "model_version": version,
            "model_auc": metrics.auc if metrics is not None else np.nan,
            "model_brier_skill": metrics.brier_skill if metrics is not None else np.nan,
        }
    )
    return frame.astype(SIGNAL_COLUMNS)


def empty_signals() -> pd.DataFrame:
    """A signals frame with no rows and the right columns."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in SIGNAL_COLUMNS.items()})


def retrain_session(session: pd.Timestamp | str, retrain_every: int) -> pd.Timestamp:
    """The retrain session whose model scores ``session``: the latest one at or before it."""
    calendar_sessions = nyse_calendar().sessions
    position = int(calendar_sessions.searchsorted(pd.Timestamp(session), side="right")) - 1
    if position < 0:
        raise ValueError(f"{session} lies before the trading calendar")
    return pd.Timestamp(calendar_sessions[position - position % retrain_every])


def retrain_sessions(sessions: pd.DatetimeIndex, retrain_every: int) -> pd.DatetimeIndex:
    """``retrain_session`` of each of ``sessions``, in one search of the calendar."""
    calendar_sessions = nyse_calendar().sessions
    positions = calendar_sessions.searchsorted(pd.DatetimeIndex(sessions), side="right") - 1
    if len(positions) and positions.min() < 0:
        raise ValueError(f"{pd.DatetimeIndex(sessions).min()} lies before the trading calendar")
    return pd.DatetimeIndex(calendar_sessions[positions - positions % retrain_every])


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _data_digest(rows: pd.DataFrame, labels: np.ndarray) -> str:
    keyed = rows[["ticker", "session_date"]].assign(label=labels)
    hashed = pd.util.hash_pandas_object(keyed, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def training_mask(
    labels: pd.DataFrame, as_of: pd.Timestamp, config: WalkForwardConfig
) -> np.ndarray:
    """Rows usable to train a model at ``as_of``: labelled, and the label known before ``as_of``."""
    known = labels["label_known_on"].to_numpy(dtype="datetime64[ns]")
    mask = labels["label"].notna().to_numpy() & (known < np.datetime64(as_of, "ns"))
    if config.train_window_sessions is not None:
        calendar_sessions = nyse_calendar().sessions
        position = int(calendar_sessions.searchsorted(as_of, side="left"))
        first = calendar_sessions[max(0, position - config.train_window_sessions)]
        mask &= labels["session_date"].to_numpy(dtype="datetime64[ns]") >= np.datetime64(
            first, "ns"
        )
    return mask


def _holdout_metrics(
    model: SignalModel,
    rows: pd.DataFrame,
    labels: pd.DataFrame,
    config: WalkForwardConfig,
    history: pd.DataFrame | None = None,
    earlier: Sequence[TrainedModel] = (),
) -> ModelMetrics:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = labels["label"].to_numpy(dtype="int64")
    sessions = np.sort(labels["session_date"].unique())
    cutoff = sessions[int(len(sessions) * (1.0 - config.holdout_fraction))]
    holdout = labels["session_date"].to_numpy() >= cutoff
    # Purged: the fitting part must not hold labels resolved inside the holdout period.
    fitting = labels["label_known_on"].to_numpy() < cutoff
    nan = float("nan")
    n_holdout = int(holdout.sum())
    if fitting.sum() < 2 or len(np.unique(y[fitting])) < 2 or n_holdout == 0:
        return ModelMetrics(nan, nan, nan, nan, nan, len(y), n_holdout)
    history = rows if history is None else history
    parent = warm_start_parent(model, rows[fitting], earlier)
    fitted = _fit(model, rows[fitting], y[fitting], history, parent.estimator if parent else None)
    predicted = np.clip(_predict(fitted, rows[holdout], history), 0, 1)
    actual = y[holdout]
    top = predicted >= np.quantile(predicted, 0.8)
    two_classes = len(np.unique(actual)) == 2
    reliability = reliability_table(predicted, actual)
    return ModelMetrics(
        auc=float(roc_auc_score(actual, predicted)) if two_classes else nan,
        brier=float(brier_score_loss(actual, predicted)),
        log_loss=float(log_loss(actual, predicted, labels=[0, 1])),
        hit_rate=float(actual[top].mean()),
        base_rate=float(actual.mean()),
        n_train=len(y),
        n_holdout=n_holdout,
        brier_skill=brier_skill(predicted, actual, float(y[fitting].mean())),
        reliability=tuple(reliability.itertuples(index=False, name=None)),
    )


def train_model(
    snapshots: pd.DataFrame,
    labels: pd.DataFrame,
    as_of: pd.Timestamp | str,
    model: SignalModel = DEFAULT_MODEL,
    config: WalkForwardConfig = WalkForwardConfig(),
    earlier: Sequence[TrainedModel] = (),
    store: ModelStore | None = None,
) -> TrainedModel:
    """Fit ``model`` at ``as_of`` on the snapshot rows whose labels were known before ``as_of``.

    ``labels`` is ``triple_barrier_labels(snapshots, prices)``: a row per snapshot row, same order.
    Raises ``NotEnoughTrainingData`` below ``config.min_train_rows`` rows or with a single class.
    ``earlier``: versions trained before, which a warm-starting model may start from (see
    ``warm_start_parent``). ``store``: where fitted versions are kept; a version already there is
    loaded instead of fitted again, a new one is saved.
    """
    as_of = pd.Timestamp(as_of)
    if len(labels) != len(snapshots):
        raise ValueError("labels must have one row per snapshot row, in the same order")
    snapshots = _with_history(snapshots)
    mask = training_mask(labels, as_of, config)
    rows = snapshots.loc[mask].reset_index(drop=True)
    known = labels.loc[mask].reset_index(drop=True)
    y = known["label"].to_numpy(dtype="int64")
    if len(y) < config.min_train_rows or len(np.unique(y)) < 2:
        raise NotEnoughTrainingData(
            f"{len(y)} labelled rows known before {as_of.date()} "
            f"(need {config.min_train_rows} with both outcomes)"
        )
    train_start = pd.Timestamp(known["session_date"].min())
    params = dict(model.params)
    settings = {
        "model": model.name,
        "params": params,
        "rule": dataclasses.asdict(config.rule),
        "train_window_sessions": config.train_window_sessions,
        "holdout_fraction": config.holdout_fraction,
    }
    parent = warm_start_parent(model, rows, earlier)
    data_digest = _data_digest(rows, y)
    if parent is not None:  # the starting weights shape the fit as much as the data
        data_digest = _digest([data_digest, parent.version])
    version = f"{train_start:%Y%m%d}-{as_of:%Y%m%d}-p{_digest(settings)[:8]}-d{data_digest[:8]}"
    if store is not None:
        stored = store.load(model.name, version)
        if stored is not None:
            return stored
    history = snapshots if _uses_history(model) else rows
    started = time.perf_counter()
    metrics = _holdout_metrics(model, rows, known, config, history, earlier)
    fitted = _fit(model, rows, y, history, parent.estimator if parent else None)
    report = getattr(fitted, "fit_report", None)
    trained = TrainedModel(
        name=model.name,
        version=version,
        as_of=as_of,
        train_start=train_start,
        train_end=pd.Timestamp(known["session_date"].max()),
        last_label_known_on=pd.Timestamp(known["label_known_on"].max()),
        features=tuple(params.get("inputs", ())),
        params=params,
        metrics=metrics,
        estimator=fitted,
        training_seconds=round(time.perf_counter() - started, 3),
        epochs=int(getattr(report, "epochs", 0)),
        warm_start_from=parent.version if parent is not None else None,
    )
    return store.save(trained) if store is not None else trained


def _as_sessions(sessions: Iterable | None, snapshots: pd.DataFrame) -> pd.DatetimeIndex:
    if sessions is None:
        return pd.DatetimeIndex(snapshots["session_date"].drop_duplicates().sort_values())
    return pd.DatetimeIndex(pd.to_datetime(list(sessions))).drop_duplicates().sort_values()


def walk_forward(
    snapshots: pd.DataFrame,
    prices: pd.DataFrame,
    sessions: Iterable | None = None,
    model: SignalModel = DEFAULT_MODEL,
    config: WalkForwardConfig = WalkForwardConfig(),
    actions: pd.DataFrame | None = None,
    earlier: Sequence[TrainedModel] = (),
    store: ModelStore | None = None,
) -> WalkForward:
    """Score ``sessions`` (default: every snapshot session) walk-forward.

    ``snapshots`` must reach back far enough for training (the history before the first scored
    session, at least ``HISTORY_SESSIONS``); ``prices`` supply the bars the labels are read from
    (as traded; ``actions``, the corporate actions, put them in each entry's units).
    Sessions whose retrain session had too few known labels get no signals. ``earlier`` and
    ``store``: see ``train_model`` (each version of the run may warm-start from the ones before).
    """
    snapshots = _with_history(snapshots.reset_index(drop=True))
    labels = triple_barrier_labels(snapshots, prices, config.rule, actions=actions)
    targets = _as_sessions(sessions, snapshots)
    session_dates = pd.DatetimeIndex(snapshots["session_date"])
    scoreable = _has_levels(snapshots, config.rule) & session_dates.isin(targets)
    anchors = pd.Series(retrain_sessions(targets, config.retrain_every), index=targets)

    frames: list[pd.DataFrame] = []
    models: list[TrainedModel] = []
    for as_of, block in anchors.groupby(anchors, sort=True):
        try:
            trained = train_model(
                snapshots, labels, as_of, model, config, (*earlier, *models), store
            )
        except NotEnoughTrainingData:
            continue
        models.append(trained)
        rows = snapshots[scoreable & session_dates.isin(block.index)]
        frames.append(
            signal_frame(
                rows,
                trained.predict_proba(rows, snapshots),
                trained.name,
                trained.version,
                config.rule,
                trained.metrics,
            )
        )
    signals = pd.concat(frames, ignore_index=True) if frames else empty_signals()
    signals = signals.sort_values(["session_date", "ticker"], ignore_index=True)
    return WalkForward(signals=signals, models=tuple(models))


def score_sessions(
    snapshots: pd.DataFrame,
    prices: pd.DataFrame,
    sessions: Iterable | None = None,
    model: SignalModel = DEFAULT_MODEL,
    config: WalkForwardConfig = WalkForwardConfig(),
) -> pd.DataFrame:
    """The signals of ``walk_forward`` (``SIGNAL_COLUMNS``), one row per ticker and session."""
    return walk_forward(snapshots, prices, sessions, model, config).signals
