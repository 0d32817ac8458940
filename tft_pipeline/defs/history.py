"""A run's sessions, and the history before its first one read from the warehouse (lookbacks)."""

from __future__ import annotations

import pandas as pd
from dagster import AssetExecutionContext

from tft_pipeline.trading_calendar import nyse_calendar
from tft_pipeline.warehouse import Warehouse


def partition_sessions(context: AssetExecutionContext) -> pd.DatetimeIndex:
    """The sessions a run materializes (one, or a backfill's range), oldest first."""
    return pd.DatetimeIndex(sorted(pd.Timestamp(key) for key in context.partition_keys))


def sessions_back(session: pd.Timestamp, count: int) -> pd.Timestamp:
    """The session ``count`` sessions before ``session`` (or the calendar's first)."""
    sessions = nyse_calendar().sessions
    position = int(sessions.searchsorted(pd.Timestamp(session), side="left"))
    return pd.Timestamp(sessions[max(0, position - count)])


def read_history(
    warehouse: Warehouse, table: str, first: pd.Timestamp, last: pd.Timestamp, lookback: int
) -> pd.DataFrame:
    """Rows of ``table`` from ``lookback`` sessions before ``first`` through ``last`` (empty if absent)."""
    if not warehouse.table_exists(table):
        return pd.DataFrame()
    return warehouse.read_sessions(table, sessions_back(first, lookback), last)
