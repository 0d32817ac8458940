"""Tests of the backtest figures on hand-made equity curves and trades, and of the equity plot."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_pipeline.backtest import (
    backtest_report,
    buy_and_hold_curve,
    equity_plot_png,
    max_drawdown,
    profit_factor,
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


def test_profit_factor_edges():
    assert profit_factor([10.0, 5.0]) == math.inf
    assert math.isnan(profit_factor([]))
    assert profit_factor([-1.0, 3.0, -2.0]) == pytest.approx(1.0)


def test_only_trades_closed_inside_the_range_count():
    closed_on = [SESSIONS[1], SESSIONS[4], pd.NaT]
    positions = trades([100.0, -50.0, np.nan], closed_on=closed_on)
    report = backtest_report(equity_table([100_000] * 5), positions, FLAT_MARKET, SESSIONS[2:])
    assert report.trades == 1 and report.total_pnl == -50.0 and report.open_positions == 1


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
    assert (width, height) == (900, 500)
    assert equity_plot_png(equity_table([100, 104, 99])).startswith(PNG_MAGIC)  # no benchmark
