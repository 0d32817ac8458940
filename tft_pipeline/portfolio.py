"""The paper portfolio: accepted signals become orders, filled as a broker would fill them, and
positions that close at stop, target or expiry.

Pure, no Dagster. Sessions are processed in order. For session D:

1. **fills at the open** (``fill_at="next_open"``, the default): the orders decided at the close of
   the session before fill at D's open, most confident first (the risk decisions' ``rank``). The
   fill price is D's open; the bracket keeps its distances (stop = fill − (signal entry − signal
   stop) for a long, mirrored for a short, the target likewise), so reward/risk is unchanged. A
   ticker without a bar on D is not filled. No leverage: each order is cut to
   ``min(decided shares, max_position_fraction × equity at the fill / fill price, buying power /
   (fill price × (1 + cost rate)))`` whole shares, where equity and buying power (equity − gross
   exposure) are taken with the positions marked at D's open (their last close if they have no
   bar); an order cut to 0 is not filled. Every order not filled becomes a position row with
   ``exit_reason="not_filled"``, 0 shares and the reason in ``fill_note``;
2. **exits**: positions meet D's bar, the ones just filled included: the stop if the bar reaches
   it (the low for a long, the high for a short; the stop wins when the bar also reaches the
   target: daily bars do not say which came first), else the target, else expiry at D's close
   once ``horizon`` sessions have passed since the fill. A barrier fills at its level, or at the
   open when the bar gapped through it;
3. **the decision at D's close**: open positions are marked to D's close (the last close known
   for a ticker without a bar) and the risk manager judges D's signals against the portfolio *at
   D's close*: D's exits done, before D's own orders (all of it is known at D's close; before the
   next-open fills the state after D−1 was used, so a position closing during D still counted as
   held). The state carries the protections of ``RiskLimits``: the drawdown from the peak of the
   last ``drawdown_lookback_sessions`` sessions and a halt of ``drawdown_stop_sessions`` once it
   reaches ``max_drawdown``, the session's return (``max_daily_loss``), the tickers stopped out
   within ``cooldown_sessions``;
4. **orders**: the accepted decisions become orders for D+1's open; with ``fill_at="close"`` they
   fill at once, market-on-close at the signal's entry (D's close), sized as in 1 with the
   positions marked at D's close;
5. D's equity row: equity = cash + market value at D's close (shorts count negative), the running
   peak, and the protections' figures the decision saw.

Corporate actions (``clean.corporate_actions``; prices are as traded) come first on their ex-date
D, before the open's fills: a split rolls every position open at D−1's close (shares × ratio in
whole shares, the fraction paid out as cash in lieu at D−1's close in post-split units; entry, stop
and target ÷ ratio: no spurious stop, the position keeps its value) and the orders waiting for D's
open (shares × ratio, levels ÷ ratio). Then a dividend credits shares × dividend to the cash of a
long held at D−1's close and debits it from a short; the position's ``dividends`` and D's equity
row carry it, and it counts in the position's gross and net pnl. Marks carried over a missing bar
are split-adjusted too.

A long pays for its shares, a short receives the proceeds and owes the shares back; every fill, in
and out, pays commission and slippage (``PortfolioConfig``, basis points of the traded value).

The state is small and point in time: the equity rows of the last ``drawdown_lookback_sessions``
sessions, the positions open at the last close (and those stopped out within the cooldown), and
the orders decided at the last close. So a run can resume from the tables of an earlier run:
processing a range in one call equals processing each session in its own call given the previous
result, and re-processing a session first rewinds the tables to the state after the session before.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Protocol

import numpy as np
import pandas as pd

from tft_pipeline.corporate_actions import (
    dividend_cash,
    roll_across_split,
    session_action_panels,
    split_factor_panel,
    split_levels,
)
from tft_pipeline.model.labels import DEFAULT_RULE
from tft_pipeline.risk import (
    RELATIVE_TOLERANCE,
    PortfolioState,
    RiskLimits,
    whole_shares,
)
from tft_pipeline.tables import conform, empty_frame
from tft_pipeline.trading_calendar import nyse_calendar, previous_session, sessions_between

STOP, TARGET, EXPIRY = "stop", "target", "expiry"
# An accepted order that opened nothing: no bar to fill at, or no share fitted the cash.
NOT_FILLED = "not_filled"
# A reverse split left less than one whole share: all of it was paid out as cash in lieu.
CASH_IN_LIEU = "cash_in_lieu"
# What a position gains when it closes: empty while it is open.
EXIT_COLUMNS = ("closed_on", "exit_price", "exit_reason", "gross_pnl", "exit_costs", "pnl")
LONG, SHORT = "long", "short"
FILL_NEXT_OPEN, FILL_CLOSE = "next_open", "close"
FILL_MODES = (FILL_NEXT_OPEN, FILL_CLOSE)

POSITION_COLUMNS: dict[str, str] = {
    "ticker": "object",
    "signal_date": "datetime64[ns]",  # the session whose close decided the order
    "opened_on": "datetime64[ns]",  # the session of the fill (of the attempt, when not filled)
    "direction": "object",  # "long" | "short"
    "entry": "float64",  # the fill price; NaN when not filled
    "ordered_shares": "int64",  # the risk decision's size
    "shares": "int64",  # filled: ordered_shares or fewer (cash, 20 % of equity); 0 when not filled
    "stop_loss": "float64",
    "take_profit": "float64",
    "expires_on": "datetime64[ns]",  # the session whose close ends the trade if no barrier did
    "closed_on": "datetime64[ns]",  # NaT while open
    "exit_price": "float64",  # NaN while open
    "exit_reason": "object",  # "stop" | "target" | "expiry" | "not_filled"; None while open
    # shares × (exit_price − entry), the other way for a short, + dividends + split_fraction_pnl;
    # NaN while open
    "gross_pnl": "float64",
    "entry_costs": "float64",  # commission + slippage of the entry fill
    "exit_costs": "float64",  # the same for the exit fill; NaN while open
    "pnl": "float64",  # gross_pnl − entry_costs − exit_costs: after costs; NaN while open
    "risk_dollars": "float64",  # shares × |entry − stop_loss|: one R
    "confidence": "float64",
    "model": "object",
    "model_version": "object",
    "fill_note": "object",  # why an order was resized or not filled; None when filled as ordered
    # Added last (stored tables gain them at the end): dividend cash received while open, negative
    # for a short (it pays them); and the gain on fractional shares a split paid out as cash in
    # lieu (their proceeds at the previous close less their cost). 0.0 when none.
    "dividends": "float64",
    "split_fraction_pnl": "float64",
}

EQUITY_COLUMNS: dict[str, str] = {
    "session_date": "datetime64[ns]",
    "equity": "float64",  # cash + market value of open positions at the session's close
    "peak_equity": "float64",  # the running maximum of equity (all history)
    "drawdown": "float64",  # (peak_equity − equity) / peak_equity
    "cash": "float64",
    "market_value": "float64",  # longs at their mark minus what the shorts would cost to buy back
    "open_positions": "int64",
    # The protections as the risk manager saw them at the close, before the session's own orders:
    "session_return": "float64",  # equity / the previous close's equity − 1
    "window_peak_equity": "float64",  # the peak of the drawdown window (see RiskLimits)
    "window_drawdown": "float64",  # (window_peak_equity − equity) / window_peak_equity
    "halt_started_on": "datetime64[ns]",  # the session the last drawdown halt began (carried)
    "halted_until": "datetime64[ns]",  # the last session of the halt covering this one; NaT: none
    "dividends": "float64",  # dividend cash credited during the session (debited for shorts)
}

# What a corporate action changed on an open position: the values before it (in memory only, so
# the book of a session before the ex-date, and a rewind, show the position as it was then).
ADJUSTMENT_COLUMNS: dict[str, str] = {
    "ticker": "object",
    "opened_on": "datetime64[ns]",
    "session_date": "datetime64[ns]",  # the ex-date
    "shares": "int64",
    "entry": "float64",
    "stop_loss": "float64",
    "take_profit": "float64",
    "risk_dollars": "float64",
    "dividends": "float64",
    "split_fraction_pnl": "float64",
}
# The position columns an adjustment restores.
_ADJUSTED = tuple(
    column for column in ADJUSTMENT_COLUMNS if column not in ("ticker", "opened_on", "session_date")
)

# An order: an accepted risk decision waiting for its fill (the decision's columns).
ORDER_COLUMNS: dict[str, str] = {
    "session_date": "datetime64[ns]",  # the decision's session (the position's signal_date)
    "ticker": "object",
    "direction": "object",
    "confidence": "float64",
    "entry": "float64",
    "stop_loss": "float64",
    "take_profit": "float64",
    "shares": "int64",
    "risk_dollars": "float64",
    "rank": "int64",  # the fill order within the session: 1 fills first
    "model": "object",
    "model_version": "object",
}


def conform_positions(positions: pd.DataFrame) -> pd.DataFrame:
    """Stored position rows as ``POSITION_COLUMNS``. Rows booked before the next-open fills have no
    ``signal_date`` or ``ordered_shares``: they were filled at their signal's close, as ordered."""
    positions = positions.copy()
    if "opened_on" in positions.columns:
        signal_date = positions.get("signal_date", pd.Series(pd.NaT, index=positions.index))
        positions["signal_date"] = pd.to_datetime(signal_date).fillna(
            pd.to_datetime(positions["opened_on"])
        )
    if "shares" in positions.columns:
        ordered = positions.get("ordered_shares", pd.Series(np.nan, index=positions.index))
        positions["ordered_shares"] = pd.to_numeric(ordered).fillna(positions["shares"])
    positions = conform(positions, POSITION_COLUMNS)
    # Rows stored before the corporate actions had no dividends: none were booked.
    for column in ("dividends", "split_fraction_pnl"):
        positions[column] = positions[column].fillna(0.0)
    return positions


