"""Backtest figures of the paper portfolio against buy-and-hold, and its equity plot (no Dagster).

Definitions (one place, so the report, the README and the UI agree):
- trades are the positions closed inside the range (orders that were not filled, position rows
  with ``exit_reason="not_filled"`` and 0 shares, are no trade: ``unfilled_orders`` counts those
  whose fill was due inside the range); ``pnl`` is after costs (commission and
  slippage of both fills), ``gross_pnl`` before, ``total_costs`` the difference; ``hit_rate`` the
  share with pnl > 0; ``average_r`` the mean of pnl / initial risk (shares × |entry − stop_loss|);
  ``profit_factor`` gross gains / gross losses (inf with gains and no loss, NaN with no trade);
- returns are the session-to-session changes of equity; ``sharpe`` = mean / std × √252 and
  ``sortino`` = mean / downside deviation × √252 (downside deviation = √mean(min(r, 0)²));
- ``max_drawdown`` is the largest (running peak − equity) / running peak within the range;
- ``exposure`` is the share of sessions ending with at least one open position, and
  ``average_invested`` the mean of market value / equity at the close;
- buy-and-hold buys every ticker with a price on the first session in equal amounts at its close
  and holds them, dividends reinvested: the total-return close of the as-traded bars and the
  corporate actions (``tft_pipeline.corporate_actions``; the vendor's ``adj_close`` is not read),
  the last known close carried over missing bars;
- ``dividends`` is the dividend cash the paper portfolio received (paid, for shorts) in the range,
  already inside equity and the positions' pnl.

``BacktestReport.as_dict`` keeps full precision for machines; ``BacktestReport.for_people`` rounds
the figures as a trader reads them and explains, in a sentence, a range without trades.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tft_pipeline.corporate_actions import total_return_close
from tft_pipeline.metrics import profit_factor
from tft_pipeline.portfolio import NOT_FILLED

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TRADING_DAYS_PER_YEAR = 252
NOT_AVAILABLE = "n/a"
# 1200 × 720 pixels: readable in Dagster's metadata pane and in a README without zooming.
PLOT_SIZE_INCHES = (10.0, 6.0)
PLOT_DPI = 120
# Figures that only exist once a trade has closed; a range without one gets a sentence instead.
TRADE_FIGURES = ("hit_rate", "average_r", "profit_factor", "total_pnl", "gross_pnl", "total_costs")
# How people see each figure: (field, key, scale, decimals). Fractions become percentages with the
# unit in the key, so a reader never has to guess whether 0.05 means 5 % or 0.05 %.
_PEOPLE_FORMAT: tuple[tuple[str, str, float, int], ...] = (
    ("hit_rate", "hit_rate_pct", 100.0, 1),
    ("average_r", "average_r", 1.0, 2),
    ("profit_factor", "profit_factor", 1.0, 2),
    ("total_pnl", "total_pnl", 1.0, 2),
    ("gross_pnl", "gross_pnl", 1.0, 2),
    ("total_costs", "total_costs", 1.0, 2),
    ("dividends", "dividends", 1.0, 2),
    ("total_return", "total_return_pct", 100.0, 2),
    ("sharpe", "sharpe", 1.0, 2),
    ("sortino", "sortino", 1.0, 2),
    ("max_drawdown", "max_drawdown_pct", 100.0, 2),
    ("exposure", "exposure_pct", 100.0, 1),
    ("average_invested", "average_invested_pct", 100.0, 1),
    ("benchmark_return", "benchmark_return_pct", 100.0, 2),
    ("benchmark_sharpe", "benchmark_sharpe", 1.0, 2),
    ("benchmark_max_drawdown", "benchmark_max_drawdown_pct", 100.0, 2),
)


def sharpe_ratio(returns: pd.Series | np.ndarray) -> float:
    """Annualized Sharpe ratio of daily returns (risk-free rate 0); NaN without variation."""
    values = np.asarray(returns, dtype="float64")
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.std(ddof=1) == 0:
        return float("nan")
    return float(values.mean() / values.std(ddof=1) * np.sqrt(TRADING_DAYS_PER_YEAR))


def sortino_ratio(returns: pd.Series | np.ndarray) -> float:
    """Annualized Sortino ratio of daily returns; NaN without a losing session."""
    values = np.asarray(returns, dtype="float64")
    values = values[np.isfinite(values)]
    downside = np.sqrt(np.mean(np.minimum(values, 0.0) ** 2)) if len(values) else 0.0
    if len(values) < 2 or downside == 0:
        return float("nan")
    return float(values.mean() / downside * np.sqrt(TRADING_DAYS_PER_YEAR))


def drawdowns(values: pd.Series | np.ndarray) -> np.ndarray:
    """(running peak − value) / running peak at each point."""
    curve = np.asarray(values, dtype="float64")
    if len(curve) == 0:
        return curve
    peak = np.maximum.accumulate(curve)
    return (peak - curve) / peak


def max_drawdown(values: pd.Series | np.ndarray) -> float:
    """The largest drawdown of a value curve (0 when it never falls)."""
    series = drawdowns(values)
    return float(series.max()) if len(series) else float("nan")


def buy_and_hold_curve(
    prices: pd.DataFrame,
    sessions: Sequence,
    tickers: Iterable[str] | None = None,
    actions: pd.DataFrame | None = None,
) -> pd.Series:
    """Value of 1.0 put into equal-weight buy-and-hold at the first session's close, per session,
    with dividends reinvested (``prices`` as traded, ``actions`` the corporate actions)."""
    days = pd.DatetimeIndex(sessions)
    if prices.empty:
        return pd.Series(np.nan, index=days, name="buy_and_hold")
    chosen = prices if tickers is None else prices[prices["ticker"].isin(list(tickers))]
    chosen = chosen.drop_duplicates(["ticker", "session_date"], keep="last")
    chosen = chosen.assign(tr_close=total_return_close(chosen, actions))
    wide = chosen.pivot(index="session_date", columns="ticker", values="tr_close")
    wide = wide.reindex(wide.index.union(days)).sort_index().ffill().reindex(days)
    held = wide.columns[wide.iloc[0].notna() & (wide.iloc[0] > 0)] if len(days) else wide.columns
    if len(held) == 0:
        return pd.Series(np.nan, index=days, name="buy_and_hold")
    growth = wide[held] / wide[held].iloc[0]
    return growth.mean(axis=1).rename("buy_and_hold")


@dataclass(frozen=True)
class BacktestReport:
    """The figures of one backtest range (see the module docstring for each definition)."""

    first_session: pd.Timestamp
    last_session: pd.Timestamp
    sessions: int
    trades: int
    open_positions: int
    hit_rate: float
    average_r: float
    profit_factor: float
    total_pnl: float  # after costs
    gross_pnl: float  # before costs
    total_costs: float  # commission and slippage of the trades' fills
    total_return: float
    sharpe: float
    sortino: float
    max_drawdown: float
    exposure: float
    average_invested: float
    benchmark_return: float
    benchmark_sharpe: float
    benchmark_max_drawdown: float
    unfilled_orders: int = 0  # accepted orders not filled (no bar at the open, or no cash)
    dividends: float = 0.0  # dividend cash received (paid by shorts) in the range, in equity

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain values at full precision (dates as ISO text) for tables, JSON and benchmarks."""
        values = asdict(self)
        values["first_session"] = f"{self.first_session:%Y-%m-%d}"
        values["last_session"] = f"{self.last_session:%Y-%m-%d}"
        return values

    @property
    def span(self) -> str:
        """The range as ``first..last`` (one date for a one-session range)."""
        first, last = f"{self.first_session:%Y-%m-%d}", f"{self.last_session:%Y-%m-%d}"
        return first if first == last else f"{first}..{last}"

    def for_people(
        self, *, signals_judged: int | None = None, top_rejection_reason: str | None = None
    ) -> dict[str, float | int | str]:
        """The figures rounded as a trader reads them, for a UI or a report.

        Fractions become percentages (``*_pct``: returns and drawdowns with 2 decimals, hit rate,
        exposure and invested share with 1); ratios and R multiples get 2 decimals, money 2,
        counts stay integers. An undefined figure reads ``n/a`` and a profit factor without a
        losing trade ``∞ (no losing trade)``. Without a closed trade, hit rate, average R, profit
        factor and P&L are replaced by ``why_no_trades``, one sentence built from the range, the
        open positions and, when given, the number of signals the risk manager judged in the
        range and its most frequent rejection reason (a code such as ``low_confidence`` or text).
        """
        people: dict[str, float | int | str] = {
            "first_session": f"{self.first_session:%Y-%m-%d}",
            "last_session": f"{self.last_session:%Y-%m-%d}",
            "sessions": int(self.sessions),
            "trades": int(self.trades),
            "open_positions": int(self.open_positions),
            "unfilled_orders": int(self.unfilled_orders),
        }
        if self.trades == 0:
            people["why_no_trades"] = self._why_no_trades(signals_judged, top_rejection_reason)
        for field, key, scale, decimals in _PEOPLE_FORMAT:
            if self.trades == 0 and field in TRADE_FIGURES:
                continue
            value = float(getattr(self, field))
            if field == "profit_factor" and value == math.inf:
                people[key] = "∞ (no losing trade)"
            elif not math.isfinite(value):
                people[key] = NOT_AVAILABLE
            else:
                # + 0.0 turns a rounded -0.0 into 0.0, which reads as no change rather than a loss.
                people[key] = round(value * scale, decimals) + 0.0
        return people

    def _why_no_trades(self, signals_judged: int | None, top_rejection_reason: str | None) -> str:
        if self.open_positions:
            count = self.open_positions
            held = "1 position is" if count == 1 else f"{count} positions are"
            return (
                f"No trade closed in {self.span}: {held} still open, so hit rate, average R and "
                "profit factor wait for the first exit."
            )
        # Nothing closed and nothing open: no position was opened in the range at all.
        opened = f"No trade was opened in {self.span}"
        reason = (
            f", most often for {top_rejection_reason.replace('_', ' ')}"
            if top_rejection_reason
            else ""
        )
        if signals_judged == 0:
            return f"{opened}: there was no signal to judge (see signals/trading_signals)."
        if signals_judged == 1:
            return f"{opened}: the only signal was rejected{reason} (see signals/risk_decisions)."
        if signals_judged is not None:
            return (
                f"{opened}: all {signals_judged} signals were rejected{reason} "
                "(see signals/risk_decisions)."
            )
        if reason:
            return f"{opened}: every signal was rejected{reason} (see signals/risk_decisions)."
        return (
            f"{opened}, so there is no hit rate, average R or profit factor "
            "(see signals/risk_decisions for the verdict on each signal)."
        )


