"""Splits and dividends downstream: one adjusted basis for features, labels and backtests, and a
paper ledger that rolls positions across a split and credits dividends.

Figures are AAPL's 4:1 split on 2020-08-31: closes 499.23 on 2020-08-28 and 129.04 on 2020-08-31
as traded; the day returned 129.04 × 4 / 499.23 − 1 = +3.39 %, not −74.15 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tft_pipeline.backtest import backtest_report, buy_and_hold_curve
from tft_pipeline.corporate_actions import (
    adjusted_bars,
    adjustment_factors,
    dividend_cash,
    roll_across_split,
    split_factor_panel,
    total_return_close,
)
from tft_pipeline.features import LOOKBACK_SESSIONS, build_feature_snapshots, price_technicals
from tft_pipeline.model import BarrierRule, triple_barrier_labels
from tft_pipeline.model.evaluation import forward_returns
from tft_pipeline.paper_trading import state_after, trade_sessions
from tft_pipeline.portfolio import PortfolioConfig, run_paper_portfolio, session_offset
from tft_pipeline.risk import RiskLimits, RiskManager
from tft_pipeline.tables import CORPORATE_ACTION_COLUMNS, conform
from tft_pipeline.trading_calendar import sessions_between
from tft_pipeline_tests.test_portfolio import signal

SPLIT_DAY = pd.Timestamp("2020-08-31")
BEFORE_SPLIT = pd.Timestamp("2020-08-28")
CLOSE_BEFORE, CLOSE_AFTER = 499.23, 129.04
TRUE_RETURN = CLOSE_AFTER * 4 / CLOSE_BEFORE - 1  # +3.39 %
FRICTIONLESS = PortfolioConfig(commission_bps=0.0, slippage_bps=0.0)


def actions(*rows: tuple) -> pd.DataFrame:
    """``clean.corporate_actions`` rows from (ticker, ex-date, split_ratio, dividend)."""
    frame = pd.DataFrame(rows, columns=["ticker", "session_date", "split_ratio", "dividend"])
    frame["fetched_at"] = pd.Timestamp("2020-09-05")
    return conform(frame, CORPORATE_ACTION_COLUMNS)


AAPL_SPLIT = actions(("AAPL", SPLIT_DAY, 4.0, 0.0))
NO_ACTIONS = actions()


def aapl_market(first="2019-12-02", last="2020-09-04", seed=7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(as traded, vendor-adjusted) daily bars of an AAPL-like path through the 4:1 split.

    The adjusted path (post-split units) is a random walk pinned to 499.23 / 4 on 2020-08-28 and
    129.04 on 2020-08-31; as traded, every bar before the split is 4 × the price and ¼ the volume.
    """
    sessions = sessions_between(first, last)
    rng = np.random.default_rng(seed)
    log_returns = rng.normal(0.001, 0.02, len(sessions))
    close = np.exp(np.cumsum(log_returns))
    at = sessions.get_loc(BEFORE_SPLIT)
    close *= CLOSE_BEFORE / 4 / close[at]
    close[at + 1] = CLOSE_AFTER
    close[at + 2 :] = CLOSE_AFTER * np.exp(np.cumsum(log_returns[at + 2 :]))
    open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0, 0.005, len(close)))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, len(close)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, len(close)))
    volume = np.round(1.6e8 * np.exp(rng.normal(0, 0.3, len(close))))
    adjusted = pd.DataFrame(
        {
            "ticker": "AAPL",
            "session_date": sessions,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": close,
            "volume": volume,
        }
    )
    before = np.asarray(sessions < SPLIT_DAY)
    traded = adjusted.copy()
    for column in ("open", "high", "low", "close", "adj_close"):
        traded.loc[before, column] *= 4.0
    traded.loc[before, "volume"] /= 4.0
    traded.loc[traded["session_date"] == BEFORE_SPLIT, "close"] = CLOSE_BEFORE
    adjusted.loc[adjusted["session_date"] == BEFORE_SPLIT, "close"] = CLOSE_BEFORE / 4
    # The vendor's adj_close as a per-day fetch stores it: the basis of each fetch. Never read.
    traded["adj_close"] = traded["close"] * 0.98
    return traded, adjusted