def undo_adjustments(
    positions: pd.DataFrame, adjustments: pd.DataFrame, *, as_of: pd.Series | pd.Timestamp
) -> pd.DataFrame:
    """``positions`` as they stood at the close of ``as_of`` (a session, or one per row): the
    values before the first corporate action after it (``ADJUSTMENT_COLUMNS``), when there is one.
    """
    if adjustments is None or adjustments.empty or positions.empty:
        return positions
    keys = ["ticker", "opened_on"]
    frame = positions.reset_index(drop=True)
    if isinstance(as_of, pd.Series):
        when = as_of.to_numpy(dtype="datetime64[ns]")
    else:
        when = np.full(len(frame), pd.Timestamp(as_of).to_datetime64(), dtype="datetime64[ns]")
    probe = frame[keys].assign(as_of=when, row=np.arange(len(frame)))
    events = adjustments.rename(columns={"session_date": "event_on"})
    joined = probe.merge(events, on=keys, how="inner")
    joined = joined[joined["event_on"] > joined["as_of"]]
    if joined.empty:
        return positions
    # The first action after as_of holds the values the position had at as_of's close.
    first = joined.sort_values(["row", "event_on"], kind="stable").drop_duplicates("row")
    out = frame.copy()
    rows = first["row"].to_numpy()
    for column in _ADJUSTED:
        out.loc[rows, column] = first[column].to_numpy()
    return out.set_axis(positions.index)


