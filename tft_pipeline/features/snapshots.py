"""Point-in-time feature snapshots per ticker and session: mentions, sentiment, price technicals.

Pure, no Dagster. Every value for session D is computed only from rows with ``session_date <= D``
and only from a bounded window of history before D (at most ``LOOKBACK_SESSIONS`` sessions), so a
range computed in one call equals each session computed alone, whether that single call is given
the same frames or only ``LOOKBACK_SESSIONS`` of history before D (as a daily run is).

Price windows count the ticker's own bars (``clean.price_history`` holds one bar per session, so bars
are sessions unless a fetch failed). Mention windows count NYSE sessions: a session with no mention
of a ticker counts as 0 mentions.

Wilder smoothing (ATR, RSI) is ``ewm(alpha=1/14, adjust=False)``, which never forgets: on an
unbounded history the seed (the first value) keeps a weight of ``(13/14) ** n`` after n more bars,
about 5 % after 40 bars and 0.07 % after 99. So the value on D would depend on how far back the
caller happened to load prices, and a backfill would disagree with the daily runs. Here each Wilder
average at D is the ewm started ``WILDER_WINDOW - 1`` bars before D (or at the first bar there is,
when the history is shorter): a pure function of the last ``WILDER_WINDOW`` values, within about
0.07 % of the infinite-history value once the window is full.

Prices are read as traded (``clean.price_history``) and adjusted here with the corporate actions
(``clean.corporate_actions``, ``tft_pipeline.corporate_actions``); the vendor's ``adj_close`` is
not read. Returns, volatility and RSI use the total-return close (splits and dividends), ATR and
the volume z-score split-adjusted bars; all of them are ratios within a window, so one cumulative
basis for the whole frame gives each session D the values of its window adjusted to D. ``close``
and ``atr_14`` are levels: D's as-traded close and the ATR in D's as-traded units. Without actions
every value is the one computed from the as-traded bars.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from tft_pipeline.corporate_actions import adjustment_factors
from tft_pipeline.tables import empty_frame
from tft_pipeline.trading_calendar import NEW_YORK, nyse_calendar

TRAILING_WINDOW = 20  # sessions: mention momentum, ret_20, volatility_20, volume_z
WILDER_PERIOD = 14  # ATR(14) and RSI(14); alpha = 1 / period
WILDER_WINDOW = 100  # values per Wilder average: seed weight (13/14) ** 99 ~ 0.07 %
# Sessions of history before the first requested session the caller must pass for every value to be
# complete and stable: WILDER_WINDOW values of true range / close change need that many earlier bars.
LOOKBACK_SESSIONS = WILDER_WINDOW
MENTION_WEIGHT_FLOOR = 1.0  # weight of a mention with score <= 0: log1p(0) + 1
UNKNOWN_AUTHORS = ("[deleted]", "")  # and None: such a source counts as its own author

FEATURE_SNAPSHOT_COLUMNS: dict[str, str] = {
    "ticker": "object",
    "session_date": "datetime64[ns]",
    "close": "float64",
    "mentions": "int64",  # distinct (author, ticker) per session; an unknown author counts per source
    "mention_sentiment": "float64",  # mean sentiment weighted by log1p(max(score, 0)) + 1; 0.0 if none
    "mention_momentum": "float64",  # log((mentions + 1) / (mean over the 20 sessions before D + 1))
    "ret_1": "float64",  # tr_close[D] / tr_close[D - k] - 1 (total-return close: splits, dividends)
    "ret_5": "float64",
    "ret_20": "float64",
    "volatility_20": "float64",  # std (ddof=1) of the 20 daily log returns ending at D
    "atr_14": "float64",  # Wilder ATR(14) of split-adjusted high/low/close, in D's as-traded units
    "rsi_14": "float64",  # Wilder RSI(14) of the total-return close, 0..100 (50 when flat)
    "volume_z": "float64",  # split-adjusted (volume[D] - mean) / std (ddof=1) of the 20 bars before D
    # Distinct authors naming the ticker in D's window with bullish / bearish catalyst vocabulary.
    "catalyst_bullish": "int64",
    "catalyst_bearish": "int64",
}


_TECHNICAL_COLUMNS = (
    "close",
    "ret_1",
    "ret_5",
    "ret_20",
    "volatility_20",
    "volume_z",
    "atr_14",
    "rsi_14",
)


def _as_session_index(sessions: Sequence | pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Requested sessions as sorted, unique naive midnights; ValueError for a non-session."""
    stamps = pd.DatetimeIndex(pd.to_datetime(list(sessions)))
    if stamps.tz is not None:
        stamps = stamps.tz_convert(NEW_YORK).tz_localize(None)
    stamps = pd.DatetimeIndex(stamps.normalize().unique().sort_values(), name="session_date")
    stamps = stamps.astype("datetime64[ns]")
    not_sessions = stamps[~stamps.isin(nyse_calendar().sessions)]
    if len(not_sessions):
        listed = ", ".join(str(day.date()) for day in not_sessions[:5])
        raise ValueError(f"not NYSE trading sessions: {listed}")
    return stamps


