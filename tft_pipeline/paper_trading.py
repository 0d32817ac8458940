"""Paper trading over a range of sessions, carried forward from the tables of the sessions before.

The whole state the risk manager and the ledger need after session D is small, and bounded:

- ``portfolio.equity``: D's row (cash, equity, running peak, the drawdown halt it carries) and the
  rows of the ``drawdown_lookback_sessions`` before it (the drawdown window's peak);
- ``portfolio.position_book``: D's book (every position open at D's close, and those closed or not
  filled during D) and the stop-outs of the ``cooldown_sessions`` before it (the cooldowns);
- ``signals.risk_decisions``: D's accepted decisions, the orders that fill at D+1's open.

A range run reads the state after the session before its first one, judges and books its sessions
in order, and writes each session's equity row, book and decisions. Nothing is replayed from the
start: a daily run reads a fixed number of sessions of state whatever the history's length, and
re-running a range rewinds it by construction (it starts from the state before the range). A
single-run backfill and one run per session therefore give the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tft_pipeline.portfolio import (
    EQUITY_COLUMNS,
    POSITION_COLUMNS,
    STOP,
    PaperPortfolio,
    PortfolioConfig,
    SignalGate,
    as_orders,
    clear_exits,
    conform_positions,
    run_paper_portfolio,
    undo_adjustments,
)
from tft_pipeline.tables import conform, empty_frame

BOOK_COLUMNS: dict[str, str] = {"session_date": "datetime64[ns]", **POSITION_COLUMNS}


@dataclass(frozen=True)
class TradingResult:
    """The range's decisions, equity rows and books."""

    decisions: pd.DataFrame
    equity: pd.DataFrame
    book: pd.DataFrame


def position_book(
    positions: pd.DataFrame,
    sessions: pd.DatetimeIndex,
    adjustments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each session's book: positions open at its close and those closed during it, as known then.

    A position opened on D appears in D's book and every later one until the session it closes,
    where it appears with its exit. Exit columns of the sessions before the close are empty. An
    order that was not filled appears once, in the book of the session it was to fill in, with
    ``exit_reason="not_filled"`` and the reason in ``fill_note``. ``adjustments`` (the ledger's,
    ``portfolio.ADJUSTMENT_COLUMNS``): a book before a split or a dividend shows the shares, levels
    and dividends the position had then.
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
    book = undo_adjustments(book, adjustments, as_of=book["session_date"])
    book = book.sort_values(["session_date", "opened_on", "ticker"], kind="stable")
    return conform(book, BOOK_COLUMNS)


def state_after(
    book: pd.DataFrame, equity: pd.DataFrame, decisions: pd.DataFrame | None = None
) -> PaperPortfolio | None:
    """The ledger to resume from after the last booked session (None: nothing booked, start
    from cash).

    ``equity``: the last equity rows, that session's and up to ``drawdown_lookback_sessions``
    before it (fewer only when the history is shorter). ``book``: that session's book rows, and
    any earlier book rows of positions stopped out within the cooldown (other rows are ignored).
    ``decisions``: that session's risk decisions (the accepted ones are the orders for the next
    open; those already answered by a position row of the book, e.g. filled at the close, are not
    filled again).
    """
    if equity.empty:
        return None
    equity = conform(equity, EQUITY_COLUMNS).sort_values("session_date", ignore_index=True)
    last = equity["session_date"].iloc[-1]
    if not book.empty:
        sessions = pd.to_datetime(book["session_date"])
        stopped = (book["exit_reason"] == STOP) & (pd.to_datetime(book["closed_on"]) == sessions)
        book = book[(sessions == last) | stopped]
        book = book.sort_values("session_date", kind="stable").drop_duplicates(
            ["ticker", "opened_on"], keep="last"
        )
    positions = conform_positions(book.drop(columns="session_date", errors="ignore"))
    return PaperPortfolio(
        positions=positions.sort_values(["opened_on", "ticker"], kind="stable", ignore_index=True),
        equity=equity,
        orders=as_orders(decisions),
    )


def trade_sessions(
    signals: pd.DataFrame,
    previous: PaperPortfolio | None,
    prices: pd.DataFrame,
    sessions: pd.DatetimeIndex,
    risk_manager: SignalGate,
    config: PortfolioConfig | None = None,
    actions: pd.DataFrame | None = None,
) -> TradingResult:
    """Judge and book consecutive ``sessions`` of ``signals``, resuming from ``previous``.

    ``previous``: the state after the session before the range (``state_after``), or None to start
    from cash. ``prices``: clean bars of the range and a few sessions before it (the last closes of
    positions still open), as traded; ``actions``: ``clean.corporate_actions`` rows of the same
    sessions (splits roll open positions, dividends are credited; None: none). The decisions of the
    range's last session stay orders for the session after it: the next run reads them back from
    ``signals.risk_decisions``.
    """
    config = config or PortfolioConfig()
    ledger = run_paper_portfolio(
        signals, prices, sessions, risk_manager, previous, config, actions=actions
    )
    in_range = ledger.equity["session_date"].between(sessions[0], sessions[-1])
    return TradingResult(
        decisions=ledger.decisions,
        equity=ledger.equity[in_range].reset_index(drop=True),
        book=position_book(ledger.positions, sessions, ledger.adjustments),
    )


def latest_positions(book: pd.DataFrame) -> pd.DataFrame:
    """One row per position: its state in the latest book it appears in (the ledger as it stands)."""
    if book.empty:
        return empty_frame(POSITION_COLUMNS)
    latest = book.sort_values("session_date", kind="stable").drop_duplicates(
        ["ticker", "opened_on"], keep="last"
    )
    return conform_positions(latest).sort_values(
        ["opened_on", "ticker"], kind="stable", ignore_index=True
    )
