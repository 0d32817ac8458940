"""The incremental ledger: each session's book carries the portfolio into the next session."""

from __future__ import annotations

import pandas as pd
import pytest

from tft_pipeline.paper_trading import latest_positions, position_book, state_after, trade_sessions
from tft_pipeline.risk import RiskLimits, RiskManager
from tft_pipeline_tests.test_portfolio import SESSIONS, flat_prices, set_bar, signal

# AAA opens on day 0 (100, stop 95, target 110) and hits its target on day 3; BBB opens on day 2
# and is still open at the end.
DAYS = SESSIONS[:8]


def market():
    prices = set_bar(flat_prices(sessions=DAYS), "AAA", DAYS[3], high=111.0, close=108.0)
    signals = pd.concat([signal("AAA", DAYS[0]), signal("BBB", DAYS[2])], ignore_index=True)
    return signals, prices


def booked(sessions, previous=None):
    signals, prices = market()
    return trade_sessions(signals, previous, prices, sessions, RiskManager(RiskLimits(min_confidence=0.5)))


def carried(result, session):
    book = result.book[result.book["session_date"] == session]
    equity = result.equity[result.equity["session_date"] == session]
    return state_after(book, equity)


def test_one_range_equals_one_session_at_a_time_from_the_previous_book():
    whole = booked(DAYS)
    previous, books, equities, decisions = None, [], [], []
    for day in DAYS:
        step = booked(pd.DatetimeIndex([day]), previous)
        books.append(step.book)
        equities.append(step.equity)
        decisions.append(step.decisions)
        previous = carried(step, day)
    pd.testing.assert_frame_equal(pd.concat(books, ignore_index=True), whole.book)
    pd.testing.assert_frame_equal(pd.concat(equities, ignore_index=True), whole.equity)
    assert pd.concat(decisions)["accepted"].tolist() == whole.decisions["accepted"].tolist()


def test_the_book_shows_a_position_until_the_session_it_closes_with_its_exit_only_then():
    book = booked(DAYS).book
    aaa = book[book["ticker"] == "AAA"].set_index("session_date")
    assert list(aaa.index) == list(DAYS[:4])
    assert aaa["closed_on"].iloc[:3].isna().all() and aaa["exit_price"].iloc[:3].isna().all()
    assert aaa.loc[DAYS[3], "exit_reason"] == "target" and aaa.loc[DAYS[3], "exit_price"] == 110.0
    bbb = book[book["ticker"] == "BBB"]
    assert list(bbb["session_date"]) == list(DAYS[2:]) and bbb["closed_on"].isna().all()


def test_the_ledger_is_the_latest_book_row_of_each_position():
    positions = latest_positions(booked(DAYS).book)
    assert positions["ticker"].tolist() == ["AAA", "BBB"]
    assert positions.loc[0, "exit_reason"] == "target" and pd.isna(positions.loc[1, "closed_on"])
    assert positions.loc[0, "gross_pnl"] == pytest.approx(positions.loc[0, "shares"] * 10.0)
    assert positions.loc[0, "pnl"] < positions.loc[0, "gross_pnl"]  # after costs


def test_re_running_a_session_starts_from_the_book_before_it_not_from_its_own_old_rows():
    whole = booked(DAYS)
    again = booked(DAYS[3:], carried(whole, DAYS[2]))
    later = whole.equity[whole.equity["session_date"] >= DAYS[3]].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.equity, later)


def test_nothing_booked_before_starts_from_cash():
    assert state_after(position_book(pd.DataFrame(), DAYS), pd.DataFrame()) is None
