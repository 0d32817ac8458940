"""Profit factor and per-session rank IC: one definition for the backtest, model and market."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tft_pipeline.metrics import profit_factor, row_rank_ic, session_rank_ic


def test_profit_factor_is_gross_gains_over_gross_losses():
    assert profit_factor([300.0, -100.0, 200.0, -100.0]) == pytest.approx(2.5)
    assert profit_factor(pd.Series([-1.0, 3.0, -2.0])) == pytest.approx(1.0)


def test_profit_factor_without_a_loss_or_without_a_trade():
    assert profit_factor([10.0, 5.0]) == math.inf  # gains, no loss
    assert profit_factor([-4.0, -1.0]) == 0.0  # losses, no gain
    assert math.isnan(profit_factor([]))  # no trade
    assert math.isnan(profit_factor([0.0, 0.0]))  # only flat exits
    assert profit_factor([6.0, np.nan, -2.0]) == pytest.approx(3.0)  # no exit yet: ignored


def _pandas_spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Textbook Spearman: Pearson correlation of average ranks over the pairs both sides have."""
    usable = np.isfinite(x) & np.isfinite(y)
    x_ranks, y_ranks = pd.Series(x[usable]).rank(), pd.Series(y[usable]).rank()
    if x_ranks.nunique() < 2 or y_ranks.nunique() < 2:
        return float("nan")  # a constant side has no rank correlation
    return float(x_ranks.corr(y_ranks))


@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(3, 12)),
        # A few distinct values so rows have ties; NaN cells stand for missing names.
        elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0, 3.0, np.nan]),
    ),
    st.randoms(use_true_random=False),
)
def test_row_rank_ic_is_spearman_per_row_with_ties_and_missing_cells(signal, random):
    outcome = signal.copy()
    for row in outcome:
        random.shuffle(row)
    ic = row_rank_ic(signal, outcome)
    for row, value in enumerate(ic):
        expected = _pandas_spearman(signal[row], outcome[row])
        if math.isnan(expected):
            assert math.isnan(value)
        else:
            assert value == pytest.approx(expected, abs=1e-12)


def test_a_constant_side_or_too_few_names_has_no_ic():
    signal = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, np.nan, np.nan]])
    outcome = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], [2.0, 1.0, 3.0, 4.0]])
    ic = row_rank_ic(signal, outcome, min_names=3)
    assert np.isnan(ic).all()  # a constant signal, a constant outcome, two names out of three
    assert row_rank_ic(signal[2:], outcome[2:])[0] == -1.0  # by default two names are enough
    assert row_rank_ic(signal[1:2], outcome[2:])[0] == pytest.approx(0.8)
    assert np.isnan(row_rank_ic(signal[1:2], outcome[2:], min_names=5)[0])


def test_row_rank_ic_of_a_monotone_relation_is_one():
    signal = np.array([[0.1, 0.5, 0.2, 0.9, 0.3]])
    assert row_rank_ic(signal, signal**3)[0] == pytest.approx(1.0)
    assert row_rank_ic(signal, -signal)[0] == pytest.approx(-1.0)


def test_session_rank_ic_scores_each_session_of_a_long_table():
    frame = pd.DataFrame(
        {
            "session_date": pd.to_datetime(
                ["2024-01-03"] * 4 + ["2024-01-02"] * 5 + ["2024-01-04"] * 5 + [None]
            ),
            "score": np.array([1, 2, 3, 4, 1, 2, 2, 3, np.inf, 1, 1, 1, 1, 1, 9], dtype=float),
            "outcome": np.array([4, 3, 2, 1, 1, 3, 2, 5, 4, 0, 1, 2, 3, 4, 9], dtype=float),
        }
    )
    ic = session_rank_ic(frame, "score", "outcome", min_names=4)
    # 2024-01-02 loses its inf row and keeps four; 2024-01-04 has a constant score.
    assert list(ic.index) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    day_two = frame.iloc[4:8]
    expected = _pandas_spearman(day_two["score"].to_numpy(), day_two["outcome"].to_numpy())
    assert ic.iloc[0] == pytest.approx(expected)
    assert ic.iloc[1] == pytest.approx(-1.0)
    assert session_rank_ic(frame, "score", "outcome", min_names=5).empty
    assert session_rank_ic(frame.iloc[:0], "score", "outcome").empty