def technicals(prices, acts=None, last=None) -> pd.DataFrame:
    return price_technicals(prices, last_session=last, actions=acts).set_index("session_date")


# --- the factors ----------------------------------------------------------------------------------


def test_split_factor_and_back_adjusted_prices_with_aapls_figures():
    traded, _ = aapl_market()
    adjusted = adjusted_bars(traded, AAPL_SPLIT, basis="last").set_index("session_date")
    assert adjusted.loc[BEFORE_SPLIT, "close"] == pytest.approx(124.8075)
    assert adjusted.loc[SPLIT_DAY, "close"] == CLOSE_AFTER
    assert adjusted.loc[SPLIT_DAY, "tr_close"] / adjusted.loc[BEFORE_SPLIT, "tr_close"] - 1 == (
        pytest.approx(TRUE_RETURN)
    )
    assert TRUE_RETURN == pytest.approx(0.0339, abs=5e-5)
    # Volumes in post-split shares: the pre-split quarter volume times 4.
    pre = traded.set_index("session_date").loc[BEFORE_SPLIT, "volume"]
    assert adjusted.loc[BEFORE_SPLIT, "volume"] == pytest.approx(4 * pre)
    first = adjusted_bars(traded, AAPL_SPLIT, basis="first").set_index("session_date")
    assert first.loc[SPLIT_DAY, "close"] == pytest.approx(CLOSE_AFTER * 4)
    assert first.loc[BEFORE_SPLIT, "close"] == CLOSE_BEFORE


def test_a_dividend_is_a_crsp_factor_on_the_previous_close_and_counts_in_the_total_return():
    bars = pd.DataFrame(
        {
            "ticker": "MSFT",
            "session_date": sessions_between("2020-08-17", "2020-08-21"),
            "close": [208.90, 211.49, 209.70, 214.58, 213.02],
        }
    )
    # MSFT went ex 0.51 on 2020-08-19: the total return of that day is 209.70 / (211.49 − 0.51).
    result = adjusted_bars(bars, actions(("MSFT", "2020-08-19", 1.0, 0.51)))
    assert result["dividend_factor"].tolist()[1:3] == pytest.approx([1.0, 1 - 0.51 / 211.49])
    assert result["close"].tolist() == bars["close"].tolist()  # no split: prices as traded
    tr = result["tr_close"].to_numpy()
    assert tr[2] / tr[1] - 1 == pytest.approx(209.70 / (211.49 - 0.51) - 1)
    assert tr[-1] == 213.02 and tr[0] == pytest.approx(208.90 * (1 - 0.51 / 211.49))


def test_a_split_and_a_dividend_on_the_same_ex_date_use_the_previous_close_in_new_units():
    bars = pd.DataFrame(
        {
            "ticker": "X",
            "session_date": sessions_between("2020-08-27", "2020-08-31"),
            "close": [400.0, 400.0, 99.0],
        }
    )
    tr = total_return_close(bars, actions(("X", SPLIT_DAY, 4.0, 1.0))).to_numpy()
    # 400 before is 100 after the split; the dividend of 1.0 (new units) is 1 % of it.
    assert tr[2] / tr[1] - 1 == pytest.approx(99.0 / (100.0 - 1.0) - 1)


def test_without_actions_every_factor_is_exactly_one_and_the_bars_are_untouched():
    traded, _ = aapl_market()
    for empty in (None, NO_ACTIONS, pd.DataFrame(), actions(("MSFT", SPLIT_DAY, 4.0, 1.0))):
        factors = adjustment_factors(traded, empty)
        assert (factors.to_numpy() == 1.0).all()
        same = adjusted_bars(traded, empty)
        for column in ("open", "high", "low", "close", "volume"):
            assert np.array_equal(same[column].to_numpy(), traded[column].to_numpy()), column
        assert np.array_equal(same["tr_close"].to_numpy(), traded["close"].to_numpy())


