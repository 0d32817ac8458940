"""The paper portfolio: accepted signals become positions that close at stop, target or expiry.

Pure, no Dagster. Sessions are processed in order. For session D:

1. the risk manager judges D's signals against the state after D−1 (equity marked to D−1's close,
   its peak, the tickers open after D−1), so a position that closes during D still counts as held;
2. positions opened before D meet D's bar: the stop if the bar reaches it (the low for a long, the
   high for a short; the stop wins when the bar also reaches the target: daily bars do not say
   which came first), else the target, else expiry at D's close once ``horizon`` sessions have
   passed since the entry. A barrier fills at its level, or at the open when the bar gapped
   through it;
3. accepted signals open positions at their entry (D's close) with the decision's shares: a long
   pays for them, a short receives the proceeds and owes the shares back; every fill, in and out,
   pays commission and slippage (``PortfolioConfig``, basis points of the traded value);
4. open positions are marked to D's close (the last close known, if a ticker has no bar on D) and
   D's equity row is written: equity = cash + market value (shorts count negative), peak = running
   max of equity.

The whole state is the two output tables, so a run can resume from the tables of an earlier run:
processing a range in one call equals processing each session in its own call given the previous
result, and re-processing a session first rewinds the tables to the state after the session before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from tft_pipeline.model.labels import DEFAULT_RULE
from tft_pipeline.risk import PortfolioState
from tft_pipeline.tables import conform, empty_frame
from tft_pipeline.trading_calendar import nyse_calendar, previous_session, sessions_between

STOP, TARGET, EXPIRY = "stop", "target", "expiry"
# What a position gains when it closes: empty while it is open.
EXIT_COLUMNS = ("closed_on", "exit_price", "exit_reason", "gross_pnl", "exit_costs", "pnl")
LONG, SHORT = "long", "short"

POSITION_COLUMNS: dict[str, str] = {
    "ticker": "object",
    "opened_on": "datetime64[ns]",
    "direction": "object",  # "long" | "short"
    "entry": "float64",
    "shares": "int64",  # always positive; the direction says which way
    "stop_loss": "float64",
    "take_profit": "float64",
    "expires_on": "datetime64[ns]",  # the session whose close ends the trade if no barrier did
    "closed_on": "datetime64[ns]",  # NaT while open
    "exit_price": "float64",  # NaN while open
    "exit_reason": "object",  # "stop" | "target" | "expiry"; None while open
    "gross_pnl": "float64",  # shares × (exit_price − entry), the other way for a short; NaN while open
    "entry_costs": "float64",  # commission + slippage of the entry fill
    "exit_costs": "float64",  # the same for the exit fill; NaN while open
    "pnl": "float64",  # gross_pnl − entry_costs − exit_costs: after costs; NaN while open
    "risk_dollars": "float64",  # shares × |entry − stop_loss|: one R
    "confidence": "float64",
    "model": "object",
    "model_version": "object",
}

EQUITY_COLUMNS: dict[str, str] = {
    "session_date": "datetime64[ns]",
    "equity": "float64",  # cash + market value of open positions at the session's close
    "peak_equity": "float64",
    "drawdown": "float64",  # (peak_equity − equity) / peak_equity
    "cash": "float64",
    "market_value": "float64",  # longs at their mark minus what the shorts would cost to buy back
    "open_positions": "int64",
}


def clear_exits(positions: pd.DataFrame, rows: pd.Series) -> None:
    """Empty the exit columns of ``rows`` (in place): those positions are open again."""
    for column in EXIT_COLUMNS:
        positions.loc[rows, column] = None if column == "exit_reason" else np.nan
    positions.loc[rows, "closed_on"] = pd.NaT


class SignalGate(Protocol):
    """What the portfolio needs of ``tft_pipeline.risk.RiskManager``."""

    def evaluate_batch(self, signals: pd.DataFrame, portfolio: PortfolioState) -> pd.DataFrame: ...


# Costs per side, in basis points of the traded value: a retail broker's commission and the
# slippage of a market order in a liquid US stock. A backtest without them flatters.
DEFAULT_COMMISSION_BPS = 1.0
DEFAULT_SLIPPAGE_BPS = 5.0


@dataclass(frozen=True)
class PortfolioConfig:
    """Starting capital, how long a position may live, and what each fill costs."""

    initial_equity: float = 100_000.0
    horizon: int = DEFAULT_RULE.horizon  # sessions after the entry, as for the labels
    commission_bps: float = DEFAULT_COMMISSION_BPS  # per side, of the traded value
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS  # per side, charged like commission

    def __post_init__(self) -> None:
        if not (np.isfinite(self.initial_equity) and self.initial_equity > 0):
            raise ValueError("initial_equity must be a positive amount")
        if self.horizon < 1:
            raise ValueError("horizon must be at least one session")
        for name in ("commission_bps", "slippage_bps"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 <= value < 10_000):
                raise ValueError(f"{name} must be between 0 and 10,000 basis points, got {value!r}")

    @property
    def cost_rate(self) -> float:
        """The share of a fill's traded value paid in costs, per side."""
        return (self.commission_bps + self.slippage_bps) / 10_000