def _normalized_universe(universe: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(symbol.strip().upper().lstrip("$") for symbol in universe))


def _trailing(values: np.ndarray, window: int) -> np.ndarray:
    """Row i holds ``values[i - window + 1 : i + 1]`` (NaN before the start): a read-only view."""
    padded = np.concatenate([np.full(window - 1, np.nan), values.astype("float64")])
    return sliding_window_view(padded, window)


def _wilder(
    values: pd.Series, tickers: pd.Series, bar_number: np.ndarray, *, first_valid_bar: int
) -> np.ndarray:
    """Wilder average (ewm alpha=1/14, adjust=False) of the last ``WILDER_WINDOW`` values per ticker.

    ``values`` is sorted by ticker then session and first defined at ``first_valid_bar`` of each
    ticker. NaN until ``WILDER_PERIOD`` values exist.
    """
    alpha = 1.0 / WILDER_PERIOD
    unbounded = (
        values.groupby(tickers, sort=False)
        .ewm(alpha=alpha, adjust=False)
        .mean()
        .reset_index(level=0, drop=True)
        .reindex(values.index)
    )
    # The ewm restarted at the window's first value s differs from the unbounded one by exactly
    # (1 - alpha) ** (p - s) * (x[s] - E[s]); subtracting it forgets everything before s.
    lag = WILDER_WINDOW - 1
    grouped = pd.DataFrame({"value": values, "unbounded": unbounded}).groupby(tickers, sort=False)
    window_start = grouped.shift(lag)
    correction = (1.0 - alpha) ** lag * (window_start["value"] - window_start["unbounded"])
    windowed = (unbounded + correction.fillna(0.0)).to_numpy()
    return np.where(bar_number >= first_valid_bar + WILDER_PERIOD - 1, windowed, np.nan)