def test_factors_do_not_depend_on_the_row_order_and_respect_each_ticker():
    traded, _ = aapl_market()
    other = traded.assign(ticker="MSFT")
    both = pd.concat([traded, other], ignore_index=True)
    shuffled = both.sample(frac=1.0, random_state=3)
    factors = adjustment_factors(shuffled, AAPL_SPLIT)
    after = (shuffled["session_date"] >= SPLIT_DAY).to_numpy()
    is_aapl = (shuffled["ticker"] == "AAPL").to_numpy()
    assert (factors["split_factor"].to_numpy() == np.where(is_aapl & after, 4.0, 1.0)).all()


def test_split_panel_counts_an_ex_date_from_the_session_it_falls_on():
    sessions = sessions_between("2020-08-26", "2020-09-02")
    panel = split_factor_panel(AAPL_SPLIT, sessions, pd.Index(["MSFT", "AAPL"]))
    assert panel[:, 0].tolist() == [1.0] * len(sessions)
    assert panel[:, 1].tolist() == [1.0, 1.0, 1.0, 4.0, 4.0, 4.0]


# --- features ------------------------------------------------------------------------------------

RATIO_FEATURES = ("ret_1", "ret_5", "ret_20", "volatility_20", "volume_z", "rsi_14")


def test_features_across_the_split_equal_those_of_the_adjusted_history():
    traded, adjusted = aapl_market()
    naive = technicals(traded)
    fixed = technicals(traded, AAPL_SPLIT)
    reference = technicals(adjusted)
    # What the stored bars did before: ret_1 of -74.15 %, a volume z of ~10, a tripled ATR.
    assert naive.loc[SPLIT_DAY, "ret_1"] == pytest.approx(CLOSE_AFTER / CLOSE_BEFORE - 1)
    assert naive.loc[SPLIT_DAY, "ret_1"] == pytest.approx(-0.7415, abs=5e-5)
    assert naive.loc[SPLIT_DAY, "volume_z"] > 5
    assert naive.loc[SPLIT_DAY, "atr_14"] / CLOSE_AFTER > 2.5 * (
        naive.loc[BEFORE_SPLIT, "atr_14"] / CLOSE_BEFORE
    )
    # Adjusted: the day's true return, and every ratio as on a history adjusted by the vendor.
    assert fixed.loc[SPLIT_DAY, "ret_1"] == pytest.approx(TRUE_RETURN, rel=1e-12)
    for column in RATIO_FEATURES:
        np.testing.assert_allclose(fixed[column], reference[column], rtol=1e-10, err_msg=column)
    assert abs(fixed.loc[SPLIT_DAY, "volume_z"]) < 3
    # Levels are in each session's own units: as traded before the split, and after it.
    before = fixed.index < SPLIT_DAY
    np.testing.assert_allclose(fixed["close"], traded.set_index("session_date")["close"])
    np.testing.assert_allclose(
        fixed.loc[before, "atr_14"], 4 * reference.loc[before, "atr_14"], rtol=1e-10
    )
    np.testing.assert_allclose(
        fixed.loc[~before, "atr_14"], reference.loc[~before, "atr_14"], rtol=1e-10
    )
    atr_to_close = fixed["atr_14"] / fixed["close"]
    assert atr_to_close.loc[SPLIT_DAY] == pytest.approx(atr_to_close.loc[BEFORE_SPLIT], rel=0.15)


