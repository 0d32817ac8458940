"""NYSE sessions and Reddit windows: holidays, half days, DST changes, weekends."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_pipeline.trading_calendar import (
    holidays_between,
    is_session,
    latest_closed_session,
    latest_sessions,
    reddit_window,
    session_close,
    session_of_timestamps,
    sessions_between,
    to_utc,
)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.mark.parametrize(
    "day, expected",
    [
        ("2024-01-01", False),  # New Year's Day
        ("2024-01-15", False),  # Martin Luther King Jr. Day
        ("2024-03-29", False),  # Good Friday: a weekday holiday that is not a federal one
        ("2024-07-04", False),
        ("2024-11-28", False),  # Thanksgiving
        ("2024-12-25", False),
        ("2025-01-09", False),  # national day of mourning (President Carter): an ad-hoc closure
        ("2024-01-06", False),  # Saturday
        ("2024-11-29", True),  # the day after Thanksgiving: a half day is still a session
        ("2024-03-11", True),  # the Monday after the spring DST change
        ("2024-01-02", True),
    ],
)
def test_sessions_follow_the_exchange_calendar(day, expected):
    assert is_session(day) is expected


def test_sessions_between_excludes_weekends_and_holidays():
    sessions = sessions_between("2024-01-01", "2024-01-31")
    assert len(sessions) == 21  # 23 weekdays minus New Year's Day and MLK Day
    assert pd.Timestamp("2024-01-15") not in sessions
    assert all(day.dayofweek < 5 for day in sessions)


def test_half_day_closes_at_one_pm_new_york():
    assert session_close("2024-11-29") == utc("2024-11-29 18:00")  # 13:00 EST
    assert session_close("2024-07-03") == utc("2024-07-03 17:00")  # 13:00 EDT


@pytest.mark.parametrize(
    "session, close_utc",
    [
        ("2024-03-08", "2024-03-08 21:00"),  # Friday before spring forward: 16:00 EST
        ("2024-03-11", "2024-03-11 20:00"),  # Monday after: 16:00 EDT
        ("2024-11-01", "2024-11-01 20:00"),  # Friday before fall back: 16:00 EDT
        ("2024-11-04", "2024-11-04 21:00"),  # Monday after: 16:00 EST
    ],
)
def test_close_is_four_pm_new_york_across_dst(session, close_utc):
    assert session_close(session) == utc(close_utc)


def test_window_after_dst_change_spans_the_weekend_in_real_hours():
    start, end = reddit_window("2024-03-11")
    assert start == utc("2024-03-08 21:00") and end == utc("2024-03-11 20:00")
    assert end - start == pd.Timedelta(hours=71)  # the lost hour of spring forward


def test_weekend_and_holiday_posts_go_to_the_next_session():
    stamps = pd.Series(
        [
            utc("2024-01-13 15:00"),  # Saturday
            utc("2024-01-15 12:00"),  # MLK Day (holiday Monday)
            utc("2024-01-12 21:00"),  # exactly Friday's close: belongs to the next window
            utc("2024-01-12 20:59:59"),  # a second before Friday's close
            utc("2024-11-29 18:30"),  # after the half day's 13:00 close
        ]
    )
    sessions = session_of_timestamps(stamps).dt.strftime("%Y-%m-%d").tolist()
    assert sessions == ["2024-01-16", "2024-01-16", "2024-01-16", "2024-01-12", "2024-12-02"]


def test_naive_timestamps_are_utc():
    assert session_of_timestamps(pd.Series([pd.Timestamp("2024-01-12 20:59:59")])).iloc[0] == pd.Timestamp("2024-01-12")


@pytest.mark.parametrize(
    "moment",
    [
        "2024-03-10 06:30",  # naive text: read as UTC
        pd.Timestamp("2024-03-10 06:30"),
        dt.datetime(2024, 3, 10, 6, 30),
        "2024-03-10T01:30-05:00",  # the same instant in New York, half an hour before DST starts
        pd.Timestamp("2024-03-10 01:30", tz="America/New_York"),
        dt.datetime(2024, 3, 10, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2024, 3, 10, 6, 30, tzinfo=dt.UTC),
    ],
)
def test_to_utc_reads_naive_moments_as_utc_and_converts_aware_ones(moment):
    converted = to_utc(moment)
    assert converted == utc("2024-03-10 06:30") and str(converted.tz) == "UTC"


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=pd.Timestamp("2015-01-05").to_pydatetime(), max_value=pd.Timestamp("2029-12-01").to_pydatetime()))
def test_every_instant_falls_in_exactly_the_window_of_its_session(moment):
    stamp = pd.Timestamp(moment, tz="UTC")
    session = session_of_timestamps(pd.Series([stamp])).iloc[0]
    start, end = reddit_window(session)
    assert start <= stamp < end


def test_windows_tile_time_without_gap_or_overlap():
    sessions = sessions_between("2024-01-02", "2024-12-31")
    windows = [reddit_window(day) for day in sessions]
    for (_, previous_end), (start, _) in itertools.pairwise(windows):
        assert start == previous_end


def test_latest_closed_session_waits_for_the_close():
    assert latest_closed_session(utc("2024-01-12 20:59")) == pd.Timestamp("2024-01-11")
    assert latest_closed_session(utc("2024-01-12 21:00")) == pd.Timestamp("2024-01-12")
    assert latest_closed_session(utc("2024-01-15 12:00")) == pd.Timestamp("2024-01-12")  # holiday


def test_latest_sessions_counts_back_over_holidays():
    sessions = latest_sessions(3, utc("2024-01-16 22:00"))
    assert [d.strftime("%Y-%m-%d") for d in sessions] == ["2024-01-11", "2024-01-12", "2024-01-16"]


def test_holidays_between_lists_weekday_closures():
    assert [d.strftime("%m-%d") for d in holidays_between("2024-01-01", "2024-03-31")] == ["01-01", "01-15", "02-19", "03-29"]


def test_not_a_session_is_a_clear_error():
    with pytest.raises(ValueError, match="2024-01-15 is not an NYSE trading session"):
        session_close("2024-01-15")
