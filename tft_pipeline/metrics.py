"""Trading figures shared by the backtest, the model evaluation and the sample market (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def profit_factor(pnl: pd.Series | np.ndarray | list[float]) -> float:
    """Gross gains over gross losses: inf with gains and no loss, NaN with neither.

    NaN entries (trades without an exit yet) count as neither gain nor loss.
    """
    values = np.asarray(pnl, dtype="float64")
    gains, losses = values[values > 0].sum(), -values[values < 0].sum()
    if losses > 0:
        return float(gains / losses)
    return float("inf") if gains > 0 else float("nan")


def row_rank_ic(signal: np.ndarray, outcome: np.ndarray, min_names: int = 2) -> np.ndarray:
    """Spearman correlation of each row (session) of ``signal`` with the same row of ``outcome``.

    A cell counts only where both matrices are finite (missing names are NaN); ties share their
    average rank. A row is NaN when fewer than ``min_names`` cells count or either side is
    constant over them, as a rank correlation is undefined there.
    """
    signal = np.asarray(signal, dtype="float64")
    outcome = np.asarray(outcome, dtype="float64")
    if signal.shape != outcome.shape or signal.ndim != 2:
        raise ValueError(f"need two matrices of one shape, got {signal.shape} and {outcome.shape}")
    usable = np.isfinite(signal) & np.isfinite(outcome)
    # pandas ranks each row in compiled code with average ties and leaves NaN cells unranked.
    x = pd.DataFrame(np.where(usable, signal, np.nan)).rank(axis=1).to_numpy()
    y = pd.DataFrame(np.where(usable, outcome, np.nan)).rank(axis=1).to_numpy()
    count = usable.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        x_centred = np.where(usable, x - np.nansum(x, axis=1, keepdims=True) / count, 0.0)
        y_centred = np.where(usable, y - np.nansum(y, axis=1, keepdims=True) / count, 0.0)
        covariance = (x_centred * y_centred).sum(axis=1)
        spread = np.sqrt((x_centred**2).sum(axis=1) * (y_centred**2).sum(axis=1))
        ic = covariance / spread
    # Ranks are exact halves, so a constant side gives a spread of exactly zero.
    ic[(spread <= 0) | (count[:, 0] < max(min_names, 2))] = np.nan
    return ic


def session_rank_ic(
    frame: pd.DataFrame, score: str, outcome: str, min_names: int = 2
) -> pd.Series:
    """Spearman IC of ``score`` with ``outcome`` within each ``session_date`` of a long table.

    The rows of each session are laid out as one row of a matrix for ``row_rank_ic``; sessions
    without an IC (too few usable names, a constant side) are left out. Indexed by session.
    """
    frame = frame[frame["session_date"].notna()]
    if frame.empty:
        return pd.Series(dtype="float64", index=pd.Index([], name="session_date"), name="ic")
    session_codes, sessions = pd.factorize(frame["session_date"], sort=True)
    slot = frame.groupby(session_codes).cumcount().to_numpy()
    shape = (len(sessions), int(slot.max()) + 1)
    scores, outcomes = np.full(shape, np.nan), np.full(shape, np.nan)
    scores[session_codes, slot] = frame[score].to_numpy(dtype="float64")
    outcomes[session_codes, slot] = frame[outcome].to_numpy(dtype="float64")
    ic = pd.Series(
        row_rank_ic(scores, outcomes, min_names),
        index=pd.Index(sessions, name="session_date"),
        name="ic",
    )
    return ic.dropna()