def test_features_of_a_session_do_not_depend_on_the_window_they_were_computed_in():
    traded, _ = aapl_market()
    # Two dividends (AAPL's 2020-02-07 and 2020-08-07, pre-split units) and the split.
    acts = actions(
        ("AAPL", "2020-02-07", 1.0, 0.77),
        ("AAPL", "2020-08-07", 1.0, 0.82),
        ("AAPL", SPLIT_DAY, 4.0, 0.0),
    )
    full = technicals(traded, acts)
    sessions = pd.DatetimeIndex(traded["session_date"])
    for day in (pd.Timestamp("2020-08-10"), BEFORE_SPLIT, SPLIT_DAY, sessions[-1]):
        # A frame ending at the session (a daily run) and one ending later (a backfill): identical.
        ending_there = technicals(traded[traded["session_date"] <= day], acts)
        pd.testing.assert_series_equal(ending_there.loc[day], full.loc[day], check_exact=True)
        # A frame holding only the lookback before it (a daily run's read), without the earlier
        # dividend: the same values up to float rounding.
        start = sessions[sessions.get_loc(day) - LOOKBACK_SESSIONS]
        window = traded[traded["session_date"].between(start, day)]
        bounded = technicals(window, acts[acts["session_date"] >= start])
        pd.testing.assert_series_equal(bounded.loc[day], full.loc[day], rtol=1e-12)


def test_snapshots_read_the_actions_and_ignore_the_vendors_adj_close():
    traded, adjusted = aapl_market()
    mentions = pd.DataFrame(
        columns=[
            "source_id",
            "source_type",
            "ticker",
            "session_date",
            "author",
            "score",
            "sentiment",
        ]
    )
    requested = sessions_between("2020-08-24", "2020-09-04")
    with_actions = build_feature_snapshots(
        mentions, traded, requested, ["AAPL"], actions=AAPL_SPLIT
    )
    reference = build_feature_snapshots(mentions, adjusted, requested, ["AAPL"])
    for column in RATIO_FEATURES:
        np.testing.assert_allclose(with_actions[column], reference[column], rtol=1e-10)
    # Without actions the features are those of the as-traded bars, whatever adj_close holds.
    plain = build_feature_snapshots(mentions, traded, requested, ["AAPL"])
    no_adj = build_feature_snapshots(
        mentions, traded.drop(columns="adj_close"), requested, ["AAPL"]
    )
    empty = build_feature_snapshots(mentions, traded, requested, ["AAPL"], actions=pd.DataFrame())
    pd.testing.assert_frame_equal(plain, no_adj, check_exact=True)
    pd.testing.assert_frame_equal(plain, empty, check_exact=True)


# --- labels and forward returns ------------------------------------------------------------------


def test_labels_across_a_split_read_the_path_in_the_entry_sessions_units():
    traded, adjusted = aapl_market()
    entries = technicals(traded, AAPL_SPLIT).reset_index()
    entries = entries[entries["session_date"] >= "2020-08-10"]
    reference_entries = technicals(adjusted).reset_index()
    reference_entries = reference_entries[reference_entries["session_date"] >= "2020-08-10"]
    for rule in (BarrierRule(), BarrierRule(entry_at="close")):
        fixed = triple_barrier_labels(entries, traded, rule, actions=AAPL_SPLIT)
        reference = triple_barrier_labels(reference_entries, adjusted, rule)
        for column in ("label", "barrier", "bars_held", "label_known_on"):
            pd.testing.assert_series_equal(
                fixed[column].reset_index(drop=True), reference[column].reset_index(drop=True)
            )
        np.testing.assert_allclose(fixed["exit_return"], reference["exit_return"], rtol=1e-9)
        np.testing.assert_allclose(fixed["exit_r"], reference["exit_r"], rtol=1e-9)
        # Levels in D's units: 4 × the post-split figures for a session before the split.
        scale = np.where(fixed["session_date"] < SPLIT_DAY, 4.0, 1.0)
        for column in ("entry", "stop", "target", "exit_price"):
            np.testing.assert_allclose(fixed[column], scale * reference[column], rtol=1e-9)
    # Without the actions a long entered before the split is "stopped" by it.
    naive = triple_barrier_labels(entries, traded, BarrierRule())
    before = naive[naive["session_date"] == pd.Timestamp("2020-08-27")].iloc[0]
    assert before["barrier"] == "stop" and before["exit_r"] < -10