def clear_exits(positions: pd.DataFrame, rows: pd.Series) -> None:
    """Empty the exit columns of ``rows`` (in place): those positions are open again."""
    for column in EXIT_COLUMNS:
        positions.loc[rows, column] = None if column == "exit_reason" else np.nan
    positions.loc[rows, "closed_on"] = pd.NaT


class SignalGate(Protocol):
    """What the portfolio needs of ``tft_pipeline.risk.RiskManager``."""

    limits: RiskLimits

    def evaluate_batch(self, signals: pd.DataFrame, portfolio: PortfolioState) -> pd.DataFrame: ...


# Costs per side, in basis points of the traded value: a retail broker's commission and the
# slippage of a market order in a liquid US stock. A backtest without them flatters.
DEFAULT_COMMISSION_BPS = 1.0
DEFAULT_SLIPPAGE_BPS = 5.0


@dataclass(frozen=True)
class PortfolioConfig:
    """Starting capital, how long a position may live, what each fill costs and when orders fill.

    ``fill_at``: ``"next_open"`` (default) fills the orders decided at a session's close at the
    next session's open; ``"close"`` fills them market-on-close at the signal's entry.
    """

    initial_equity: float = 100_000.0
    horizon: int = DEFAULT_RULE.horizon  # sessions after the fill, as for the labels
    commission_bps: float = DEFAULT_COMMISSION_BPS  # per side, of the traded value
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS  # per side, charged like commission
    fill_at: str = FILL_NEXT_OPEN

    def __post_init__(self) -> None:
        if not (np.isfinite(self.initial_equity) and self.initial_equity > 0):
            raise ValueError("initial_equity must be a positive amount")
        if self.horizon < 1:
            raise ValueError("horizon must be at least one session")
        for name in ("commission_bps", "slippage_bps"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 <= value < 10_000):
                raise ValueError(f"{name} must be between 0 and 10,000 basis points, got {value!r}")
        if self.fill_at not in FILL_MODES:
            raise ValueError(f"fill_at must be 'next_open' or 'close', got {self.fill_at!r}")

    @property
    def cost_rate(self) -> float:
        """The share of a fill's traded value paid in costs, per side."""
        return (self.commission_bps + self.slippage_bps) / 10_000


def empty_orders() -> pd.DataFrame:
    """An orders frame without rows."""
    return empty_frame(ORDER_COLUMNS)


def as_orders(decisions: pd.DataFrame | None) -> pd.DataFrame:
    """The accepted rows of risk decisions as orders (``ORDER_COLUMNS``).

    A missing ``rank`` (decisions stored before it was kept) is rebuilt from the confidences.
    """
    if decisions is None or decisions.empty:
        return empty_orders()
    keep = pd.to_numeric(decisions["shares"], errors="coerce").fillna(0).to_numpy() > 0
    if "accepted" in decisions.columns:
        keep &= decisions["accepted"].fillna(False).to_numpy(dtype=bool)
    if not keep.any():
        return empty_orders()
    accepted = decisions[keep]
    columns = {}
    for name in ORDER_COLUMNS:
        if name in accepted.columns:
            columns[name] = accepted[name].to_numpy()
        else:
            columns[name] = np.full(len(accepted), None, dtype=object)
    orders = pd.DataFrame(columns)
    direction = orders["direction"].where(orders["direction"].notna(), LONG)
    orders["direction"] = direction.astype(str).str.strip().str.lower().astype(object)
    rank = pd.to_numeric(orders["rank"], errors="coerce")
    if rank.isna().any():
        by_confidence = orders.groupby("session_date")["confidence"].rank(
            ascending=False, method="first"
        )
        rank = rank.fillna(by_confidence)
    orders["rank"] = rank
    # The frame came from the pipeline's own decisions: plain casts, no row-by-row checks.
    return orders.astype(
        {name: dtype for name, dtype in ORDER_COLUMNS.items() if dtype != "object"}
    )


