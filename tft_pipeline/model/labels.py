"""Triple-barrier labels: did a long trade on session D's signal reach its target before its stop?

The signal is computed at the close of session D. By default (``entry_at="next_open"``) the trade
fills at the open of D+1, as the paper portfolio fills it; ``entry_at="close"`` enters at D's close
(a market-on-close order). With the ATR known at D: target = entry + 2·ATR, stop = entry − 1·ATR,
horizon the 10 sessions D+1..D+10 (D+1's whole bar counts after a next-open fill: the entry is its
open). The label is 1 when a bar's high reaches the
target before any bar's low reaches the stop; a bar that touches both counts as the stop (daily
bars do not say which came first, so we assume the worse). Otherwise 0: stop first, or neither
within the horizon (expiry at the close of D+10).

Prices are as traded (``clean.price_history``); with ``actions`` (``clean.corporate_actions``) the
bars after D are expressed in D's units (times the split ratios between D and them), so entry,
barriers and exit price are all in D's as-traded units and a split inside the horizon is no move.
Dividends do not move the barriers (the paper ledger does not move its stops for them either; it
credits the cash).

A label is only *known* at the session it resolved (``label_known_on``: the touch, or D+10), so
walk-forward training uses labels known strictly before the session it scores. Entries whose
outcome is still open at the end of the data have no label yet (NaN, ``label_known_on`` NaT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tft_pipeline.corporate_actions import split_factor_panel

TARGET, STOP, EXPIRY = "target", "stop", "expiry"
NEXT_OPEN, CLOSE = "next_open", "close"
ENTRY_TIMINGS = (NEXT_OPEN, CLOSE)

LABEL_COLUMNS: dict[str, str] = {
    "ticker": "object",
    "session_date": "datetime64[ns]",
    "entry": "float64",  # D+1's open (next_open) or D's close (close); NaN when there is none
    "atr": "float64",
    "target": "float64",
    "stop": "float64",
    "label": "float64",  # 1.0 target first, 0.0 stop first or expiry, NaN not resolved yet
    "barrier": "object",  # "target" | "stop" | "expiry" | None while unresolved
    "label_known_on": "datetime64[ns]",
    "bars_held": "float64",  # sessions from D to the exit, NaN while unresolved
    "exit_price": "float64",  # the barrier, the open when it gapped through, or the expiry close
    "exit_return": "float64",  # exit_price / entry − 1
    "exit_r": "float64",  # (exit_price − entry) / (entry − stop): the outcome in units of risk
}


@dataclass(frozen=True)
class BarrierRule:
    """Where the barriers sit, in ATRs from the entry, and how many sessions the trade may live."""

    target_atr: float = 2.0
    stop_atr: float = 1.0
    horizon: int = 10
    entry_at: str = NEXT_OPEN  # when the trade fills: "next_open" (D+1's open) or "close" (D's)

    def __post_init__(self) -> None:
        if not (self.target_atr > 0 and self.stop_atr > 0):
            raise ValueError("target_atr and stop_atr must be positive")
        if self.horizon < 1:
            raise ValueError("horizon must be at least one session")
        if self.entry_at not in ENTRY_TIMINGS:
            raise ValueError(f"entry_at must be one of {ENTRY_TIMINGS}, got {self.entry_at!r}")

    def levels(self, entry: np.ndarray, atr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(stop, target) price levels for entries and ATRs."""
        return entry - self.stop_atr * atr, entry + self.target_atr * atr


DEFAULT_RULE = BarrierRule()


def _wide(
    prices: pd.DataFrame, grid: pd.DatetimeIndex, tickers: pd.Index, column: str
) -> np.ndarray:
    return (
        prices.pivot(index="session_date", columns="ticker", values=column)
        .reindex(index=grid, columns=tickers)
        .to_numpy(dtype="float64")
    )


