"""The fixed session span the sample market simulates over, and session <-> ordinal lookups."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd

from tft_pipeline.trading_calendar import nyse_calendar

# Prices are anchored so that each ticker trades at its own level on this session (the default
# first partition); far from it the random walk wanders, as real prices do.
ANCHOR_SESSION = pd.Timestamp("2024-01-02")


@lru_cache(maxsize=1)
def calendar_sessions() -> pd.DatetimeIndex:
    """Every session of the calendar span (CALENDAR_FIRST_DAY..CALENDAR_LAST_DAY), oldest first."""
    return pd.DatetimeIndex(nyse_calendar().sessions, name="session_date")


@lru_cache(maxsize=1)
def calendar_closes_ns() -> np.ndarray:
    """The close of every session of the span, as int64 nanoseconds since the epoch (UTC)."""
    closes = nyse_calendar().closes.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    closes.setflags(write=False)
    return closes


def session_count() -> int:
    """How many sessions the span holds (about 7,800)."""
    return len(calendar_sessions())


def anchor_ordinal() -> int:
    """The ordinal of ``ANCHOR_SESSION``."""
    return int(calendar_sessions().get_loc(ANCHOR_SESSION))


def session_ordinals(sessions: Iterable[dt.date | str | pd.Timestamp]) -> np.ndarray:
    """Sorted, de-duplicated ordinals of ``sessions``; raises ValueError on a non-session day."""
    index = pd.DatetimeIndex(
        pd.to_datetime(list(sessions) if not isinstance(sessions, pd.Index) else sessions)
    )
    if index.tz is not None:
        index = index.tz_convert("America/New_York").tz_localize(None)
    index = index.normalize()
    ordinals = calendar_sessions().get_indexer(index)
    if (ordinals < 0).any():
        bad = sorted({str(day.date()) for day, ordinal in zip(index, ordinals) if ordinal < 0})
        raise ValueError(
            f"not NYSE sessions inside the sample market's calendar span: {', '.join(bad[:10])}"
        )
    return np.unique(ordinals)


def sessions_of(ordinals: np.ndarray) -> np.ndarray:
    """The session dates (naive datetime64[ns]) of ``ordinals``."""
    return calendar_sessions().to_numpy(dtype="datetime64[ns]")[ordinals]
