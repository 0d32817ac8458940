"""How much edge out-of-sample signals carry: IC against forward returns, hit rate, profit factor.

Walk-forward signals are out of sample by construction, so scoring them against what happened next
measures the edge the model recovered. The same IC computed on raw ``mention_sentiment`` gives a
model-free reference for the planted sentiment edge.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tft_pipeline.corporate_actions import total_return_close
from tft_pipeline.metrics import profit_factor, session_rank_ic
from tft_pipeline.model.labels import DEFAULT_RULE, BarrierRule, triple_barrier_labels

MIN_NAMES_FOR_IC = 5  # a rank correlation over fewer names per session is mostly noise


def forward_returns(
    prices: pd.DataFrame, horizon: int, actions: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``ticker, session_date, forward_return``: total-return close ``horizon`` sessions later / now.

    ``prices`` are as traded, ``actions`` the corporate actions (None: none): the total-return
    close (``tft_pipeline.corporate_actions``) counts splits and reinvested dividends; the vendor's
    ``adj_close`` is not read.
    """
    bars = prices.drop_duplicates(["ticker", "session_date"], keep="last")
    bars = bars.assign(tr_close=total_return_close(bars, actions))
    wide = bars.pivot(index="session_date", columns="ticker", values="tr_close")
    wide = wide.sort_index()
    ahead = wide.shift(-horizon) / wide - 1.0
    return ahead.stack(future_stack=True).rename("forward_return").reset_index()


def _overlap_adjusted_t(ic: pd.Series, horizon: int) -> float:
    """t statistic of the mean IC; neighbouring sessions' forward returns overlap by ``horizon − 1``
    sessions, so only about ``n / horizon`` of the ``n`` session ICs are independent."""
    if len(ic) < 2 or ic.std() == 0:
        return float("nan")
    independent = max(len(ic) / horizon, 1.0)
    return float(ic.mean() / ic.std() * np.sqrt(independent))


def edge_recovery_report(
    snapshots: pd.DataFrame,
    prices: pd.DataFrame,
    signals: pd.DataFrame,
    rule: BarrierRule = DEFAULT_RULE,
    top_fraction: float = 0.2,
    ic_horizon: int | None = None,
    actions: pd.DataFrame | None = None,
) -> dict[str, float | int]:
    """Out-of-sample edge of ``signals`` (from ``score_sessions``) against later prices.

    ``prices`` are as traded; ``actions`` (corporate actions, None: none) adjust labels and
    forward returns.

    - ``ic_mean``/``ic_t_stat``: mean per-session Spearman IC of confidence vs the forward return
      over ``ic_horizon`` sessions (default ``rule.horizon``), and its t statistic allowing for
      overlapping horizons; ``sentiment_ic_mean`` the same for raw ``mention_sentiment`` on the
      same rows (the planted edge as the data shows it).
    - ``auc``, ``brier``, ``log_loss``: confidence vs the triple-barrier label (how well ranked and
      how well calibrated the probabilities are).
    - ``hit_rate_top``/``base_rate``: share of target-first outcomes among each session's top
      ``top_fraction`` of signals by confidence, and among all resolved signals.
    - ``profit_factor_top``/``profit_factor_all``: gains over losses of the barrier exits.
    """
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score  # ~2 s: only here

    keys = ["ticker", "session_date"]
    labels = triple_barrier_labels(snapshots, prices, rule, actions=actions)
    outcomes = labels[keys + ["label", "exit_return"]].assign(
        mention_sentiment=snapshots["mention_sentiment"].to_numpy(dtype="float64")
    )
    frame = (
        signals[keys + ["confidence"]]
        .merge(outcomes, on=keys, how="left")
        .merge(forward_returns(prices, ic_horizon or rule.horizon, actions), on=keys, how="left")
    )
    ic = session_rank_ic(frame, "confidence", "forward_return", MIN_NAMES_FOR_IC)
    sentiment_ic = session_rank_ic(frame, "mention_sentiment", "forward_return", MIN_NAMES_FOR_IC)
    resolved = frame[frame["label"].notna()]
    is_top = resolved.groupby("session_date")["confidence"].rank(pct=True, ascending=False)
    top = resolved[is_top <= top_fraction]
    two_classes = resolved["label"].nunique() == 2
    nan = float("nan")
    return {
        "n_signals": len(frame),
        "n_resolved": len(resolved),
        "n_sessions_ic": len(ic),
        "ic_mean": float(ic.mean()) if len(ic) else nan,
        "ic_t_stat": _overlap_adjusted_t(ic, ic_horizon or rule.horizon),
        "sentiment_ic_mean": float(sentiment_ic.mean()) if len(sentiment_ic) else nan,
        "auc": float(roc_auc_score(resolved["label"], resolved["confidence"]))
        if two_classes
        else nan,
        "brier": float(brier_score_loss(resolved["label"], resolved["confidence"]))
        if len(resolved)
        else nan,
        "log_loss": (
            float(
                log_loss(
                    resolved["label"], resolved["confidence"].clip(1e-6, 1 - 1e-6), labels=[0, 1]
                )
            )
            if len(resolved)
            else nan
        ),
        "hit_rate_top": float(top["label"].mean()) if len(top) else nan,
        "base_rate": float(resolved["label"].mean()) if len(resolved) else nan,
        "profit_factor_top": profit_factor(top["exit_return"]),
        "profit_factor_all": profit_factor(resolved["exit_return"]),
        "mean_exit_return_top": float(top["exit_return"].mean()) if len(top) else nan,
        "mean_exit_return_all": float(resolved["exit_return"].mean()) if len(resolved) else nan,
    }
