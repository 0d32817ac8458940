"""Tests of the paper portfolio: fills at the next open, cash, exits, protections, equity
identities, resumability, the risk state it feeds."""

from __future__ import annotations

from functools import cache, lru_cache

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_pipeline.backtest import backtest_report
from tft_pipeline.model import BarrierRule, signal_frame
from tft_pipeline.model.synthetic import synthetic_market
from tft_pipeline.portfolio import (
    EQUITY_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    PaperPortfolio,
    PortfolioConfig,
    fill_orders,
    run_paper_portfolio,
)
from tft_pipeline.risk import PortfolioState, RiskLimits, RiskManager
from tft_pipeline.trading_calendar import next_session, sessions_between

SESSIONS = sessions_between("2024-02-01", "2024-03-28")
D0, D1 = SESSIONS[0], SESSIONS[1]  # a signal of D0 fills at D1's open


def flat_prices(tickers=("AAA", "BBB"), price=100.0, sessions=SESSIONS) -> pd.DataFrame:
    """Bars that never move: open = high = low = close = ``price``."""
    index = pd.MultiIndex.from_product([tickers, sessions], names=["ticker", "session_date"])
    frame = pd.DataFrame(index=index).reset_index()
    for column in ("open", "high", "low", "close", "adj_close"):
        frame[column] = price
    frame["volume"] = 1_000_000
    return frame


def set_bar(prices: pd.DataFrame, ticker: str, session, **values) -> pd.DataFrame:
    prices = prices.copy()
    row = (prices.ticker == ticker) & (prices.session_date == pd.Timestamp(session))
    for column, value in values.items():
        prices.loc[row, column] = value
    return prices


def signal(ticker="AAA", session=D0, entry=100.0, atr=5.0, confidence=0.8) -> pd.DataFrame:
    """A long signal: stop entry − ATR, target entry + 2·ATR (100 → 95 / 110 by default)."""
    rows = pd.DataFrame(
        {
            "ticker": [ticker],
            "session_date": [pd.Timestamp(session)],
            "close": [entry],
            "atr_14": [atr],
        }
    )
    return with_skill(signal_frame(rows, np.array([confidence]), "test_model", "v1", BarrierRule()))


def with_skill(signals: pd.DataFrame) -> pd.DataFrame:
    """Signals of a model with out-of-sample skill, so the skill gate lets them through."""
    return signals.assign(model_auc=0.6, model_brier_skill=0.02)


# Exact arithmetic in the tests of exits and identities; costs have tests of their own.
FRICTIONLESS = PortfolioConfig(commission_bps=0.0, slippage_bps=0.0)
AT_THE_CLOSE = PortfolioConfig(commission_bps=0.0, slippage_bps=0.0, fill_at="close")


def run(signals, prices, sessions=SESSIONS[:15], previous=None, risk=None, config=FRICTIONLESS):
    return run_paper_portfolio(signals, prices, sessions, risk or RiskManager(), previous, config)


def only_position(result: PaperPortfolio) -> pd.Series:
    assert len(result.positions) == 1
    return result.positions.iloc[0]


# --- fills at the next open ------------------------------------------------------------------------


def test_a_signal_decided_at_the_close_fills_at_the_next_open_with_the_decided_size():
    result = run(signal(), flat_prices())
    position = only_position(result)
    # 2 % of 100,000 at 5 risk per share is 400 shares, capped at 20 % of the value: 200 shares.
    assert (position.signal_date, position.opened_on) == (D0, D1)
    assert position.shares == position.ordered_shares == 200 and position.entry == 100.0
    assert position.stop_loss == 95.0 and position.take_profit == 110.0
    assert position.fill_note is None and position.expires_on == SESSIONS[11]
    assert result.decisions.accepted.tolist() == [True]
    decided_day, fill_day = result.equity.iloc[0], result.equity.iloc[1]
    assert decided_day.cash == 100_000 and decided_day.open_positions == 0
    assert (fill_day.cash, fill_day.market_value, fill_day.equity) == (80_000, 20_000, 100_000)