@dataclass(frozen=True)
class PaperPortfolio:
    """The ledger: every position ever opened, one equity row per session, the orders, the decisions.

    ``decisions`` holds only the sessions processed by the call that returned this value (one row
    per signal: the signal's columns and the risk manager's verdict). ``orders`` holds the accepted
    decisions (``ORDER_COLUMNS``); those of the last equity row's session that have no position row
    yet are pending, to be filled at the next session's open. The other tables are cumulative and,
    with the pending orders, all a later call needs to resume. ``adjustments``
    (``ADJUSTMENT_COLUMNS``) records what the splits and dividends of the processed sessions
    changed on each position (its values before), so the book of an earlier session and a rewind
    show the position as it was then.
    """

    positions: pd.DataFrame
    equity: pd.DataFrame
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    orders: pd.DataFrame = field(default_factory=lambda: empty_orders())
    adjustments: pd.DataFrame = field(default_factory=lambda: empty_frame(ADJUSTMENT_COLUMNS))

    @classmethod
    def from_tables(
        cls, positions: pd.DataFrame, equity: pd.DataFrame, orders: pd.DataFrame | None = None
    ) -> PaperPortfolio:
        """The ledger from the ``portfolio.positions`` and ``portfolio.equity`` tables as stored,
        and the accepted decisions (``signals.risk_decisions`` or ``risk_filtered_signals``) of at
        least the last booked session (its pending orders)."""
        return cls(
            positions=conform_positions(positions),
            equity=conform(equity, EQUITY_COLUMNS).sort_values("session_date", ignore_index=True),
            orders=as_orders(orders),
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
        positions = undo_adjustments(
            positions.reset_index(drop=True), self.adjustments, as_of=previous_session(session)
        )
        orders = self.orders[self.orders["session_date"] < session]
        return PaperPortfolio(
            positions,
            equity.reset_index(drop=True),
            orders=orders.reset_index(drop=True),
            adjustments=self.adjustments[self.adjustments["session_date"] < session].reset_index(
                drop=True
            ),
        )

    def pending_orders(self) -> pd.DataFrame:
        """The orders decided at the last booked close that no position row answers yet."""
        if self.equity.empty or self.orders.empty:
            return empty_orders()
        last = self.equity["session_date"].iloc[-1]
        orders = self.orders[self.orders["session_date"] == last]
        answered = pd.MultiIndex.from_frame(self.positions[["ticker", "signal_date"]])
        keys = pd.MultiIndex.from_frame(orders[["ticker", "session_date"]])
        return orders[~keys.isin(answered)].reset_index(drop=True)


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


def session_offset(session: pd.Timestamp, count: int) -> pd.Timestamp:
    """The session ``count`` sessions after ``session`` (before it when negative), clipped to the
    calendar."""
    calendar_sessions = nyse_calendar().sessions
    position = int(calendar_sessions.searchsorted(session, side="left")) + count
    return pd.Timestamp(calendar_sessions[min(max(position, 0), len(calendar_sessions) - 1)])


def _expiry_session(opened_on: pd.Timestamp, horizon: int) -> pd.Timestamp:
    return session_offset(opened_on, horizon)


@dataclass(frozen=True)
class _PricePanels:
    """Bars of the processed sessions as (session × ticker) arrays, and the last close known."""

    sessions: pd.DatetimeIndex
    tickers: pd.Index
    # open, high, low, mark (last close), prior_mark (the one before), split_ratio and dividend
    # (the corporate actions with that ex-date: 1.0 and 0.0 when none). All in as-traded units.
    arrays: dict[str, np.ndarray]

    @classmethod
    def of(
        cls, prices: pd.DataFrame, sessions: pd.DatetimeIndex, actions: pd.DataFrame | None = None
    ) -> _PricePanels:
        bars = prices[prices["session_date"] <= sessions[-1]].drop_duplicates(
            ["ticker", "session_date"], keep="last"
        )
        wide = {
            column: bars.pivot(index="session_date", columns="ticker", values=column)
            for column in ("open", "high", "low", "close")
        }
        history = wide["close"].index.union(sessions)
        tickers = wide["close"].columns
        arrays = {
            column: wide[column].reindex(sessions).to_numpy(dtype="float64")
            for column in ("open", "high", "low")
        }
        # A ticker without a bar on a session is marked at its last close before it, converted
        # to the session's units when a split came in between.
        closes = wide["close"].reindex(history)
        split = split_factor_panel(actions, history, tickers)
        if (split != 1.0).any():
            carried = (closes * split).ffill()
            marks, prior_marks = carried / split, carried.shift(1) / split
        else:
            marks = closes.ffill()
            prior_marks = marks.shift(1)
        arrays["mark"] = marks.reindex(sessions).to_numpy("float64")
        # The last close before each session: the mark at its open for a ticker without a bar.
        arrays["prior_mark"] = prior_marks.reindex(sessions).to_numpy("float64")
        arrays["split_ratio"], arrays["dividend"] = session_action_panels(
            actions, sessions, tickers
        )
        return cls(sessions, tickers, arrays)

    def values(self, column: str, session: pd.Timestamp, tickers: pd.Series) -> np.ndarray:
        """``column`` on ``session`` for each ticker (NaN for a ticker with no price at all)."""
        row = self.sessions.get_loc(session)
        columns = self.tickers.get_indexer(pd.Index(tickers).to_numpy())
        found = self.arrays[column][row, np.maximum(columns, 0)] if len(self.tickers) else np.nan
        return np.where(columns >= 0, found, np.nan)


@dataclass
class _Protections:
    """The drawdown window and halt, the cooldowns and the last close: the state the risk manager
    needs at a close besides the positions, rebuilt from a ledger's last equity rows."""

    limits: RiskLimits
    initial_equity: float
    window: deque  # (session, equity) of the last drawdown_lookback_sessions booked closes
    booked: int  # sessions booked so far, capped at drawdown_lookback_sessions
    halt_started_on: pd.Timestamp | None
    halted_until: pd.Timestamp | None
    peak: float  # the running all-time peak
    last_stop: dict[str, pd.Timestamp]  # ticker -> the last session it was stopped out

    @classmethod
    def resume(
        cls, ledger: PaperPortfolio, limits: RiskLimits, initial_equity: float
    ) -> _Protections:
        lookback = limits.drawdown_lookback_sessions
        equity = ledger.equity.tail(lookback)
        window = deque(
            zip(equity["session_date"], equity["equity"].astype(float), strict=True),
            maxlen=lookback,
        )
        last = ledger.equity.iloc[-1] if len(ledger.equity) else None
        stops = ledger.positions[ledger.positions["exit_reason"] == STOP]
        return cls(
            limits=limits,
            initial_equity=initial_equity,
            window=window,
            booked=min(len(ledger.equity), lookback),
            halt_started_on=_timestamp_or_none(last, "halt_started_on"),
            halted_until=_timestamp_or_none(last, "halted_until"),
            peak=float(last["peak_equity"]) if last is not None else initial_equity,
            last_stop=stops.groupby("ticker")["closed_on"].max().to_dict(),
        )

    def stopped_out(self, closed: pd.DataFrame, day: pd.Timestamp) -> None:
        for ticker in closed.loc[closed["exit_reason"] == STOP, "ticker"]:
            self.last_stop[ticker] = day

    def judge(
        self, day: pd.Timestamp, equity: float, open_tickers: Iterable[str]
    ) -> tuple[PortfolioState, dict]:
        """The state at ``day``'s close (``equity`` before the day's orders), and its row figures."""
        limits = self.limits
        previous = self.window[-1][1] if self.window else self.initial_equity
        session_return = equity / previous - 1.0 if previous > 0 else None
        started = self.halt_started_on
        values = [value for session, value in self.window if started is None or session >= started]
        # The close before the first session (the starting cash) while the window reaches it.
        if started is None and self.booked < limits.drawdown_lookback_sessions:
            values.append(self.initial_equity)
        window_peak = max([*values, equity])
        window_drawdown = max(0.0, (window_peak - equity) / window_peak) if window_peak > 0 else 1.0
        if self.halted_until is not None and self.halted_until < day:
            self.halted_until = None  # the halt is over: the window now starts at its first session
        if self.halted_until is None and window_drawdown >= limits.max_drawdown * (
            1 - RELATIVE_TOLERANCE
        ):
            self.halt_started_on = day
            self.halted_until = session_offset(day, limits.drawdown_stop_sessions - 1)
        cooling: tuple[str, ...] = ()
        if limits.cooldown_sessions > 0:
            since = session_offset(day, -(limits.cooldown_sessions - 1))
            cooling = tuple(sorted(t for t, on in self.last_stop.items() if on >= since))
        state = PortfolioState(
            equity,
            window_peak if window_peak > 0 else math.ulp(0.0),
            tuple(open_tickers),
            halted_until=self.halted_until,
            session_return=session_return,
            cooling_down=cooling,
        )
        row = {
            "session_return": np.nan if session_return is None else session_return,
            "window_peak_equity": window_peak,
            "window_drawdown": window_drawdown,
            "halt_started_on": self.halt_started_on,
            "halted_until": self.halted_until,
        }
        return state, row

    def book(self, day: pd.Timestamp, equity: float) -> float:
        """Record ``day``'s booked equity; returns the running peak."""
        self.window.append((day, equity))
        self.booked = min(self.booked + 1, self.limits.drawdown_lookback_sessions)
        self.peak = max(self.peak, equity)
        return self.peak


def _timestamp_or_none(row: pd.Series | None, column: str) -> pd.Timestamp | None:
    if row is None or column not in row.index or pd.isna(row[column]):
        return None
    return pd.Timestamp(row[column])


def run_paper_portfolio(
    signals: pd.DataFrame,
    prices: pd.DataFrame,
    sessions: Iterable,
    risk_manager: SignalGate,
    previous: PaperPortfolio | None = None,
    config: PortfolioConfig = PortfolioConfig(),
    actions: pd.DataFrame | None = None,
) -> PaperPortfolio:
    """Process consecutive ``sessions`` in order, starting from ``previous`` (or from cash).

    ``signals`` has the ``signals.trading_signals`` columns (rows of other sessions are ignored);
    ``prices`` the ``clean.price_history`` ones (as traded), through the last session, with the
    closes before the first session for positions still open; ``actions`` the
    ``clean.corporate_actions`` ones over the same sessions (None: no split, no dividend). ``previous`` is rewound to the state after the
    session before the first one, which must be its last equity row; its pending orders fill at
    the first session's open. The protections read ``risk_manager.limits`` (default limits when it
    has none).
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
    limits = getattr(risk_manager, "limits", None) or RiskLimits()
    panels = _PricePanels.of(prices, days, actions)
    signals_by_session = dict(tuple(signals.groupby("session_date", sort=False)))
    book = _Book(ledger, limits, config)
    protections = _Protections.resume(ledger, limits, config.initial_equity)

    equity_rows: list[dict] = []
    decisions: list[pd.DataFrame] = []
    accepted: list[pd.DataFrame] = []
    pending: pd.DataFrame | None = ledger.pending_orders()
    for day in days:
        dividends = book.corporate_actions(day, panels)
        if pending is not None and len(pending):
            pending = _split_orders(pending, day, panels)
            book.fill(pending, day, panels, at_open=True)
        closed = book.exit(day, panels)
        protections.stopped_out(closed, day)

        marks = book.marks(panels.values("mark", day, book.open["ticker"]))
        equity_before_orders = book.cash + float((_signed_shares(book.open) * marks).sum())
        state, protection_row = protections.judge(day, equity_before_orders, book.open["ticker"])

        pending = None
        day_signals = signals_by_session.get(day)
        if day_signals is not None and len(day_signals):
            decided = risk_manager.evaluate_batch(day_signals, state)
            decisions.append(decided)
            pending = _accepted(decided, day)
            if pending is not None:
                accepted.append(pending)
        if config.fill_at == FILL_CLOSE and pending is not None and len(pending):
            book.fill(pending, day, panels, at_open=False)
            pending = None

        marks = book.marks(panels.values("mark", day, book.open["ticker"]))
        market_value = float((_signed_shares(book.open) * marks).sum())
        equity = book.cash + market_value
        peak = protections.book(day, equity)
        equity_rows.append(
            {
                "session_date": day,
                "equity": equity,
                "peak_equity": peak,
                "drawdown": (peak - equity) / peak,
                "cash": book.cash,
                "market_value": market_value,
                "open_positions": len(book.open),
                **protection_row,
                "dividends": dividends,
            }
        )

    positions = pd.concat([*book.finished, book.open], ignore_index=True)
    positions = conform(positions, POSITION_COLUMNS).sort_values(
        ["opened_on", "ticker"], kind="stable", ignore_index=True
    )
    equity_table = pd.concat(
        [
            frame
            for frame in (ledger.equity, conform(pd.DataFrame(equity_rows), EQUITY_COLUMNS))
            if len(frame)
        ],
        ignore_index=True,
    )
    return PaperPortfolio(
        positions=positions,
        equity=conform(equity_table, EQUITY_COLUMNS),
        decisions=pd.concat(decisions, ignore_index=True) if decisions else pd.DataFrame(),
        orders=(
            pd.concat([ledger.orders, as_orders(pd.concat(accepted))], ignore_index=True)
            if accepted
            else ledger.orders
        ),
        adjustments=conform(
            pd.concat([ledger.adjustments, *book.adjustments], ignore_index=True),
            ADJUSTMENT_COLUMNS,
        ),
    )


def _accepted(decided: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame | None:
    """The accepted decisions of ``day`` as they came from the risk manager (None: none)."""
    keep = decided["accepted"].to_numpy(dtype=bool) & (decided["shares"].to_numpy() > 0)
    return decided[keep].assign(session_date=day) if keep.any() else None


def _split_orders(orders: pd.DataFrame, day: pd.Timestamp, panels: _PricePanels) -> pd.DataFrame:
    """Orders decided before a split with ex-date ``day`` in ``day``'s units: shares × ratio
    (whole shares), entry, stop and target ÷ ratio."""
    ratio = np.nan_to_num(panels.values("split_ratio", day, orders["ticker"]), nan=1.0)
    if (ratio == 1.0).all():
        return orders
    orders = orders.copy()
    orders["shares"] = roll_across_split(orders["shares"].to_numpy(), ratio).shares
    for column in ("entry", "stop_loss", "take_profit"):
        orders[column] = split_levels(orders[column].to_numpy(), ratio)
    return orders


class _Book:
    """Cash and positions while sessions are processed: fills, exits, marks, corporate actions."""

    def __init__(self, ledger: PaperPortfolio, limits: RiskLimits, config: PortfolioConfig) -> None:
        self.limits = limits
        self.config = config
        positions = ledger.positions
        self.open = positions[positions["closed_on"].isna()].reset_index(drop=True)
        self.finished: list[pd.DataFrame] = [positions[positions["closed_on"].notna()]]
        self.adjustments: list[pd.DataFrame] = []
        self.cash = (
            float(ledger.equity["cash"].iloc[-1])
            if not ledger.equity.empty
            else config.initial_equity
        )

    def marks(self, marks: np.ndarray) -> np.ndarray:
        """``marks`` of the open positions, their entry where there is no price at all."""
        return np.where(np.isfinite(marks), marks, self.open["entry"].to_numpy(dtype="float64"))

    def corporate_actions(self, day: pd.Timestamp, panels: _PricePanels) -> float:
        """Apply the splits and dividends with ex-date ``day`` to the positions open at the close
        before it (before ``day``'s fills); returns the dividend cash (negative: shorts paid)."""
        if self.open.empty:
            return 0.0
        tickers = self.open["ticker"]
        ratio = np.nan_to_num(panels.values("split_ratio", day, tickers), nan=1.0)
        dividend = np.nan_to_num(panels.values("dividend", day, tickers), nan=0.0)
        touched = (ratio != 1.0) | (dividend != 0.0)
        if not touched.any():
            return 0.0
        before = self.open.loc[touched, [c for c in ADJUSTMENT_COLUMNS if c != "session_date"]]
        self.adjustments.append(before.assign(session_date=day))
        positions = self.open.copy()
        short = (positions["direction"] == SHORT).to_numpy()
        sign = np.where(short, -1.0, 1.0)
        if (ratio != 1.0).any():
            roll = roll_across_split(positions["shares"].to_numpy(), ratio)
            entry = split_levels(positions["entry"].to_numpy(), ratio)
            # The fraction is sold (bought back, for a short) at the last close, in new units.
            prior = panels.values("prior_mark", day, tickers)
            fraction_price = np.where(np.isfinite(prior), prior, entry)
            self.cash += float((sign * roll.fraction * fraction_price).sum())
            positions["split_fraction_pnl"] += sign * roll.fraction * (fraction_price - entry)
            positions["shares"] = roll.shares
            positions["entry"] = entry
            for column in ("stop_loss", "take_profit"):
                positions[column] = split_levels(positions[column].to_numpy(), ratio)
            self.open = positions
            gone = (positions["shares"] == 0).to_numpy()
            if gone.any():
                self._cash_out(gone, day, fraction_price)
                dividend = dividend[~gone]
                positions = self.open
                short = (positions["direction"] == SHORT).to_numpy()
        cash = dividend_cash(positions["shares"].to_numpy(), short, dividend)
        positions["dividends"] += cash
        self.open = positions
        self.cash += float(cash.sum())
        return float(cash.sum())

    def _cash_out(self, gone: np.ndarray, day: pd.Timestamp, price: np.ndarray) -> None:
        """Close the positions a reverse split left without a whole share (all in cash in lieu)."""
        closed = self.open[gone].copy()
        closed["closed_on"] = day
        closed["exit_price"] = price[gone]
        closed["exit_reason"] = CASH_IN_LIEU
        closed["exit_costs"] = 0.0
        closed["gross_pnl"] = closed["dividends"] + closed["split_fraction_pnl"]
        closed["pnl"] = closed["gross_pnl"] - closed["entry_costs"]
        self.finished.append(closed)
        self.open = self.open[~gone].reset_index(drop=True)

    def exit(self, day: pd.Timestamp, panels: _PricePanels) -> pd.DataFrame:
        self.open, closed, self.cash = _close_positions(
            self.open, panels, day, self.cash, self.config.cost_rate
        )
        self.finished.append(closed)
        return closed

    def fill(
        self, orders: pd.DataFrame, day: pd.Timestamp, panels: _PricePanels, *, at_open: bool
    ) -> None:
        """Fill ``orders`` on ``day`` in rank order: at the open, or at their entry (the close)."""
        tickers = self.open["ticker"]
        if at_open:
            opens = panels.values("open", day, tickers)
            marks = np.where(np.isfinite(opens), opens, panels.values("prior_mark", day, tickers))
        else:
            marks = panels.values("mark", day, tickers)
        marks = self.marks(marks)
        signed = _signed_shares(self.open)
        equity = self.cash + float((signed * marks).sum())
        gross = float(np.abs(signed * marks).sum())
        if "rank" in orders.columns:
            orders = orders.sort_values("rank", kind="stable")
        prices = (
            panels.values("open", day, orders["ticker"])
            if at_open
            else orders["entry"].to_numpy(dtype="float64")
        )
        rows, cash = fill_orders(
            orders, prices, day, equity, equity - gross, self.cash, self.limits, self.config
        )
        self.cash = cash
        filled = rows["closed_on"].isna()
        self.finished.append(rows[~filled])
        if filled.any():
            self.open = pd.concat([self.open, rows[filled]], ignore_index=True)


def fill_orders(
    orders: pd.DataFrame,
    prices: np.ndarray,
    day: pd.Timestamp,
    equity: float,
    buying_power: float,
    cash: float,
    limits: RiskLimits,
    config: PortfolioConfig,
) -> tuple[pd.DataFrame, float]:
    """Position rows of ``orders`` filled at ``prices`` on ``day`` (in the given order), and the cash.

    Each order gets min(its shares, ``max_position_fraction`` × ``equity`` / price, the buying
    power left / (price × (1 + cost rate))) whole shares; the buying power left shrinks by each
    fill's value and costs, so gross exposure never exceeds equity at the fill. An order without a
    price, with a bracket the price leaves invalid, or cut to 0 shares is a ``not_filled`` row.
    """
    rate = config.cost_rate
    fraction = limits.max_position_fraction
    expires_on = _expiry_session(day, config.horizon)
    rows = []
    # Decisions straight from the risk manager may lack the optional columns or a tidy direction.
    defaults = {"direction": LONG, "confidence": np.nan, "model": None, "model_version": None}
    for record, price in zip(orders.to_dict("records"), prices, strict=True):
        order = SimpleNamespace(**{**defaults, **record})
        direction = str(order.direction).strip().lower() if order.direction is not None else LONG
        ordered = int(order.shares)
        stop = price + (order.stop_loss - order.entry)
        target = price + (order.take_profit - order.entry)
        shares, note = 0, None
        if not (math.isfinite(price) and price > 0):
            note = f"not filled: no {order.ticker} bar on {day:%Y-%m-%d} to fill at"
        elif not (stop > 0 and target > 0):
            note = (
                f"not filled: at {price:,.2f} the bracket's stop {stop:,.2f} and target "
                f"{target:,.2f} are not both positive prices"
            )
        else:
            by_equity = int(whole_shares(fraction * equity / price)) if equity > 0 else 0
            by_cash = int(whole_shares(max(buying_power, 0.0) / (price * (1 + rate))))
            shares = max(min(ordered, by_equity, by_cash), 0)
            limit = (
                f"buying power {max(buying_power, 0.0):,.2f}"
                if by_cash <= by_equity
                else f"{fraction:.0%} of equity {equity:,.2f}"
            )
            if shares == 0:
                note = f"not filled: {limit} buys 0 shares at {price:,.2f} (costs included)"
            elif shares < ordered:
                note = f"resized from {ordered} to {shares} shares: {limit} at {price:,.2f}"
        filled = shares > 0
        value = shares * price if filled else 0.0
        sign = -1.0 if direction == SHORT else 1.0
        buying_power -= value * (1 + rate)
        cash -= sign * value + value * rate
        rows.append(
            {
                "ticker": order.ticker,
                "signal_date": order.session_date,
                "opened_on": day,
                "direction": direction,
                "entry": price if filled else np.nan,
                "ordered_shares": ordered,
                "shares": shares,
                "stop_loss": stop if filled else order.stop_loss,
                "take_profit": target if filled else order.take_profit,
                "expires_on": expires_on if filled else pd.NaT,
                "closed_on": pd.NaT if filled else day,
                "exit_price": np.nan,
                "exit_reason": None if filled else NOT_FILLED,
                "gross_pnl": np.nan if filled else 0.0,
                "entry_costs": value * rate,
                "exit_costs": np.nan if filled else 0.0,
                "pnl": np.nan if filled else 0.0,
                "risk_dollars": shares * abs(price - stop) if filled else 0.0,
                "confidence": order.confidence,
                "model": order.model,
                "model_version": order.model_version,
                "fill_note": note,
                "dividends": 0.0,
                "split_fraction_pnl": 0.0,
            }
        )
    if not rows:
        return empty_frame(POSITION_COLUMNS), cash
    # Typed values built here: the ledger conforms the positions once, at the end of a run.
    return pd.DataFrame(rows, columns=list(POSITION_COLUMNS)), cash


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
    closed["gross_pnl"] = (
        _signed_shares(closed) * (closed["exit_price"] - closed["entry"])
        + closed["dividends"]
        + closed["split_fraction_pnl"]
    )
    closed["pnl"] = closed["gross_pnl"] - closed["entry_costs"] - closed["exit_costs"]
    cash += float(
        (_signed_shares(closed) * closed["exit_price"]).sum() - closed["exit_costs"].sum()
    )
    return open_positions[~closing].reset_index(drop=True), closed, cash


def _signed_shares(positions: pd.DataFrame) -> np.ndarray:
    """Shares held: positive for a long, negative for a short."""
    shares = positions["shares"].to_numpy(dtype="float64")
    return np.where((positions["direction"] == SHORT).to_numpy(), -shares, shares)