@dataclass(frozen=True)
class PaperPortfolio:
    """The ledger: every position ever opened, one equity row per session, the risk decisions.

    ``decisions`` holds only the sessions processed by the call that returned this value (one row
    per signal: the signal's columns and the risk manager's verdict); the other two tables are
    cumulative and are all a later call needs to resume.
    """

    positions: pd.DataFrame
    equity: pd.DataFrame
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def from_tables(cls, positions: pd.DataFrame, equity: pd.DataFrame) -> PaperPortfolio:
        """The ledger from the ``portfolio.positions`` and ``portfolio.equity`` tables as stored."""
        return cls(
            positions=conform(positions, POSITION_COLUMNS),
            equity=conform(equity, EQUITY_COLUMNS).sort_values("session_date", ignore_index=True),
        )

    @classmethod
    def empty(cls) -> PaperPortfolio:
        return cls(empty_frame(POSITION_COLUMNS), empty_frame(EQUITY_COLUMNS))

    def rewound_before(self, session: pd.Timestamp) -> PaperPortfolio:
        """The ledger as it stood after the last session before ``session``."""
        equity = self.equity[self.equity["session_date"] < session]
        positions = self.positions[self.positions["opened_on"] < session].copy()
        reopened = positions["closed_on"] >= session
        clear_exits(positions, reopened)
        return PaperPortfolio(positions.reset_index(drop=True), equity.reset_index(drop=True))

    def state(self, initial_equity: float) -> PortfolioState:
        """What the risk manager sees for the next session: the state after the last equity row."""
        if self.equity.empty:
            return PortfolioState(initial_equity, initial_equity, ())
        last = self.equity.iloc[-1]
        open_tickers = self.positions.loc[self.positions["closed_on"].isna(), "ticker"]
        return PortfolioState(float(last.equity), float(last.peak_equity), tuple(open_tickers))


def _consecutive_sessions(sessions: Iterable) -> pd.DatetimeIndex:
    days = (
        pd.DatetimeIndex(pd.to_datetime(list(sessions))).normalize().drop_duplicates().sort_values()
    )
    if len(days) == 0:
        return days
    expected = sessions_between(days[0], days[-1])
    if len(expected) != len(days) or not (expected == days).all():
        raise ValueError(
            f"sessions must be consecutive NYSE sessions; {days[0].date()}..{days[-1].date()} "
            f"has {len(expected)} sessions, {len(days)} were given"
        )
    return days


def _expiry_session(opened_on: pd.Timestamp, horizon: int) -> pd.Timestamp:
    calendar_sessions = nyse_calendar().sessions
    position = int(calendar_sessions.searchsorted(opened_on, side="left"))
    return pd.Timestamp(calendar_sessions[min(position + horizon, len(calendar_sessions) - 1)])


@dataclass(frozen=True)
class _PricePanels:
    """Bars of the processed sessions as (session × ticker) arrays, and the last close known."""

    sessions: pd.DatetimeIndex
    tickers: pd.Index
    arrays: dict[str, np.ndarray]  # open, high, low, mark

    @classmethod
    def of(cls, prices: pd.DataFrame, sessions: pd.DatetimeIndex) -> _PricePanels:
        bars = prices[prices["session_date"] <= sessions[-1]].drop_duplicates(
            ["ticker", "session_date"], keep="last"
        )
        wide = {
            column: bars.pivot(index="session_date", columns="ticker", values=column)
            for column in ("open", "high", "low", "close")
        }
        history = wide["close"].index.union(sessions)
        arrays = {
            column: wide[column].reindex(sessions).to_numpy(dtype="float64")
            for column in ("open", "high", "low")
        }
        # A ticker without a bar on a session is marked at its last close before it.
        arrays["mark"] = (
            wide["close"].reindex(history).ffill().reindex(sessions).to_numpy("float64")
        )
        return cls(sessions, wide["close"].columns, arrays)

    def values(self, column: str, session: pd.Timestamp, tickers: pd.Series) -> np.ndarray:
        """``column`` on ``session`` for each ticker (NaN for a ticker with no price at all)."""
        row = self.sessions.get_loc(session)
        columns = self.tickers.get_indexer(tickers.to_numpy())
        found = self.arrays[column][row, np.maximum(columns, 0)] if len(self.tickers) else np.nan
        return np.where(columns >= 0, found, np.nan)