@pytest.mark.parametrize("gap_open", [102.0, 90.0])
def test_the_fill_is_the_open_and_the_bracket_keeps_its_distances(gap_open):
    # The signal: entry 100, stop 95, target 110. D1 opens elsewhere; the bracket moves with it.
    prices = set_bar(
        flat_prices(), "AAA", D1, open=gap_open, high=gap_open + 1, low=gap_open - 1, close=gap_open
    )
    position = only_position(run(signal(), prices, sessions=SESSIONS[:2]))
    assert position.entry == gap_open
    assert position.stop_loss == gap_open - 5.0 and position.take_profit == gap_open + 10.0
    reward_risk = (position.take_profit - position.entry) / (position.entry - position.stop_loss)
    assert reward_risk == pytest.approx(2.0)
    # Still sized no larger than decided nor than 20 % of equity at the fill (100,000 at D1's open).
    assert position.shares == min(200, int(20_000 // gap_open))
    assert position.risk_dollars == pytest.approx(position.shares * 5.0)
    # A gap below the signal's stop (95) is no stop: the position lives from its fill on.
    assert pd.isna(position.closed_on)


def test_a_short_fill_mirrors_the_bracket():
    prices = set_bar(flat_prices(), "AAA", D1, open=97.0, high=98.0, low=96.0, close=97.0)
    position = only_position(run(short_signal(), prices, sessions=SESSIONS[:2]))
    assert (position.entry, position.stop_loss, position.take_profit) == (97.0, 102.0, 87.0)


def test_a_resize_to_twenty_percent_of_equity_at_the_fill_is_noted():
    prices = set_bar(flat_prices(), "AAA", D1, open=104.0, high=105.0, low=103.0, close=104.0)
    position = only_position(run(signal(), prices, sessions=SESSIONS[:2]))
    assert (position.ordered_shares, position.shares) == (200, 192)  # 20,000 / 104 = 192.3
    assert position.fill_note == "resized from 200 to 192 shares: 20% of equity 100,000.00 at 104.00"


def test_no_bar_on_the_fill_session_leaves_the_order_visibly_not_filled():
    prices = flat_prices()
    prices = prices[~((prices.ticker == "AAA") & (prices.session_date == D1))]
    result = run(signal(), prices, sessions=SESSIONS[:4])
    row = only_position(result)
    assert (row.exit_reason, row.shares, row.ordered_shares) == ("not_filled", 0, 200)
    assert (row.signal_date, row.opened_on, row.closed_on) == (D0, D1, D1)
    assert row.fill_note == "not filled: no AAA bar on 2024-02-02 to fill at"
    assert np.isnan(row.entry) and row.pnl == 0.0 and row.entry_costs == 0.0
    assert (result.equity.equity == 100_000).all() and (result.equity.open_positions == 0).all()
    # The backtest counts it as an unfilled order, not as a trade.
    report = backtest_report(result.equity, result.positions, prices, initial_equity=100_000)
    assert (report.trades, report.open_positions, report.unfilled_orders) == (0, 0, 1)


def test_the_fill_bar_itself_can_reach_the_stop():
    prices = set_bar(flat_prices(), "AAA", D1, low=94.0, close=96.0)
    position = only_position(run(signal(), prices, sessions=SESSIONS[:3]))
    assert position.opened_on == position.closed_on == D1
    assert position.exit_reason == "stop" and position.exit_price == 95.0


def test_a_fill_bar_reaching_both_barriers_closes_at_the_stop():
    prices = set_bar(flat_prices(), "AAA", D1, low=94.0, high=112.0)
    position = only_position(run(signal(), prices, sessions=SESSIONS[:3]))
    assert (position.closed_on, position.exit_reason, position.exit_price) == (D1, "stop", 95.0)


def test_orders_fill_most_confident_first_and_the_cash_resizes_the_rest():
    # Half of equity per position and no cap from the risk budget: two orders of 500 shares at 100.
    limits = RiskLimits(max_position_fraction=0.5, risk_per_trade=0.5)
    signals = pd.concat(
        [signal("AAA", confidence=0.8), signal("BBB", confidence=0.9), signal("CCC", confidence=0.75)],
        ignore_index=True,
    )
    config = PortfolioConfig(commission_bps=1.0, slippage_bps=5.0)
    result = run(signals, flat_prices(("AAA", "BBB", "CCC")), SESSIONS[:2], risk=RecordingGate(limits), config=config)
    assert result.decisions.accepted.tolist() == [True, True, True]
    rows = result.positions.set_index("ticker")
    # BBB (0.9) fills first in full; AAA gets the buying power left: 100,000 − 50,000 × 1.0006.
    assert rows.shares["BBB"] == 500 and rows.fill_note["BBB"] is None
    assert rows.shares["AAA"] == 499 == int(49_970 // (100 * 1.0006))
    assert rows.fill_note["AAA"] == "resized from 500 to 499 shares: buying power 49,970.00 at 100.00"
    # Nothing is left for CCC: visibly not filled.
    assert (rows.exit_reason["CCC"], rows.shares["CCC"]) == ("not_filled", 0)
    assert rows.fill_note["CCC"].startswith("not filled: buying power ")
    day = result.equity.iloc[-1]
    assert day.cash >= 0 and day.market_value <= day.equity


def test_close_fills_at_the_signals_close_and_its_bar_never_closes_it():
    prices = set_bar(flat_prices(), "AAA", D0, low=80.0, high=130.0)
    result = run(signal(), prices, sessions=SESSIONS[:3], config=AT_THE_CLOSE)
    position = only_position(result)
    assert position.signal_date == position.opened_on == D0 and position.entry == 100.0
    assert position.shares == 200 and pd.isna(position.closed_on)
    assert result.equity.cash.iloc[0] == 80_000


# --- exits ------------------------------------------------------------------------------------


def test_the_stop_closes_a_position_at_the_stop_level():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[3], low=94.0, close=96.0)
    position = only_position(run(signal(), prices))
    assert position.exit_reason == "stop" and position.closed_on == SESSIONS[3]
    assert position.exit_price == 95.0 and position.pnl == pytest.approx(200 * -5.0)


def test_the_target_closes_a_position_at_the_target_level():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], high=111.0, close=109.0)
    position = only_position(run(signal(), prices))
    assert position.exit_reason == "target" and position.closed_on == SESSIONS[2]
    assert position.exit_price == 110.0 and position.pnl == pytest.approx(200 * 10.0)