def backtest_report(
    equity: pd.DataFrame,
    positions: pd.DataFrame,
    prices: pd.DataFrame,
    sessions: Iterable | None = None,
    *,
    initial_equity: float | None = None,
    tickers: Iterable[str] | None = None,
    actions: pd.DataFrame | None = None,
    benchmark: pd.Series | None = None,
) -> BacktestReport:
    """Figures of the portfolio over ``sessions`` (default: every equity row).

    ``equity`` and ``positions`` are the ``portfolio.*`` tables; an equity row before the range,
    when present, gives the first session's return, otherwise ``initial_equity`` does (if given).
    Buy-and-hold holds ``tickers`` (default: every ticker in ``prices``, as traded) with the
    corporate ``actions`` (None: none): splits and reinvested dividends. ``benchmark``: that
    curve over the equity rows' sessions when the caller has it already (``buy_and_hold_curve``).
    """
    equity = equity.sort_values("session_date", ignore_index=True)
    days = (
        pd.DatetimeIndex(equity["session_date"])
        if sessions is None
        else pd.DatetimeIndex(pd.to_datetime(list(sessions))).sort_values()
    )
    if len(days) == 0:
        raise ValueError("a backtest needs at least one session")
    in_range = equity["session_date"].between(days[0], days[-1]).to_numpy()
    curve = equity[in_range]
    if curve.empty:
        raise ValueError(f"no equity row between {days[0].date()} and {days[-1].date()}")
    values = curve["equity"].to_numpy(dtype="float64")
    earlier = equity.loc[equity["session_date"] < days[0], "equity"]
    start_value = float(earlier.iloc[-1]) if len(earlier) else initial_equity
    with_start = values if start_value is None else np.concatenate([[start_value], values])
    returns = with_start[1:] / with_start[:-1] - 1.0

    closed_on = positions["closed_on"]
    unfilled = (
        (positions["exit_reason"] == NOT_FILLED).to_numpy()
        if "exit_reason" in positions
        else np.zeros(len(positions), dtype=bool)
    )
    in_range = closed_on.notna() & closed_on.between(days[0], days[-1])
    trades = positions[in_range & ~unfilled]
    initial_risk = trades["shares"] * (trades["entry"] - trades["stop_loss"]).abs()
    r_multiples = trades["pnl"] / initial_risk.where(initial_risk > 0)
    still_open = (
        (closed_on.isna() | (closed_on > days[-1]))
        & (positions["opened_on"] <= days[-1])
        & ~unfilled
    )
    if benchmark is None:
        benchmark = buy_and_hold_curve(prices, curve["session_date"], tickers, actions)
    else:
        benchmark = benchmark.reindex(pd.DatetimeIndex(curve["session_date"]))
    nan = float("nan")
    return BacktestReport(
        first_session=pd.Timestamp(curve["session_date"].iloc[0]),
        last_session=pd.Timestamp(curve["session_date"].iloc[-1]),
        sessions=len(curve),
        trades=len(trades),
        open_positions=int(still_open.sum()),
        hit_rate=float((trades["pnl"] > 0).mean()) if len(trades) else nan,
        average_r=float(r_multiples.mean()) if len(trades) else nan,
        profit_factor=profit_factor(trades["pnl"]),
        total_pnl=float(trades["pnl"].sum()),
        gross_pnl=float(trades["gross_pnl"].sum())
        if "gross_pnl" in trades
        else float(trades["pnl"].sum()),
        total_costs=float((trades["entry_costs"] + trades["exit_costs"]).sum())
        if "entry_costs" in trades
        else 0.0,
        total_return=float(values[-1] / with_start[0] - 1.0),
        sharpe=sharpe_ratio(returns),
        sortino=sortino_ratio(returns),
        max_drawdown=max_drawdown(with_start),
        exposure=float((curve["open_positions"] > 0).mean()),
        average_invested=float((curve["market_value"] / curve["equity"]).mean()),
        benchmark_return=float(benchmark.iloc[-1] / benchmark.iloc[0] - 1.0),
        benchmark_sharpe=sharpe_ratio(benchmark.pct_change().dropna()),
        benchmark_max_drawdown=max_drawdown(benchmark.to_numpy()),
        unfilled_orders=int((in_range & unfilled).sum()),
        dividends=float(np.nansum(curve["dividends"].to_numpy(dtype="float64")))
        if "dividends" in curve
        else 0.0,
    )