def run_paper_portfolio(
    signals: pd.DataFrame,
    prices: pd.DataFrame,
    sessions: Iterable,
    risk_manager: SignalGate,
    previous: PaperPortfolio | None = None,
    config: PortfolioConfig = PortfolioConfig(),
) -> PaperPortfolio:
    """Process consecutive ``sessions`` in order, starting from ``previous`` (or from cash).

    ``signals`` has the ``signals.trading_signals`` columns (rows of other sessions are ignored);
    ``prices`` the ``clean.price_history`` ones, through the last session, with the closes before
    the first session for positions still open. ``previous`` is rewound to the state after the
    session before the first one, which must be its last equity row.
    """
    days = _consecutive_sessions(sessions)
    if len(days) == 0:
        return previous or PaperPortfolio.empty()
    ledger = (previous or PaperPortfolio.empty()).rewound_before(days[0])
    if not ledger.equity.empty and ledger.equity["session_date"].iloc[-1] != previous_session(
        days[0]
    ):
        raise ValueError(
            f"the portfolio ends on {ledger.equity['session_date'].iloc[-1].date()}; session "
            f"{days[0].date()} needs the state after {previous_session(days[0]).date()}: "
            "process the sessions in between first"
        )
    panels = _PricePanels.of(prices, days)
    signals_by_session = dict(tuple(signals.groupby("session_date", sort=False)))

    open_positions = ledger.positions[ledger.positions["closed_on"].isna()].reset_index(drop=True)
    finished = [ledger.positions[ledger.positions["closed_on"].notna()]]
    equity_rows: list[dict] = []
    decisions: list[pd.DataFrame] = []
    cash = (
        float(ledger.equity["cash"].iloc[-1]) if not ledger.equity.empty else config.initial_equity
    )
    state = ledger.state(config.initial_equity)

    for day in days:
        day_signals = signals_by_session.get(day)
        accepted = pd.DataFrame()
        if day_signals is not None and len(day_signals):
            decided = risk_manager.evaluate_batch(day_signals, state)
            decisions.append(decided)
            accepted = decided[decided["accepted"].astype(bool) & (decided["shares"] > 0)]

        open_positions, closed, cash = _close_positions(
            open_positions, panels, day, cash, config.cost_rate
        )
        finished.append(closed)
        opened = _open_positions(accepted, day, config.horizon)
        opened["entry_costs"] = opened["shares"] * opened["entry"] * config.cost_rate
        # A long pays for its shares; a short receives the proceeds and owes the shares back.
        # Either way the fill costs commission and slippage.
        cash -= float((_signed_shares(opened) * opened["entry"]).sum() + opened["entry_costs"].sum())
        open_positions = (
            pd.concat([open_positions, opened], ignore_index=True)
            if len(opened)
            else open_positions
        )

        marks = panels.values("mark", day, open_positions["ticker"])
        marks = np.where(
            np.isfinite(marks), marks, open_positions["entry"].to_numpy(dtype="float64")
        )
        market_value = float((_signed_shares(open_positions) * marks).sum())
        equity = cash + market_value
        peak = max(state.peak_value, equity)
        equity_rows.append(
            {
                "session_date": day,
                "equity": equity,
                "peak_equity": peak,
                "drawdown": (peak - equity) / peak,
                "cash": cash,
                "market_value": market_value,
                "open_positions": len(open_positions),
            }
        )
        state = PortfolioState(equity, peak, tuple(open_positions["ticker"]))

    positions = pd.concat([*finished, open_positions], ignore_index=True)
    positions = conform(positions, POSITION_COLUMNS).sort_values(
        ["opened_on", "ticker"], kind="stable", ignore_index=True
    )
    equity_table = pd.concat(
        [ledger.equity, conform(pd.DataFrame(equity_rows), EQUITY_COLUMNS)], ignore_index=True
    )
    return PaperPortfolio(
        positions=positions,
        equity=conform(equity_table, EQUITY_COLUMNS),
        decisions=pd.concat(decisions, ignore_index=True) if decisions else pd.DataFrame(),
    )


