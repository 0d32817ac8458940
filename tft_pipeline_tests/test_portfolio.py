"""Tests of the paper portfolio: exits, equity identities, resumability, the risk state it feeds."""

from __future__ import annotations

from functools import cache, lru_cache

import duckdb
import numpy as np
import pandas as pd
import pytest

from tft_pipeline.model import BarrierRule, signal_frame
from tft_pipeline.model.synthetic import synthetic_market
from tft_pipeline.portfolio import (
    EQUITY_COLUMNS,
    POSITION_COLUMNS,
    PaperPortfolio,
    PortfolioConfig,
    run_paper_portfolio,
)
from tft_pipeline.risk import PortfolioState, RiskLimits, RiskManager
from tft_pipeline.trading_calendar import sessions_between

SESSIONS = sessions_between("2024-02-01", "2024-03-28")
D0 = SESSIONS[0]


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
    return signal_frame(rows, np.array([confidence]), "test_model", "v1", BarrierRule())


# Exact arithmetic in the tests of exits and identities; costs have tests of their own.
FRICTIONLESS = PortfolioConfig(commission_bps=0.0, slippage_bps=0.0)


def run(signals, prices, sessions=SESSIONS[:15], previous=None, risk=None, config=FRICTIONLESS):
    return run_paper_portfolio(signals, prices, sessions, risk or RiskManager(), previous, config)


def only_position(result: PaperPortfolio) -> pd.Series:
    assert len(result.positions) == 1
    return result.positions.iloc[0]


# --- exits ------------------------------------------------------------------------------------


def test_an_accepted_signal_opens_at_the_close_with_the_risk_managers_size():
    result = run(signal(), flat_prices())
    position = only_position(result)
    # 2 % of 100,000 at 5 risk per share is 400 shares, capped at 20 % of the value: 200 shares.
    assert position.shares == 200 and position.entry == 100.0 and position.opened_on == D0
    assert position.stop_loss == 95.0 and position.take_profit == 110.0
    assert result.decisions.accepted.tolist() == [True]
    first_day = result.equity.iloc[0]
    assert (
        first_day.cash == 80_000
        and first_day.market_value == 20_000
        and first_day.equity == 100_000
    )


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
    prices = set_bar(flat_prices(), "AAA", SESSIONS[1], open=90.0, high=91.0, low=88.0, close=89.0)
    position = only_position(run(signal(), prices))
    assert position.exit_reason == "stop" and position.exit_price == 90.0
    assert position.pnl == pytest.approx(200 * -10.0)


def test_a_gap_over_the_target_fills_at_the_open():
    prices = set_bar(
        flat_prices(), "AAA", SESSIONS[1], open=113.0, high=115.0, low=112.0, close=114.0
    )
    position = only_position(run(signal(), prices))
    assert position.exit_reason == "target" and position.exit_price == 113.0


def test_a_position_without_a_touch_expires_at_the_close_ten_sessions_later():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[10], close=103.0, high=104.0)
    position = only_position(run(signal(), prices))
    assert position.expires_on == SESSIONS[10]
    assert position.exit_reason == "expiry" and position.closed_on == SESSIONS[10]
    assert position.exit_price == 103.0 and position.pnl == pytest.approx(600.0)


def test_the_entry_bar_itself_never_closes_a_position():
    prices = set_bar(flat_prices(), "AAA", D0, low=80.0, high=130.0)
    position = only_position(run(signal(), prices, sessions=SESSIONS[:3]))
    assert pd.isna(position.closed_on) and position.exit_reason is None and np.isnan(position.pnl)


def test_a_missing_bar_neither_closes_nor_unmarks_a_position():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[1], close=104.0, high=104.0)
    prices = prices[~((prices.ticker == "AAA") & (prices.session_date == SESSIONS[2]))]
    result = run(signal(), prices, sessions=SESSIONS[:4])
    assert pd.isna(only_position(result).closed_on)
    # Session 2 has no AAA bar: the position is marked at the last close known, 104.
    assert result.equity.market_value.tolist() == [20_000, 20_800, 20_800, 20_000]


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
    prices = set_bar(flat_prices(), "AAA", SESSIONS[1], open=108.0, high=110.0, low=107.0, close=109.0)
    position = only_position(run(short_signal(), prices))
    assert position.exit_reason == "stop" and position.exit_price == 108.0
    assert position.pnl == pytest.approx(200 * -8.0)