def triple_barrier_labels(
    entries: pd.DataFrame,
    prices: pd.DataFrame,
    rule: BarrierRule = DEFAULT_RULE,
    *,
    entry_column: str = "close",
    atr_column: str = "atr_14",
    actions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One label row per entry row (same order), from the bars in ``prices`` after each entry.

    ``entries`` has ``ticker``, ``session_date``, the entry price and the ATR in D's units (feature
    snapshots fit as they are); ``prices`` has ``ticker, session_date, open, high, low, close`` as
    traded; ``actions`` the corporate actions (None: none), whose splits put the bars after D in
    D's units. Sessions are counted on the union of the sessions present in ``prices`` and
    ``entries``; a ticker missing a bar on a session simply cannot touch a barrier there.
    """
    entries = entries.reset_index(drop=True)
    grid = pd.DatetimeIndex(
        pd.concat([prices["session_date"], entries["session_date"]]).drop_duplicates().sort_values()
    )
    tickers = pd.Index(pd.concat([prices["ticker"], entries["ticker"]]).drop_duplicates())
    bars = prices.drop_duplicates(["ticker", "session_date"], keep="last")
    opens, highs, lows, closes = (
        _wide(bars, grid, tickers, column) for column in ("open", "high", "low", "close")
    )

    row = grid.get_indexer(entries["session_date"])
    col = tickers.get_indexer(entries["ticker"])
    atr = entries[atr_column].to_numpy(dtype="float64")

    # The horizon-shaped window: (entries, horizon) positions of D+1..D+h in the session grid.
    future = row[:, None] + np.arange(1, rule.horizon + 1)[None, :]
    in_data = future < len(grid)
    safe = np.minimum(future, len(grid) - 1)

    # Cumulative split factor on the grid: a later bar in D's units is price × S(t) / S(D).
    split = split_factor_panel(actions, grid, tickers)
    to_entry_units = split[safe, col[:, None]] / split[row, col][:, None]

    def window(wide: np.ndarray) -> np.ndarray:
        return np.where(in_data, wide[safe, col[:, None]] * to_entry_units, np.nan)

    open_w, high_w, low_w, close_w = window(opens), window(highs), window(lows), window(closes)
    if rule.entry_at == NEXT_OPEN:
        # Filled at D+1's open: no D+1 bar (not in the data yet, or none that session) no trade.
        entry = open_w[:, 0].copy()
    else:
        entry = entries[entry_column].to_numpy(dtype="float64")
    stop, target = rule.levels(entry, atr)
    with np.errstate(invalid="ignore"):
        valid_entry = (
            entries["session_date"].notna().to_numpy()
            & np.isfinite(entry)
            & (entry > 0)
            & np.isfinite(atr)
            & (atr > 0)
            & (stop > 0)
        )
    never = rule.horizon  # "not touched" sorts after every real step
    stop_hit = low_w <= stop[:, None]
    target_hit = high_w >= target[:, None]
    first_stop = np.where(stop_hit.any(axis=1), stop_hit.argmax(axis=1), never)
    first_target = np.where(target_hit.any(axis=1), target_hit.argmax(axis=1), never)
    touched = valid_entry & (np.minimum(first_stop, first_target) < never)
    stop_first = touched & (first_stop <= first_target)  # a bar touching both counts as the stop
    target_first = touched & ~stop_first
    # Expiry needs the whole horizon inside the data; the exit is the last close seen in it.
    horizon_complete = in_data[:, -1]
    expired = valid_entry & ~touched & horizon_complete
    has_close = np.isfinite(close_w)
    last_close_step = np.where(
        has_close.any(axis=1), rule.horizon - 1 - has_close[:, ::-1].argmax(axis=1), -1
    )
    expired &= last_close_step >= 0

    steps = np.arange(len(entries))
    touch_step = np.minimum(first_stop, first_target).clip(max=rule.horizon - 1)
    touch_open = open_w[steps, touch_step]
    exit_price = np.full(len(entries), np.nan)
    # A gap through a barrier fills at the open, not at the barrier.
    exit_price[stop_first] = np.fmin(stop, touch_open)[stop_first]
    exit_price[target_first] = np.fmax(target, touch_open)[target_first]
    exit_price[expired] = close_w[steps, last_close_step.clip(min=0)][expired]

    exit_step = np.where(touched, touch_step, rule.horizon - 1)
    resolved = touched | expired
    known_on = np.full(len(entries), np.datetime64("NaT"), dtype="datetime64[ns]")
    grid_values = grid.to_numpy(dtype="datetime64[ns]")
    known_on[resolved] = grid_values[(row + 1 + exit_step)[resolved]]

    label = np.full(len(entries), np.nan)
    label[resolved] = target_first[resolved].astype("float64")
    barrier = np.full(len(entries), None, dtype=object)
    barrier[stop_first], barrier[target_first], barrier[expired] = STOP, TARGET, EXPIRY

    return pd.DataFrame(
        {
            "ticker": entries["ticker"].astype("object"),
            "session_date": pd.to_datetime(entries["session_date"]).astype("datetime64[ns]"),
            "entry": entry,
            "atr": atr,
            "target": target,
            "stop": stop,
            "label": label,
            "barrier": barrier,
            "label_known_on": known_on,
            "bars_held": np.where(resolved, exit_step + 1, np.nan).astype("float64"),
            "exit_price": exit_price,
            "exit_return": exit_price / entry - 1.0,
            "exit_r": (exit_price - entry) / (entry - stop),
        }
    )
