"""Paper trading over a range of sessions, carried forward from the book of the session before.

The whole state the risk manager and the ledger need after session D is two small tables written
for D: ``portfolio.equity`` (cash, equity, running peak) and ``portfolio.position_book`` (every
position open at D's close, and those closed during D with their exits). A range run reads the
state after the session before its first one, judges and books its sessions in order, and writes
each session's equity row and book. Nothing is replayed from the start: a daily run reads one
session of state whatever the history's length, and re-running a range rewinds it by construction
(it starts from the state before the range). A single-run backfill and one run per session
therefore give the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tft_pipeline.portfolio import (
    EQUITY_COLUMNS,
    POSITION_COLUMNS,
    PaperPortfolio,
    PortfolioConfig,
    SignalGate,
    clear_exits,
    run_paper_portfolio,
)
from tft_pipeline.tables import conform, empty_frame

BOOK_COLUMNS: dict[str, str] = {"session_date": "datetime64[ns]", **POSITION_COLUMNS}


@dataclass(frozen=True)
class TradingResult:
    """The range's decisions, equity rows and books."""

    decisions: pd.DataFrame
    equity: pd.DataFrame
    book: pd.DataFrame


def position_book(positions: pd.DataFrame, sessions: pd.DatetimeIndex) -> pd.DataFrame:
    """Each session's book: positions open at its close and those closed during it, as known then.

    A position opened on D appears in D's book and every later one until the session it closes,
    where it appears with its exit. Exit columns of the sessions before the close are empty.
    """
    if positions.empty or len(sessions) == 0:
        return empty_frame(BOOK_COLUMNS)
    grid = positions.reset_index(drop=True).merge(
        pd.DataFrame({"session_date": pd.DatetimeIndex(sessions).astype("datetime64[ns]")}),
        how="cross",
    )
    alive = (grid["opened_on"] <= grid["session_date"]) & (
        grid["closed_on"].isna() | (grid["closed_on"] >= grid["session_date"])
    )
    book = grid[alive].copy()
    # What a row knows only once the position closed is hidden in the sessions before the close.
    clear_exits(book, book["closed_on"] > book["session_date"])
    book = book.sort_values(["session_date", "opened_on", "ticker"], kind="stable")
    return conform(book, BOOK_COLUMNS)


def state_after(book: pd.DataFrame, equity: pd.DataFrame) -> PaperPortfolio | None:
    """The ledger to resume from, given the last booked session's book rows and equity row.

    ``equity`` holds at most the one row of that session (None: nothing booked yet, start from
    cash). Positions that closed during that session are done; the open ones carry over.
    """
    if equity.empty:
        return None
    open_rows = book[book["closed_on"].isna()].drop(columns="session_date")
    return PaperPortfolio(
        positions=conform(open_rows, POSITION_COLUMNS),
        equity=conform(equity, EQUITY_COLUMNS),
    )


def trade_sessions(
    signals: pd.DataFrame,
    previous: PaperPortfolio | None,
    prices: pd.DataFrame,
    sessions: pd.DatetimeIndex,
    risk_manager: SignalGate,
    config: PortfolioConfig | None = None,
) -> TradingResult:
    """Judge and book consecutive ``sessions`` of ``signals``, resuming from ``previous``.

    ``previous``: the state after the session before the range (``state_after``), or None to start
    from cash. ``prices``: clean bars of the range and a few sessions before it (the last closes of
    positions still open).
    """
    config = config or PortfolioConfig()
    ledger = run_paper_portfolio(signals, prices, sessions, risk_manager, previous, config)
    in_range = ledger.equity["session_date"].between(sessions[0], sessions[-1])
    return TradingResult(
        decisions=ledger.decisions,
        equity=ledger.equity[in_range].reset_index(drop=True),
        book=position_book(ledger.positions, sessions),
    )


def latest_positions(book: pd.DataFrame) -> pd.DataFrame:
    """One row per position: its state in the latest book it appears in (the ledger as it stands)."""
    if book.empty:
        return empty_frame(POSITION_COLUMNS)
    latest = book.sort_values("session_date", kind="stable").drop_duplicates(
        ["ticker", "opened_on"], keep="last"
    )
    return conform(latest, POSITION_COLUMNS).sort_values(
        ["opened_on", "ticker"], kind="stable", ignore_index=True
    )
