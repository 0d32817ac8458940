"""Tests of the backtest figures on hand-made equity curves and trades, and of the equity plot."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.text import Text

from tft_pipeline.backtest import (
    BacktestReport,
    backtest_report,
    buy_and_hold_curve,
    equity_figure,
    equity_plot_png,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
)
from tft_pipeline.trading_calendar import sessions_between

SESSIONS = sessions_between("2024-04-01", "2024-04-05")  # five sessions
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def equity_table(values, open_positions=None, market_value=None) -> pd.DataFrame:
    values = np.asarray(values, dtype="float64")
    peak = np.maximum.accumulate(values)
    n = len(values)
    return pd.DataFrame(
        {
            "session_date": SESSIONS[:n],
            "equity": values,
            "peak_equity": peak,
            "drawdown": (peak - values) / peak,
            "cash": values,
            "market_value": np.zeros(n) if market_value is None else market_value,
            "open_positions": np.zeros(n, dtype="int64")
            if open_positions is None
            else open_positions,
        }
    )


def trades(pnl, risk_per_share=5.0, shares=10, closed_on=None) -> pd.DataFrame:
    n = len(pnl)
    entry = 100.0
    return pd.DataFrame(
        {
            "ticker": [f"T{i}" for i in range(n)],
            "opened_on": SESSIONS[0],
            "entry": entry,
            "shares": shares,
            "stop_loss": entry - risk_per_share,
            "take_profit": entry + 2 * risk_per_share,
            "closed_on": SESSIONS[-1] if closed_on is None else closed_on,
            "exit_price": entry + np.asarray(pnl) / shares,
            "exit_reason": "target",
            "pnl": np.asarray(pnl, dtype="float64"),
        }
    )


def prices_of(closes: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {"ticker": ticker, "session_date": day, "close": close, "adj_close": close}
        for ticker, series in closes.items()
        for day, close in zip(SESSIONS, series, strict=False)
    ]
    return pd.DataFrame(rows)


FLAT_MARKET = prices_of({"AAA": [10.0] * 5})


def test_trade_figures_on_hand_made_trades():
    report = backtest_report(
        equity_table([100_000] * 5), trades([300, -100, 200, -100]), FLAT_MARKET
    )
    assert report.trades == 4
    assert report.profit_factor == pytest.approx(500 / 200)
    assert report.hit_rate == 0.5
    # One R is 10 shares × 5 = 50: the trades are +6R, −2R, +4R, −2R.
    assert report.average_r == pytest.approx((6 - 2 + 4 - 2) / 4)
    assert report.total_pnl == 300


def test_only_trades_closed_inside_the_range_count():
    closed_on = [SESSIONS[1], SESSIONS[4], pd.NaT]
    positions = trades([100.0, -50.0, np.nan], closed_on=closed_on)
    report = backtest_report(equity_table([100_000] * 5), positions, FLAT_MARKET, SESSIONS[2:])
    assert report.trades == 1 and report.total_pnl == -50.0 and report.open_positions == 1


def test_orders_not_filled_are_counted_apart_and_never_as_trades():
    positions = trades([300.0, -100.0])
    unfilled = trades([0.0]).assign(
        ticker="NF", shares=0, entry=np.nan, exit_price=np.nan, exit_reason="not_filled",
        opened_on=SESSIONS[2], closed_on=SESSIONS[2],
    )
    report = backtest_report(
        equity_table([100_000] * 5), pd.concat([positions, unfilled], ignore_index=True), FLAT_MARKET
    )
    assert (report.trades, report.open_positions, report.unfilled_orders) == (2, 0, 1)
    assert report.hit_rate == 0.5 and report.profit_factor == pytest.approx(3.0)
    assert report.for_people()["unfilled_orders"] == 1
    # Outside the range, an unfilled order is not counted either.
    later = backtest_report(
        equity_table([100_000] * 5), unfilled, FLAT_MARKET, SESSIONS[3:]
    )
    assert (later.trades, later.unfilled_orders) == (0, 0)


def test_max_drawdown_is_the_deepest_fall_from_a_running_peak():
    report = backtest_report(equity_table([100, 110, 88, 120, 108]), trades([]), FLAT_MARKET)
    assert report.max_drawdown == pytest.approx(0.2)  # 110 -> 88
    assert max_drawdown([100, 101, 102]) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1.0, 1e6), min_size=1, max_size=40))
def test_max_drawdown_matches_a_pairwise_search(values):
    worst = max(
        (values[i] - values[j]) / values[i]
        for i in range(len(values))
        for j in range(i, len(values))
    )
    assert max_drawdown(values) == pytest.approx(worst)


def test_sharpe_and_sortino_follow_the_sign_of_the_drift():
    rising = equity_table([100, 102, 101, 104, 106])
    falling = equity_table([100, 98, 99, 96, 94])
    up = backtest_report(rising, trades([]), FLAT_MARKET)
    down = backtest_report(falling, trades([]), FLAT_MARKET)
    assert up.sharpe > 0 and up.sortino > 0 and down.sharpe < 0 and down.sortino < 0
    assert up.total_return == pytest.approx(0.06) and down.total_return == pytest.approx(-0.06)


def test_sharpe_is_annualized_mean_over_standard_deviation():
    returns = np.array([0.01, -0.005, 0.02, 0.0])
    expected = returns.mean() / returns.std(ddof=1) * math.sqrt(252)
    assert sharpe_ratio(returns) == pytest.approx(expected)
    assert math.isnan(sharpe_ratio([0.01, 0.01, 0.01]))  # no variation, no ratio
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert sortino_ratio(returns) == pytest.approx(returns.mean() / downside * math.sqrt(252))
    assert math.isnan(sortino_ratio([0.01, 0.02]))


def test_the_first_return_is_measured_from_the_row_before_the_range_or_the_initial_equity():
    curve = equity_table([100, 100, 110, 110, 121])
    report = backtest_report(curve, trades([]), FLAT_MARKET, SESSIONS[2:])
    assert report.total_return == pytest.approx(0.21)  # from 100 on the session before
    fresh = backtest_report(equity_table([90, 99]), trades([]), FLAT_MARKET, initial_equity=100)
    assert fresh.total_return == pytest.approx(-0.01) and fresh.max_drawdown == pytest.approx(0.1)


def test_exposure_and_invested_fraction():
    curve = equity_table(
        [100.0] * 5, open_positions=[0, 1, 1, 0, 2], market_value=[0.0, 50.0, 25.0, 0.0, 100.0]
    )
    report = backtest_report(curve, trades([]), FLAT_MARKET)
    assert report.exposure == pytest.approx(0.6)
    assert report.average_invested == pytest.approx((0.5 + 0.25 + 1.0) / 5)


def test_buy_and_hold_is_equal_weight_from_the_first_close():
    prices = prices_of({"AAA": [10, 12, 15, 18, 20], "BBB": [50, 45, 50, 55, 50]})
    curve = buy_and_hold_curve(prices, SESSIONS)
    assert curve.tolist() == pytest.approx([1.0, 1.05, 1.25, 1.45, 1.5])
    report = backtest_report(equity_table([100] * 5), trades([]), prices)
    assert report.benchmark_return == pytest.approx(0.5)
    assert report.benchmark_max_drawdown == 0.0 and report.benchmark_sharpe > 0


def test_buy_and_hold_carries_the_last_close_over_a_missing_bar():
    prices = prices_of({"AAA": [10, 20, 30, 40, 50], "BBB": [10, 10, 10, 10, 10]})
    prices = prices[~((prices.ticker == "BBB") & (prices.session_date == SESSIONS[2]))]
    assert buy_and_hold_curve(prices, SESSIONS).tolist() == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0])


def test_the_report_flattens_to_plain_values():
    values = backtest_report(equity_table([100, 101]), trades([5.0]), FLAT_MARKET).as_dict()
    assert values["first_session"] == "2024-04-01" and values["last_session"] == "2024-04-02"
    assert all(isinstance(value, int | float | str) for value in values.values())


def test_the_equity_plot_is_a_png_of_the_requested_size():
    prices = prices_of({"AAA": [10, 12, 15, 18, 20]})
    image = equity_plot_png(
        equity_table([100, 104, 99, 107, 103]), buy_and_hold_curve(prices, SESSIONS)
    )
    assert image.startswith(PNG_MAGIC)
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert (width, height) == (1200, 720)
    assert equity_plot_png(equity_table([100, 104, 99])).startswith(PNG_MAGIC)  # no benchmark


# --------------------------------------------------------------------------------------------------
# The report for people
# --------------------------------------------------------------------------------------------------


def made_report(**changes) -> BacktestReport:
    figures = {
        "first_session": pd.Timestamp("2026-09-03"),
        "last_session": pd.Timestamp("2026-11-27"),
        "sessions": 60,
        "trades": 9,
        "open_positions": 2,
        "hit_rate": 5 / 9,
        "average_r": 0.666666,
        "profit_factor": 2.345678,
        "total_pnl": 1234.5678,
        "gross_pnl": 1300.1234,
        "total_costs": 65.5556,
        "total_return": 0.0123456,
        "sharpe": 1.23456,
        "sortino": float("nan"),
        "max_drawdown": 0.0423456,
        "exposure": 0.6,
        "average_invested": 0.123456,
        "benchmark_return": -0.0000001,
        "benchmark_sharpe": -0.456,
        "benchmark_max_drawdown": 0.0999,
    }
    return BacktestReport(**{**figures, **changes})


def test_people_read_percentages_ratios_and_money_rounded():
    people = made_report().for_people()
    assert people == {
        "first_session": "2026-09-03",
        "last_session": "2026-11-27",
        "sessions": 60,
        "trades": 9,
        "open_positions": 2,
        "unfilled_orders": 0,
        "hit_rate_pct": 55.6,
        "average_r": 0.67,
        "profit_factor": 2.35,
        "total_pnl": 1234.57,
        "gross_pnl": 1300.12,
        "total_costs": 65.56,
        "dividends": 0.0,
        "total_return_pct": 1.23,
        "sharpe": 1.23,
        "sortino": "n/a",
        "max_drawdown_pct": 4.23,
        "exposure_pct": 60.0,
        "average_invested_pct": 12.3,
        "benchmark_return_pct": 0.0,
        "benchmark_sharpe": -0.46,
        "benchmark_max_drawdown_pct": 9.99,
    }
    assert all(type(people[key]) is int for key in ("sessions", "trades", "open_positions"))
    # A return that rounds to nothing reads 0.0, never -0.0.
    assert math.copysign(1.0, people["benchmark_return_pct"]) == 1.0
    assert made_report(profit_factor=math.inf).for_people()["profit_factor"] == (
        "∞ (no losing trade)"
    )


def test_machines_keep_full_precision():
    report = made_report()
    values = report.as_dict()
    assert values["hit_rate"] == 5 / 9 and values["total_pnl"] == 1234.5678
    assert math.isnan(values["sortino"])


NO_TRADE_FIGURES = ("hit_rate_pct", "average_r", "profit_factor", "total_pnl", "gross_pnl", "total_costs")


@pytest.mark.parametrize(
    "context, sentence",
    [
        (
            {"signals_judged": 212, "top_rejection_reason": "low_confidence"},
            (
                "No trade was opened in 2024-04-01..2024-04-05: all 212 signals were rejected, "
                "most often for low confidence (see signals/risk_decisions)."
            ),
        ),
        (
            {"top_rejection_reason": "max_drawdown"},
            (
                "No trade was opened in 2024-04-01..2024-04-05: every signal was rejected, "
                "most often for max drawdown (see signals/risk_decisions)."
            ),
        ),
        (
            {"signals_judged": 1},
            (
                "No trade was opened in 2024-04-01..2024-04-05: the only signal was rejected "
                "(see signals/risk_decisions)."
            ),
        ),
        (
            {"signals_judged": 0},
            (
                "No trade was opened in 2024-04-01..2024-04-05: there was no signal to judge "
                "(see signals/trading_signals)."
            ),
        ),
        (
            {},
            (
                "No trade was opened in 2024-04-01..2024-04-05, so there is no hit rate, "
                "average R or profit factor (see signals/risk_decisions for the verdict on each "
                "signal)."
            ),
        ),
    ],
)
def test_a_range_without_trades_says_why_instead_of_showing_blanks(context, sentence):
    report = backtest_report(equity_table([100_000.0] * 5), trades([]), FLAT_MARKET)
    assert report.trades == 0 and report.open_positions == 0
    people = report.for_people(**context)
    assert people["why_no_trades"] == sentence
    assert not set(NO_TRADE_FIGURES) & set(people)
    # No blank cell: every figure left is text or a finite number.
    assert all(isinstance(value, str) or math.isfinite(value) for value in people.values())
    assert people["total_return_pct"] == 0.0 and people["sharpe"] == "n/a"


def test_open_positions_without_a_closed_trade_are_named():
    positions = trades([np.nan, np.nan], closed_on=[pd.NaT, pd.NaT])
    report = backtest_report(equity_table([100_000.0] * 5), positions, FLAT_MARKET)
    people = report.for_people(signals_judged=40, top_rejection_reason="low_confidence")
    assert people["why_no_trades"] == (
        "No trade closed in 2024-04-01..2024-04-05: 2 positions are still open, so hit rate, "
        "average R and profit factor wait for the first exit."
    )
    assert people["open_positions"] == 2 and "hit_rate_pct" not in people


# --------------------------------------------------------------------------------------------------
# The plot people look at
# --------------------------------------------------------------------------------------------------


def _overlaps(first, second) -> bool:
    """Whether two display-space boxes share any area (touching edges do not count)."""
    apart_x = first.x1 <= second.x0 or second.x1 <= first.x0
    apart_y = first.y1 <= second.y0 or second.y1 <= first.y0
    return not (apart_x or apart_y)


def _figure_text(figure, words: str):
    """The figure-level Text artist showing ``words`` (the title, the note)."""
    (artist,) = [
        child for child in figure.get_children()
        if isinstance(child, Text) and child.get_text().replace("\n", " ") == words
    ]
    return artist


@pytest.mark.parametrize("zero_trades", [False, True])
def test_the_legend_and_the_note_stay_off_the_plotted_area(zero_trades):
    prices = prices_of({"AAA": [10, 12, 15, 18, 20], "BBB": [50, 45, 50, 55, 50]})
    values = [100_000.0] * 5 if zero_trades else [100, 104, 99, 107, 103]
    note = "No trade was opened in 2024-04-01..2024-04-05: all 12 signals were rejected."
    benchmark = buy_and_hold_curve(prices, SESSIONS)
    figure = equity_figure(equity_table(values), benchmark, note=note if zero_trades else None)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    value_axes, drawdown_axes = figure.axes
    legend = value_axes.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == [
        "paper portfolio", "equal-weight buy & hold",
    ]
    legend_box = legend.get_window_extent(renderer)
    for axes in figure.axes:
        assert not _overlaps(legend_box, axes.get_window_extent(renderer))
    title = _figure_text(figure, "Paper portfolio, 2024-04-01 to 2024-04-05")
    assert not _overlaps(legend_box, title.get_window_extent(renderer))
    assert figure.bbox.contains(legend_box.x0, legend_box.y0)
    assert figure.bbox.contains(legend_box.x1, legend_box.y1)
    if zero_trades:
        note_box = _figure_text(figure, note).get_window_extent(renderer)
        # The tight box includes the tick labels, so the note stays clear of the dates too.
        assert not any(_overlaps(note_box, axes.get_tightbbox(renderer)) for axes in figure.axes)
    assert drawdown_axes.get_ylabel() == "drawdown (%)"
    low, high = drawdown_axes.get_ylim()
    shown = [
        tick.get_text()
        for tick in drawdown_axes.get_yticklabels()
        if low <= tick.get_position()[1] <= high
    ]
    # Percent labels, each a different figure (no "−0%" next to "0%" on a flat curve).
    assert len(shown) >= 3 and len(set(shown)) == len(shown)
    assert all(label.endswith("%") for label in shown)