def test_forward_returns_count_the_split_and_the_dividend():
    traded, _ = aapl_market()
    acts = actions(("AAPL", "2020-08-07", 1.0, 0.82), ("AAPL", SPLIT_DAY, 4.0, 0.0))
    fixed = forward_returns(traded, 1, acts).set_index("session_date")["forward_return"]
    assert fixed.loc[BEFORE_SPLIT] == pytest.approx(TRUE_RETURN)
    before_dividend = pd.Timestamp("2020-08-06")
    close = traded.set_index("session_date")["close"]
    assert fixed.loc[before_dividend] == pytest.approx(
        close.loc["2020-08-07"] / (close.loc[before_dividend] - 0.82) - 1
    )


# --- the paper ledger ----------------------------------------------------------------------------

LEDGER_DAYS = sessions_between("2020-08-24", "2020-09-11")
LIMITS = RiskLimits(min_confidence=0.5)
# 25 % of equity in one position: the stop the split would fake costs more than the 15 % halt.
BIG = RiskLimits(min_confidence=0.5, max_position_fraction=0.25)


def ledger_market(ticker="AAPL") -> pd.DataFrame:
    """Bars as traded: 500 flat (±2) until the split, 129.04 (±0.5) after it: the day gained +3.39 %."""
    rows = []
    for day in LEDGER_DAYS:
        level, spread = (CLOSE_AFTER, 0.5) if day >= SPLIT_DAY else (500.0, 2.0)
        close = CLOSE_BEFORE if day == BEFORE_SPLIT else level
        rows.append(
            {
                "ticker": ticker,
                "session_date": day,
                "open": level,
                "high": level + spread,
                "low": level - spread,
                "close": close,
                "volume": 1e6,
            }
        )
    return pd.DataFrame(rows)


def aapl_signal(session="2020-08-25", entry=500.0, atr=10.0, ticker="AAPL") -> pd.DataFrame:
    return signal(ticker, pd.Timestamp(session), entry=entry, atr=atr, confidence=0.8)


def test_a_long_across_the_split_keeps_its_value_and_is_not_stopped():
    prices = ledger_market()
    signals = aapl_signal()  # fills on 2020-08-26 at 500: stop 490, target 520
    naive = run_paper_portfolio(signals, prices, LEDGER_DAYS, RiskManager(BIG), config=FRICTIONLESS)
    stopped = naive.positions.iloc[0]
    # What the stored bars did before: a stop at the post-split open, about -37 R, and a halt.
    assert stopped["exit_reason"] == "stop" and stopped["closed_on"] == SPLIT_DAY
    assert stopped["pnl"] / stopped["risk_dollars"] < -15
    assert naive.equity["halted_until"].notna().any()

    fixed = run_paper_portfolio(
        signals, prices, LEDGER_DAYS, RiskManager(BIG), config=FRICTIONLESS, actions=AAPL_SPLIT
    )
    position = fixed.positions.iloc[0]
    held = naive.positions.iloc[0]["shares"]
    assert position["shares"] == 4 * held == 200
    # No stop: it lived to its expiry and earned what the shares did.
    assert position["exit_reason"] == "expiry" and position["closed_on"] == pd.Timestamp(
        "2020-09-10"
    )
    assert position["pnl"] == pytest.approx(4 * held * (CLOSE_AFTER - 125.0))
    assert position["entry"] == 125.0 and position["stop_loss"] == 122.5
    assert position["take_profit"] == 130.0
    equity = fixed.equity.set_index("session_date")
    # The split day's equity moved by the day's real gain on the position, nothing else.
    gain = equity.loc[SPLIT_DAY, "equity"] - equity.loc[BEFORE_SPLIT, "equity"]
    assert gain == pytest.approx(held * 4 * CLOSE_AFTER - held * CLOSE_BEFORE)
    assert gain / (held * CLOSE_BEFORE) == pytest.approx(TRUE_RETURN)
    assert equity["halted_until"].isna().all() and (equity["drawdown"] < 0.01).all()
    assert equity["dividends"].eq(0.0).all()


