"""Partitions: one per NYSE trading session, keyed by its New York date."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
from dagster import TimeWindowPartitionsDefinition

from tft_pipeline.trading_calendar import CALENDAR_LAST_DAY, NEW_YORK, holidays_between

PARTITION_KEY_FORMAT = "%Y-%m-%d"


def trading_session_partitions(start_date: dt.date) -> TimeWindowPartitionsDefinition:
    """Weekday partitions from ``start_date`` with every NYSE holiday excluded.

    ``end_offset=1`` makes today's session a partition from midnight on, so the schedule can
    request it right after the close instead of the next day.
    """
    new_york = ZoneInfo(NEW_YORK)
    holidays = [
        dt.datetime(day.year, day.month, day.day, tzinfo=new_york)
        for day in holidays_between(start_date, CALENDAR_LAST_DAY)
    ]
    return TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * 1-5",
        start=dt.datetime.combine(start_date, dt.time(0, 0)),
        timezone=NEW_YORK,
        fmt=PARTITION_KEY_FORMAT,
        end_offset=1,
        exclusions=holidays,
    )


def partition_key_of(session: dt.date | pd.Timestamp) -> str:
    """The partition key of a session."""
    return pd.Timestamp(session).strftime(PARTITION_KEY_FORMAT)