def test_a_bar_reaching_both_barriers_closes_at_the_stop():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], high=112.0, low=94.0)
    position = only_position(run(signal(), prices))
    assert position.exit_reason == "stop" and position.exit_price == 95.0


def test_a_gap_through_the_stop_fills_at_the_open():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], open=90.0, high=91.0, low=88.0, close=89.0)
    position = only_position(run(signal(), prices))
    assert position.exit_reason == "stop" and position.exit_price == 90.0
    assert position.pnl == pytest.approx(200 * -10.0)


def test_a_gap_over_the_target_fills_at_the_open():
    prices = set_bar(
        flat_prices(), "AAA", SESSIONS[2], open=113.0, high=115.0, low=112.0, close=114.0
    )
    position = only_position(run(signal(), prices))
    assert position.exit_reason == "target" and position.exit_price == 113.0


def test_a_position_without_a_touch_expires_ten_sessions_after_its_fill():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[11], close=103.0, high=104.0)
    position = only_position(run(signal(), prices))
    assert position.expires_on == SESSIONS[11]  # filled on D1: expiry counts from the fill
    assert position.exit_reason == "expiry" and position.closed_on == SESSIONS[11]
    assert position.exit_price == 103.0 and position.pnl == pytest.approx(600.0)


def test_a_missing_bar_neither_closes_nor_unmarks_a_position():
    prices = set_bar(flat_prices(), "AAA", D1, close=104.0, high=104.0)
    prices = prices[~((prices.ticker == "AAA") & (prices.session_date == SESSIONS[2]))]
    result = run(signal(), prices, sessions=SESSIONS[:4])
    assert pd.isna(only_position(result).closed_on)
    # Session 2 has no AAA bar: the position is marked at the last close known, 104.
    assert result.equity.market_value.tolist() == [0, 20_800, 20_800, 20_000]


def test_a_rejected_signal_opens_nothing():
    result = run(signal(confidence=0.5), flat_prices())
    assert result.positions.empty
    assert result.decisions.reasons.tolist() == ["low_confidence"]
    assert (result.equity.equity == 100_000).all()


# --- shorts --------------------------------------------------------------------------------------


def short_signal(ticker="AAA", session=D0, entry=100.0, atr=5.0, confidence=0.8) -> pd.DataFrame:
    """A short: stop entry + ATR, target entry − 2·ATR (100 → 105 / 90 by default)."""
    frame = signal(ticker, session, entry, atr, confidence)
    return frame.assign(direction="short", stop_loss=entry + atr, take_profit=entry - 2 * atr)


def test_a_short_whose_price_falls_to_its_target_gains():
    # The bug this pins: a short at 100 with the price falling closed as a stop at a loss.
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], low=89.0, high=96.0, close=95.0)
    position = only_position(run(short_signal(), prices))
    assert position.direction == "short" and position.shares == 200
    assert position.exit_reason == "target" and position.exit_price == 90.0
    assert position.pnl == pytest.approx(200 * 10.0)


def test_a_short_whose_price_rises_to_its_stop_loses_one_r():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[3], high=106.0, close=104.0)
    position = only_position(run(short_signal(), prices))
    assert position.exit_reason == "stop" and position.exit_price == 105.0
    assert position.pnl == pytest.approx(-position.risk_dollars) == pytest.approx(200 * -5.0)