def test_a_short_gapping_down_through_its_target_fills_at_the_open():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[1], open=85.0, high=86.0, low=84.0, close=85.0)
    position = only_position(run(short_signal(), prices))
    assert position.exit_reason == "target" and position.exit_price == 85.0


def test_an_open_short_is_marked_against_the_portfolio_as_the_price_moves():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[1], high=103.0, low=97.0, close=102.0)
    result = run(short_signal(), prices, sessions=SESSIONS[:2])
    opened, marked = result.equity.iloc[0], result.equity.iloc[1]
    # Proceeds in cash, the shares owed as negative market value: equity unchanged on entry.
    assert opened.cash == 120_000 and opened.market_value == -20_000 and opened.equity == 100_000
    assert marked.equity == pytest.approx(100_000 - 200 * 2.0)  # the price rose 2: the short lost 400


# --- the state the risk manager sees --------------------------------------------------------------


class RecordingGate:
    """The real risk manager, recording the portfolio state each session was judged against."""

    def __init__(self, limits: RiskLimits | None = None):
        self.manager = RiskManager(limits)
        self.states: dict[pd.Timestamp, PortfolioState] = {}

    def evaluate_batch(self, signals, portfolio):
        self.states[pd.Timestamp(signals.session_date.iloc[0])] = portfolio
        return self.manager.evaluate_batch(signals, portfolio)


def test_session_d_is_judged_on_the_state_after_d_minus_1():
    # AAA opens on D0 and hits its target on D3; a new AAA signal on D3 is still a duplicate
    # (the state after D2 holds AAA), and a BBB signal on D4 sees AAA closed and the gain banked.
    prices = set_bar(flat_prices(), "AAA", SESSIONS[3], high=111.0, close=110.0)
    prices = set_bar(prices, "AAA", SESSIONS[2], close=104.0)
    signals = pd.concat(
        [signal("AAA", D0), signal("AAA", SESSIONS[3]), signal("BBB", SESSIONS[4])],
        ignore_index=True,
    )
    gate = RecordingGate()
    result = run(signals, prices, sessions=SESSIONS[:6], risk=gate)
    equity = result.equity.set_index("session_date")

    assert gate.states[D0] == PortfolioState(100_000.0, 100_000.0, ())
    on_d3 = gate.states[SESSIONS[3]]
    assert on_d3.value == equity.equity[SESSIONS[2]] == 100_800.0  # 200 shares marked at 104
    assert on_d3.open_tickers == ("AAA",)
    on_d4 = gate.states[SESSIONS[4]]
    assert on_d4.open_tickers == () and on_d4.value == 102_000.0 == on_d4.peak_value
    decisions = result.decisions.set_index(["ticker", "session_date"])
    assert decisions.loc[("AAA", SESSIONS[3]), "reasons"] == "duplicate_position"
    assert bool(decisions.loc[("BBB", SESSIONS[4]), "accepted"])
    # Sized on D3's equity (102,000): 20 % of it at 100 is 204 shares.
    assert result.positions.set_index("ticker").shares["BBB"] == 204


def test_a_drawdown_after_d_minus_1_stops_new_positions_on_d():
    limits = RiskLimits(max_drawdown=0.01, max_position_fraction=1.0, risk_per_trade=0.05)
    prices = set_bar(flat_prices(), "AAA", SESSIONS[1], low=96.0, close=96.0)
    signals = pd.concat([signal("AAA", D0), signal("BBB", SESSIONS[2])], ignore_index=True)
    result = run(signals, prices, sessions=SESSIONS[:3], risk=RecordingGate(limits))
    bbb = result.decisions[result.decisions.ticker == "BBB"].iloc[0]
    assert not bbb.accepted and "max_drawdown" in bbb.reasons


# --- equity identities and resumability -----------------------------------------------------------


@lru_cache(maxsize=1)
def busy_market():
    """Synthetic prices, and signals on every ticker and session with made-up confidences."""
    market = synthetic_market(12, 90, seed=5)
    snapshots = market.snapshots.dropna(subset=["atr_14"])
    confidence = np.random.default_rng(1).uniform(0.55, 0.95, size=len(snapshots))
    signals = signal_frame(snapshots, confidence, "test_model", "v1", BarrierRule())
    sessions = pd.DatetimeIndex(signals.session_date.drop_duplicates().sort_values())
    return market.prices, signals, sessions


