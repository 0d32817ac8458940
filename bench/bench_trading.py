"""Benchmark of what the default configuration trades, and whether its confidence means anything.

On the bundled sample market (the default 500 tickers), the whole pure chain (generation →
validation → mentions → snapshots) feeds the default walk-forward model (labels filled at the next
open, retrained every 20 sessions on labels known before), whose out-of-sample signals go through
the default risk limits (min confidence 0.70) and the paper portfolio (next-open fills, 1 + 5 bp
per side). It reports:

- the model's out-of-sample calibration: AUC, Brier skill against the base rate, and the realized
  hit rate of the signals at or above 0.70 against their mean confidence;
- how much of the planted catalyst edge it recovers: of the bullish catalyst events, the share the
  model scored at or above 0.70 (recall), the share of those confident signals that sat on an event
  (precision), and (hit rate of the confident signals − base rate) / (hit rate after bullish events
  − base rate): 1.0 would be every confident signal trading as well as a known event;
- the paper portfolio at the seed's limits: accepted and filled trades, hit rate against mean
  confidence, gross and net P&L, return against equal-weight buy-and-hold, drawdown, halts.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from tft_pipeline.backtest import backtest_report
from tft_pipeline.features import build_feature_snapshots, extract_ticker_mentions
from tft_pipeline.model import triple_barrier_labels, walk_forward
from tft_pipeline.model.calibration import brier_skill, reliability_table
from tft_pipeline.portfolio import PortfolioConfig, run_paper_portfolio
from tft_pipeline.risk import RiskLimits, RiskManager
from tft_pipeline.sample_market import (
    catalyst_edge_summary,
    catalyst_events,
    generate_price_history,
    generate_reddit_comments,
    generate_reddit_posts,
)
from tft_pipeline.trading_calendar import sessions_between
from tft_pipeline.universe import DEFAULT_UNIVERSE
from tft_pipeline.validation import validate_comments, validate_posts, validate_prices

SUBREDDITS = ("wallstreetbets", "stocks", "investing")
# Two years; the first TRAINING_ONLY_SESSIONS only feed the first models.
SPAN = ("2023-01-03", "2024-12-31")
TRAINING_ONLY_SESSIONS = 60
QUICK_TICKERS, QUICK_SPAN = 100, ("2024-01-02", "2024-12-31")
CONFIDENT = 0.70


def _chain(tickers, sessions) -> tuple[pd.DataFrame, pd.DataFrame]:
    prices = validate_prices(generate_price_history(tickers, sessions)).clean
    posts = validate_posts(generate_reddit_posts(sessions, tickers, SUBREDDITS)).clean
    comments = validate_comments(generate_reddit_comments(sessions, tickers, SUBREDDITS)).clean
    mentions = extract_ticker_mentions(posts, comments, tickers)
    return build_feature_snapshots(mentions, prices, sessions, tickers), prices


def _round(value: float, digits: int = 4) -> float:
    return round(float(value), digits) if np.isfinite(value) else float("nan")


def run(quick: bool = False) -> dict[str, float | int | str]:
    tickers = DEFAULT_UNIVERSE[:QUICK_TICKERS] if quick else DEFAULT_UNIVERSE
    sessions = sessions_between(*(QUICK_SPAN if quick else SPAN))
    started = time.perf_counter()
    snapshots, prices = _chain(tickers, sessions)
    chain_seconds = time.perf_counter() - started

    scored = sessions[TRAINING_ONLY_SESSIONS:]
    started = time.perf_counter()
    result = walk_forward(snapshots, prices, scored)
    walk_seconds = time.perf_counter() - started
    signals = result.signals
    keys = ["ticker", "session_date"]
    labels = triple_barrier_labels(snapshots, prices)[keys + ["label"]]
    judged = signals.merge(labels, on=keys, how="left")
    resolved = judged[judged["label"].notna()]
    confident = resolved[resolved["confidence"] >= CONFIDENT]
    base_rate = float(resolved["label"].mean())

    # The catalyst truth on the scored sessions.
    events = catalyst_events(tickers, scored).assign(event=lambda e: e["direction"])
    truth = catalyst_edge_summary(tickers, scored)
    with_events = resolved.merge(events[keys + ["event"]], on=keys, how="left")
    bullish = with_events[with_events["event"] == 1]
    event_hit, base_long = truth["hit_rate_bullish"], truth["base_hit_rate_long"]
    confident_hit = float(confident["label"].mean()) if len(confident) else float("nan")

    # The paper portfolio at the seed's limits, with the default costs and next-open fills.
    manager = RiskManager(RiskLimits())
    ledger = run_paper_portfolio(signals, prices, scored, manager, config=PortfolioConfig())
    report = backtest_report(ledger.equity, ledger.positions, prices, scored)
    positions = ledger.positions
    closed = positions[positions["exit_reason"].isin(["stop", "target", "expiry"])]
    decisions = ledger.decisions
    reasons = decisions.loc[~decisions["accepted"], "reasons"].str.split(";").explode()
    calibration = reliability_table(
        closed["confidence"], (closed["exit_reason"] == "target").astype(float)
    )
    figures: dict[str, float | int | str] = {
        "tickers": len(tickers),
        "sessions": len(sessions),
        "scored_sessions": len(scored),
        "chain_s": _round(chain_seconds, 2),
        "walk_forward_s": _round(walk_seconds, 2),
        "models_trained": len(result.models),
        "models_with_skill": sum(m.metrics.has_skill for m in result.models),
        # Out of sample: every scored signal whose outcome is known.
        "oos_signals": len(resolved),
        "oos_base_rate": _round(base_rate),
        "oos_brier_skill": _round(brier_skill(resolved["confidence"], resolved["label"], base_rate)),
        "oos_signals_ge_0_70": len(confident),
        "oos_mean_confidence_ge_0_70": _round(confident["confidence"].mean()),
        "oos_hit_rate_ge_0_70": _round(confident_hit),
        "catalyst_bullish_events_scored": len(bullish),
        "catalyst_hit_rate_bullish_truth": _round(event_hit),
        "catalyst_base_rate_long_truth": _round(base_long),
        "catalyst_recall_ge_0_70": _round((bullish["confidence"] >= CONFIDENT).mean()),
        "catalyst_precision_ge_0_70": _round(
            with_events.loc[with_events["confidence"] >= CONFIDENT, "event"].eq(1).mean()
        ),
        "catalyst_mean_confidence_on_bullish_events": _round(bullish["confidence"].mean()),
        "catalyst_edge_recovered_share": _round(
            (confident_hit - base_long) / (event_hit - base_long)
        ),
        "portfolio_signals_judged": len(decisions),
        "portfolio_accepted": int(decisions["accepted"].sum()),
        "portfolio_top_rejection": str(reasons.value_counts().index[0]) if len(reasons) else "",
        "portfolio_trades": report.trades,
        "portfolio_unfilled_orders": report.unfilled_orders,
        "portfolio_hit_rate": _round(report.hit_rate),
        "portfolio_mean_confidence": _round(closed["confidence"].mean()),
        "portfolio_gross_pnl": _round(report.gross_pnl, 2),
        "portfolio_costs": _round(report.total_costs, 2),
        "portfolio_net_pnl": _round(report.total_pnl, 2),
        "portfolio_total_return": _round(report.total_return),
        "portfolio_benchmark_return": _round(report.benchmark_return),
        "portfolio_max_drawdown": _round(report.max_drawdown),
        "portfolio_sharpe": _round(report.sharpe, 2),
        "portfolio_sessions_halted": int(
            (ledger.equity["halted_until"].notna()).sum() if "halted_until" in ledger.equity else 0
        ),
    }
    for row in calibration.itertuples(index=False):
        figures[f"trades_band_{row.band}"] = (
            f"{row.count} trades, mean confidence {row.mean_confidence:.3f}, "
            f"hit rate {row.hit_rate:.3f}"
        )
    return figures


if __name__ == "__main__":
    for name, value in run(quick="--quick" in __import__("sys").argv).items():
        print(f"{name:45s} {value}")