def test_an_order_decided_before_the_split_fills_after_it_in_new_units():
    prices = ledger_market()
    signals = aapl_signal(session=BEFORE_SPLIT, entry=CLOSE_BEFORE)  # fills at the split's open
    fixed = run_paper_portfolio(
        signals, prices, LEDGER_DAYS, RiskManager(LIMITS), config=FRICTIONLESS, actions=AAPL_SPLIT
    )
    decided = fixed.decisions.iloc[0]
    position = fixed.positions.iloc[0]
    assert position["opened_on"] == SPLIT_DAY and position["entry"] == CLOSE_AFTER
    # The bracket keeps its distances in new units (the signal's 10 / 4 = 2.5 below the fill).
    assert position["stop_loss"] == pytest.approx(CLOSE_AFTER - 2.5)
    assert position["ordered_shares"] == 4 * decided["shares"]
    assert pd.isna(position["closed_on"])


def five_shares_across_a_split(ratio: float, after: float, spread: float):
    """A long of 5 shares (2.5 % of 100,000 at 500) filled before a split of ``ratio`` on
    SPLIT_DAY, the bars flat at ``after`` (± ``spread``) from the ex-date on."""
    prices = ledger_market()
    prices.loc[prices["session_date"] >= SPLIT_DAY, ["open", "high", "low", "close"]] = [
        after,
        after + spread,
        after - spread,
        after,
    ]
    return run_paper_portfolio(
        aapl_signal(),
        prices,
        LEDGER_DAYS,
        RiskManager(RiskLimits(min_confidence=0.5, max_position_fraction=0.025)),
        config=FRICTIONLESS,
        actions=actions(("AAPL", SPLIT_DAY, ratio, 0.0)),
    )


def test_fractional_shares_are_paid_out_as_cash_in_lieu():
    roll = roll_across_split(np.array([5, 10, 15, 7]), np.array([1.5, 4.0, 0.1, 1 / 7]))
    assert roll.shares.tolist() == [7, 40, 1, 1]
    assert roll.fraction == pytest.approx([0.5, 0.0, 0.5, 0.0], abs=1e-9)
    after = 500 / 1.5
    booked = five_shares_across_a_split(1.5, after, spread=1)
    position = booked.positions.iloc[0]
    assert position["shares"] == 7  # 5 × 1.5 = 7.5: 7 shares and half a share in cash
    in_lieu = 0.5 * CLOSE_BEFORE / 1.5  # at the last close, in new units
    assert position["split_fraction_pnl"] == pytest.approx(0.5 * (CLOSE_BEFORE / 1.5 - 500 / 1.5))
    equity = booked.equity.set_index("session_date")
    change = equity.loc[SPLIT_DAY, "equity"] - equity.loc[BEFORE_SPLIT, "equity"]
    assert change == pytest.approx(7 * after + in_lieu - 5 * CLOSE_BEFORE)
    # The position's pnl at its expiry: the 7 shares' and the half share's.
    assert position["exit_reason"] == "expiry"
    assert position["pnl"] == pytest.approx(
        7 * (after - 500 / 1.5) + position["split_fraction_pnl"]
    )


def test_a_reverse_split_that_leaves_no_whole_share_closes_the_position_as_cash_in_lieu():
    # 1-for-10: the bars after the split are ten times higher.
    booked = five_shares_across_a_split(0.1, CLOSE_BEFORE * 10, spread=10)
    assert len(booked.positions) == 1
    position = booked.positions.iloc[0]
    # 5 × 0.1 = half a share: nothing whole is left, all of it is paid at the last close in
    # new units, and the position closes on the ex-date with that as its exit.
    assert position["exit_reason"] == "cash_in_lieu"
    assert position["closed_on"] == SPLIT_DAY
    assert position["exit_price"] == pytest.approx(CLOSE_BEFORE * 10)
    assert position["pnl"] == pytest.approx(0.5 * (CLOSE_BEFORE * 10 - 500 * 10))
    assert position["pnl"] == pytest.approx(position["split_fraction_pnl"])
    # Cash in lieu is the position's value at the last close: equity does not move on the split,
    # and no share is held (or marked) afterwards.
    equity = booked.equity.set_index("session_date")
    assert equity.loc[SPLIT_DAY, "equity"] == pytest.approx(equity.loc[BEFORE_SPLIT, "equity"])
    assert equity.loc[LEDGER_DAYS[-1], "equity"] == pytest.approx(equity.loc[SPLIT_DAY, "equity"])