@cache
def full_run(sessions_count: int | None = None) -> PaperPortfolio:
    prices, signals, sessions = busy_market()
    return run_paper_portfolio(signals, prices, sessions[:sessions_count], RiskManager())


def test_equity_is_cash_plus_positions_marked_to_the_close_with_a_running_peak():
    prices = busy_market()[0]
    result = full_run()
    equity, positions = result.equity, result.positions
    assert list(equity.columns) == list(EQUITY_COLUMNS) and list(positions.columns) == list(
        POSITION_COLUMNS
    )
    assert len(positions) > 20 and set(positions.exit_reason.dropna()) == {
        "stop",
        "target",
        "expiry",
    }
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
    np.testing.assert_allclose(closed.gross_pnl, closed.shares * (closed.exit_price - closed.entry))
    # Costs are charged on both fills at the default rates (1 bp commission + 5 bp slippage a side).
    rate = PortfolioConfig().cost_rate
    assert rate == pytest.approx(0.0006)
    np.testing.assert_allclose(closed.entry_costs, closed.shares * closed.entry * rate)
    np.testing.assert_allclose(closed.exit_costs, closed.shares * closed.exit_price * rate)
    np.testing.assert_allclose(closed.pnl, closed.gross_pnl - closed.entry_costs - closed.exit_costs)
    assert (closed.closed_on > closed.opened_on).all() and (
        closed.closed_on <= closed.expires_on
    ).all()


def through_duckdb(result: PaperPortfolio) -> PaperPortfolio:
    """The ledger written to and read back from DuckDB, as the pipeline stores it between runs."""
    with duckdb.connect() as connection:
        positions, equity = result.positions, result.equity  # noqa: F841 - read by DuckDB by name
        connection.execute("create table positions as select * from positions")
        connection.execute("create table equity as select * from equity")
        return PaperPortfolio.from_tables(
            connection.execute("select * from positions").df(),
            connection.execute("select * from equity").df(),
        )


def test_one_call_over_a_range_equals_one_call_per_session_resumed_from_stored_tables():
    prices, signals, sessions = busy_market()
    in_one_call = full_run(30)
    assert in_one_call.positions.closed_on.notna().sum() >= 5
    ledger, decisions = None, []
    for day in sessions[:30]:
        step = run_paper_portfolio(signals, prices, [day], RiskManager(), ledger)
        decisions.append(step.decisions)
        ledger = through_duckdb(step)
    pd.testing.assert_frame_equal(ledger.positions, in_one_call.positions)
    pd.testing.assert_frame_equal(ledger.equity, in_one_call.equity)
    pd.testing.assert_frame_equal(pd.concat(decisions, ignore_index=True), in_one_call.decisions)


def test_reprocessing_sessions_rewinds_to_the_state_before_them():
    prices, signals, sessions = busy_market()
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


def test_a_round_trip_pays_commission_and_slippage_on_both_fills():
    prices = set_bar(flat_prices(), "AAA", SESSIONS[2], high=111.0, close=109.0)
    config = PortfolioConfig(commission_bps=1.0, slippage_bps=5.0)
    result = run(signal(), prices, config=config)
    position = only_position(result)
    assert position.gross_pnl == pytest.approx(200 * 10.0)
    assert position.entry_costs == pytest.approx(200 * 100.0 * 0.0006)  # 12.00
    assert position.exit_costs == pytest.approx(200 * 110.0 * 0.0006)  # 13.20
    assert position.pnl == pytest.approx(2_000.0 - 12.0 - 13.2)
    # The equity curve is net: the entry's costs on day 0, the exit's on the day it closed.
    assert result.equity.equity.iloc[0] == pytest.approx(100_000 - 12.0)
    assert result.equity.equity.iloc[-1] == pytest.approx(100_000 + position.pnl)


def test_costs_must_be_sane():
    with pytest.raises(ValueError, match="commission_bps"):
        PortfolioConfig(commission_bps=-1.0)
    with pytest.raises(ValueError, match="slippage_bps"):
        PortfolioConfig(slippage_bps=float("nan"))
