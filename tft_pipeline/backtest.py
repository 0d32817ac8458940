"""Backtest figures of the paper portfolio against buy-and-hold, and its equity plot (no Dagster).

Definitions (one place, so the report, the README and the UI agree):
- trades are the positions closed inside the range; ``hit_rate`` the share with pnl > 0;
  ``average_r`` the mean of pnl / initial risk (shares × (entry − stop_loss));
  ``profit_factor`` gross gains / gross losses (inf with gains and no loss, NaN with no trade);
- returns are the session-to-session changes of equity; ``sharpe`` = mean / std × √252 and
  ``sortino`` = mean / downside deviation × √252 (downside deviation = √mean(min(r, 0)²));
- ``max_drawdown`` is the largest (running peak − equity) / running peak within the range;
- ``exposure`` is the share of sessions ending with at least one open position, and
  ``average_invested`` the mean of market value / equity at the close;
- buy-and-hold buys every ticker with a price on the first session in equal amounts at its close
  and holds them (adjusted closes, the last known close carried over missing bars).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

TRADING_DAYS_PER_YEAR = 252


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


def profit_factor(pnl: pd.Series | np.ndarray) -> float:
    """Gross gains over gross losses: inf with gains and no loss, NaN with neither."""
    values = np.asarray(pnl, dtype="float64")
    gains, losses = values[values > 0].sum(), -values[values < 0].sum()
    if losses > 0:
        return float(gains / losses)
    return float("inf") if gains > 0 else float("nan")


def buy_and_hold_curve(
    prices: pd.DataFrame, sessions: Sequence, tickers: Iterable[str] | None = None
) -> pd.Series:
    """Value of 1.0 put into equal-weight buy-and-hold at the first session's close, per session."""
    days = pd.DatetimeIndex(sessions)
    column = "adj_close" if "adj_close" in prices.columns else "close"
    chosen = prices if tickers is None else prices[prices["ticker"].isin(list(tickers))]
    wide = chosen.pivot_table(index="session_date", columns="ticker", values=column, aggfunc="last")
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
    total_pnl: float
    total_return: float
    sharpe: float
    sortino: float
    max_drawdown: float
    exposure: float
    average_invested: float
    benchmark_return: float
    benchmark_sharpe: float
    benchmark_max_drawdown: float

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain values (dates as ISO text) for metadata or JSON."""
        values = asdict(self)
        values["first_session"] = f"{self.first_session:%Y-%m-%d}"
        values["last_session"] = f"{self.last_session:%Y-%m-%d}"
        return values


def backtest_report(
    equity: pd.DataFrame,
    positions: pd.DataFrame,
    prices: pd.DataFrame,
    sessions: Iterable | None = None,
    *,
    initial_equity: float | None = None,
    tickers: Iterable[str] | None = None,
) -> BacktestReport:
    """Figures of the portfolio over ``sessions`` (default: every equity row).

    ``equity`` and ``positions`` are the ``portfolio.*`` tables; an equity row before the range,
    when present, gives the first session's return, otherwise ``initial_equity`` does (if given).
    Buy-and-hold holds ``tickers`` (default: every ticker in ``prices``).
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
    trades = positions[closed_on.notna() & closed_on.between(days[0], days[-1])]
    initial_risk = trades["shares"] * (trades["entry"] - trades["stop_loss"])
    r_multiples = trades["pnl"] / initial_risk.where(initial_risk > 0)
    still_open = (closed_on.isna() | (closed_on > days[-1])) & (positions["opened_on"] <= days[-1])
    benchmark = buy_and_hold_curve(prices, curve["session_date"], tickers)
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
        total_return=float(values[-1] / with_start[0] - 1.0),
        sharpe=sharpe_ratio(returns),
        sortino=sortino_ratio(returns),
        max_drawdown=max_drawdown(with_start),
        exposure=float((curve["open_positions"] > 0).mean()),
        average_invested=float((curve["market_value"] / curve["equity"]).mean()),
        benchmark_return=float(benchmark.iloc[-1] / benchmark.iloc[0] - 1.0),
        benchmark_sharpe=sharpe_ratio(benchmark.pct_change().dropna()),
        benchmark_max_drawdown=max_drawdown(benchmark.to_numpy()),
    )


def equity_plot_png(
    equity: pd.DataFrame, benchmark: pd.Series | None = None, title: str = "Paper portfolio"
) -> bytes:
    """Equity (and buy-and-hold scaled to the same start) over drawdown, as PNG bytes.

    Drawn on a private Agg canvas, not through pyplot, so it is safe in worker threads and leaves
    no global figure state behind.
    """
    equity = equity.sort_values("session_date")
    dates = pd.DatetimeIndex(equity["session_date"])
    values = equity["equity"].to_numpy(dtype="float64")
    figure = Figure(figsize=(9, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    value_axes, drawdown_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    value_axes.plot(dates, values, color="tab:blue", label="paper portfolio")
    if benchmark is not None and len(benchmark) and len(values):
        scaled = benchmark.reindex(dates).to_numpy(dtype="float64")
        scaled = scaled / scaled[0] * values[0]
        value_axes.plot(
            dates, scaled, color="tab:gray", linestyle="--", label="equal-weight buy & hold"
        )
    value_axes.set_title(title)
    value_axes.set_ylabel("equity")
    value_axes.legend(loc="upper left")
    value_axes.grid(alpha=0.3)
    drawdown_axes.fill_between(dates, -100 * drawdowns(values), 0, color="tab:red", alpha=0.4)
    drawdown_axes.set_ylabel("drawdown %")
    drawdown_axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
