"""Tests of the risk manager: each rule at its edges, sizing, the batch path and its invariants."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tft_pipeline.risk import (
    PortfolioState,
    RejectionCode,
    RiskDecision,
    RiskLimits,
    RiskManager,
    Signal,
)

CODE_ORDER = [code.value for code in RejectionCode]
TINY = 1e-9  # sizes may pass a limit by float noise, never by a share
FLAT = PortfolioState(value=100_000.0, peak_value=100_000.0)


def good_signal(**changes) -> Signal:
    """Accepted under the default limits on ``FLAT``: 0.80 confident, reward/risk 3."""
    fields = {
        "ticker": "AAPL",
        "confidence": 0.80,
        "entry": 100.0,
        "stop_loss": 95.0,
        "take_profit": 115.0,
    }
    fields.update(changes)
    return Signal(**fields)


def decide(signal: Signal, portfolio: PortfolioState = FLAT, **limits) -> RiskDecision:
    return RiskManager(RiskLimits(**limits)).evaluate(signal, portfolio)


def codes(decision: RiskDecision) -> list[str]:
    return [str(code) for code in decision.reasons]


# -- confidence ---------------------------------------------------------------------------------


def test_confidence_below_minimum_is_rejected():
    decision = decide(good_signal(confidence=0.65))
    assert not decision.accepted
    assert codes(decision) == ["low_confidence"]


def test_confidence_exactly_at_minimum_passes():
    assert decide(good_signal(confidence=0.70)).accepted


def test_confidence_minimum_comes_from_the_limits():
    assert decide(good_signal(confidence=0.72)).accepted
    assert codes(decide(good_signal(confidence=0.72), min_confidence=0.75)) == ["low_confidence"]


# -- price levels -------------------------------------------------------------------------------


def test_long_with_stop_above_entry_is_rejected():
    decision = decide(good_signal(stop_loss=101.0))
    assert codes(decision) == ["invalid_price_levels"]
    assert decision.shares == 0


def test_long_with_target_below_entry_is_rejected():
    assert codes(decide(good_signal(take_profit=99.0))) == ["invalid_price_levels"]


def test_short_with_target_below_and_stop_above_entry_is_accepted():
    decision = decide(good_signal(direction="short", stop_loss=105.0, take_profit=85.0))
    assert decision.accepted
    assert decision.reward_risk == pytest.approx(3.0)
    assert decision.shares == 200


def test_short_with_long_style_levels_is_rejected():
    decision = decide(good_signal(direction="short"))  # stop below entry, target above
    assert codes(decision) == ["invalid_price_levels"]


def test_stop_equal_to_entry_is_invalid_levels_without_a_ratio():
    decision = decide(good_signal(stop_loss=100.0))
    assert codes(decision) == ["invalid_price_levels"]
    assert math.isnan(decision.reward_risk)
    assert decision.shares == 0


# -- reward/risk --------------------------------------------------------------------------------


def test_reward_risk_below_minimum_is_rejected():
    decision = decide(good_signal(take_profit=108.0))  # 8 / 5 = 1.6
    assert codes(decision) == ["low_reward_risk"]
    assert decision.reward_risk == pytest.approx(1.6)


def test_reward_risk_of_exactly_two_passes():
    decision = decide(good_signal(stop_loss=95.0, take_profit=110.0))
    assert decision.reward_risk == 2.0
    assert decision.accepted


def test_reward_risk_of_two_with_float_noise_passes():
    decision = decide(good_signal(entry=1.1, stop_loss=1.0, take_profit=1.3))
    assert decision.reward_risk < 2.0  # 0.2 / 0.1 in binary floats is 1.9999999999999978
    assert decision.accepted


def test_reward_risk_is_measured_the_same_for_shorts():
    decision = decide(good_signal(direction="short", stop_loss=104.0, take_profit=93.0))
    assert decision.reward_risk == pytest.approx(7 / 4)
    assert codes(decision) == ["low_reward_risk"]


# -- sizing -------------------------------------------------------------------------------------


def test_sizing_risks_two_percent_when_the_position_fits():
    decision = decide(good_signal(stop_loss=80.0, take_profit=150.0))  # 2,000 / 20 = 100 shares
    assert (decision.shares, decision.position_value, decision.risk_dollars) == (
        100,
        10_000.0,
        2_000.0,
    )


def test_sizing_is_capped_at_twenty_percent_of_the_portfolio():
    decision = decide(good_signal())  # budget buys 400 shares = 40,000 > 20,000 cap
    assert (decision.shares, decision.position_value, decision.risk_dollars) == (
        200,
        20_000.0,
        1_000.0,
    )


@pytest.mark.parametrize(
    ("value", "entry", "stop", "whole"),
    [
        (885_764.0, 24.78, 5.14, 902),  # 17,715.28 / 19.64: the float division gives 901.99...
        (186_018.0, 121.98, 107.56, 258),  # 3,720.36 / 14.42: 258 shares cost 3,720.3600000000006
    ],
)
def test_sizing_counts_whole_shares_as_the_decimals_say(value, entry, stop, whole):
    portfolio = PortfolioState(value, value)
    signal = good_signal(entry=entry, stop_loss=stop, take_profit=entry + 3 * (entry - stop))
    decision = decide(signal, portfolio)
    assert decision.shares == whole
    assert decision.risk_dollars == pytest.approx(0.02 * value, rel=1e-12)
    batch = RiskManager().evaluate_batch(_as_frame([signal]), portfolio)
    assert batch["shares"].tolist() == [whole]


def test_a_share_too_expensive_for_the_cap_is_position_too_small():
    decision = decide(good_signal(entry=25_000.0, stop_loss=24_900.0, take_profit=26_000.0))
    assert codes(decision) == ["position_too_small"]
    assert (decision.shares, decision.position_value, decision.risk_dollars) == (0, 0.0, 0.0)


# -- portfolio ----------------------------------------------------------------------------------


def test_ticker_already_held_is_duplicate_position_whatever_its_case():
    held = PortfolioState(100_000.0, 100_000.0, open_tickers=(" aapl",))
    assert codes(decide(good_signal(), held)) == ["duplicate_position"]
    assert decide(good_signal(ticker="MSFT"), held).accepted


def test_max_positions_rejects_once_all_slots_are_taken():
    four = PortfolioState(100_000.0, 100_000.0, open_tickers=("A", "B", "C", "D"))
    five = four.with_opened("E")
    assert decide(good_signal(), four).accepted
    decision = decide(good_signal(), five)
    assert codes(decision) == ["max_positions"]
    assert decision.messages == ("5 positions are already open, the maximum is 5",)


def test_max_drawdown_rejects_at_fifteen_percent_not_before():
    assert decide(good_signal(), PortfolioState(85_100.0, 100_000.0)).accepted
    at_limit = PortfolioState(85_000.0, 100_000.0)
    assert at_limit.drawdown == pytest.approx(0.15)
    assert codes(decide(good_signal(), at_limit)) == ["max_drawdown"]
    # 15 % down, but the division gives 0.14999999999999997: it must still count as reached.
    noisy = PortfolioState(42_756.36, 50_301.6)
    assert noisy.drawdown < 0.15
    assert codes(decide(good_signal(), noisy)) == ["max_drawdown"]


def test_portfolio_above_a_stale_peak_has_no_drawdown():
    assert PortfolioState(120_000.0, 100_000.0).drawdown == 0.0


# -- integration --------------------------------------------------------------------------------


def test_contract_example_is_accepted_and_sized():
    rm = RiskManager(RiskLimits())
    d = rm.evaluate(
        Signal(ticker="AAPL", confidence=0.80, entry=100.0, stop_loss=95.0, take_profit=115.0),
        PortfolioState(value=100_000.0, peak_value=100_000.0, open_tickers=()),
    )
    assert (d.accepted, d.reasons, d.shares, d.position_value, d.risk_dollars, d.reward_risk) == (
        True,
        (),
        200,
        20_000.0,
        1_000.0,
        3.0,
    )


def test_every_failing_rule_is_reported_in_contract_order():
    crowded = PortfolioState(80_000.0, 100_000.0, open_tickers=("AAPL", "B", "C", "D", "E"))
    decision = decide(good_signal(confidence=0.5, take_profit=99.0), crowded)
    assert codes(decision) == [
        "low_confidence",
        "invalid_price_levels",
        "duplicate_position",
        "max_positions",
        "max_drawdown",
    ]
    assert len(decision.messages) == len(decision.reasons)


def test_batch_gives_slots_to_the_most_confident_and_blocks_repeat_tickers():
    two_free = PortfolioState(100_000.0, 100_000.0, open_tickers=("X", "Y", "Z"))
    signals = pd.DataFrame(
        {
            "ticker": ["LOW", "TOP", "TOP", "MID", "NEXT"],
            "confidence": [0.71, 0.95, 0.90, 0.85, 0.80],
            "entry": 100.0,
            "stop_loss": 95.0,
            "take_profit": 115.0,
        }
    )
    result = RiskManager().evaluate_batch(signals, two_free)
    assert result["rank"].tolist() == [5, 1, 2, 3, 4]
    assert result["accepted"].tolist() == [False, True, False, True, False]
    assert result["reasons"].tolist() == [
        "max_positions",
        "",
        "duplicate_position",
        "",
        "max_positions",
    ]
    assert result["shares"].tolist() == [200] * 5  # the size each signal would get


def test_batch_in_drawdown_accepts_nothing():
    signals = _as_frame([good_signal(), good_signal(ticker="MSFT", confidence=0.9)])
    result = RiskManager().evaluate_batch(signals, PortfolioState(84_000.0, 100_000.0))
    assert not result["accepted"].any()
    assert result["reasons"].tolist() == ["max_drawdown", "max_drawdown"]
    assert result["messages"].tolist() == ["drawdown 16.00% has reached the maximum 15.00%"] * 2


def test_batch_keeps_extra_columns_index_and_input_order():
    signals = pd.DataFrame(
        {
            "session_date": pd.Timestamp("2024-03-01"),
            "model": ["m1", "m2"],
            "ticker": ["AAPL", "MSFT"],
            "confidence": [0.75, 0.9],
            "entry": [100.0, 200.0],
            "stop_loss": [95.0, 190.0],
            "take_profit": [115.0, 230.0],
        },
        index=[10, 20],
    )
    result = RiskManager().evaluate_batch(signals, FLAT)
    assert result.index.tolist() == [10, 20]
    assert result[["model", "ticker"]].values.tolist() == [["m1", "AAPL"], ["m2", "MSFT"]]
    assert result["direction"].tolist() == ["long", "long"]
    assert result["accepted"].all()
    assert result["shares"].tolist() == [200, 100]


def test_batch_decisions_store_in_duckdb_and_read_back():
    signals = pd.DataFrame(
        {
            "ticker": ["AAPL", "MSFT", None],
            "confidence": [0.9, 0.5, 0.8],
            "entry": [100.0, 100.0, float("nan")],
            "stop_loss": [95.0, 101.0, 95.0],
            "take_profit": [115.0, 115.0, 115.0],
            "direction": ["long", "long", "long"],
        }
    )
    result = RiskManager().evaluate_batch(signals, FLAT)
    with duckdb.connect() as connection:
        connection.register("decisions", result)
        connection.execute("CREATE TABLE risk_decisions AS SELECT * FROM decisions")
        stored = connection.execute(
            "SELECT accepted, reasons, shares, messages FROM risk_decisions ORDER BY rank"
        ).fetchall()
    assert [row[:3] for row in stored] == [
        (True, "", 200),
        (False, "invalid_input", 0),
        (False, "low_confidence;invalid_price_levels", 0),
    ]
    assert stored[2][3].startswith("confidence 0.50 is below the minimum 0.70; stop_loss 101.00")


def test_stats_count_decisions_from_both_paths():
    rm = RiskManager()
    rm.evaluate(good_signal(), FLAT)
    rm.evaluate(good_signal(confidence=0.5, take_profit=99.0), FLAT)
    batch = pd.DataFrame(
        {
            "ticker": ["MSFT", "TSLA"],
            "confidence": [0.9, 0.2],
            "entry": 100.0,
            "stop_loss": 95.0,
            "take_profit": 115.0,
        }
    )
    rm.evaluate_batch(batch, FLAT)
    stats = rm.stats
    assert (stats.evaluated, stats.accepted, stats.rejected) == (4, 2, 2)
    assert stats.acceptance_rate == 0.5
    assert stats.rejections["low_confidence"] == 2
    assert stats.rejections["invalid_price_levels"] == 1
    assert list(stats.rejections) == CODE_ORDER
    rm.reset_stats()
    assert (rm.stats.evaluated, rm.stats.acceptance_rate) == (0, 0.0)


# -- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    ["entry", "stop_loss", "take_profit"],
)
@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), -100.0, 0.0, "100"])
def test_bad_prices_are_invalid_input_never_an_exception(field, bad):
    decision = decide(good_signal(**{field: bad}))
    assert codes(decision)[0] == "invalid_input"
    assert field in decision.messages[0]
    assert (decision.shares, decision.position_value, decision.risk_dollars) == (0, 0.0, 0.0)


@pytest.mark.parametrize("confidence", [-0.1, 1.01, float("nan"), None, True, "0.9"])
def test_confidence_outside_zero_one_is_invalid_input(confidence):
    decision = decide(good_signal(confidence=confidence))
    assert codes(decision) == ["invalid_input"]
    assert "confidence" in decision.messages[0]


def test_direction_is_case_insensitive_and_anything_else_is_invalid():
    assert decide(good_signal(direction=" SHORT ", stop_loss=105.0, take_profit=85.0)).accepted
    for direction in ("up", "", None, 1):
        assert codes(decide(good_signal(direction=direction))) == ["invalid_input"]
    assert codes(decide(good_signal(ticker="  "))) == ["invalid_input"]


def test_invalid_input_still_reports_the_rules_it_can_evaluate():
    held = PortfolioState(100_000.0, 100_000.0, open_tickers=("AAPL",))
    decision = decide(good_signal(entry=float("nan"), confidence=0.5), held)
    # Confidence and ticker are fine, so their rules still run; the prices cannot be judged.
    assert codes(decision) == ["invalid_input", "low_confidence", "duplicate_position"]
    assert decision.shares == 0
    assert math.isnan(decision.reward_risk)


# -- messages -----------------------------------------------------------------------------------


def test_messages_name_the_numbers():
    assert decide(good_signal(confidence=0.65)).messages == (
        "confidence 0.65 is below the minimum 0.70",
    )
    assert decide(good_signal(take_profit=108.0)).messages == (
        "reward/risk 1.60 is below the minimum 2.00",
    )
    assert decide(good_signal(stop_loss=101.0)).messages == (
        (
            "stop_loss 101.00, entry 100.00, take_profit 115.00: "
            "a long needs stop_loss < entry < take_profit"
        ),
    )
    assert decide(good_signal(), PortfolioState(80_000.0, 100_000.0)).messages == (
        "drawdown 20.00% has reached the maximum 15.00%",
    )


def test_messages_never_round_a_failing_value_onto_the_limit():
    (message,) = decide(good_signal(confidence=0.6999)).messages
    assert message == "confidence 0.6999 is below the minimum 0.70"
    (message,) = decide(good_signal(stop_loss=100.001, take_profit=110.0)).messages
    assert "stop_loss 100.001, entry 100.0" in message


# -- limits and portfolio values ----------------------------------------------------------------


def test_limits_default_to_the_contract_numbers():
    assert RiskLimits().model_dump() == {
        "min_confidence": 0.70,
        "min_reward_risk": 2.0,
        "risk_per_trade": 0.02,
        "max_position_fraction": 0.20,
        "max_positions": 5,
        "max_drawdown": 0.15,
        "drawdown_lookback_sessions": 60,
        "drawdown_stop_sessions": 20,
        "cooldown_sessions": 5,
        "max_daily_loss": 0.03,
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"min_confidence": 0.0},
        {"risk_per_trade": 1.5},
        {"max_position_fraction": -0.2},
        {"max_drawdown": float("nan")},
        {"max_positions": 0},
        {"min_reward_risk": 0},
        {"max_loss": 0.1},
        {"drawdown_lookback_sessions": 0},
        {"drawdown_stop_sessions": 0},
        {"cooldown_sessions": -1},
        {"max_daily_loss": 0.0},
    ],
)
def test_limits_reject_values_outside_their_range(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        RiskLimits(**bad)


def test_limits_from_env_override_by_field_name():
    limits = RiskLimits.from_env(
        {
            "TFT_RISK_MIN_CONFIDENCE": "0.75",
            "TFT_RISK_MAX_POSITIONS": "8",
            "PATH": "/bin",
            "TFT_RISK_MAX_DRAWDOWN": "",
        }
    )
    assert (limits.min_confidence, limits.max_positions, limits.max_drawdown) == (0.75, 8, 0.15)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TFT_RISK_MIN_CONFIDENCE": "1.5"}, "TFT_RISK_MIN_CONFIDENCE='1.5': Input should be less"),
        ({"TFT_RISK_MIN_CONFIDENCE": "abc"}, "TFT_RISK_MIN_CONFIDENCE='abc': Input should be a"),
        (
            {"TFT_RISK_MIN_CONFIDNCE": "0.8"},
            "unknown variable TFT_RISK_MIN_CONFIDNCE (did you mean TFT_RISK_MIN_CONFIDENCE?)",
        ),
        (
            {"TFT_RISK_MAX_POSITION": "3"},
            "unknown variable TFT_RISK_MAX_POSITION (did you mean TFT_RISK_MAX_POSITIONS?)",
        ),
        ({"TFT_RISK_FOO": "1"}, "unknown variable TFT_RISK_FOO (known: TFT_RISK_MIN_CONFIDENCE, "),
    ],
)
def test_limits_from_env_name_the_bad_variable(environ, message):
    with pytest.raises(ValueError) as raised:
        RiskLimits.from_env(environ)
    assert message in str(raised.value)


def test_limits_from_env_report_every_problem_at_once():
    with pytest.raises(ValueError) as raised:
        RiskLimits.from_env({"TFT_RISK_MAXDRAWDOWN": "0.1", "TFT_RISK_MAX_POSITIONS": "0"})
    assert str(raised.value) == (
        "unknown variable TFT_RISK_MAXDRAWDOWN (did you mean TFT_RISK_MAX_DRAWDOWN?); "
        "TFT_RISK_MAX_POSITIONS='0': Input should be greater than or equal to 1"
    )


def test_limits_and_decisions_are_frozen():
    with pytest.raises(ValueError):
        RiskLimits().min_confidence = 0.1
    with pytest.raises(AttributeError):
        decide(good_signal()).shares = 1


@pytest.mark.parametrize(
    ("value", "peak"), [(float("nan"), 1.0), (1.0, 0.0), (1.0, float("inf")), ("x", 1.0)]
)
def test_portfolio_state_rejects_unusable_numbers(value, peak):
    with pytest.raises(ValueError, match="portfolio"):
        PortfolioState(value, peak)


def test_batch_requires_the_signal_columns_and_handles_empty_frames():
    with pytest.raises(KeyError, match="stop_loss"):
        RiskManager().evaluate_batch(pd.DataFrame({"ticker": [], "confidence": []}), FLAT)
    empty = pd.DataFrame(columns=["ticker", "confidence", "entry", "stop_loss", "take_profit"])
    result = RiskManager().evaluate_batch(empty, FLAT)
    assert len(result) == 0
    assert result.dtypes[ADDED_COLUMNS].astype(str).to_dict() == ADDED_DTYPES


ADDED_COLUMNS = ["accepted", "reasons", "messages", "shares", "position_value", "rank"]
ADDED_DTYPES = {
    "accepted": "bool",
    "reasons": "object",
    "messages": "object",
    "shares": "int64",
    "position_value": "float64",
    "rank": "int64",
}


def test_batch_columns_have_storable_dtypes():
    result = RiskManager().evaluate_batch(_as_frame([good_signal(), good_signal(entry=None)]), FLAT)
    assert result.dtypes[ADDED_COLUMNS].astype(str).to_dict() == ADDED_DTYPES


# -- properties ---------------------------------------------------------------------------------

anything = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.booleans(),
    st.text(max_size=5),
)
prices = st.one_of(
    st.sampled_from([100.0, 95.0, 110.0, 115.0, 90.0, 105.0, 85.0, 1.1, 1.0, 1.3]),
    st.floats(min_value=0.01, max_value=1e5),
    st.sampled_from([float("nan"), float("inf"), 0.0, -5.0, None]),
)
confidences = st.one_of(
    st.sampled_from([0.69, 0.70, 0.71, 0.8, 0.9, 0.9, 1.0, 0.0]),
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from([float("nan"), None, 1.5, -0.2]),
)
directions = st.sampled_from(["long", "short", "LONG", " short ", "up", "", None])
tickers = st.sampled_from(["AAPL", "aapl ", "MSFT", "TSLA", "GME", "NVDA", "", None])
skill_figures = st.one_of(
    st.none(),
    st.sampled_from([0.5, 0.0, 0.51, 0.6, -0.01, 0.02, float("nan"), 1.2]),
    st.floats(min_value=-1.0, max_value=1.0),
)
signals = st.builds(
    Signal,
    ticker=tickers,
    confidence=confidences,
    entry=prices,
    stop_loss=prices,
    take_profit=prices,
    direction=directions,
    model_auc=skill_figures,
    model_brier_skill=skill_figures,
)
portfolios = st.builds(
    PortfolioState,
    value=st.floats(min_value=1_000.0, max_value=1e8),
    peak_value=st.floats(min_value=1_000.0, max_value=1e8),
    open_tickers=st.lists(st.sampled_from(["AAPL", "MSFT", "X", "Y", "Z"]), max_size=6).map(tuple),
    halted_until=st.sampled_from([None, None, None, "2024-03-05"]),
    session_return=st.one_of(st.none(), st.floats(min_value=-0.1, max_value=0.1)),
    cooling_down=st.lists(st.sampled_from(["AAPL", "TSLA", "Q"]), max_size=2).map(tuple),
)
limit_sets = st.builds(
    RiskLimits,
    max_positions=st.integers(min_value=1, max_value=6),
    min_confidence=st.sampled_from([0.7, 0.8]),
)


@given(
    ticker=anything,
    confidence=anything,
    entry=anything,
    stop_loss=anything,
    take_profit=anything,
    direction=anything,
    portfolio=portfolios,
)
def test_evaluate_never_raises_and_reports_codes_in_order(
    ticker, confidence, entry, stop_loss, take_profit, direction, portfolio
):
    decision = RiskManager().evaluate(
        Signal(ticker, confidence, entry, stop_loss, take_profit, direction), portfolio
    )
    reported = codes(decision)
    assert reported == sorted(set(reported), key=CODE_ORDER.index)
    assert len(decision.messages) == len(reported)
    assert decision.accepted == (not reported)
    assert decision.shares >= 0


def _rules_hold(signal: Signal, portfolio: PortfolioState, limits: RiskLimits) -> bool:
    """The contract's rules checked from scratch, without the manager's code."""
    values = [signal.confidence, signal.entry, signal.stop_loss, signal.take_profit]
    if not all(isinstance(v, float) and math.isfinite(v) for v in values):
        return False
    confidence, entry, stop, target = values
    direction = signal.direction.strip().lower() if isinstance(signal.direction, str) else None
    ticker = signal.ticker.strip().upper() if isinstance(signal.ticker, str) else ""
    if not ticker or direction not in ("long", "short") or not 0 <= confidence <= 1:
        return False
    if min(entry, stop, target) <= 0 or confidence < limits.min_confidence:
        return False
    ordered = stop < entry < target if direction == "long" else target < entry < stop
    if not ordered or abs(target - entry) / abs(entry - stop) < limits.min_reward_risk - 1e-8:
        return False
    for figure, floor in ((signal.model_auc, 0.5), (signal.model_brier_skill, 0.0)):
        if figure is not None and not (isinstance(figure, float) and floor < figure <= 1.0):
            return False
    loss = -portfolio.session_return if portfolio.session_return is not None else 0.0
    return (
        ticker not in portfolio.open_tickers
        and ticker not in portfolio.cooling_down
        and len(portfolio.open_tickers) < limits.max_positions
        and (portfolio.peak_value - portfolio.value) / portfolio.peak_value
        < limits.max_drawdown + 1e-8
        and portfolio.halted_until is None
        and loss < limits.max_daily_loss + 1e-8
    )


@given(signal=signals, portfolio=portfolios, limits=limit_sets)
def test_accepted_signals_satisfy_every_rule_and_fit_the_budget(signal, portfolio, limits):
    decision = RiskManager(limits).evaluate(signal, portfolio)
    if not decision.accepted:
        return
    assert _rules_hold(signal, portfolio, limits)
    assert decision.shares >= 1
    cap = limits.max_position_fraction * portfolio.value
    budget = limits.risk_per_trade * portfolio.value
    assert decision.position_value <= cap * (1 + TINY)
    assert decision.risk_dollars <= budget * (1 + TINY)
    # The size is the largest whole number of shares within both limits.
    more = decision.shares + 1
    per_share = abs(signal.entry - signal.stop_loss)
    assert more * per_share > budget * (1 + TINY) or more * signal.entry > cap * (1 + TINY)


@given(
    entry=st.floats(min_value=1e-6, max_value=1e9),
    stop_fraction=st.floats(min_value=1e-9, max_value=0.999),
    value=st.floats(min_value=0.0, max_value=1e12),
)
def test_sizing_never_exceeds_the_cap_or_the_risk_budget(entry, stop_fraction, value):
    stop = entry * (1 - stop_fraction)
    target = entry + 3 * (entry - stop)
    decision = decide(good_signal(entry=entry, stop_loss=stop, take_profit=target),
                      PortfolioState(value, max(value, 1.0)))  # fmt: skip
    assert decision.position_value <= 0.20 * value * (1 + TINY)
    assert decision.risk_dollars <= 0.02 * value * (1 + TINY)
    assert decision.position_value == decision.shares * entry


def _as_frame(batch: list[Signal]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "ticker": [s.ticker for s in batch],
            "confidence": [s.confidence for s in batch],
            "entry": [s.entry for s in batch],
            "stop_loss": [s.stop_loss for s in batch],
            "take_profit": [s.take_profit for s in batch],
            "direction": [s.direction for s in batch],
        }
    )
    # Object columns keep None (not provided) apart from NaN (provided, unusable).
    for name in ("model_auc", "model_brier_skill"):
        values = [getattr(s, name) for s in batch]
        if any(value is not None for value in values):
            frame[name] = pd.Series(values, dtype=object)
    return frame


def _processing_order(batch: list[Signal]) -> list[int]:
    def key(index: int) -> float:
        c = batch[index].confidence
        usable = isinstance(c, float) and math.isfinite(c) and 0 <= c <= 1
        return -c if usable else math.inf

    return sorted(range(len(batch)), key=key)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(signals, max_size=12), portfolio=portfolios, limits=limit_sets)
def test_batch_matches_evaluating_one_by_one_most_confident_first(batch, portfolio, limits):
    result = RiskManager(limits).evaluate_batch(_as_frame(batch), portfolio)
    assert (result["accepted"] == (result["reasons"] == "")).all()
    one_by_one = RiskManager(limits)
    state = portfolio
    for rank, index in enumerate(_processing_order(batch), start=1):
        expected = one_by_one.evaluate(batch[index], state)
        row = result.iloc[index]
        assert row["rank"] == rank
        assert bool(row["accepted"]) == expected.accepted
        assert row["reasons"] == ";".join(expected.reasons)
        assert row["messages"] == "; ".join(expected.messages)
        assert row["shares"] == expected.shares
        assert row["position_value"] == expected.position_value
        assert row["risk_dollars"] == expected.risk_dollars
        assert row["reward_risk"] == expected.reward_risk or (
            math.isnan(row["reward_risk"]) and math.isnan(expected.reward_risk)
        )
        if expected.accepted:
            state = state.with_opened(batch[index].ticker)


@settings(max_examples=60)
@given(
    batch=st.lists(
        st.tuples(anything, anything, anything, anything, anything, anything), max_size=6
    ),
    portfolio=portfolios,
)
def test_batch_matches_one_by_one_on_junk_columns(batch, portfolio):
    junk = [Signal(*fields[:6], model_auc=fields[0], model_brier_skill=fields[1]) for fields in batch]
    frame = _as_frame(junk)
    result = RiskManager().evaluate_batch(frame, portfolio)
    ranked = result.sort_values("rank")
    state = portfolio
    manager = RiskManager()
    for index, row in ranked.iterrows():
        expected = manager.evaluate(junk[index], state)
        assert (row["reasons"], row["messages"], row["shares"]) == (
            ";".join(expected.reasons),
            "; ".join(expected.messages),
            expected.shares,
        )
        if expected.accepted:
            state = state.with_opened(junk[index].ticker)


@given(
    batch=st.lists(signals, max_size=8), single=st.lists(signals, max_size=5), portfolio=portfolios
)
def test_stats_add_up(batch, single, portfolio):
    rm = RiskManager()
    decisions = [rm.evaluate(signal, portfolio) for signal in single]
    result = rm.evaluate_batch(_as_frame(batch), portfolio)
    stats = rm.stats
    batch_reasons = [r.split(";") for r in result["reasons"] if r]
    assert stats.evaluated == len(batch) + len(single)
    assert stats.accepted == int(result["accepted"].sum()) + sum(d.accepted for d in decisions)
    assert stats.accepted + stats.rejected == stats.evaluated
    assert sum(stats.rejections.values()) >= stats.rejected
    for code in CODE_ORDER:
        expected = sum(code in d.reasons for d in decisions) + sum(
            code in reasons for reasons in batch_reasons
        )
        assert stats.rejections[code] == expected
    if stats.evaluated:
        assert stats.acceptance_rate == stats.accepted / stats.evaluated


# -- protections and the skill gate ----------------------------------------------------------------


def test_new_codes_come_after_the_seeds_eight_in_this_order():
    assert CODE_ORDER == [
        "invalid_input", "low_confidence", "invalid_price_levels", "low_reward_risk",
        "position_too_small", "duplicate_position", "max_positions", "max_drawdown",
        "no_model_skill", "ticker_cooldown", "daily_loss_limit",
    ]


def test_skill_figures_not_provided_leave_the_rule_unevaluated():
    assert decide(good_signal()).accepted
    assert decide(good_signal(model_auc=0.6, model_brier_skill=0.01)).accepted
    assert decide(good_signal(model_auc=0.51)).accepted  # one figure alone is judged alone


@pytest.mark.parametrize(
    ("auc", "brier", "message"),
    [
        (0.5, 0.05, "AUC 0.50 is not above 0.50, Brier skill 0.05"),
        (0.48, None, "AUC 0.48 is not above 0.50"),
        (0.62, 0.0, "AUC 0.62, Brier skill 0.00 is not above 0.00"),
        (0.62, -0.013, "AUC 0.62, Brier skill -0.01 is not above 0.00"),
        (float("nan"), 0.02, "AUC is missing (NaN), Brier skill 0.02"),
        (0.6, float("nan"), "AUC 0.60, Brier skill is missing (NaN)"),
        (0.4999, None, "AUC 0.4999 is not above 0.50"),
        ("n/a", None, "AUC is missing (NaN)"),
    ],
)
def test_no_model_skill_rejects_and_names_the_figures(auc, brier, message):
    decision = decide(good_signal(model_auc=auc, model_brier_skill=brier))
    assert codes(decision) == ["no_model_skill"]
    assert decision.messages == (f"the model shows no out-of-sample skill: {message}",)
    assert decision.shares == 200  # the size it would have had


def test_a_stopped_out_ticker_cooling_down_is_rejected():
    cooling = PortfolioState(100_000.0, 100_000.0, cooling_down=(" aapl",))
    decision = decide(good_signal(), cooling)
    assert codes(decision) == ["ticker_cooldown"]
    assert decision.messages == ("AAPL was stopped out within the last 5 sessions (cooldown)",)
    assert decide(good_signal(ticker="MSFT"), cooling).accepted
    (message,) = decide(good_signal(), cooling, cooldown_sessions=1).messages
    assert message == "AAPL was stopped out within this session (cooldown)"


def test_a_daily_loss_at_the_limit_is_rejected_not_before():
    assert decide(good_signal(), PortfolioState(97_100.0, 100_000.0, session_return=-0.029)).accepted
    at_limit = PortfolioState(97_000.0, 100_000.0, session_return=97_000.0 / 100_000.0 - 1)
    decision = decide(good_signal(), at_limit)
    assert codes(decision) == ["daily_loss_limit"]
    assert decision.messages == ("the portfolio lost 3.00% this session, the daily loss limit is 3.00%",)
    assert decide(good_signal(), PortfolioState(1e5, 1e5, session_return=0.05)).accepted
    assert codes(decide(good_signal(), at_limit, max_daily_loss=0.05)) == []


def test_a_drawdown_halt_rejects_every_entry_until_it_ends():
    halted = PortfolioState(99_000.0, 100_000.0, halted_until="2024-03-05")
    decision = decide(good_signal(), halted)
    assert codes(decision) == ["max_drawdown"]
    assert decision.messages == (
        (
            "new entries are halted through 2024-03-05: the drawdown from the peak of the last 60 "
            "sessions reached the maximum 15.00%"
        ),
    )
    in_drawdown = PortfolioState(80_000.0, 100_000.0, halted_until=pd.Timestamp("2024-03-05"))
    assert decide(good_signal(), in_drawdown).messages == (
        "drawdown 20.00% has reached the maximum 15.00%, new entries are halted through 2024-03-05",
    )
    assert decide(good_signal(), PortfolioState(99_000.0, 100_000.0, halted_until=pd.NaT)).accepted


def test_every_new_rule_is_reported_after_the_old_ones():
    state = PortfolioState(
        80_000.0, 100_000.0, ("AAPL",), halted_until="2024-03-05", session_return=-0.2,
        cooling_down=("AAPL",),
    )
    decision = decide(good_signal(confidence=0.5, model_auc=0.4), state)
    assert codes(decision) == [
        "low_confidence", "duplicate_position", "max_drawdown", "no_model_skill",
        "ticker_cooldown", "daily_loss_limit",
    ]


def test_portfolio_state_keeps_its_three_argument_form_and_carries_the_protections():
    plain = PortfolioState(100_000.0, 100_000.0, ("AAPL",))
    assert (plain.halted_until, plain.session_return, plain.cooling_down) == (None, None, ())
    state = PortfolioState(1e5, 1e5, halted_until="2024-03-05", session_return=-0.01, cooling_down=("x",))
    opened = state.with_opened("MSFT")
    assert opened.open_tickers == ("MSFT",) and opened.cooling_down == ("X",)
    assert opened.halted_until == pd.Timestamp("2024-03-05").date() and opened.session_return == -0.01
    with pytest.raises(ValueError, match="session_return"):
        PortfolioState(1e5, 1e5, session_return=float("nan"))
    with pytest.raises(ValueError, match="halted_until"):
        PortfolioState(1e5, 1e5, halted_until="soon")
    with pytest.raises(TypeError, match="cooling_down"):
        PortfolioState(1e5, 1e5, cooling_down="AAPL")


def test_batch_reads_the_skill_columns_when_present():
    signals = _as_frame([good_signal(), good_signal(ticker="MSFT", confidence=0.9)])
    assert RiskManager().evaluate_batch(signals, FLAT)["accepted"].all()  # absent: not evaluated
    signals["model_auc"] = [0.55, 0.45]
    signals["model_brier_skill"] = [0.01, float("nan")]
    result = RiskManager().evaluate_batch(signals, FLAT)
    assert result["reasons"].tolist() == ["", "no_model_skill"]
    assert result["messages"].iloc[1] == (
        "the model shows no out-of-sample skill: AUC 0.45 is not above 0.50, Brier skill is missing (NaN)"
    )


def test_new_limits_come_from_the_environment():
    limits = RiskLimits.from_env(
        {
            "TFT_RISK_DRAWDOWN_LOOKBACK_SESSIONS": "30",
            "TFT_RISK_DRAWDOWN_STOP_SESSIONS": "5",
            "TFT_RISK_COOLDOWN_SESSIONS": "0",
            "TFT_RISK_MAX_DAILY_LOSS": "0.05",
        }
    )
    assert (
        limits.drawdown_lookback_sessions, limits.drawdown_stop_sessions, limits.cooldown_sessions,
        limits.max_daily_loss,
    ) == (30, 5, 0, 0.05)
    with pytest.raises(ValueError, match="did you mean TFT_RISK_COOLDOWN_SESSIONS"):
        RiskLimits.from_env({"TFT_RISK_COOLDOWN_SESSION": "3"})


def test_large_batch_fills_each_slot_with_the_best_signal_of_a_new_ticker():
    rng = np.random.default_rng(3)
    n = 20_000
    entry = rng.uniform(10, 500, n)
    frame = pd.DataFrame(
        {
            "ticker": rng.choice(["AAPL", "MSFT", "TSLA", "NVDA", "GME", "AMC", "PLTR"], n),
            "confidence": rng.uniform(0.5, 1.0, n),
            "entry": entry,
            "stop_loss": entry * 0.95,
            "take_profit": entry * rng.uniform(1.05, 1.2, n),
        }
    )
    held = PortfolioState(1e6, 1e6, open_tickers=("AAPL",))
    result = RiskManager().evaluate_batch(frame, held)
    slot_rules_only = result["reasons"].map(
        lambda r: set(r.split(";")) <= {"", "duplicate_position", "max_positions"}
    )
    eligible = result[slot_rules_only & (result["ticker"] != "AAPL")]
    best_per_ticker = eligible.sort_values("rank").drop_duplicates("ticker").head(4)
    assert sorted(result.index[result["accepted"]]) == sorted(best_per_ticker.index)


def test_quick_benchmark_reports_both_rates():
    from bench.bench_risk import run

    figures = run(quick=True)

    assert figures["signals"] == figures["evaluate_batch_sessions"] * figures["session_signals"]
    assert figures["evaluate_signals_per_s"] > 0
    assert figures["evaluate_batch_signals_per_s"] > 0
    assert figures["evaluate_batch_ms_per_session"] > 0
