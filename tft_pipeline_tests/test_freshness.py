"""Which closed session is due at a given time, and whether the warehouse is behind it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_pipeline.freshness import DEFAULT_GRACE, check_freshness, session_due
from tft_pipeline.trading_calendar import is_session, next_session, session_close

NEW_YORK = ZoneInfo("America/New_York")


def new_york(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment).replace(tzinfo=NEW_YORK)


def test_friday_evening_expects_fridays_session():
    now = new_york("2024-01-12 18:00")  # Friday
    assert check_freshness("2024-01-12", now).is_fresh
    stale = check_freshness("2024-01-11", now)
    assert not stale.is_fresh
    assert stale.expected_session == pd.Timestamp("2024-01-12")
    assert stale.missing_sessions == (pd.Timestamp("2024-01-12"),)
    assert "2024-01-12 is missing" in stale.describe() and "1 session behind" in stale.describe()


def test_monday_morning_before_the_close_expects_fridays_session():
    now = new_york("2024-01-08 09:00")  # Monday, market not yet closed
    verdict = check_freshness("2024-01-05", now)
    assert verdict.is_fresh and verdict.expected_session == pd.Timestamp("2024-01-05")
    # The weekend is not a gap: Thursday loaded means exactly Friday is missing.
    behind = check_freshness("2024-01-04", now)
    assert behind.missing_sessions == (pd.Timestamp("2024-01-05"),)


@pytest.mark.parametrize(
    "now, expected, label",
    [
        ("2024-07-04 18:00", "2024-07-03", "Independence Day: the half day before is due"),
        ("2024-03-29 18:00", "2024-03-28", "Good Friday"),
        ("2024-01-15 19:00", "2024-01-12", "Martin Luther King Jr. Day (a Monday)"),
        ("2024-12-25 10:00", "2024-12-24", "Christmas: Christmas Eve's half day"),
    ],
)
def test_a_holiday_is_not_expected(now, expected, label):
    verdict = check_freshness(expected, new_york(now))
    assert verdict.expected_session == pd.Timestamp(expected), label
    assert verdict.is_fresh and verdict.missing_sessions == ()


def test_the_session_is_due_only_after_the_grace_period():
    close = new_york("2024-01-12 16:00")
    assert session_due(close + DEFAULT_GRACE - dt.timedelta(seconds=1)) == pd.Timestamp("2024-01-11")
    assert session_due(close + DEFAULT_GRACE) == pd.Timestamp("2024-01-12")
    # A half day is due 90 minutes after its 13:00 close, not after 16:00.
    assert session_due(new_york("2024-11-29 14:30")) == pd.Timestamp("2024-11-29")


def test_several_sessions_behind_lists_each_one_over_a_holiday():
    verdict = check_freshness("2024-01-10", new_york("2024-01-17 18:00"))
    assert [day.date().isoformat() for day in verdict.missing_sessions] == [
        "2024-01-11", "2024-01-12", "2024-01-16", "2024-01-17",
    ]
    assert "4 sessions behind" in verdict.describe()


def test_an_empty_warehouse_is_not_fresh():
    verdict = check_freshness(None, new_york("2024-01-12 18:00"))
    assert not verdict.is_fresh and verdict.latest_loaded is None
    assert "nothing loaded" in verdict.describe()


def test_naive_now_is_utc():
    # 22:59 UTC is 17:59 New York in January: Friday's session is due (close 16:00 + 90 min).
    assert session_due(dt.datetime(2024, 1, 12, 22, 59)) == pd.Timestamp("2024-01-12")
    assert session_due(dt.datetime(2024, 1, 12, 21, 29)) == pd.Timestamp("2024-01-11")


@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2015, 1, 10), max_value=dt.datetime(2029, 12, 1)))
def test_the_due_session_is_the_last_one_past_its_close_plus_grace(now):
    now_utc = pd.Timestamp(now, tz="UTC")
    due = session_due(now_utc)
    assert is_session(due)
    assert session_close(due) + DEFAULT_GRACE <= now_utc
    assert session_close(next_session(due)) + DEFAULT_GRACE > now_utc
    # Loading exactly the due session makes the warehouse fresh; one session less does not.
    assert check_freshness(due, now_utc).is_fresh
    assert not check_freshness(due - pd.Timedelta(days=1), now_utc).is_fresh
