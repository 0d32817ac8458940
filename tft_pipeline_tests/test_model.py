"""Tests of the baseline model: triple-barrier labels, walk-forward training and scoring, edge."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_pipeline.model import (
    HISTORY_SESSIONS,
    SIGNAL_COLUMNS,
    BarrierRule,
    LogisticBaseline,
    NotEnoughTrainingData,
    SignalModel,
    WalkForwardConfig,
    add_history_inputs,
    edge_recovery_report,
    model_inputs,
    retrain_session,
    score_sessions,
    train_model,
    triple_barrier_labels,
    walk_forward,
)
from tft_pipeline.model.calibration import brier_skill, has_skill, reliability_table
from tft_pipeline.model.synthetic import synthetic_market
from tft_pipeline.trading_calendar import sessions_between

SESSIONS = sessions_between("2024-01-02", "2024-03-28")
D = SESSIONS[0]  # the entry session of the hand-made paths


def path(highs, lows, closes=None, opens=None, ticker="AAA", entry=100.0, atr=5.0):
    """An entry at ``entry`` on D with ATR ``atr`` (stop 95, target 110), then the given bars."""
    n = len(highs)
    closes = [100.0] * n if closes is None else closes
    opens = closes if opens is None else opens
    prices = pd.DataFrame(
        {
            "ticker": ticker,
            "session_date": SESSIONS[: n + 1],
            "open": [entry, *opens],
            "high": [entry, *highs],
            "low": [entry, *lows],
            "close": [entry, *closes],
        }
    )
    entries = pd.DataFrame(
        {"ticker": [ticker], "session_date": [D], "close": [entry], "atr_14": [atr]}
    )
    return entries, prices


# The hand-made paths below enter at D's close (a market-on-close order); the default rule fills at
# D+1's open, tested on its own after them.
AT_CLOSE = BarrierRule(entry_at="close")


def only_label(highs, lows, rule=AT_CLOSE, **kwargs) -> pd.Series:
    entries, prices = path(highs, lows, **kwargs)
    return triple_barrier_labels(entries, prices, rule).iloc[0]


# --- labels on hand-made price paths --------------------------------------------------------------


def test_by_default_the_trade_fills_at_the_next_open_and_its_barriers_move_with_the_fill():
    # D closes at 100 (ATR 5) and D+1 gaps up to 104: the fill is 104, stop 99, target 114.
    row = only_label(
        highs=[106, 110, 115], lows=[103, 102, 109], opens=[104, 105, 110], rule=BarrierRule()
    )
    assert row.entry == 104.0 and row.stop == 99.0 and row.target == 114.0
    assert row.barrier == "target" and row.label == 1.0 and row.label_known_on == SESSIONS[3]
    assert row.exit_r == pytest.approx(2.0)


def test_a_next_open_fill_can_be_stopped_on_its_own_first_bar():
    row = only_label(highs=[101], lows=[93], opens=[99], rule=BarrierRule())
    assert row.entry == 99.0 and row.barrier == "stop" and row.exit_price == 94.0
    assert row.label_known_on == SESSIONS[1]


def test_no_bar_after_the_signal_means_no_fill_and_no_label_yet():
    entries, prices = path(highs=[], lows=[])
    row = triple_barrier_labels(entries, prices, BarrierRule()).iloc[0]
    assert np.isnan(row.entry) and np.isnan(row.label) and row.barrier is None


def test_an_unknown_entry_timing_is_refused():
    with pytest.raises(ValueError, match="entry_at"):
        BarrierRule(entry_at="vwap")


def test_target_touched_first_is_a_win_known_on_the_touch():
    row = only_label(highs=[104, 108, 111, 101], lows=[99, 101, 104, 90])
    assert row.label == 1.0 and row.barrier == "target"
    assert row.label_known_on == SESSIONS[3]  # D+3, the bar whose high reached 110
    assert row.exit_price == 110.0 and row.exit_r == pytest.approx(2.0)
    assert row.bars_held == 3


def test_stop_touched_first_is_a_loss():
    row = only_label(highs=[103, 101, 120], lows=[97, 94, 99])
    assert row.label == 0.0 and row.barrier == "stop"
    assert row.label_known_on == SESSIONS[2]
    assert row.exit_price == 95.0 and row.exit_r == pytest.approx(-1.0)


def test_a_bar_touching_both_barriers_counts_as_the_stop():
    row = only_label(highs=[103, 112], lows=[97, 94])
    assert row.label == 0.0 and row.barrier == "stop"
    assert row.label_known_on == SESSIONS[2]


def test_neither_barrier_in_ten_sessions_expires_at_the_close_of_d_plus_10():
    closes = [100 + i * 0.5 for i in range(12)]  # D+10 closes at 104.5
    row = only_label(highs=[c + 1 for c in closes], lows=[c - 1 for c in closes], closes=closes)
    assert row.label == 0.0 and row.barrier == "expiry"
    assert row.label_known_on == SESSIONS[10]
    assert row.exit_price == closes[9]
    assert row.exit_return == pytest.approx(closes[9] / 100 - 1)


def test_a_touch_after_the_horizon_does_not_count():
    highs = [101.0] * 10 + [130.0]
    row = only_label(highs=highs, lows=[99.0] * 11)
    assert row.barrier == "expiry" and row.label == 0.0


def test_a_gap_through_the_stop_fills_at_the_open():
    row = only_label(highs=[101, 91], lows=[99, 88], closes=[100, 90], opens=[100, 90])
    assert row.barrier == "stop" and row.exit_price == 90.0
    assert row.exit_r == pytest.approx(-2.0)


def test_a_gap_over_the_target_fills_at_the_open():
    row = only_label(highs=[118], lows=[114], closes=[116], opens=[115])
    assert row.barrier == "target" and row.exit_price == 115.0


def test_an_outcome_still_open_at_the_end_of_the_data_has_no_label_yet():
    row = only_label(highs=[103, 104, 105], lows=[97, 98, 99])
    assert np.isnan(row.label) and row.barrier is None and pd.isna(row.label_known_on)


def test_a_touch_resolves_the_label_before_the_horizon_has_passed():
    row = only_label(highs=[103, 111], lows=[97, 99])
    assert row.label == 1.0 and row.label_known_on == SESSIONS[2]


def test_a_missing_atr_gives_no_label():
    row = only_label(highs=[120] * 10, lows=[99] * 10, atr=float("nan"))
    assert np.isnan(row.label) and row.barrier is None


def test_labels_are_computed_per_ticker_on_its_own_bars():
    entries_a, prices_a = path(highs=[111], lows=[99], ticker="AAA")
    entries_b, prices_b = path(highs=[101], lows=[90], ticker="BBB")
    labels = triple_barrier_labels(
        pd.concat([entries_b, entries_a], ignore_index=True),
        pd.concat([prices_a, prices_b], ignore_index=True),
        AT_CLOSE,
    )
    assert labels.ticker.tolist() == ["BBB", "AAA"]  # entry order kept
    assert labels.barrier.tolist() == ["stop", "target"]


def reference_label(close, atr, bars, rule):
    """A plain loop over the bars: the rule as one would write it by hand."""
    if rule.entry_at == "next_open" and not bars:
        return None, np.nan, None
    entry = bars[0][0] if rule.entry_at == "next_open" else close
    stop, target = entry - rule.stop_atr * atr, entry + rule.target_atr * atr
    for step, (open_, high, low, _close) in enumerate(bars[: rule.horizon], start=1):
        if low <= stop:
            return "stop", min(stop, open_), step
        if high >= target:
            return "target", max(target, open_), step
    if len(bars) >= rule.horizon:
        return "expiry", bars[rule.horizon - 1][3], rule.horizon
    return None, np.nan, None


@st.composite
def random_paths(draw):
    n_bars = draw(st.integers(min_value=0, max_value=14))
    moves = draw(st.lists(st.floats(-6, 6), min_size=n_bars, max_size=n_bars))
    spreads = draw(
        st.lists(
            st.tuples(st.floats(0, 4), st.floats(0, 4), st.floats(-2, 2)),
            min_size=n_bars,
            max_size=n_bars,
        )
    )
    atr = draw(st.floats(0.5, 8))
    bars, close = [], 100.0
    for move, (up, down, gap) in zip(moves, spreads, strict=True):
        open_ = close + gap
        close = max(1.0, close + move)
        bars.append((open_, max(open_, close) + up, min(open_, close) - down, close))
    return atr, bars


@settings(max_examples=80, deadline=None)
@given(
    random_paths(),
    st.sampled_from(
        [BarrierRule(), BarrierRule(1.5, 1.0, 5), AT_CLOSE, BarrierRule(1.5, 1.0, 5, "close")]
    ),
)
def test_vectorized_labels_match_a_bar_by_bar_reference(case, rule):
    atr, bars = case
    prices = pd.DataFrame(
        {
            "ticker": "AAA",
            "session_date": SESSIONS[: len(bars) + 1],
            "open": [100.0] + [b[0] for b in bars],
            "high": [100.0] + [b[1] for b in bars],
            "low": [100.0] + [b[2] for b in bars],
            "close": [100.0] + [b[3] for b in bars],
        }
    )
    entries = pd.DataFrame(
        {"ticker": ["AAA"], "session_date": [D], "close": [100.0], "atr_14": [atr]}
    )
    row = triple_barrier_labels(entries, prices, rule).iloc[0]
    barrier, exit_price, step = reference_label(100.0, atr, bars, rule)
    assert row.barrier == barrier
    if barrier is None:
        assert np.isnan(row.label) and pd.isna(row.label_known_on)
    else:
        assert row.label == (1.0 if barrier == "target" else 0.0)
        assert row.exit_price == pytest.approx(exit_price)
        assert row.label_known_on == SESSIONS[step]


# --- model inputs ---------------------------------------------------------------------------


def sentiment_rows(values) -> pd.DataFrame:
    return pd.DataFrame(
        {"ticker": "AAA", "session_date": SESSIONS[: len(values)], "mention_sentiment": values}
    )


def test_the_sentiment_trend_is_a_decaying_average_of_the_tickers_recent_sessions():
    frame = pd.concat(
        [sentiment_rows([0.5, -0.2, 0.9]), sentiment_rows([0.0, 0.0, 0.0]).assign(ticker="BBB")]
    ).sample(frac=1.0, random_state=1)  # row order must not matter
    trend = add_history_inputs(frame).set_index(["ticker", "session_date"]).sentiment_trend
    weights = np.array([0.7**2, 0.7, 1.0])
    assert trend[("AAA", SESSIONS[2])] == pytest.approx(
        (weights * [0.5, -0.2, 0.9]).sum() / weights.sum()
    )
    assert trend[("AAA", SESSIONS[0])] == pytest.approx(0.5)
    assert (trend.loc["BBB"] == 0.0).all()


def test_the_sentiment_trend_reads_only_a_bounded_past():
    base = np.linspace(-0.5, 0.5, 30)
    day = 20  # the row checked
    before = add_history_inputs(sentiment_rows(base)).sentiment_trend[day]
    for changed_row, should_change in [
        (day + 1, False),
        (day - HISTORY_SESSIONS, False),
        (day - HISTORY_SESSIONS + 1, True),
        (day, True),
    ]:
        values = base.copy()
        values[changed_row] += 1.0
        after = add_history_inputs(sentiment_rows(values)).sentiment_trend[day]
        assert (after != pytest.approx(before)) == should_change, changed_row


# --- walk-forward training and scoring ------------------------------------------------------------


CONFIG = WalkForwardConfig(min_train_rows=200)


@cache
def market(edge: float = 0.006, n_tickers: int = 30, n_sessions: int = 260, seed: int = 3):
    return synthetic_market(n_tickers, n_sessions, seed=seed, edge_per_session=edge)


def scored_sessions(m) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(m.snapshots.session_date.drop_duplicates().sort_values())[100:]


def around_a_retrain(sessions: pd.DatetimeIndex, each_side: int = 3) -> pd.DatetimeIndex:
    """Consecutive sessions on both sides of a retrain session, so two models score them."""
    for i in range(each_side, len(sessions) - each_side):
        if retrain_session(sessions[i], CONFIG.retrain_every) == sessions[i]:
            return sessions[i - each_side : i + each_side]
    raise AssertionError("no retrain session in range")


@cache
def walked(edge: float = 0.006):
    m = market(edge)
    # Retraining every 40 sessions halves the fits and leaves the edge as visible.
    return walk_forward(
        m.snapshots,
        m.prices,
        scored_sessions(m),
        config=WalkForwardConfig(min_train_rows=200, retrain_every=40),
    )


def test_retrain_sessions_are_anchored_to_the_calendar_every_20_sessions():
    days = sessions_between("2024-01-02", "2024-06-28")
    anchors = pd.Series([retrain_session(day, 20) for day in days], index=days)
    assert (anchors.index >= anchors.to_numpy()).all()
    retrains = anchors.drop_duplicates().tolist()
    gaps = [len(sessions_between(a, b)) - 1 for a, b in pairwise(retrains)]
    assert gaps and set(gaps) == {20}
    # A session's anchor does not depend on which range the session was asked in.
    assert retrain_session(days[50], 20) == anchors.iloc[50]
    assert retrain_session(retrains[2], 20) == retrains[2]
    # The walk-forward's one-search version gives the same anchors.
    from tft_pipeline.model.walk_forward import retrain_sessions

    assert retrain_sessions(days, 20).equals(pd.DatetimeIndex(anchors.to_numpy()))


def test_every_model_was_trained_only_on_labels_known_before_the_sessions_it_scores():
    result = walked()
    assert len(result.models) >= 5
    scored_by = result.signals.groupby("model_version").session_date.min()
    for trained in result.models:
        assert trained.last_label_known_on < trained.as_of <= scored_by[trained.version]
        assert trained.train_end < trained.as_of


def test_future_prices_cannot_change_todays_signals():
    """A leak would show: scoring with prices after D present must equal scoring without them."""
    m = market()
    sessions = scored_sessions(m)
    scored = around_a_retrain(sessions[40:])
    cut = scored[-1]
    full = score_sessions(m.snapshots, m.prices, scored, config=CONFIG)
    # After D the market crashes: every label resolving later would be a loss.
    crashed = m.prices.copy()
    after = crashed.session_date > cut
    crashed.loc[after, ["open", "high", "low", "close", "adj_close"]] *= 0.5
    with_crash = score_sessions(m.snapshots, crashed, scored, config=CONFIG)
    truncated = score_sessions(
        m.snapshots[m.snapshots.session_date <= cut],
        m.prices[m.prices.session_date <= cut],
        scored,
        config=CONFIG,
    )
    assert full.model_version.nunique() == 2
    pd.testing.assert_frame_equal(full, with_crash)
    pd.testing.assert_frame_equal(full, truncated)


def test_a_range_run_equals_daily_runs_that_each_see_only_their_past():
    m = market()
    sessions = around_a_retrain(scored_sessions(m)[20:])
    in_one_run = score_sessions(m.snapshots, m.prices, sessions, config=CONFIG)
    daily = pd.concat(
        [
            score_sessions(
                m.snapshots[m.snapshots.session_date <= day],
                m.prices[m.prices.session_date <= day],
                [day],
                config=CONFIG,
            )
            for day in sessions
        ],
        ignore_index=True,
    )
    assert in_one_run.model_version.nunique() == 2
    pd.testing.assert_frame_equal(in_one_run, daily)


def test_signals_carry_the_contract_columns_and_atr_levels():
    m = market()
    sessions = scored_sessions(m)[-5:]
    signals = score_sessions(m.snapshots, m.prices, sessions, config=CONFIG)
    assert list(signals.columns) == list(SIGNAL_COLUMNS)
    assert signals.groupby(["ticker", "session_date", "model"]).size().max() == 1
    snap = m.snapshots.set_index(["ticker", "session_date"])
    joined = signals.join(snap[["close", "atr_14"]], on=["ticker", "session_date"])
    np.testing.assert_allclose(joined.entry, joined.close)
    np.testing.assert_allclose(joined.stop_loss, joined.close - joined.atr_14)
    np.testing.assert_allclose(joined.take_profit, joined.close + 2 * joined.atr_14)
    assert signals.confidence.between(0, 1).all()
    assert (signals.model == "baseline_logit").all() and (signals.direction == "long").all()
    assert len(signals) == len(sessions) * m.snapshots.ticker.nunique()


def test_sessions_without_enough_known_labels_get_no_signals():
    m = market()
    early = pd.DatetimeIndex(m.snapshots.session_date.drop_duplicates().sort_values())[5:15]
    assert score_sessions(m.snapshots, m.prices, early, config=CONFIG).empty
    labels = triple_barrier_labels(m.snapshots, m.prices)
    with pytest.raises(NotEnoughTrainingData, match="labelled rows known before"):
        train_model(m.snapshots, labels, early[-1], config=CONFIG)


def test_model_versions_are_deterministic_and_change_with_params_window_and_data():
    m = market()
    labels = triple_barrier_labels(m.snapshots, m.prices)
    as_of = scored_sessions(m)[40]
    first = train_model(m.snapshots, labels, as_of, config=CONFIG)
    again = train_model(m.snapshots, labels, as_of, config=CONFIG)
    assert first.version == again.version
    assert first.version.startswith(f"{first.train_start:%Y%m%d}-{as_of:%Y%m%d}-p")
    other_params = train_model(
        m.snapshots, labels, as_of, LogisticBaseline(regularization=1.0), CONFIG
    )
    later = train_model(m.snapshots, labels, scored_sessions(m)[60], config=CONFIG)
    flipped = labels.assign(label=1.0 - labels.label)
    other_data = train_model(m.snapshots, flipped, as_of, config=CONFIG)
    versions = {first.version, other_params.version, later.version, other_data.version}
    assert len(versions) == 4


def test_a_trained_model_survives_pickling_with_the_same_predictions():
    m = market()
    labels = triple_barrier_labels(m.snapshots, m.prices)
    trained = train_model(m.snapshots, labels, scored_sessions(m)[40], config=CONFIG)
    restored = pickle.loads(pickle.dumps(trained))
    rows = m.snapshots.tail(40)
    np.testing.assert_array_equal(restored.predict_proba(rows), trained.predict_proba(rows))
    assert restored.version == trained.version and restored.metrics == trained.metrics
    assert trained.metrics.n_train > 0 and trained.metrics.n_holdout > 0
    assert 0 < trained.metrics.brier < 0.25 and 0 < trained.metrics.base_rate < 1


def test_the_model_recovers_a_planted_sentiment_edge_and_finds_none_where_none_was_planted():
    with_edge, without_edge = market(edge=0.006), market(edge=0.0)
    planted = edge_recovery_report(with_edge.snapshots, with_edge.prices, walked(0.006).signals)
    absent = edge_recovery_report(without_edge.snapshots, without_edge.prices, walked(0.0).signals)
    assert planted["ic_mean"] > 0.08 and planted["ic_t_stat"] > 2
    assert planted["auc"] > 0.55
    assert planted["hit_rate_top"] > planted["base_rate"] + 0.05
    assert planted["profit_factor_top"] > planted["profit_factor_all"]
    assert absent["auc"] < 0.535 and abs(absent["ic_mean"]) < planted["ic_mean"] / 2
    assert abs(absent["sentiment_ic_mean"]) < 0.03 < planted["sentiment_ic_mean"]


@dataclass(frozen=True)
class SentimentRule:
    """A stand-in model with no learning: confidence rises with mention sentiment."""

    fitted: bool = False
    name = "sentiment_rule"
    params: ClassVar[dict[str, float]] = {"slope": 0.25}

    def fit(self, snapshots, labels):
        return SentimentRule(fitted=True)

    def predict_proba(self, snapshots):
        return np.clip(0.3 + self.params["slope"] * snapshots["mention_sentiment"].to_numpy(), 0, 1)


def test_any_signal_model_plugs_into_walk_forward():
    m = market()
    assert isinstance(SentimentRule(), SignalModel) and isinstance(LogisticBaseline(), SignalModel)
    sessions = scored_sessions(m)[-3:]
    signals = score_sessions(m.snapshots, m.prices, sessions, model=SentimentRule(), config=CONFIG)
    assert (signals.model == "sentiment_rule").all()
    snap = m.snapshots.set_index(["ticker", "session_date"])
    sentiment = snap.loc[
        list(zip(signals.ticker, signals.session_date, strict=True)), "mention_sentiment"
    ]
    np.testing.assert_allclose(signals.confidence, np.clip(0.3 + 0.25 * sentiment.to_numpy(), 0, 1))


# --- catalyst inputs -------------------------------------------------------------------------


def catalyst_rows(bullish, bearish=None) -> pd.DataFrame:
    bearish = [0] * len(bullish) if bearish is None else bearish
    return sentiment_rows([0.0] * len(bullish)).assign(
        catalyst_bullish=bullish, catalyst_bearish=bearish
    )


def test_catalyst_net_is_today_and_catalyst_recent_the_decayed_sessions_before():
    frame = add_history_inputs(catalyst_rows([0, 3, 0, 0, 0], [0, 0, 0, 1, 0]))
    inputs = model_inputs(frame, ("catalyst_net", "catalyst_recent"))
    news = np.log1p(3.0)
    assert inputs.catalyst_net.tolist() == pytest.approx([0, news, 0, -np.log1p(1.0), 0])
    # The news of session 1 is not in session 1's recent sum (that is catalyst_net's job) and
    # fades by CATALYST_DECAY per session after it; nothing before the news.
    assert inputs.catalyst_recent.tolist() == pytest.approx(
        [0, 0, news, 0.8 * news, 0.8**2 * news - np.log1p(1.0)]
    )


def test_snapshots_without_catalyst_columns_read_as_no_catalyst():
    inputs = model_inputs(sentiment_rows([0.1, 0.2]), ("catalyst_net", "catalyst_recent"))
    assert (inputs.to_numpy() == 0.0).all()


# --- calibration and skill ------------------------------------------------------------------


def test_the_reliability_table_sets_each_bands_confidence_beside_its_hit_rate():
    confidence = np.array([0.05, 0.15, 0.12, 0.75, 0.78, 0.72, 1.0, np.nan])
    outcome = np.array([0, 0, 1, 1, 1, 0, 1, 1])
    table = reliability_table(confidence, outcome).set_index("band")
    assert table.index.tolist() == ["0.0-0.1", "0.1-0.2", "0.7-0.8", "0.9-1.0"]
    assert table["count"].tolist() == [1, 2, 3, 1]  # the NaN confidence is left out
    assert table.loc["0.7-0.8", "hit_rate"] == pytest.approx(2 / 3)
    assert table.loc["0.7-0.8", "mean_confidence"] == pytest.approx(0.75)


def test_brier_skill_is_positive_only_for_a_forecast_better_than_the_base_rate():
    outcome = np.array([1, 0, 0, 1, 0, 0, 0, 1])
    assert brier_skill(outcome.astype(float), outcome, 0.375) == pytest.approx(1.0)
    assert brier_skill(np.full(8, 0.375), outcome, 0.375) == pytest.approx(0.0)
    assert brier_skill(1.0 - outcome, outcome, 0.375) < 0
    assert not has_skill(0.6, 0.0) and not has_skill(0.5, 0.1) and not has_skill(np.nan, 0.1)
    assert has_skill(0.55, 0.01)


def test_a_model_version_reports_its_holdout_reliability_and_brier_skill():
    m = market(edge=0.006)
    labels = triple_barrier_labels(m.snapshots, m.prices)
    trained = train_model(m.snapshots, labels, scored_sessions(m)[60], config=CONFIG)
    table = trained.metrics.reliability_frame()
    assert table["count"].sum() == trained.metrics.n_holdout
    assert np.isfinite(trained.metrics.brier_skill)
    signals = trained.signals(m.snapshots, [scored_sessions(m)[60]])
    assert (signals["model_auc"] == trained.metrics.auc).all()
    assert (signals["model_brier_skill"] == trained.metrics.brier_skill).all()