def test_a_short_gapping_up_through_its_stop_fills_at_the_open():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], open=108.0, high=110.0, low=107.0, close=109.0)
    position = only_position(run(short_signal(), prices))
    assert position.exit_reason == "stop" and position.exit_price == 108.0
    assert position.pnl == pytest.approx(200 * -8.0)


def test_a_short_gapping_down_through_its_target_fills_at_the_open():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], open=85.0, high=86.0, low=84.0, close=85.0)
    position = only_position(run(short_signal(), prices))
    assert position.exit_reason == "target" and position.exit_price == 85.0


def test_an_open_short_is_marked_against_the_portfolio_as_the_price_moves():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], high=103.0, low=97.0, close=102.0)
    result = run(short_signal(), prices, sessions=SESSIONS[:3])
    opened, marked = result.equity.iloc[1], result.equity.iloc[2]
    # Proceeds in cash, the shares owed as negative market value: equity unchanged on entry.
    assert opened.cash == 120_000 and opened.market_value == -20_000 and opened.equity == 100_000
    assert marked.equity == pytest.approx(100_000 - 200 * 2.0)  # the price rose 2: the short lost 400


# --- the state the risk manager sees --------------------------------------------------------------


class RecordingGate:
    """The real risk manager, recording the portfolio state each session was judged against."""

    def __init__(self, limits: RiskLimits | None = None):
        self.manager = RiskManager(limits)
        self.limits = self.manager.limits
        self.states: dict[pd.Timestamp, PortfolioState] = {}

    def evaluate_batch(self, signals, portfolio):
        self.states[pd.Timestamp(signals.session_date.iloc[0])] = portfolio
        return self.manager.evaluate_batch(signals, portfolio)


def test_session_d_is_judged_at_its_close_after_its_exits():
    # AAA fills on D1 and reaches its target on D3. An AAA signal on D2 is a duplicate (held at
    # D2's close); one on D3 is judged after D3's exit, so it is accepted and fills on D4.
    prices = set_bar(flat_prices(), "AAA", SESSIONS[3], high=111.0, close=110.0)
    prices = set_bar(prices, "AAA", SESSIONS[2], close=104.0)
    signals = pd.concat(
        [signal("AAA", D0), signal("AAA", SESSIONS[2]), signal("AAA", SESSIONS[3])],
        ignore_index=True,
    )
    gate = RecordingGate()
    result = run(signals, prices, sessions=SESSIONS[:6], risk=gate)
    equity = result.equity.set_index("session_date")

    assert gate.states[D0] == PortfolioState(100_000.0, 100_000.0, (), session_return=0.0)
    on_d2 = gate.states[SESSIONS[2]]
    assert on_d2.value == equity.equity[SESSIONS[2]] == 100_800.0  # 200 shares marked at 104
    assert on_d2.open_tickers == ("AAA",)
    on_d3 = gate.states[SESSIONS[3]]
    assert on_d3.open_tickers == () and on_d3.value == 102_000.0 == on_d3.peak_value
    assert on_d3.session_return == pytest.approx(102_000 / 100_800 - 1)
    decisions = result.decisions.set_index("session_date")
    assert decisions.reasons[SESSIONS[2]] == "duplicate_position"
    assert bool(decisions.accepted[SESSIONS[3]])
    second = result.positions[result.positions.signal_date == SESSIONS[3]].iloc[0]
    # Decided on D3's equity (102,000: 20 % of it at 100 is 204 shares), filled at D4's open.
    assert second.opened_on == SESSIONS[4] and second.shares == 204


def big_bet(ticker="AAA", session=D0) -> pd.DataFrame:
    """A signal sized to the whole portfolio under ``ALL_IN``: 1,000 shares at 100, stop at 80."""
    return signal(ticker, session, atr=20.0)


ALL_IN = {"max_position_fraction": 1.0, "risk_per_trade": 0.2}


