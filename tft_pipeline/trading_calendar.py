"""NYSE trading sessions and the Reddit window of each session (pure, no Dagster).

A session is identified by its date in America/New_York. Reddit posts and comments belong to the
session whose window contains them: ``[previous session's close, this session's close)``. The close
is the exchange's real close (16:00, or 13:00 on half days), so chatter after an early close counts
as information for the next session. Weekend and holiday posts therefore fall to the next session,
and consecutive windows tile time with no gap and no overlap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

NEW_YORK = "America/New_York"
EXCHANGE = "XNYS"
# The calendar is built once over a wide fixed range so that any session a user can ask for is
# covered and results never depend on "today".
CALENDAR_FIRST_DAY = pd.Timestamp("2000-01-03")
CALENDAR_LAST_DAY = pd.Timestamp("2030-12-31")


@lru_cache(maxsize=1)
def nyse_calendar() -> xcals.ExchangeCalendar:
    """The XNYS calendar from exchange_calendars, built once per process."""
    return xcals.get_calendar(EXCHANGE, start=CALENDAR_FIRST_DAY, end=CALENDAR_LAST_DAY)


def to_utc(moment: dt.datetime | pd.Timestamp | str) -> pd.Timestamp:
    """``moment`` as a UTC-aware timestamp; naive input is taken as UTC, as everywhere here."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _as_timestamp(day: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(day)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(NEW_YORK).tz_localize(None)
    return ts.normalize()


def is_session(day: dt.date | str | pd.Timestamp) -> bool:
    """True when ``day`` is an NYSE trading session."""
    return bool(nyse_calendar().is_session(_as_timestamp(day)))


def sessions_between(start: dt.date | str, end: dt.date | str) -> pd.DatetimeIndex:
    """All sessions from ``start`` to ``end``, both inclusive, as naive midnight timestamps."""
    start_ts, end_ts = _as_timestamp(start), _as_timestamp(end)
    if end_ts < start_ts:
        return pd.DatetimeIndex([], name="session_date")
    sessions = nyse_calendar().sessions_in_range(start_ts, end_ts)
    return pd.DatetimeIndex(sessions, name="session_date")


def session_close(session: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The close of ``session`` in UTC (raises ValueError if it is not a session)."""
    ts = _as_timestamp(session)
    if not is_session(ts):
        raise ValueError(f"{ts.date()} is not an NYSE trading session")
    return nyse_calendar().session_close(ts)


def previous_session(session: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The session before ``session``."""
    return nyse_calendar().previous_session(_as_timestamp(session))


def next_session(session: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The session after ``session``."""
    return nyse_calendar().next_session(_as_timestamp(session))


def reddit_window(session: dt.date | str | pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` in UTC: from the previous session's close to this session's close."""
    close = session_close(session)
    return session_close(previous_session(session)), close


def reddit_window_for_range(
    first_session: dt.date | str, last_session: dt.date | str
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The union of the windows of every session from ``first_session`` to ``last_session``."""
    return reddit_window(first_session)[0], reddit_window(last_session)[1]


def session_of_timestamps(timestamps: pd.Series | pd.DatetimeIndex | Iterable) -> pd.Series:
    """The session each UTC timestamp belongs to (vectorized), as naive midnight timestamps.

    Naive timestamps are taken as UTC. A timestamp exactly at a close belongs to the next session.
    Timestamps outside the calendar's range map to NaT.
    """
    values = pd.Series(pd.to_datetime(pd.Series(timestamps), utc=True))
    closes = nyse_calendar().closes  # indexed by session, sorted
    close_ns = closes.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    ts_ns = values.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    # First close strictly after the timestamp: side="right" puts an exact close into the next window.
    position = np.searchsorted(close_ns, ts_ns, side="right")
    valid = values.notna().to_numpy() & (position < len(close_ns)) & (position > 0)
    sessions = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    session_index = closes.index.to_numpy(dtype="datetime64[ns]")
    sessions[valid] = session_index[position[valid]]
    return pd.Series(sessions, index=values.index, name="session_date")


def fetch_lag_hours(fetched_at: pd.Series, session_date: pd.Series) -> pd.Series:
    """Hours from each row's session close to when it was fetched (vectorized; NaN if unknown).

    ``fetched_at`` is naive UTC (or aware), ``session_date`` a session at midnight. Scores, comment
    counts and edits are as of the fetch: the lag says how long after the close that was.
    """
    fetched = pd.to_datetime(pd.Series(fetched_at).reset_index(drop=True), utc=True)
    sessions = pd.to_datetime(pd.Series(session_date).reset_index(drop=True))
    closes = nyse_calendar().closes
    close = pd.Series(closes.reindex(sessions.dt.tz_localize(None)).to_numpy(), dtype=object)
    close = pd.to_datetime(close, utc=True)
    lag = (fetched - close).dt.total_seconds() / 3600.0
    return pd.Series(lag.to_numpy(dtype="float64"), index=pd.Series(fetched_at).index)


def latest_closed_session(now: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    """The most recent session whose close is at or before ``now`` (naive ``now`` is UTC)."""
    now_ts = to_utc(now)
    closes = nyse_calendar().closes
    closed = closes[closes <= now_ts]
    if closed.empty:
        raise ValueError(f"no NYSE session has closed by {now_ts}")
    return pd.Timestamp(closed.index[-1])


def latest_sessions(count: int, now: dt.datetime | pd.Timestamp) -> pd.DatetimeIndex:
    """The ``count`` most recent closed sessions, oldest first."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    last = latest_closed_session(now)
    sessions = nyse_calendar().sessions
    end = sessions.get_loc(last)
    return pd.DatetimeIndex(sessions[max(0, end - count + 1) : end + 1], name="session_date")


def holidays_between(start: dt.date | str, end: dt.date | str) -> list[pd.Timestamp]:
    """Weekdays from ``start`` to ``end`` on which the NYSE is closed."""
    weekdays = pd.bdate_range(_as_timestamp(start), _as_timestamp(end))
    return [day for day in weekdays if not is_session(day)]