def price_technicals(
    prices: pd.DataFrame,
    last_session: pd.Timestamp | None = None,
    actions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per (ticker, session_date) bar: close and the technical columns, from bars up to that session.

    ``prices`` are as-traded bars, ``actions`` the corporate actions (``clean.corporate_actions``;
    None or empty: none). Vectorized over all tickers at once: bars are sorted by ticker and
    session, windows that would reach into the previous ticker's bars are masked by each bar's
    number within its ticker.
    """
    columns = ["ticker", "session_date", "open", "high", "low", "close", "volume"]
    bars = prices[columns]
    if last_session is not None:
        bars = bars[bars["session_date"] <= last_session]
    bars = bars.sort_values(["ticker", "session_date"], kind="stable", ignore_index=True)
    duplicated = bars.duplicated(["ticker", "session_date"])
    if duplicated.any():
        first = bars.loc[duplicated, ["ticker", "session_date"]].iloc[0]
        raise ValueError(
            f"prices hold {int(duplicated.sum())} duplicate (ticker, session_date) bars, "
            f"e.g. {first['ticker']} {first['session_date'].date()}"
        )

    out = pd.DataFrame({"ticker": bars["ticker"], "session_date": bars["session_date"]})
    if bars.empty:
        return out.assign(**{name: pd.Series(dtype="float64") for name in _TECHNICAL_COLUMNS})

    tickers = bars["ticker"]
    bar_number = bars.groupby(tickers, sort=False).cumcount().to_numpy()
    # One cumulative basis for the frame (see the module docstring): exactly 1.0 without actions.
    factors = adjustment_factors(bars, actions)
    split = factors["split_factor"].to_numpy(dtype="float64")
    total = split / factors["dividend_factor"].to_numpy(dtype="float64")
    adjusted = pd.DataFrame(
        {
            "adj_close": bars["close"].astype("float64") * total,
            "close": bars["close"].astype("float64") * split,
        },
        index=bars.index,
    )
    by_ticker = adjusted.groupby(tickers, sort=False)
    adj_close = adjusted["adj_close"]
    high, low = bars["high"].astype("float64") * split, bars["low"].astype("float64") * split
    volume = bars["volume"].astype("float64").to_numpy() / split
    previous_adj_close = by_ticker["adj_close"].shift(1)
    previous_close = by_ticker["close"].shift(1)

    out["close"] = bars["close"].astype("float64")
    for lag in (1, 5, 20):
        out[f"ret_{lag}"] = adj_close / by_ticker["adj_close"].shift(lag) - 1.0

    window = TRAILING_WINDOW
    log_return = np.log(adj_close / previous_adj_close).to_numpy()
    # Each window is reduced from its own values (no running sums carried from earlier bars or
    # other tickers). Windows that reach past a ticker's first bar may hold NaN: they are masked.
    with np.errstate(divide="ignore", invalid="ignore"):
        volatility = np.std(_trailing(log_return, window), axis=1, ddof=1)
        # The volume window ends the bar before D: D's own volume is what is being scored.
        volume_window = _trailing(np.concatenate([[np.nan], volume[:-1]]), window)
        volume_mean = volume_window.mean(axis=1)
        volume_std = volume_window.std(axis=1, ddof=1)
        volume_z = (volume - volume_mean) / volume_std
    out["volatility_20"] = np.where(bar_number >= window, volatility, np.nan)
    out["volume_z"] = np.where((bar_number >= window) & (volume_std > 0), volume_z, np.nan)

    true_range = np.maximum(
        (high - low).to_numpy(),
        np.maximum(
            (high - previous_close).abs().to_numpy(), (low - previous_close).abs().to_numpy()
        ),
    )
    # The window's ATR in the frame's basis, as a level in D's as-traded units.
    out["atr_14"] = (
        _wilder(pd.Series(true_range, index=bars.index), tickers, bar_number, first_valid_bar=1)
        / split
    )

    change = adj_close - previous_adj_close
    average_gain = _wilder(change.clip(lower=0.0), tickers, bar_number, first_valid_bar=1)
    average_loss = _wilder((-change).clip(lower=0.0), tickers, bar_number, first_valid_bar=1)
    # Exact sums can come out a hair below 0 after the window correction.
    average_gain, average_loss = np.maximum(average_gain, 0.0), np.maximum(average_loss, 0.0)
    total = average_gain + average_loss
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = np.where(total > 0, 100.0 * average_gain / total, 50.0)
    out["rsi_14"] = np.where(np.isnan(total), np.nan, np.clip(rsi, 0.0, 100.0))
    return out


def _mention_grid_sessions(requested: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """NYSE sessions from ``TRAILING_WINDOW`` before the first requested session to the last one."""
    all_sessions = pd.DatetimeIndex(nyse_calendar().sessions).astype("datetime64[ns]")
    first = max(all_sessions.get_loc(requested[0]) - TRAILING_WINDOW, 0)
    last = all_sessions.get_loc(requested[-1])
    return pd.DatetimeIndex(all_sessions[first : last + 1], name="session_date")


def mention_features(
    mentions: pd.DataFrame, sessions: pd.DatetimeIndex, universe: Sequence[str]
) -> pd.DataFrame:
    """``mentions``, ``mention_sentiment``, ``mention_momentum``, ``catalyst_bullish`` and
    ``catalyst_bearish`` for every (ticker, session) of ``universe`` × ``sessions`` (dense: no
    mention means 0 mentions and sentiment 0.0).

    ``mentions`` and the catalyst counts count distinct authors, so one author repeating a ticker
    (or spamming the same news) cannot inflate them; the sentiment averages every mention row (each
    is a separate text with its own score). A mentions frame without a ``catalyst`` column (written
    before the catalyst vocabulary existed) counts no catalysts.
    ``sessions`` must be NYSE sessions; mentions of the ``TRAILING_WINDOW`` sessions before the
    first one are needed for the momentum.
    """
    grid = _mention_grid_sessions(sessions)
    tickers = pd.Index(_normalized_universe(universe))
    if "catalyst" not in mentions.columns:
        mentions = mentions.assign(catalyst=0)
    rows = mentions[
        [
            "source_id",
            "source_type",
            "ticker",
            "session_date",
            "author",
            "score",
            "sentiment",
            "catalyst",
        ]
    ]
    rows = rows[rows["ticker"].isin(tickers) & rows["session_date"].isin(grid)]

    author = rows["author"]
    unknown_author = author.isna() | author.isin(UNKNOWN_AUTHORS)
    author_key = author.astype(str).where(
        ~unknown_author,
        "\x00" + rows["source_type"].astype(str) + ":" + rows["source_id"].astype(str),
    )
    keyed = rows.assign(author_key=author_key)

    def distinct_author_counts(subset: pd.DataFrame) -> np.ndarray:
        per_key = (
            subset.drop_duplicates(["session_date", "ticker", "author_key"])
            .groupby(["session_date", "ticker"])
            .size()
        )
        return (
            per_key.unstack("ticker")
            .reindex(index=grid, columns=tickers)
            .fillna(0)
            .to_numpy(dtype="int64")
        )

    counts = distinct_author_counts(keyed)
    catalyst = keyed["catalyst"].fillna(0).to_numpy()
    bullish = distinct_author_counts(keyed[catalyst > 0])
    bearish = distinct_author_counts(keyed[catalyst < 0])

    weight = np.log1p(rows["score"].astype("float64").clip(lower=0.0)) + MENTION_WEIGHT_FLOOR
    weighted = (
        pd.DataFrame(
            {
                "session_date": rows["session_date"],
                "ticker": rows["ticker"],
                "weight": weight,
                "weighted_sentiment": weight * rows["sentiment"].astype("float64"),
            }
        )
        .groupby(["session_date", "ticker"])[["weight", "weighted_sentiment"]]
        .sum()
    )
    weight_sum = weighted["weight"].unstack("ticker").reindex(index=grid, columns=tickers)
    sentiment_sum = (
        weighted["weighted_sentiment"].unstack("ticker").reindex(index=grid, columns=tickers)
    )
    sentiment = (sentiment_sum / weight_sum).fillna(0.0).to_numpy(dtype="float64")

    # Integer running sums: the trailing mean is exact whatever history precedes the window.
    running = np.vstack([np.zeros((1, len(tickers)), dtype="int64"), np.cumsum(counts, axis=0)])
    grid_row = np.arange(len(grid))
    window_start = np.maximum(grid_row - TRAILING_WINDOW, 0)
    trailing_mean = (running[grid_row] - running[window_start]) / TRAILING_WINDOW
    momentum = np.log((counts + 1.0) / (trailing_mean + 1.0))

    wanted = grid.get_indexer(sessions)
    return pd.DataFrame(
        {
            "ticker": np.tile(tickers.to_numpy(dtype=object), len(wanted)),
            "session_date": np.repeat(grid[wanted].to_numpy(), len(tickers)),
            "mentions": counts[wanted].ravel(),
            "mention_sentiment": sentiment[wanted].ravel(),
            "mention_momentum": momentum[wanted].ravel(),
            "catalyst_bullish": bullish[wanted].ravel(),
            "catalyst_bearish": bearish[wanted].ravel(),
        }
    )


def build_feature_snapshots(
    mentions: pd.DataFrame,
    prices: pd.DataFrame,
    sessions: Sequence[dt.date | str | pd.Timestamp] | pd.DatetimeIndex,
    universe: Sequence[str],
    actions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``features.feature_snapshots`` for ``sessions``: one row per universe ticker with a bar that session.

    ``mentions`` has the ``features.ticker_mentions`` columns, ``prices`` the ``clean.price_history``
    ones (as traded), ``actions`` the ``clean.corporate_actions`` ones (None: no split, no
    dividend); pass ``LOOKBACK_SESSIONS`` sessions of them before the first requested session.
    Rows after the last requested session are ignored.
    """
    requested = _as_session_index(sessions)
    tickers = _normalized_universe(universe)
    if len(requested) == 0 or not tickers or prices.empty:
        return empty_frame(FEATURE_SNAPSHOT_COLUMNS)
    prices = prices.assign(ticker=prices["ticker"].astype(str).str.strip().str.upper())
    technicals = price_technicals(
        prices[prices["ticker"].isin(tickers)], last_session=requested[-1], actions=actions
    )
    technicals = technicals[technicals["session_date"].isin(requested)]
    if technicals.empty:
        return empty_frame(FEATURE_SNAPSHOT_COLUMNS)
    mention_columns = mention_features(mentions, requested, tickers)
    snapshots = technicals.merge(mention_columns, on=["ticker", "session_date"], how="left")
    snapshots = snapshots[list(FEATURE_SNAPSHOT_COLUMNS)].astype(FEATURE_SNAPSHOT_COLUMNS)
    return snapshots.sort_values(["session_date", "ticker"], kind="stable", ignore_index=True)