def test_a_drawdown_halt_lasts_its_stop_duration_then_trading_resumes():
    limits = RiskLimits(
        **ALL_IN, max_drawdown=0.05, drawdown_lookback_sessions=5, drawdown_stop_sessions=3,
        max_daily_loss=0.5,
    )
    # AAA fills on D1 with all the cash and falls 7 % on D2, then stays there.
    prices = flat_prices(("AAA", "BBB"))
    for day in SESSIONS[2:]:
        prices = set_bar(prices, "AAA", day, open=93.0, high=93.0, low=93.0, close=93.0)
    signals = pd.concat(
        [big_bet(), *(signal("BBB", day) for day in SESSIONS[2:6])], ignore_index=True
    )
    result = run(signals, prices, sessions=SESSIONS[:7], risk=RecordingGate(limits))
    bbb = result.decisions[result.decisions.ticker == "BBB"].set_index("session_date")
    assert bbb.reasons.tolist() == ["max_drawdown"] * 3 + [""]
    assert bbb.messages[SESSIONS[2]] == (
        "drawdown 7.00% has reached the maximum 5.00%, new entries are halted through 2024-02-07"
    )
    assert bbb.messages[SESSIONS[3]] == (
        "new entries are halted through 2024-02-07: the drawdown from the peak of the last 5 "
        "sessions reached the maximum 5.00%"
    )
    equity = result.equity.set_index("session_date")
    assert equity.halted_until[SESSIONS[2]] == equity.halted_until[SESSIONS[4]] == SESSIONS[4]
    assert pd.isna(equity.halted_until[SESSIONS[5]])
    assert (equity.halt_started_on[SESSIONS[2]:] == SESSIONS[2]).all()
    # After the halt the window starts at the session that triggered it: no drawdown since.
    assert equity.window_drawdown[SESSIONS[5]] == 0.0
    assert equity.window_drawdown[SESSIONS[2]] == pytest.approx(0.07)
    # The all-time figures stay as the contract defines them.
    assert equity.drawdown[SESSIONS[5]] == pytest.approx(0.07)


def test_the_drawdown_window_forgets_a_peak_older_than_the_lookback():
    limits = RiskLimits(**ALL_IN, max_drawdown=0.05, drawdown_lookback_sessions=3, max_daily_loss=0.5)
    # AAA rises to 110 on D2, then falls back one point a session: never 5 % below any peak of
    # the last three sessions, though 5.5 % below the all-time peak by D8.
    prices = flat_prices(("AAA", "BBB"))
    closes = [100, 100, 110, 108, 106, 105, 104.5, 104, 103.9]
    for day, close in zip(SESSIONS, closes, strict=False):
        prices = set_bar(prices, "AAA", day, open=close, high=close, low=close, close=close)
    signals = pd.concat([big_bet(), signal("BBB", SESSIONS[8])], ignore_index=True)
    result = run(signals, prices, sessions=SESSIONS[:9], risk=RecordingGate(limits))
    equity = result.equity.set_index("session_date")
    assert equity.drawdown[SESSIONS[8]] == pytest.approx(1 - 103.9 / 110)
    assert equity.drawdown[SESSIONS[8]] > 0.05
    assert equity.window_peak_equity[SESSIONS[8]] == pytest.approx(100_000 + 1000 * 5.0)
    assert equity.halted_until.isna().all()
    assert result.decisions.set_index("ticker").reasons["BBB"] == ""


def test_a_ticker_stopped_out_cools_down_for_its_sessions():
    limits = RiskLimits(cooldown_sessions=3)
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], low=94.0, close=96.0)  # stopped out on D2
    signals = pd.concat(
        [signal("AAA", D0), *(signal("AAA", day) for day in SESSIONS[2:6])], ignore_index=True
    )
    gate = RecordingGate(limits)
    result = run(signals, prices, sessions=SESSIONS[:7], risk=gate)
    later = result.decisions[result.decisions.session_date > D0]
    assert later.reasons.tolist() == ["ticker_cooldown"] * 3 + [""]
    assert later.messages.iloc[0] == "AAA was stopped out within the last 3 sessions (cooldown)"
    assert gate.states[SESSIONS[4]].cooling_down == ("AAA",) and gate.states[SESSIONS[5]].cooling_down == ()


def test_a_target_exit_does_not_cool_a_ticker_down():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], high=111.0, close=110.0)
    signals = pd.concat([signal("AAA", D0), signal("AAA", SESSIONS[2])], ignore_index=True)
    result = run(signals, prices, sessions=SESSIONS[:4])
    assert result.decisions.reasons.tolist() == ["", ""]


def test_a_daily_loss_past_the_limit_stops_that_sessions_entries():
    limits = RiskLimits(**ALL_IN)
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], low=96.0, close=96.0)  # −4 % of equity
    for day in SESSIONS[3:]:
        prices = set_bar(prices, "AAA", day, open=96.0, high=96.0, low=96.0, close=96.0)
    signals = pd.concat([big_bet(), signal("BBB", SESSIONS[2]), signal("BBB", SESSIONS[3])], ignore_index=True)
    result = run(signals, prices, sessions=SESSIONS[:4], risk=RecordingGate(limits))
    bbb = result.decisions[result.decisions.ticker == "BBB"]
    assert bbb.reasons.tolist() == ["daily_loss_limit", ""]
    assert bbb.messages.iloc[0] == "the portfolio lost 4.00% this session, the daily loss limit is 3.00%"
    assert result.equity.session_return.tolist() == pytest.approx([0.0, 0.0, -0.04, 0.0])