def equity_figure(
    equity: pd.DataFrame,
    benchmark: pd.Series | None = None,
    title: str = "Paper portfolio",
    note: str | None = None,
) -> Figure:
    """Equity (and buy-and-hold scaled to the same start) over drawdown in %, as a Figure.

    The legend sits above the top panel, outside it, so it never hides a line; ``note`` (say, why
    there was no trade) is printed under the panels. Drawn on a private Agg canvas, not through
    pyplot, so it is safe in worker threads and leaves no global figure state behind.
    """
    equity = equity.sort_values("session_date")
    dates = pd.DatetimeIndex(equity["session_date"])
    values = equity["equity"].to_numpy(dtype="float64")
    # matplotlib takes about a second to import: only the plot loads it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    figure = Figure(figsize=PLOT_SIZE_INCHES, dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    value_axes, drawdown_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    portfolio_style = {"color": "tab:blue", "linewidth": 1.8, "label": "paper portfolio"}
    benchmark_style = {
        "color": "dimgray",
        "linestyle": "--",
        "linewidth": 1.4,
        "label": "equal-weight buy & hold",
    }
    value_axes.plot(dates, values, **portfolio_style)
    portfolio_drawdown = -100.0 * drawdowns(values)
    drawdown_axes.fill_between(dates, portfolio_drawdown, 0, color="tab:blue", alpha=0.25)
    drawdown_axes.plot(dates, portfolio_drawdown, **portfolio_style)
    deepest = float(portfolio_drawdown.min()) if len(values) else 0.0
    if benchmark is not None and len(benchmark) and len(values):
        scaled = benchmark.reindex(dates).to_numpy(dtype="float64")
        scaled = scaled / scaled[0] * values[0]
        value_axes.plot(dates, scaled, **benchmark_style)
        benchmark_drawdown = -100.0 * drawdowns(scaled)
        drawdown_axes.plot(dates, benchmark_drawdown, **benchmark_style)
        deepest = min(deepest, float(np.nanmin(benchmark_drawdown, initial=0.0)))

    span = f"{dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}" if len(dates) else "no session"
    figure.suptitle(f"{title}, {span}", fontsize="large", fontweight="bold")
    # Anchored above the top panel's left corner: outside the plotted area, under the title.
    value_axes.legend(
        loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, frameon=False, borderaxespad=0.2
    )

    value_axes.set_ylabel("equity ($)")
    value_axes.yaxis.set_major_formatter(FuncFormatter(lambda amount, _: f"{amount:,.0f}"))
    value_axes.grid(alpha=0.3)
    drawdown_axes.set_ylabel("drawdown (%)")
    drawdown_axes.yaxis.set_major_formatter(PercentFormatter(decimals=None))
    # At least a 1 % deep panel, so a curve that never fell reads as a flat 0 %, not as noise.
    bottom = min(-1.0, deepest * 1.15)
    drawdown_axes.set_ylim(bottom, -0.04 * bottom)  # a sliver above 0 % keeps a flat curve seen
    drawdown_axes.grid(alpha=0.3)
    locator = AutoDateLocator(minticks=4, maxticks=10)
    drawdown_axes.xaxis.set_major_locator(locator)
    # The offset under the axis names the year only, not a month the range may not reach.
    year_offsets = ["", "%Y", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d %H:%M"]
    drawdown_axes.xaxis.set_major_formatter(
        ConciseDateFormatter(locator, offset_formats=year_offsets)
    )
    if note:
        figure.supxlabel(textwrap.fill(note, 110), fontsize="medium", color="dimgray")
    return figure


def equity_plot_png(
    equity: pd.DataFrame,
    benchmark: pd.Series | None = None,
    title: str = "Paper portfolio",
    note: str | None = None,
) -> bytes:
    """``equity_figure`` as PNG bytes (``PLOT_SIZE_INCHES`` at ``PLOT_DPI``)."""
    figure = equity_figure(equity, benchmark, title, note)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