def flat_market(tickers, days) -> pd.DataFrame:
    """Bars that stay at 500 (high 502, low 498): no barrier is ever touched."""
    index = pd.MultiIndex.from_product([tickers, days], names=["ticker", "session_date"])
    return (
        pd.DataFrame(index=index)
        .reset_index()
        .assign(open=500.0, high=502.0, low=498.0, close=500.0, volume=1e6)
    )


def test_dividends_are_credited_once_on_the_ex_date_to_longs_and_debited_to_shorts():
    ex_date = pd.Timestamp("2020-08-28")
    tickers = ("LONG", "SHRT", "LATE")
    prices = flat_market(tickers, LEDGER_DAYS)
    short = signal("SHRT", pd.Timestamp("2020-08-25"), entry=500.0, atr=10.0, confidence=0.8)
    short = short.assign(direction="short", stop_loss=510.0, take_profit=480.0)
    signals = pd.concat(
        [aapl_signal(ticker="LONG"), short, aapl_signal(session="2020-08-27", ticker="LATE")],
        ignore_index=True,
    )
    acts = actions(*[(ticker, ex_date, 1.0, 2.0) for ticker in tickers])
    booked = run_paper_portfolio(
        signals, prices, LEDGER_DAYS, RiskManager(LIMITS), config=FRICTIONLESS, actions=acts
    )
    positions = booked.positions.set_index("ticker")
    assert positions.loc["SHRT", "direction"] == "short"
    assert positions.loc["LONG", "dividends"] == 2.0 * positions.loc["LONG", "shares"]
    assert positions.loc["SHRT", "dividends"] == -2.0 * positions.loc["SHRT", "shares"]
    # Filled at the ex-date's open: bought without the dividend.
    assert (
        positions.loc["LATE", "opened_on"] == ex_date and positions.loc["LATE", "dividends"] == 0.0
    )
    equity = booked.equity.set_index("session_date")
    expected = 2.0 * (positions.loc["LONG", "shares"] - positions.loc["SHRT", "shares"])
    assert equity["dividends"].sum() == equity.loc[ex_date, "dividends"] == expected
    # In equity once (the prices did not move): and in each position's pnl at its expiry.
    previous = equity.index[equity.index.get_loc(ex_date) - 1]
    assert equity.loc[ex_date, "equity"] - equity.loc[previous, "equity"] == pytest.approx(expected)
    assert equity["equity"].iloc[-1] == pytest.approx(100_000.0 + expected)
    for ticker in ("LONG", "SHRT"):
        assert positions.loc[ticker, "exit_reason"] == "expiry"
        assert positions.loc[ticker, "pnl"] == positions.loc[ticker, "dividends"]
        assert positions.loc[ticker, "gross_pnl"] == positions.loc[ticker, "dividends"]
    cash = dividend_cash(np.array([10, 10]), np.array([False, True]), np.array([0.5, 0.5]))
    assert cash.tolist() == [5.0, -5.0]