# --- cash: gross exposure never exceeds equity ----------------------------------------------------


orders_strategy = st.lists(
    st.tuples(
        st.sampled_from(["long", "short"]),
        st.floats(min_value=1.0, max_value=500.0),  # signal entry
        st.floats(min_value=0.01, max_value=0.5),  # stop distance, a fraction of the entry
        st.integers(min_value=1, max_value=5_000),  # decided shares
        st.floats(min_value=0.5, max_value=2.0),  # fill price / entry: the gap
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    orders=orders_strategy,
    equity=st.floats(min_value=1_000.0, max_value=1e6),
    exposure=st.floats(min_value=0.0, max_value=1.2),
    fraction=st.floats(min_value=0.05, max_value=1.0),
    cost_bps=st.floats(min_value=0.0, max_value=50.0),
)
def test_fills_never_take_gross_exposure_past_equity(orders, equity, exposure, fraction, cost_bps):
    config = PortfolioConfig(commission_bps=cost_bps, slippage_bps=0.0)
    frame = pd.DataFrame(
        [
            {
                "session_date": D0, "ticker": f"T{i}", "direction": direction, "confidence": 0.8,
                "entry": entry,
                "stop_loss": entry * (1 - distance if direction == "long" else 1 + distance),
                "take_profit": entry * (1 + 2 * distance if direction == "long" else 1 - 2 * distance / 3),
                "shares": shares, "risk_dollars": 0.0, "rank": i + 1, "model": "m", "model_version": "v",
            }
            for i, (direction, entry, distance, shares, _) in enumerate(orders)
        ],
        columns=list(ORDER_COLUMNS),
    )
    prices = np.array([entry * gap for _, entry, _, _, gap in orders], dtype="float64")
    gross = exposure * equity
    rows, cash = fill_orders(
        frame, prices, D1, equity, equity - gross, 50_000.0, RiskLimits(max_position_fraction=fraction), config
    )
    filled = rows[rows.shares > 0]
    value = (filled.shares * filled.entry).to_numpy()
    costs = filled.entry_costs.sum()
    assert gross + value.sum() <= equity - costs + 1e-6 * equity or filled.empty
    assert (value <= fraction * equity * (1 + 1e-9)).all()
    assert (rows.shares <= rows.ordered_shares).all()
    assert ((rows.exit_reason == "not_filled") == (rows.shares == 0)).all()
    assert rows.fill_note[rows.shares < rows.ordered_shares].notna().all()
    signed = np.where(filled.direction == "short", -value, value)
    assert cash == pytest.approx(50_000.0 - signed.sum() - costs)


@lru_cache(maxsize=1)
def gappy_market():
    """The busy market with random gaps at the opens (within each bar's range)."""
    prices, signals, sessions = busy_market()
    rng = np.random.default_rng(11)
    prices = prices.copy()
    prices["open"] = prices["low"] + rng.uniform(0, 1, len(prices)) * (prices["high"] - prices["low"])
    return prices, signals, sessions


@settings(max_examples=8, deadline=None)
@given(
    fraction=st.sampled_from([0.2, 0.5, 1.0]),
    risk_per_trade=st.sampled_from([0.02, 0.2, 1.0]),
    max_positions=st.integers(min_value=1, max_value=8),
    cost_bps=st.sampled_from([0.0, 6.0, 40.0]),
    fill_at=st.sampled_from(["next_open", "close"]),
)
def test_over_a_run_cash_never_goes_negative_so_longs_never_exceed_equity(
    fraction, risk_per_trade, max_positions, cost_bps, fill_at
):
    prices, signals, sessions = gappy_market()
    limits = RiskLimits(
        min_confidence=0.6, max_position_fraction=fraction, risk_per_trade=risk_per_trade,
        max_positions=max_positions,
    )
    config = PortfolioConfig(commission_bps=cost_bps, slippage_bps=0.0, fill_at=fill_at)
    result = run_paper_portfolio(signals, prices, sessions[:30], RiskManager(limits), config=config)
    equity = result.equity
    # Long only: gross exposure is the market value, and it fits in equity while cash >= 0.
    assert (equity.cash >= -1e-6).all()
    assert (equity.market_value <= equity.equity + 1e-6).all()
    assert (result.positions.shares <= result.positions.ordered_shares).all()


# --- equity identities and resumability -----------------------------------------------------------


@lru_cache(maxsize=1)
def busy_market():
    """Synthetic prices, and signals on every ticker and session with made-up confidences."""
    market = synthetic_market(12, 90, seed=5)
    snapshots = market.snapshots.dropna(subset=["atr_14"])
    confidence = np.random.default_rng(1).uniform(0.55, 0.95, size=len(snapshots))
    signals = with_skill(signal_frame(snapshots, confidence, "test_model", "v1", BarrierRule()))
    sessions = pd.DatetimeIndex(signals.session_date.drop_duplicates().sort_values())
    return market.prices, signals, sessions


@cache
def full_run(sessions_count: int | None = None, fill_at: str = "next_open") -> PaperPortfolio:
    prices, signals, sessions = gappy_market()
    config = PortfolioConfig(fill_at=fill_at)
    return run_paper_portfolio(signals, prices, sessions[:sessions_count], RiskManager(), config=config)


def test_equity_is_cash_plus_positions_marked_to_the_close_with_a_running_peak():
    prices = gappy_market()[0]
    result = full_run()
    equity, positions = result.equity, result.positions
    assert list(equity.columns) == list(EQUITY_COLUMNS) and list(positions.columns) == list(
        POSITION_COLUMNS
    )
    assert len(positions) > 20 and set(positions.exit_reason.dropna()) >= {
        "stop",
        "target",
        "expiry",
    }
    # Every accepted order has one position row, filled or not, at the next session's open.
    orders = result.decisions[result.decisions.accepted & (result.decisions.session_date < equity.session_date.max())]
    assert len(orders) == len(positions)
    assert (positions.opened_on == positions.signal_date.map(next_session)).all()
    np.testing.assert_allclose(equity.equity, equity.cash + equity.market_value)
    peak = np.maximum.accumulate(np.concatenate([[100_000.0], equity.equity]))[1:]
    np.testing.assert_allclose(equity.peak_equity, peak)
    np.testing.assert_allclose(
        equity.drawdown, (equity.peak_equity - equity.equity) / equity.peak_equity
    )
    closes = prices.set_index(["session_date", "ticker"]).close
    for _, row in equity.iloc[
        ::7
    ].iterrows():  # a sample of sessions, checked from first principles
        day = row.session_date
        held = positions[(positions.opened_on <= day) & ~(positions.closed_on <= day)]
        assert row.open_positions == len(held) <= 5
        marked = (held.shares * closes.loc[[(day, t) for t in held.ticker]].to_numpy()).sum()
        assert row.market_value == pytest.approx(marked)
        realized = positions.loc[positions.closed_on <= day, "pnl"].sum()  # after costs
        paid_in = (held.shares * held.entry + held.entry_costs).sum()
        assert row.cash == pytest.approx(100_000 + realized - paid_in)
    closed = positions.dropna(subset=["closed_on"])
    closed = closed[closed.exit_reason != "not_filled"]
    np.testing.assert_allclose(closed.gross_pnl, closed.shares * (closed.exit_price - closed.entry))
    # Costs are charged on both fills at the default rates (1 bp commission + 5 bp slippage a side).
    rate = PortfolioConfig().cost_rate
    assert rate == pytest.approx(0.0006)
    np.testing.assert_allclose(closed.entry_costs, closed.shares * closed.entry * rate)
    np.testing.assert_allclose(closed.exit_costs, closed.shares * closed.exit_price * rate)
    np.testing.assert_allclose(closed.pnl, closed.gross_pnl - closed.entry_costs - closed.exit_costs)
    assert (closed.closed_on >= closed.opened_on).all() and (
        closed.closed_on <= closed.expires_on
    ).all()
    assert (closed.closed_on == closed.opened_on).any()  # some fills meet their stop or target at once


def through_duckdb(result: PaperPortfolio) -> PaperPortfolio:
    """The ledger written to and read back from DuckDB, as the pipeline stores it between runs."""
    with duckdb.connect() as connection:
        positions, equity = result.positions, result.equity  # noqa: F841 - read by DuckDB by name
        connection.execute("create table positions as select * from positions")
        connection.execute("create table equity as select * from equity")
        return PaperPortfolio.from_tables(
            connection.execute("select * from positions").df(),
            connection.execute("select * from equity").df(),
            result.decisions,  # as the pipeline reads signals.risk_decisions back
        )


@pytest.mark.parametrize("fill_at", ["next_open", "close"])
def test_one_call_over_a_range_equals_one_call_per_session_resumed_from_stored_tables(fill_at):
    prices, signals, sessions = gappy_market()
    in_one_call = full_run(30, fill_at)
    assert in_one_call.positions.closed_on.notna().sum() >= 5
    ledger, decisions = None, []
    config = PortfolioConfig(fill_at=fill_at)
    for day in sessions[:30]:
        step = run_paper_portfolio(signals, prices, [day], RiskManager(), ledger, config)
        decisions.append(step.decisions)
        ledger = through_duckdb(step)
    pd.testing.assert_frame_equal(ledger.positions, in_one_call.positions)
    pd.testing.assert_frame_equal(ledger.equity, in_one_call.equity)
    pd.testing.assert_frame_equal(pd.concat(decisions, ignore_index=True), in_one_call.decisions)


def test_reprocessing_sessions_rewinds_to_the_state_before_them():
    prices, signals, sessions = gappy_market()
    in_one_call = full_run()
    again = run_paper_portfolio(signals, prices, sessions[-25:-10], RiskManager(), in_one_call)
    expected_equity = in_one_call.equity[in_one_call.equity.session_date <= sessions[-11]]
    pd.testing.assert_frame_equal(again.equity, expected_equity.reset_index(drop=True))
    opened = in_one_call.positions[in_one_call.positions.opened_on <= sessions[-11]]
    # Positions that were closed later than the rerun range are open again as of its end.
    later = opened.closed_on > sessions[-11]
    assert later.any()
    assert again.positions.loc[later.to_numpy(), "closed_on"].isna().all()
    pd.testing.assert_frame_equal(
        again.positions[~later.to_numpy()].reset_index(drop=True),
        opened[~later].reset_index(drop=True),
    )


def test_sessions_must_follow_on_from_the_previous_state():
    prices, signals, sessions = busy_market()
    first = run_paper_portfolio(signals, prices, sessions[:5], RiskManager())
    with pytest.raises(ValueError, match="process the sessions in between first"):
        run_paper_portfolio(signals, prices, sessions[7:9], RiskManager(), first)
    with pytest.raises(ValueError, match="consecutive NYSE sessions"):
        run_paper_portfolio(signals, prices, [sessions[0], sessions[2]], RiskManager())


def test_a_rerun_refills_the_orders_pending_before_it():
    prices, signals, sessions = gappy_market()
    in_one_call = full_run()
    start = sessions[-20]
    pending = in_one_call.rewound_before(start).pending_orders()
    assert len(pending) and (pending.session_date == sessions[-21]).all()
    again = run_paper_portfolio(signals, prices, sessions[-20:], RiskManager(), in_one_call)
    pd.testing.assert_frame_equal(again.positions, in_one_call.positions)
    pd.testing.assert_frame_equal(again.equity, in_one_call.equity)


def test_initial_equity_is_configurable():
    result = run_paper_portfolio(
        signal(),
        flat_prices(),
        SESSIONS[:2],
        RiskManager(),
        config=PortfolioConfig(initial_equity=50_000, commission_bps=0.0, slippage_bps=0.0),
    )
    assert only_position(result).shares == 100  # 20 % of 50,000 at 100
    assert result.equity.equity.tolist() == [50_000, 50_000]
    assert result.equity.cash.tolist() == [50_000, 40_000]


def test_a_round_trip_pays_commission_and_slippage_on_both_fills():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], high=111.0, close=109.0)
    config = PortfolioConfig(commission_bps=1.0, slippage_bps=5.0)
    result = run(signal(), prices, config=config)
    position = only_position(result)
    assert position.gross_pnl == pytest.approx(200 * 10.0)
    assert position.entry_costs == pytest.approx(200 * 100.0 * 0.0006)  # 12.00
    assert position.exit_costs == pytest.approx(200 * 110.0 * 0.0006)  # 13.20
    assert position.pnl == pytest.approx(2_000.0 - 12.0 - 13.2)
    # The equity curve is net: the entry's costs on the fill's day, the exit's on the day it closed.
    assert result.equity.equity.iloc[1] == pytest.approx(100_000 - 12.0)
    assert result.equity.equity.iloc[-1] == pytest.approx(100_000 + position.pnl)


def test_costs_and_fill_mode_must_be_sane():
    with pytest.raises(ValueError, match="commission_bps"):
        PortfolioConfig(commission_bps=-1.0)
    with pytest.raises(ValueError, match="slippage_bps"):
        PortfolioConfig(slippage_bps=float("nan"))
    with pytest.raises(ValueError, match="fill_at must be 'next_open' or 'close'"):
        PortfolioConfig(fill_at="open")


def test_positions_stored_before_next_open_fills_read_back_as_filled_at_their_close():
    old = full_run(10, "close").positions.drop(columns=["signal_date", "ordered_shares", "fill_note"])
    ledger = PaperPortfolio.from_tables(old, full_run(10, "close").equity)
    assert (ledger.positions.signal_date == ledger.positions.opened_on).all()
    assert (ledger.positions.ordered_shares == ledger.positions.shares).all()
