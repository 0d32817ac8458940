"""The live price source: daily bars from Yahoo Finance through yfinance (pure, no Dagster).

Request plan. One ``Ticker.history`` call per ticker covers every session of a run: a single-run
backfill of a year is one chart request per ticker, not 250. Per-ticker calls rather than
``yf.download`` of many tickers, because that is how a failure stays the failure of one ticker:
each call is retried on its own (429, 5xx pages, network errors) with ``YFINANCE_CONFIG`` and an
unknown ticker becomes one failure row while the others go on. ``yf.download`` makes the same one
chart request per ticker underneath (it calls ``Ticker.history`` per symbol: the chart endpoint
takes one), only with its own threads and its errors flattened into log lines.

What Yahoo sees per ticker and run, besides that one history request: yfinance probes the
exchange timezone once per ticker (``range=1d``; cached on disk by yfinance afterwards), and after
any answer of 400 or more it redoes its cookie handshake and asks once more by itself. Retries of
ours add one history request each; ``PriceFetch.requests`` counts our calls into yfinance.

Basis (issue 10). Yahoo's Open/High/Low/Close/Volume come split-adjusted as of the fetch (Adj
Close also dividend-adjusted), so the same session read in 2020 and in 2026 differs by every split
in between. This source returns every bar **as traded** on its session instead, whenever it is
fetched: prices × the product of the ratios of the splits with an ex-date after the bar's session
(up to the fetch), volume ÷ the same product. It can, because the one history request per ticker
runs from the run's first session **through the fetch date** (``keepna=True``, ``actions=True``):
every split Yahoo has applied to the bars is in the answer. A daily run fetching today's bar gets
a one-session answer and converts nothing; a backfill of 2020 made in 2026 gets six years of bars
in that same one request and keeps only the run's sessions. Dividends are converted likewise to
the as-traded units of their ex-date. ``adj_close`` is set to the as-traded close: Yahoo's Adj
Close depends on the fetch date, and adjusted series are derived downstream from the as-traded
bars and ``clean.corporate_actions``. The splits and dividends whose ex-date is one of the run's
sessions come back in ``PriceFetch.actions``.

A bar's session is its date on its exchange's own clock (what yfinance's index says), never a
conversion to New York time: that conversion put a Frankfurt bar stamped 00:00 Berlin on the
previous day. A bar Yahoo answers with null prices (a halted or missing session) is kept as a row
of nulls, so validation quarantines it with its reason instead of it disappearing.

yfinance is process-wide state (one ``YfData`` session, one config): this module sets
``yf.config.debug.hide_exceptions = False`` so errors raise instead of becoming log lines, and
clears yfinance's memo of past date ranges before each call, since a memoised 500 page would
otherwise answer every retry without asking Yahoo again.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yfinance as yf
from yfinance.data import YfData
from yfinance.exceptions import YFDataException

from tft_pipeline.retry import (
    YFINANCE_CONFIG,
    RateLimiter,
    RetryConfig,
    redact_secrets,
    retry_with_backoff,
    should_retry,
)
from tft_pipeline.sources.base import PriceFetch, PriceSource
from tft_pipeline.tables import (
    CORPORATE_ACTION_COLUMNS,
    PRICE_FETCH_FAILURE_COLUMNS,
    RAW_PRICE_COLUMNS,
    conform,
)
from tft_pipeline.trading_calendar import NEW_YORK

FAILURE_COLUMNS: dict[str, str] = {
    name: dtype for name, dtype in PRICE_FETCH_FAILURE_COLUMNS.items() if name != "session_date"
}
YAHOO_PRICE_COLUMNS: dict[str, str] = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}
PRICE_FIELDS = ("open", "high", "low", "close")
EMPTY_FRAME = "EmptyPriceFrame"


class PriceSourceError(RuntimeError):
    """Too many tickers could not be fetched for the run to go on.

    ``permanent`` is True when every failure is one that asking again will not cure (unknown or
    delisted tickers, empty answers); False when some ticker failed on rate limits or the network,
    so a later run may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        failed_tickers: tuple[str, ...],
        failed_share: float,
        permanent: bool,
        failures: pd.DataFrame | None = None,
    ) -> None:
        super().__init__(message)
        self.failed_tickers = failed_tickers
        self.failed_share = failed_share
        self.permanent = permanent
        self.failures = failures


class YahooUnavailableError(Exception):
    """Yahoo answered with a page that is not chart JSON: temporarily unavailable, worth retrying.

    That is how yfinance (exceptions shown) surfaces Yahoo's 5xx error pages and outage notices: a
    bare ``JSONDecodeError`` or a ``YFDataException`` that would otherwise read as permanent. The
    retry layer has no hook for a source's own types, so the message says "temporarily
    unavailable", a phrase ``should_retry`` reads as transient (pinned by a test).
    """


