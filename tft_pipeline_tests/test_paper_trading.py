"""The incremental ledger: bounded state (equity rows, book rows, the last decisions) carries the
portfolio into the next session, fills at the next open and protections included."""

from __future__ import annotations

import pandas as pd
import pytest

from tft_pipeline.paper_trading import latest_positions, position_book, state_after, trade_sessions
from tft_pipeline.portfolio import PortfolioConfig, session_offset
from tft_pipeline.risk import RiskLimits, RiskManager
from tft_pipeline_tests.test_portfolio import SESSIONS, flat_prices, gappy_market, set_bar, signal

# AAA is decided on day 0, fills at day 1's open (100, stop 95, target 110) and hits its target on
# day 3; BBB is decided on day 2, fills on day 3 and is still open at the end.
DAYS = SESSIONS[:8]
LIMITS = RiskLimits(min_confidence=0.5)


def market():
    prices = set_bar(flat_prices(sessions=DAYS), "AAA", DAYS[3], high=111.0, close=108.0)
    signals = pd.concat([signal("AAA", DAYS[0]), signal("BBB", DAYS[2])], ignore_index=True)
    return signals, prices


def booked(sessions, previous=None):
    signals, prices = market()
    return trade_sessions(signals, previous, prices, sessions, RiskManager(LIMITS))


def carried(book, equity, decisions, session, limits=LIMITS):
    """The state after ``session`` read as the pipeline reads it: bounded slices of the tables."""
    first_cooling = session_offset(session, -max(limits.cooldown_sessions - 1, 0))
    return state_after(
        book[book["session_date"].between(first_cooling, session)],
        equity[equity["session_date"] <= session].tail(limits.drawdown_lookback_sessions),
        decisions[decisions["session_date"] == session],
    )


def day_by_day(signals, prices, days, limits, config=None):
    """One ``trade_sessions`` call per session, each resumed from the tables the others wrote."""
    books, equities, decisions = [], [], []
    previous = None
    for day in days:
        step = trade_sessions(
            signals, previous, prices, pd.DatetimeIndex([day]), RiskManager(limits), config
        )
        books.append(step.book)
        equities.append(step.equity)
        decisions.append(step.decisions)
        previous = carried(
            pd.concat(books, ignore_index=True),
            pd.concat(equities, ignore_index=True),
            pd.concat(decisions, ignore_index=True),
            day,
            limits,
        )
    return (
        pd.concat(books, ignore_index=True),
        pd.concat(equities, ignore_index=True),
        pd.concat(decisions, ignore_index=True),
    )


def test_one_range_equals_one_session_at_a_time_from_the_previous_book():
    signals, prices = market()
    whole = booked(DAYS)
    books, equities, decisions = day_by_day(signals, prices, DAYS, LIMITS)
    pd.testing.assert_frame_equal(books, whole.book)
    pd.testing.assert_frame_equal(equities, whole.equity)
    assert decisions["accepted"].tolist() == whole.decisions["accepted"].tolist()


PROTECTIVE = RiskLimits(
    min_confidence=0.6,
    max_position_fraction=0.5,
    risk_per_trade=0.05,
    max_drawdown=0.04,
    drawdown_lookback_sessions=4,
    drawdown_stop_sessions=3,
    cooldown_sessions=3,
    max_daily_loss=0.01,
)


@pytest.mark.parametrize("fill_at", ["next_open", "close"])
def test_protections_and_pending_orders_carry_over_bounded_state(fill_at):
    """A busy market under tight limits: halts, cooldowns, daily losses and unfilled orders all
    happen, and one range still equals one session at a time from bounded reads."""
    prices, signals, sessions = gappy_market()
    days = sessions[:30]
    config = PortfolioConfig(fill_at=fill_at)
    whole = trade_sessions(signals, None, prices, days, RiskManager(PROTECTIVE), config)
    reasons = set(whole.decisions["reasons"].str.split(";").explode())
    assert {"max_drawdown", "ticker_cooldown", "daily_loss_limit"} <= reasons
    assert whole.equity["halted_until"].notna().any()
    assert (whole.book["fill_note"].str.startswith("resized", na=False)).any()
    books, equities, decisions = day_by_day(signals, prices, days, PROTECTIVE, config)
    pd.testing.assert_frame_equal(books, whole.book)
    pd.testing.assert_frame_equal(equities, whole.equity)
    pd.testing.assert_frame_equal(
        decisions.reset_index(drop=True), whole.decisions.reset_index(drop=True)
    )


def test_the_book_shows_a_position_from_its_fill_until_the_session_it_closes_with_its_exit_only_then():
    book = booked(DAYS).book
    aaa = book[book["ticker"] == "AAA"].set_index("session_date")
    assert list(aaa.index) == list(DAYS[1:4])
    assert (aaa["signal_date"] == DAYS[0]).all()
    assert aaa["closed_on"].iloc[:2].isna().all() and aaa["exit_price"].iloc[:2].isna().all()
    assert aaa.loc[DAYS[3], "exit_reason"] == "target" and aaa.loc[DAYS[3], "exit_price"] == 110.0
    bbb = book[book["ticker"] == "BBB"]
    assert list(bbb["session_date"]) == list(DAYS[3:]) and bbb["closed_on"].isna().all()


def test_an_unfilled_order_shows_once_in_the_book_of_its_fill_session():
    signals, prices = market()
    prices = prices[~((prices["ticker"] == "BBB") & (prices["session_date"] == DAYS[3]))]
    book = trade_sessions(signals, None, prices, DAYS, RiskManager(LIMITS)).book
    bbb = book[book["ticker"] == "BBB"]
    assert len(bbb) == 1 and bbb["session_date"].iloc[0] == DAYS[3]
    assert bbb["exit_reason"].iloc[0] == "not_filled" and bbb["shares"].iloc[0] == 0
    positions = latest_positions(book)
    assert positions.set_index("ticker").loc["BBB", "fill_note"].startswith("not filled: no BBB bar")


def test_the_ledger_is_the_latest_book_row_of_each_position():
    positions = latest_positions(booked(DAYS).book)
    assert positions["ticker"].tolist() == ["AAA", "BBB"]
    assert positions.loc[0, "exit_reason"] == "target" and pd.isna(positions.loc[1, "closed_on"])
    assert positions.loc[0, "gross_pnl"] == pytest.approx(positions.loc[0, "shares"] * 10.0)
    assert positions.loc[0, "pnl"] < positions.loc[0, "gross_pnl"]  # after costs


def test_re_running_a_session_starts_from_the_state_before_it_not_from_its_own_old_rows():
    whole = booked(DAYS)
    # BBB was decided on day 2: its order is pending when the rerun starts on day 3.
    previous = carried(whole.book, whole.equity, whole.decisions, DAYS[2])
    assert previous.pending_orders()["ticker"].tolist() == ["BBB"]
    again = booked(DAYS[3:], previous)
    later = whole.equity[whole.equity["session_date"] >= DAYS[3]].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.equity, later)


def test_orders_already_filled_at_the_close_are_not_filled_again():
    signals, prices = market()
    close = trade_sessions(
        signals, None, prices, DAYS[:3], RiskManager(LIMITS), PortfolioConfig(fill_at="close")
    )
    previous = carried(close.book, close.equity, close.decisions, DAYS[2])
    # BBB filled at day 2's close: its decision is answered by a position row, nothing is pending.
    assert previous.pending_orders().empty
    assert close.book["signal_date"].eq(close.book["opened_on"]).all()


def test_nothing_booked_before_starts_from_cash():
    assert state_after(position_book(pd.DataFrame(), DAYS), pd.DataFrame()) is None
