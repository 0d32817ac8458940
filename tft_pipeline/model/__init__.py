"""The baseline signal model: triple-barrier labels, walk-forward training, scoring (no Dagster)."""

from tft_pipeline.model.baseline import (
    ALL_INPUTS,
    HISTORY_SESSIONS,
    MENTION_INPUTS,
    GradientBoostingBaseline,
    LogisticBaseline,
    SignalModel,
    add_history_inputs,
    model_inputs,
)
from tft_pipeline.model.evaluation import edge_recovery_report, forward_returns
from tft_pipeline.model.labels import LABEL_COLUMNS, BarrierRule, triple_barrier_labels
from tft_pipeline.model.walk_forward import (
    SIGNAL_COLUMNS,
    ModelMetrics,
    NotEnoughTrainingData,
    TrainedModel,
    WalkForward,
    WalkForwardConfig,
    empty_signals,
    retrain_session,
    score_sessions,
    signal_frame,
    train_model,
    walk_forward,
)

__all__ = [
    "ALL_INPUTS",
    "HISTORY_SESSIONS",
    "LABEL_COLUMNS",
    "MENTION_INPUTS",
    "SIGNAL_COLUMNS",
    "BarrierRule",
    "GradientBoostingBaseline",
    "LogisticBaseline",
    "ModelMetrics",
    "NotEnoughTrainingData",
    "SignalModel",
    "TrainedModel",
    "WalkForward",
    "WalkForwardConfig",
    "add_history_inputs",
    "edge_recovery_report",
    "empty_signals",
    "forward_returns",
    "model_inputs",
    "retrain_session",
    "score_sessions",
    "signal_frame",
    "train_model",
    "triple_barrier_labels",
    "walk_forward",
]