def as_retryable_yahoo_error(error: Exception) -> Exception:
    """The exception to hand the retry layer for ``error`` raised by ``Ticker.history``.

    ``should_retry`` already knows yfinance's and curl_cffi's own exceptions (429 and network
    errors retried; missing tickers not); only Yahoo's error pages need translating.
    """
    if isinstance(error, json.JSONDecodeError) or (
        isinstance(error, YFDataException) and "CURRENTLY DOWN" in str(error)
    ):
        return YahooUnavailableError(
            f"Yahoo Finance temporarily unavailable: answered with a non-JSON page "
            f"({type(error).__name__}: {error})"
        )
    return error


def exceeds_failure_budget(failed: int, total: int, max_failed_share: float) -> bool:
    """True when ``failed`` of ``total`` tickers is more than ``max_failed_share`` of them.

    Exactly the allowed share passes (1 of 5 with 0.2): division is correctly rounded, so a share
    equal to the decimal limit compares equal to it.
    """
    return total > 0 and failed / total > max_failed_share


@dataclass(frozen=True)
class _TickerOutcome:
    ticker: str
    bars: pd.DataFrame | None
    actions: pd.DataFrame | None
    error_type: str | None
    message: str | None
    attempts: int
    permanent: bool = True


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LivePriceSource(PriceSource):
    """Daily bars from Yahoo Finance: one ``Ticker.history`` call per ticker for a run's sessions.

    ``max_failed_share``: the share of tickers that may fail before the run fails with
    ``PriceSourceError`` (failing tickers are otherwise recorded in ``PriceFetch.failures``):
    ``fetch_prices`` applies it to its tickers; the Dagster layer fetches batches with
    ``fetch_batch`` and applies it to the merged universe with ``check_failures``.
    ``requests_per_second``: our calls into yfinance, across threads. ``max_workers`` > 1 fetches
    tickers concurrently (I/O-bound; keep it small, yfinance shares one session process-wide).
    ``clock``, ``sleep`` and ``rng`` are injected so tests need no real time.
    """

    def __init__(
        self,
        *,
        requests_per_second: float = 2.0,
        max_failed_share: float = 0.2,
        max_workers: int = 1,
        timeout_seconds: float = 10.0,
        retry_config: RetryConfig = YFINANCE_CONFIG,
        clock: Callable[[], dt.datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= max_failed_share <= 1.0:
            raise ValueError(f"max_failed_share must lie in [0, 1], got {max_failed_share}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_failed_share = max_failed_share
        self.max_workers = max_workers
        self.timeout_seconds = timeout_seconds
        self.retry_config = retry_config
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self._limiter = RateLimiter(requests_per_second, clock=monotonic, sleep=sleep)

    def fetch_prices(self, tickers: Sequence[str], sessions: pd.DatetimeIndex) -> PriceFetch:
        """Bars of every ticker on ``sessions``; raises ``PriceSourceError`` past the failure budget."""
        fetch = self.fetch_batch(tickers, sessions)
        self.check_failures(fetch, len(_symbols(tickers)))
        return fetch

    def fetch_batch(self, tickers: Sequence[str], sessions: pd.DatetimeIndex) -> PriceFetch:
        """Bars of every ticker of one batch on ``sessions``; failures recorded, never judged.

        The Dagster layer fetches a universe in batches (one step each) and judges the merged
        failures of the whole universe with ``check_failures``: 30 failures in a batch of 100 of
        a universe of 500 are 6 %, not 30 %.
        """
        symbols = _symbols(tickers)
        session_dates = pd.DatetimeIndex(sessions).normalize().unique().sort_values()
        if not symbols or session_dates.empty:
            return PriceFetch(
                bars=conform(pd.DataFrame(), RAW_PRICE_COLUMNS), failures=_failures([])
            )
        # Show errors as exceptions: by default yfinance logs them and returns an empty frame.
        yf.config.debug.hide_exceptions = False
        start = session_dates[0].date()
        # Through the fetch date, so every split Yahoo has applied to the bars is in the answer
        # (yfinance's end is exclusive). A daily run asks for the same one session as before.
        today = pd.Timestamp(self._clock()).tz_convert(NEW_YORK).date()
        end = max(session_dates[-1].date(), today) + dt.timedelta(days=1)

        def fetch(ticker: str) -> _TickerOutcome:
            return self._fetch_ticker(ticker, start, end, session_dates)

        if self.max_workers == 1 or len(symbols) == 1:
            outcomes = [fetch(ticker) for ticker in symbols]
        else:
            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                outcomes = list(pool.map(fetch, symbols))

        fetched = [outcome.bars for outcome in outcomes if outcome.bars is not None]
        bars = (
            conform(pd.concat(fetched, ignore_index=True), RAW_PRICE_COLUMNS, lenient=True)
            if fetched
            else (conform(pd.DataFrame(), RAW_PRICE_COLUMNS))
        )
        found = [o.actions for o in outcomes if o.actions is not None and len(o.actions)]
        actions = (
            conform(pd.concat(found, ignore_index=True), CORPORATE_ACTION_COLUMNS, lenient=True)
            if found
            else conform(pd.DataFrame(), CORPORATE_ACTION_COLUMNS)
        )
        failed = [outcome for outcome in outcomes if outcome.error_type is not None]
        failures = _failures(failed)
        notes = tuple(
            f"{outcome.ticker}: {outcome.error_type} after {outcome.attempts} attempt(s): {outcome.message}"
            if outcome.error_type is not None
            else f"{outcome.ticker}: fetched after {outcome.attempts} attempts"
            for outcome in outcomes
            if outcome.error_type is not None or outcome.attempts > 1
        )
        return PriceFetch(
            bars=bars,
            failures=failures,
            requests=sum(outcome.attempts for outcome in outcomes),
            notes=notes,
            actions=actions,
            transient_failures=tuple(o.ticker for o in failed if not o.permanent),
        )

    def check_failures(self, fetch: PriceFetch, tickers_total: int) -> None:
        """Raise ``PriceSourceError`` when more than ``max_failed_share`` of ``tickers_total``
        tickers failed in ``fetch`` (the whole universe's, batches merged)."""
        failures = fetch.failures
        if not exceeds_failure_budget(len(failures), tickers_total, self.max_failed_share):
            return
        share = len(failures) / tickers_total
        listed = ", ".join(
            f"{ticker} ({error_type})"
            for ticker, error_type in zip(failures["ticker"], failures["error_type"], strict=True)
        )
        transient = set(fetch.transient_failures)
        raise PriceSourceError(
            f"{len(failures)} of {tickers_total} tickers ({share:.0%}) could not be fetched from "
            f"Yahoo Finance, more than the allowed {self.max_failed_share:.0%}: {listed}",
            failed_tickers=tuple(failures["ticker"]),
            failed_share=share,
            permanent=not (transient & set(failures["ticker"])),
            failures=failures,
        )

    def _fetch_ticker(
        self, ticker: str, start: dt.date, end: dt.date, session_dates: pd.DatetimeIndex
    ) -> _TickerOutcome:
        attempts = 0

        def attempt() -> pd.DataFrame:
            nonlocal attempts
            attempts += 1
            self._limiter.wait_if_needed()
            # A memoised answer (yfinance keeps past ranges) would make a retry ask nobody.
            YfData.cache_get.cache_clear()
            try:
                history = yf.Ticker(ticker).history(
                    start=start,
                    end=end,
                    interval="1d",
                    auto_adjust=False,
                    actions=True,  # splits and dividends, to convert to and record as traded
                    keepna=True,  # a bar of nulls is kept, to be quarantined with its reason
                    timeout=self.timeout_seconds,
                )
            except Exception as error:
                translated = as_retryable_yahoo_error(error)
                if translated is error:
                    raise
                raise translated from error
            return history

        attempt.__qualname__ = f"yfinance history of {ticker}"  # names the call in retry logs
        retrying = retry_with_backoff(
            self.retry_config, sleep=self._sleep, clock=self._monotonic, rng=self._rng
        )(attempt)
        try:
            history = retrying()
        # Whatever stopped this ticker is recorded as its failure; the other tickers go on.
        except Exception as error:  # noqa: BLE001
            return _TickerOutcome(
                ticker,
                None,
                None,
                type(error).__name__,
                redact_secrets(str(error).split("\n")[0]) or type(error).__name__,
                attempts,
                permanent=not should_retry(error),
            )
        bars, actions = history_to_as_traded(history, ticker, self._clock(), session_dates)
        if bars.empty:
            message = (
                f"Yahoo returned no bars for {ticker} on the {len(session_dates)} requested "
                f"session(s) {session_dates[0].date()}..{session_dates[-1].date()}"
            )
            return _TickerOutcome(ticker, None, None, EMPTY_FRAME, message, attempts)
        return _TickerOutcome(ticker, bars, actions, None, None, attempts)


def history_to_raw_bars(
    history: pd.DataFrame,
    ticker: str,
    fetched_at: dt.datetime | pd.Timestamp,
    session_dates: pd.DatetimeIndex,
) -> pd.DataFrame:
    """The bars of ``history_to_as_traded`` alone."""
    return history_to_as_traded(history, ticker, fetched_at, session_dates)[0]


def exchange_dates(index: pd.Index) -> pd.DatetimeIndex:
    """Each bar's date on its exchange's clock: the wall-clock date of yfinance's index.

    yfinance stamps a daily bar at midnight in the exchange's timezone; converting that instant
    to New York time would move a European or Asian bar to the previous day.
    """
    dates = pd.DatetimeIndex(index)
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    return dates.normalize()


def split_factors(dates: pd.DatetimeIndex, split_dates: pd.DatetimeIndex, ratios) -> pd.Series:
    """For each of ``dates``: the product of the ``ratios`` of the splits dated after it.

    Multiplying a split-adjusted price by it gives the price as traded on that date; dividing a
    split-adjusted volume by it gives the shares traded.
    """
    order = np.argsort(split_dates.to_numpy())
    ordered_dates = split_dates.to_numpy()[order]
    ordered = np.asarray(ratios, dtype="float64")[order]
    # after[i]: product of ratios i.. (the splits from the i-th on), 1.0 past the last one.
    after = np.append(np.cumprod(ordered[::-1])[::-1], 1.0)
    first_later = np.searchsorted(ordered_dates, dates.to_numpy(), side="right")
    return pd.Series(after[first_later], index=dates)


def history_to_as_traded(
    history: pd.DataFrame,
    ticker: str,
    fetched_at: dt.datetime | pd.Timestamp,
    session_dates: pd.DatetimeIndex,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``Ticker.history(auto_adjust=False, actions=True, keepna=True)`` as as-traded rows.

    Returns the bars (``RAW_PRICE_COLUMNS``) and the splits and dividends
    (``CORPORATE_ACTION_COLUMNS``) on ``session_dates``. ``history`` must run through the fetch
    date, so that every split Yahoo applied to it is in it. A row of null prices carrying a split
    or dividend is yfinance's placeholder for an event without a bar, not a bar.
    """
    bars_empty = conform(pd.DataFrame(), RAW_PRICE_COLUMNS)
    actions_empty = conform(pd.DataFrame(), CORPORATE_ACTION_COLUMNS)
    if history.empty:
        return bars_empty, actions_empty
    dates = exchange_dates(history.index)
    frame = history.reset_index(drop=True)
    splits = _event_values(frame, "Stock Splits")
    dividends = _event_values(frame, "Dividends")
    # yfinance writes 0 for "no split"; a ratio that cannot be applied is recorded (validation
    # quarantines it) but not applied.
    is_split = (splits != 0) & ~np.isnan(splits)
    applicable = is_split & np.isfinite(splits) & (splits > 0) & (splits != 1.0)
    factors = split_factors(dates, dates[applicable], splits[applicable]).to_numpy()

    prices = frame.reindex(columns=list(YAHOO_PRICE_COLUMNS)).rename(columns=YAHOO_PRICE_COLUMNS)
    prices = prices.apply(pd.to_numeric, errors="coerce")
    no_prices = prices[list(PRICE_FIELDS)].isna().all(axis=1).to_numpy()
    has_event = is_split | ((dividends != 0) & ~np.isnan(dividends))
    is_bar = ~(no_prices & has_event)
    in_run = dates.isin(session_dates)

    bars = pd.DataFrame(
        {field: prices[field].to_numpy() * factors for field in PRICE_FIELDS},
    )
    bars["adj_close"] = bars["close"]  # as traded; adjusted series come from the actions
    bars["volume"] = prices["volume"].to_numpy() / factors
    bars["session_date"] = dates
    bars["ticker"] = ticker
    bars["fetched_at"] = pd.Timestamp(fetched_at)
    # Yahoo's values as given: a bad one becomes a null that validation quarantines.
    bars = conform(bars[is_bar & in_run], RAW_PRICE_COLUMNS, lenient=True)

    is_action = has_event & in_run
    actions = pd.DataFrame(
        {
            "ticker": ticker,
            "session_date": dates[is_action],
            "split_ratio": np.where(is_split, splits, 1.0)[is_action],
            # Yahoo's amount is in the units of the fetch date's shares: back to the ex-date's.
            "dividend": (np.nan_to_num(dividends, nan=0.0) * factors)[is_action],
            "fetched_at": pd.Timestamp(fetched_at),
        }
    )
    actions = (
        conform(actions, CORPORATE_ACTION_COLUMNS, lenient=True) if len(actions) else actions_empty
    )
    return bars, actions


def _event_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame))
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")


def _symbols(tickers: Sequence[str]) -> tuple[str, ...]:
    """The distinct tickers asked for, upper-cased, in order."""
    return tuple(dict.fromkeys(ticker.strip().upper() for ticker in tickers if ticker.strip()))


def _failures(failed: Sequence[_TickerOutcome]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "ticker": [outcome.ticker for outcome in failed],
            "error_type": [outcome.error_type for outcome in failed],
            "message": [outcome.message for outcome in failed],
            "attempts": [outcome.attempts for outcome in failed],
        }
    )
    return conform(frame, FAILURE_COLUMNS)
