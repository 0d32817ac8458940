"""Paper trading over a range of sessions, resumed from the decisions the warehouse already holds.

The ledger after session D−1 is rebuilt by replaying the accepted decisions of every earlier session
(``signals.risk_filtered_signals``) against the prices: positions, exits and equity are a pure
function of those, so the replay gives exactly the state the earlier runs had. The range's own
signals then go through the real risk manager, session by session, each judged against the state
after the session before. A single-run backfill and one run per session therefore give the same
tables, and nothing depends on an unpartitioned table written by an earlier run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tft_pipeline.portfolio import PaperPortfolio, PortfolioConfig, run_paper_portfolio
from tft_pipeline.risk import PortfolioState, RiskManager
from tft_pipeline.trading_calendar import previous_session, sessions_between

DECISION_COLUMNS = (
    "accepted", "reasons", "messages", "shares", "position_value", "risk_dollars", "reward_risk",
)


class RecordedDecisions:
    """A risk gate that replays decisions already taken: every recorded signal is accepted as sized."""

    def evaluate_batch(self, signals: pd.DataFrame, portfolio: PortfolioState) -> pd.DataFrame:
        decided = signals.copy()
        decided["accepted"] = True
        return decided


@dataclass(frozen=True)
class TradingResult:
    """The range's decisions and equity rows, and the whole ledger through the range's last session."""

    decisions: pd.DataFrame
    equity: pd.DataFrame
    ledger: PaperPortfolio


def replay_ledger(
    accepted: pd.DataFrame, prices: pd.DataFrame, through: pd.Timestamp, config: PortfolioConfig
) -> PaperPortfolio | None:
    """The ledger after session ``through`` from the accepted decisions up to it (None: no trade yet)."""
    accepted = accepted[pd.to_datetime(accepted["session_date"]) <= through]
    if accepted.empty:
        return None
    first = pd.to_datetime(accepted["session_date"]).min()
    return run_paper_portfolio(
        accepted, prices, sessions_between(first, through), RecordedDecisions(), None, config
    )


def trade_sessions(
    signals: pd.DataFrame,
    accepted_before: pd.DataFrame,
    prices: pd.DataFrame,
    sessions: pd.DatetimeIndex,
    risk_manager: RiskManager,
    config: PortfolioConfig | None = None,
) -> TradingResult:
    """Judge and book ``sessions`` (consecutive) of ``signals``, resuming after the session before.

    ``accepted_before``: recorded accepted decisions of earlier sessions (any rows on or after the
    range's first session are ignored, so re-running a range never replays its own old decisions).
    ``prices``: clean bars from the first recorded decision through the range's last session.
    """
    config = config or PortfolioConfig()
    first = sessions[0]
    before = accepted_before[pd.to_datetime(accepted_before["session_date"]) < first]
    previous = replay_ledger(before, prices, previous_session(first), config)
    if previous is not None and previous.equity["session_date"].iloc[-1] != previous_session(first):
        raise AssertionError("the replayed ledger must end on the session before the range")
    ledger = run_paper_portfolio(signals, prices, sessions, risk_manager, previous, config)
    in_range = pd.to_datetime(ledger.equity["session_date"]).between(first, sessions[-1])
    return TradingResult(
        decisions=ledger.decisions,
        equity=ledger.equity[in_range].reset_index(drop=True),
        ledger=ledger,
    )
