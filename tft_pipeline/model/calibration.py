"""Is a confidence of 0.8 right 80 % of the time? Reliability tables and Brier skill (pure).

A reliability table groups predictions into confidence bands and sets each band's mean predicted
probability beside the share of outcomes that came true: a calibrated model's rows lie on the
diagonal. The Brier skill score compares the Brier score with that of a forecaster who always says
the base rate known in advance: above 0 the model knows something, at or below 0 it does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Tenths: wide enough that each band holds a readable count on a holdout of a few thousand rows.
CONFIDENCE_BANDS: tuple[float, ...] = tuple(round(0.1 * step, 1) for step in range(11))

RELIABILITY_COLUMNS: dict[str, str] = {
    "band": "object",  # "0.7-0.8"
    "count": "int64",
    "mean_confidence": "float64",
    "hit_rate": "float64",  # share of outcomes 1 in the band
}


def reliability_table(
    confidence: np.ndarray | pd.Series,
    outcome: np.ndarray | pd.Series,
    bands: tuple[float, ...] = CONFIDENCE_BANDS,
) -> pd.DataFrame:
    """One row per non-empty band (lowest first): count, mean confidence, realized hit rate.

    Bands are half-open ``[low, high)`` except the last, which holds 1.0. Rows with a missing
    confidence or outcome are left out.
    """
    confidence = np.asarray(confidence, dtype="float64")
    outcome = np.asarray(outcome, dtype="float64")
    known = np.isfinite(confidence) & np.isfinite(outcome)
    confidence, outcome = confidence[known], outcome[known]
    edges = np.asarray(bands, dtype="float64")
    band = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, len(edges) - 2)
    frame = pd.DataFrame({"band": band, "confidence": confidence, "outcome": outcome})
    grouped = frame.groupby("band", sort=True).agg(
        count=("outcome", "size"),
        mean_confidence=("confidence", "mean"),
        hit_rate=("outcome", "mean"),
    )
    labels = [f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in grouped.index]
    table = grouped.reset_index(drop=True).assign(band=labels)
    return table[list(RELIABILITY_COLUMNS)].astype(RELIABILITY_COLUMNS)


def brier_score(confidence: np.ndarray, outcome: np.ndarray) -> float:
    confidence = np.asarray(confidence, dtype="float64")
    outcome = np.asarray(outcome, dtype="float64")
    return float(np.mean((confidence - outcome) ** 2)) if len(outcome) else float("nan")


def brier_skill(confidence: np.ndarray, outcome: np.ndarray, reference_rate: float) -> float:
    """1 - Brier(confidence) / Brier(always ``reference_rate``); NaN when the reference is perfect
    (every outcome equal to a reference of exactly 0 or 1) or there are no outcomes."""
    outcome = np.asarray(outcome, dtype="float64")
    reference = brier_score(np.full(len(outcome), reference_rate), outcome)
    if not len(outcome) or not reference > 0:
        return float("nan")
    return 1.0 - brier_score(confidence, outcome) / reference


def has_skill(auc: float, brier_skill_score: float) -> bool:
    """Positive out-of-sample skill: ranks better than chance AND beats the base rate."""
    finite = bool(np.isfinite(auc) and np.isfinite(brier_skill_score))
    return finite and bool(auc > 0.5) and bool(brier_skill_score > 0.0)