def test_one_range_equals_one_session_at_a_time_across_a_split_and_a_dividend():
    """The book of each session shows the position as it was then, so a daily run resumes from it."""
    prices = ledger_market()
    acts = actions(("AAPL", "2020-08-27", 1.0, 1.5), ("AAPL", SPLIT_DAY, 4.0, 0.0))
    signals = pd.concat(
        [aapl_signal(), aapl_signal(session="2020-09-02", entry=CLOSE_AFTER, atr=2.5)]
    )
    whole = trade_sessions(
        signals, None, prices, LEDGER_DAYS, RiskManager(LIMITS), FRICTIONLESS, actions=acts
    )
    books, equities, decisions, previous = [], [], [], None
    for day in LEDGER_DAYS:
        step = trade_sessions(
            signals,
            previous,
            prices,
            pd.DatetimeIndex([day]),
            RiskManager(LIMITS),
            FRICTIONLESS,
            actions=acts,
        )
        books.append(step.book)
        equities.append(step.equity)
        decisions.append(step.decisions)
        book, equity = pd.concat(books, ignore_index=True), pd.concat(equities, ignore_index=True)
        first_cooling = session_offset(day, -max(LIMITS.cooldown_sessions - 1, 0))
        decided = pd.concat(decisions, ignore_index=True)
        previous = state_after(
            book[book["session_date"].between(first_cooling, day)],
            equity.tail(LIMITS.drawdown_lookback_sessions),
            decided[decided["session_date"] == day] if len(decided) else None,
        )
    pd.testing.assert_frame_equal(pd.concat(books, ignore_index=True), whole.book)
    pd.testing.assert_frame_equal(pd.concat(equities, ignore_index=True), whole.equity)
    book = whole.book[whole.book["ticker"] == "AAPL"].set_index("session_date")
    first_fill = book[book["opened_on"] == LEDGER_DAYS[2]]
    # Before the split the book shows pre-split shares and levels, and the dividend from its ex-date.
    assert first_fill.loc[BEFORE_SPLIT, "entry"] == 500.0
    assert first_fill.loc[SPLIT_DAY, "entry"] == 125.0
    assert first_fill.loc[SPLIT_DAY, "shares"] == 4 * first_fill.loc[BEFORE_SPLIT, "shares"]
    assert first_fill.loc[pd.Timestamp("2020-08-26"), "dividends"] == 0.0
    assert (
        first_fill.loc[pd.Timestamp("2020-08-27"), "dividends"]
        == 1.5 * first_fill.loc[BEFORE_SPLIT, "shares"]
    )


# --- the backtest --------------------------------------------------------------------------------


def test_buy_and_hold_reinvests_dividends_and_ignores_splits():
    days = sessions_between("2020-08-27", "2020-09-01")
    prices = pd.DataFrame(
        {
            "ticker": ["AAPL"] * 4 + ["DIVS"] * 4,
            "session_date": list(days) * 2,
            "close": [500.0, CLOSE_BEFORE, CLOSE_AFTER, CLOSE_AFTER, 100.0, 100.0, 98.0, 98.0],
        }
    )
    prices["adj_close"] = prices["close"]
    acts = actions(("AAPL", SPLIT_DAY, 4.0, 0.0), ("DIVS", SPLIT_DAY, 1.0, 2.0))
    curve = buy_and_hold_curve(prices, days, actions=acts)
    aapl = CLOSE_AFTER * 4 / 500.0
    divs = 98.0 / (100.0 * (1 - 2.0 / 100.0))  # the 2.0 dividend reinvested: no loss
    assert curve.iloc[-1] == pytest.approx((aapl + divs) / 2)
    assert divs == pytest.approx(1.0)
    naive = buy_and_hold_curve(prices, days)
    assert naive.iloc[-1] < 0.7  # what the as-traded closes said

    equity = pd.DataFrame(
        {
            "session_date": days,
            "equity": [100_000.0, 100_000.0, 100_010.0, 100_010.0],
            "open_positions": [1, 1, 1, 0],
            "market_value": [1000.0] * 4,
            "dividends": [0.0, 0.0, 10.0, 0.0],
        }
    )
    positions = pd.DataFrame(
        {
            "closed_on": [days[-1]],
            "opened_on": [days[0]],
            "exit_reason": ["expiry"],
            "shares": [5],
            "entry": [100.0],
            "stop_loss": [95.0],
            "pnl": [10.0],
            "gross_pnl": [10.0],
            "entry_costs": [0.0],
            "exit_costs": [0.0],
        }
    )
    report = backtest_report(equity, positions, prices, actions=acts)
    assert report.dividends == 10.0
    assert report.benchmark_return == pytest.approx((aapl + divs) / 2 - 1)
