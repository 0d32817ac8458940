"""Splits and dividends: one consistent adjusted basis for features, labels, backtests and the ledger.

Pure (pandas/NumPy, no Dagster), vectorized: no loop over rows, tickers or sessions.

``clean.price_history`` holds bars **as traded** on their session, and ``clean.corporate_actions``
one row per ticker and ex-date session (``tables.CORPORATE_ACTION_COLUMNS``): ``split_ratio`` new
shares per old share (4.0 for AAPL on 2020-08-31), ``dividend`` cash per share in the as-traded
units of the ex-date session. The vendor's ``adj_close`` is never read: its basis moves with every
fetch. Adjusted series are derived here from the as-traded bars and the actions.

**Factors.** Per ticker, with the actions in ex-date order:

- the cumulative split factor ``S(t)`` = product of the split ratios with ex-date <= t. A price at
  t expressed in the units of session D is ``price(t) · S(t) / S(D)``; a share count (volume) is
  ``volume(t) · S(D) / S(t)``. AAPL: 499.23 on 2020-08-28 is 124.81 in 2020-08-31's units, and
  129.04 on 2020-08-31 is 516.16 in 2020-08-28's units.
- the cumulative dividend factor ``F(t)`` = product over ex-dates X <= t of the CRSP/Yahoo factor
  ``f(X) = 1 − dividend(X) / close(X−1)``, the previous close taken in X's units (a split on the
  same ex-date divides it first). ``close(t) · S(t) / F(t)`` is a **total-return close**: its
  session-to-session change over an ex-date is ``close(X) / (close(X−1) − dividend)``, the price
  change with the dividend reinvested.

**Why one basis is enough.** Returns, volatility of log returns, RSI, ATR / close and the volume
z-score are ratios within a window: multiplying every value of the window by the same constant
leaves them unchanged. Back-adjusting a whole frame to its last session (or to its first, or to
any constant) therefore gives, for every session D, exactly the ratios of the window adjusted to
D's own units; a feature for D computed from a frame ending at D equals the one computed from a
frame ending later (tested). What a trader acts on is a **level**: D's close, the ATR in dollars,
entry, stop and target. Those must be in D's as-traded units, so they are converted back with
``1 / S(D)`` (``ATR(D) = ATR of the window in the cumulative basis / S(D)``). Forward paths (the
bars after D that labels read) are expressed in D's units: later prices times ``S(t) / S(D)``.

Only actions with an ex-date inside the frame matter: an earlier one multiplies every bar of the
frame by the same number. A dividend whose previous close is not in the frame (its ex-date is the
frame's first bar) gets factor 1: it would only scale bars before the frame.

**The ledger** (``tft_pipeline.portfolio``) rolls open positions across a split on the ex-date
before the open: shares × ratio (whole shares; a fraction is paid out as cash in lieu at the
previous close in post-split units), entry, stop and target ÷ ratio (``roll_across_split``). On a
dividend's ex-date, a position held at the previous close receives shares × dividend (a long) or
pays it (a short): ``dividend_cash``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tft_pipeline.tables import CORPORATE_ACTION_COLUMNS, conform, empty_frame

# The warehouse table of the actions (per ex-date session partitions); absent means none yet.
CORPORATE_ACTIONS_TABLE = "clean.corporate_actions"
PRICE_COLUMNS = ("open", "high", "low", "close")
BASES = ("last", "first", "cumulative")
# A whole number of shares after a split is computed with this slack: 3 × 1.5 is 4.5 exactly, but
# 7 × (1 / 7) should be 1 share, not 0 shares and 0.999... in cash.
_WHOLE_SHARE_SLACK = 1e-9


def normalize_actions(actions: pd.DataFrame | None) -> pd.DataFrame:
    """``actions`` as ``CORPORATE_ACTION_COLUMNS`` with usable values, sorted by ticker and ex-date.

    None or a frame without columns (the table does not exist yet) is no action. Tickers are
    upper-cased; a missing or non-positive split ratio means no split (1.0), a missing or negative
    dividend none (0.0). Of two rows for one ticker and ex-date, the one fetched last wins.
    """
    if actions is None or actions.empty:
        return empty_frame(CORPORATE_ACTION_COLUMNS)
    actions = conform(actions, CORPORATE_ACTION_COLUMNS)
    ratio = actions["split_ratio"].to_numpy(dtype="float64")
    dividend = actions["dividend"].to_numpy(dtype="float64")
    actions["split_ratio"] = np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)
    actions["dividend"] = np.where(np.isfinite(dividend) & (dividend > 0), dividend, 0.0)
    actions["ticker"] = actions["ticker"].astype(str).str.strip().str.upper().astype(object)
    actions["session_date"] = actions["session_date"].dt.normalize()
    actions = actions.sort_values(["ticker", "session_date", "fetched_at"], kind="stable")
    actions = actions.drop_duplicates(["ticker", "session_date"], keep="last")
    return actions.reset_index(drop=True)


def _cumulative_actions(actions: pd.DataFrame) -> pd.DataFrame:
    """Per action row (sorted by ticker, ex-date): the cumulative split factor through it."""
    return actions.assign(cum_split=actions.groupby("ticker", sort=False)["split_ratio"].cumprod())


def adjustment_factors(bars: pd.DataFrame, actions: pd.DataFrame | None) -> pd.DataFrame:
    """Per bar of ``bars`` (same index, same order): ``split_factor`` S(t) and ``dividend_factor``
    F(t), cumulative from the first action in ``actions`` (see the module docstring).

    ``bars`` needs ``ticker``, ``session_date`` and ``close`` (as traded), one bar per ticker and
    session. Without actions both factors are exactly 1.0.
    """
    actions = normalize_actions(actions)
    index = bars.index
    ones = pd.DataFrame(
        {"split_factor": np.ones(len(bars)), "dividend_factor": np.ones(len(bars))}, index=index
    )
    actions = actions[actions["ticker"].isin(pd.unique(bars["ticker"]))]
    if actions.empty or bars.empty:
        return ones
    actions = _cumulative_actions(actions)
    keyed = pd.DataFrame(
        {
            "ticker": bars["ticker"].to_numpy(dtype=object),
            "session_date": pd.to_datetime(bars["session_date"]).to_numpy(dtype="datetime64[ns]"),
            "close": bars["close"].to_numpy(dtype="float64"),
            "row": np.arange(len(bars)),
        }
    ).sort_values("session_date", kind="stable")
    by_date = actions.sort_values("session_date", kind="stable")

    # S at each bar: the cumulative split factor of the last action on or before its session.
    with_split = pd.merge_asof(
        keyed,
        by_date[["session_date", "ticker", "cum_split"]],
        on="session_date",
        by="ticker",
        direction="backward",
    )
    split_factor = with_split["cum_split"].fillna(1.0).to_numpy()

    # Each dividend's factor from the last close strictly before its ex-date, in ex-date units.
    dividends = by_date[by_date["dividend"] > 0]
    dividend_factor = np.ones(len(bars))
    if len(dividends):
        previous = keyed.assign(previous_split=split_factor)[
            ["session_date", "ticker", "close", "previous_split"]
        ].rename(columns={"close": "previous_close"})
        priced = pd.merge_asof(
            dividends,
            previous,
            on="session_date",
            by="ticker",
            direction="backward",
            allow_exact_matches=False,
        )
        previous_close = (
            priced["previous_close"] * priced["previous_split"] / priced["cum_split"]
        ).to_numpy(dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = 1.0 - priced["dividend"].to_numpy(dtype="float64") / previous_close
        # No close before the ex-date in the frame (or a dividend >= the price): factor 1.
        factor = np.where(np.isfinite(factor) & (factor > 0) & (factor <= 1), factor, 1.0)
        priced = priced.assign(factor=factor).sort_values(["ticker", "session_date"], kind="stable")
        priced["cum_dividend"] = priced.groupby("ticker", sort=False)["factor"].cumprod()
        with_dividend = pd.merge_asof(
            keyed,
            priced.sort_values("session_date", kind="stable")[
                ["session_date", "ticker", "cum_dividend"]
            ],
            on="session_date",
            by="ticker",
            direction="backward",
        )
        dividend_factor = with_dividend["cum_dividend"].fillna(1.0).to_numpy()

    rows = keyed["row"].to_numpy()
    out = ones.copy()
    out.iloc[rows, 0] = split_factor
    out.iloc[rows, 1] = dividend_factor
    return out


def adjusted_bars(
    bars: pd.DataFrame, actions: pd.DataFrame | None, *, basis: str = "last"
) -> pd.DataFrame:
    """``bars`` with open/high/low/close and volume in one split-adjusted basis per ticker, and
    ``tr_close``: the total-return close (splits and dividends, reinvested).

    ``basis``: ``"last"`` expresses every bar in the units of the ticker's last bar in the frame
    (as a vendor back-adjusts; the last bar is as traded), ``"first"`` in those of its first bar,
    ``"cumulative"`` in the units before the first action of ``actions`` (no per-ticker
    normalisation: the cheapest, and ratios are the same in all three). Added columns:
    ``split_factor`` (what the as-traded prices were multiplied by) and ``dividend_factor``.
    Without actions the prices, volume and ``tr_close`` equal the as-traded ones exactly.
    """
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
    factors = adjustment_factors(bars, actions)
    split = factors["split_factor"]
    total = split / factors["dividend_factor"]
    if basis != "cumulative" and len(bars):
        pick = "last" if basis == "last" else "first"
        order = pd.DataFrame(
            {"ticker": bars["ticker"].to_numpy(), "session_date": bars["session_date"].to_numpy()},
            index=bars.index,
        ).sort_values(["ticker", "session_date"], kind="stable")
        grouped = (
            pd.DataFrame({"split": split, "total": total})
            .loc[order.index]
            .groupby(order["ticker"], sort=False)
        )
        base = grouped.transform(pick).reindex(bars.index)
        split = split / base["split"]
        total = total / base["total"]
    out = bars.copy()
    for column in PRICE_COLUMNS:
        if column in out.columns:
            out[column] = out[column].astype("float64") * split
    out["tr_close"] = bars["close"].astype("float64") * total
    if "volume" in out.columns:
        out["volume"] = out["volume"].astype("float64") / split
    out["split_factor"] = split
    out["dividend_factor"] = factors["dividend_factor"]
    return out


def total_return_close(bars: pd.DataFrame, actions: pd.DataFrame | None) -> pd.Series:
    """The total-return close of each bar (cumulative basis: for ratios only)."""
    factors = adjustment_factors(bars, actions)
    return bars["close"].astype("float64") * factors["split_factor"] / factors["dividend_factor"]


def split_factor_panel(
    actions: pd.DataFrame | None, sessions: pd.DatetimeIndex, tickers: pd.Index
) -> np.ndarray:
    """(sessions × tickers) cumulative split factor S: the product of the ratios with ex-date <= the
    session (an ex-date between two sessions of the grid counts from the next one). All ones
    without splits."""
    panel = np.ones((len(sessions), len(tickers)))
    actions = normalize_actions(actions)
    actions = actions[(actions["split_ratio"] != 1.0) & actions["ticker"].isin(tickers)]
    if actions.empty or len(sessions) == 0:
        return panel
    row = pd.DatetimeIndex(sessions).searchsorted(actions["session_date"].to_numpy(), side="left")
    inside = row < len(sessions)
    col = tickers.get_indexer(actions["ticker"])
    np.multiply.at(panel, (row[inside], col[inside]), actions["split_ratio"].to_numpy()[inside])
    return np.cumprod(panel, axis=0)


def session_action_panels(
    actions: pd.DataFrame | None, sessions: pd.DatetimeIndex, tickers: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """(sessions × tickers) split ratio (1.0: none) and dividend (0.0: none) on each ex-date
    session; actions on days outside ``sessions`` or of other tickers are left out."""
    ratio = np.ones((len(sessions), len(tickers)))
    dividend = np.zeros((len(sessions), len(tickers)))
    actions = normalize_actions(actions)
    if actions.empty or len(sessions) == 0 or len(tickers) == 0:
        return ratio, dividend
    row = pd.DatetimeIndex(sessions).get_indexer(actions["session_date"])
    col = tickers.get_indexer(actions["ticker"])
    keep = (row >= 0) & (col >= 0)
    ratio[row[keep], col[keep]] = actions["split_ratio"].to_numpy()[keep]
    dividend[row[keep], col[keep]] = actions["dividend"].to_numpy()[keep]
    return ratio, dividend


@dataclass(frozen=True)
class SplitRoll:
    """Positions rolled across a split (arrays, one value per position)."""

    shares: np.ndarray  # whole shares after the split: floor(shares × ratio)
    fraction: np.ndarray  # the fractional shares left over, paid out as cash in lieu
    divisor: np.ndarray  # the ratio: entry, stop and target are divided by it


def roll_across_split(shares: np.ndarray, ratio: np.ndarray) -> SplitRoll:
    """Shares × ratio as whole shares and a fraction (a reverse split 1:10 turns 15 shares into 1
    share and 0.5 of a share in cash). Price levels are divided by ``ratio`` (``split_levels``)."""
    shares = np.asarray(shares, dtype="float64")
    ratio = np.asarray(ratio, dtype="float64")
    exact = shares * ratio
    whole = np.floor(exact + _WHOLE_SHARE_SLACK)
    return SplitRoll(
        shares=whole.astype("int64"), fraction=np.maximum(exact - whole, 0.0), divisor=ratio
    )


def split_levels(levels: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Price levels (entry, stop, target) in the units after a split of ``ratio``."""
    return np.asarray(levels, dtype="float64") / np.asarray(ratio, dtype="float64")


def dividend_cash(shares: np.ndarray, short: np.ndarray, dividend: np.ndarray) -> np.ndarray:
    """Cash each position gets on a dividend's ex-date: shares × dividend for a long, the negative
    for a short (the short seller owes the dividend to the lender of the shares)."""
    amount = np.asarray(shares, dtype="float64") * np.asarray(dividend, dtype="float64")
    return np.where(np.asarray(short, dtype=bool), -amount, amount)