def _close_positions(
    open_positions: pd.DataFrame,
    panels: _PricePanels,
    day: pd.Timestamp,
    cash: float,
    cost_rate: float,
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Positions still open after ``day``'s bar, those it closed, and the cash after the exits."""
    if open_positions.empty:
        return open_positions, open_positions, cash
    tickers = open_positions["ticker"]
    open_, high, low, mark = (
        panels.values(name, day, tickers) for name in ("open", "high", "low", "mark")
    )
    stop = open_positions["stop_loss"].to_numpy(dtype="float64")
    target = open_positions["take_profit"].to_numpy(dtype="float64")
    short = (open_positions["direction"] == SHORT).to_numpy()
    # A long's stop is below and its target above; a short's the other way round. A bar that
    # gapped through a level fills at the open, the worse price for a stop, the better for a target.
    hits_stop = np.where(short, high >= stop, low <= stop)
    hits_target = ~hits_stop & np.where(short, low <= target, high >= target)
    expires = ~hits_stop & ~hits_target & (open_positions["expires_on"] <= day).to_numpy()
    exit_price = np.select(
        [hits_stop, hits_target, expires],
        [
            np.where(short, np.fmax(stop, open_), np.fmin(stop, open_)),
            np.where(short, np.fmin(target, open_), np.fmax(target, open_)),
            mark,
        ],
        default=np.nan,
    )
    reason = np.select([hits_stop, hits_target, expires], [STOP, TARGET, EXPIRY], default="")
    closing = hits_stop | hits_target | expires
    closed = open_positions[closing].copy()
    closed["closed_on"] = day
    closed["exit_price"] = exit_price[closing]
    closed["exit_reason"] = reason[closing].astype(object)
    closed["exit_costs"] = closed["shares"] * closed["exit_price"] * cost_rate
    closed["gross_pnl"] = _signed_shares(closed) * (closed["exit_price"] - closed["entry"])
    closed["pnl"] = closed["gross_pnl"] - closed["entry_costs"] - closed["exit_costs"]
    cash += float((_signed_shares(closed) * closed["exit_price"]).sum() - closed["exit_costs"].sum())
    return open_positions[~closing].reset_index(drop=True), closed, cash


def _signed_shares(positions: pd.DataFrame) -> np.ndarray:
    """Shares held: positive for a long, negative for a short."""
    shares = positions["shares"].to_numpy(dtype="float64")
    return np.where((positions["direction"] == SHORT).to_numpy(), -shares, shares)


def _open_positions(accepted: pd.DataFrame, day: pd.Timestamp, horizon: int) -> pd.DataFrame:
    if accepted.empty:
        return empty_frame(POSITION_COLUMNS)
    opened = pd.DataFrame(
        {
            "ticker": accepted["ticker"].to_numpy(),
            "opened_on": day,
            "direction": (
                accepted["direction"].fillna(LONG) if "direction" in accepted else pd.Series(LONG, index=accepted.index)
            ).to_numpy(),
            "entry": accepted["entry"].to_numpy(dtype="float64"),
            "shares": accepted["shares"].to_numpy(dtype="int64"),
            "stop_loss": accepted["stop_loss"].to_numpy(dtype="float64"),
            "take_profit": accepted["take_profit"].to_numpy(dtype="float64"),
            "expires_on": _expiry_session(day, horizon),
            "closed_on": pd.NaT,
            "exit_price": np.nan,
            "exit_reason": None,
            "gross_pnl": np.nan,
            "entry_costs": 0.0,
            "exit_costs": np.nan,
            "pnl": np.nan,
            "risk_dollars": accepted["risk_dollars"].to_numpy(dtype="float64"),
            "confidence": accepted["confidence"].to_numpy(dtype="float64"),
            "model": accepted.get("model", pd.Series(None, index=accepted.index)).to_numpy(),
            "model_version": accepted.get(
                "model_version", pd.Series(None, index=accepted.index)
            ).to_numpy(),
        }
    )
    return opened.astype(POSITION_COLUMNS)
