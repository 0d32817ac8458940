"""Warehouse freshness: which closed NYSE session should be loaded by a given time, and is it (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from tft_pipeline.trading_calendar import (
    NEW_YORK,
    latest_closed_session,
    sessions_between,
    to_utc,
)

# The daily schedule fires at 16:30 New York and a run takes minutes: a session counts as due
# 90 minutes after its close (17:30 on a regular day, 14:30 after a half day), so a check at
# 18:00 expects that day's session and one during the run does not cry wolf.
DEFAULT_GRACE = pd.Timedelta(minutes=90)


def session_due(now: dt.datetime | pd.Timestamp | str, grace: pd.Timedelta = DEFAULT_GRACE) -> pd.Timestamp:
    """The most recent session whose close plus ``grace`` is at or before ``now`` (naive = UTC)."""
    return latest_closed_session(to_utc(now) - grace)


@dataclass(frozen=True)
class FreshnessVerdict:
    """Whether the warehouse holds the session due at ``now``."""

    now: pd.Timestamp
    expected_session: pd.Timestamp
    latest_loaded: pd.Timestamp | None
    # Sessions due but not loaded, oldest first (empty when fresh; every session up to the
    # expected one is not listed when nothing was ever loaded, see ``describe``).
    missing_sessions: tuple[pd.Timestamp, ...]

    @property
    def is_fresh(self) -> bool:
        return self.latest_loaded is not None and self.latest_loaded >= self.expected_session

    def describe(self) -> str:
        local_now = self.now.tz_convert(NEW_YORK).strftime("%Y-%m-%d %H:%M %Z")
        expected = self.expected_session.date()
        if self.latest_loaded is None:
            return f"nothing loaded; session {expected} is due by {local_now}"
        if self.is_fresh:
            return f"session {expected} is loaded (latest {self.latest_loaded.date()}) as of {local_now}"
        count = len(self.missing_sessions)
        return (
            f"session {expected} is missing as of {local_now}: latest loaded is "
            f"{self.latest_loaded.date()}, {count} session{'s' if count != 1 else ''} behind"
        )


def check_freshness(
    latest_loaded: dt.date | pd.Timestamp | str | None,
    now: dt.datetime | pd.Timestamp | str,
    grace: pd.Timedelta = DEFAULT_GRACE,
) -> FreshnessVerdict:
    """Compare the latest loaded session with the one due at ``now``."""
    now_utc = to_utc(now)
    expected = session_due(now_utc, grace)
    if latest_loaded is None or pd.isna(latest_loaded):
        return FreshnessVerdict(now_utc, expected, None, ())
    latest = pd.Timestamp(latest_loaded)
    if latest.tzinfo is not None:
        latest = latest.tz_convert(NEW_YORK).tz_localize(None)
    latest = latest.normalize()
    missing = sessions_between(latest + pd.Timedelta(days=1), expected)
    return FreshnessVerdict(now_utc, expected, latest, tuple(missing))
