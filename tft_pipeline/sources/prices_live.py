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
from tft_pipeline.tables import PRICE_FETCH_FAILURE_COLUMNS, RAW_PRICE_COLUMNS, conform
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
    error_type: str | None
    message: str | None
    attempts: int
    permanent: bool = True


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LivePriceSource(PriceSource):
    """Daily bars from Yahoo Finance: one ``Ticker.history`` call per ticker for a run's sessions.

    ``max_failed_share``: the share of tickers that may fail before the run fails with
    ``PriceSourceError`` (failing tickers are otherwise recorded in ``PriceFetch.failures``).
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
        symbols = tuple(
            dict.fromkeys(ticker.strip().upper() for ticker in tickers if ticker.strip())
        )
        session_dates = pd.DatetimeIndex(sessions).normalize().unique().sort_values()
        if not symbols or session_dates.empty:
            return PriceFetch(
                bars=conform(pd.DataFrame(), RAW_PRICE_COLUMNS), failures=_failures([])
            )
        # Show errors as exceptions: by default yfinance logs them and returns an empty frame.
        yf.config.debug.hide_exceptions = False
        start = session_dates[0].date()
        end = (session_dates[-1] + pd.Timedelta(days=1)).date()  # yfinance's end is exclusive

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
        failed = [outcome for outcome in outcomes if outcome.error_type is not None]
        failures = _failures(failed)
        notes = tuple(
            f"{outcome.ticker}: {outcome.error_type} after {outcome.attempts} attempt(s): {outcome.message}"
            if outcome.error_type is not None
            else f"{outcome.ticker}: fetched after {outcome.attempts} attempts"
            for outcome in outcomes
            if outcome.error_type is not None or outcome.attempts > 1
        )
        if exceeds_failure_budget(len(failed), len(symbols), self.max_failed_share):
            share = len(failed) / len(symbols)
            listed = ", ".join(f"{outcome.ticker} ({outcome.error_type})" for outcome in failed)
            raise PriceSourceError(
                f"{len(failed)} of {len(symbols)} tickers ({share:.0%}) could not be fetched from "
                f"Yahoo Finance, more than the allowed {self.max_failed_share:.0%}: {listed}",
                failed_tickers=tuple(outcome.ticker for outcome in failed),
                failed_share=share,
                permanent=all(outcome.permanent for outcome in failed),
                failures=failures,
            )
        return PriceFetch(
            bars=bars,
            failures=failures,
            requests=sum(outcome.attempts for outcome in outcomes),
            notes=notes,
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
                    actions=False,
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
                type(error).__name__,
                redact_secrets(str(error).split("\n")[0]) or type(error).__name__,
                attempts,
                permanent=not should_retry(error),
            )
        bars = history_to_raw_bars(history, ticker, self._clock(), session_dates)
        if bars.empty:
            message = (
                f"Yahoo returned no bars for {ticker} on the {len(session_dates)} requested "
                f"session(s) {session_dates[0].date()}..{session_dates[-1].date()}"
            )
            return _TickerOutcome(ticker, None, EMPTY_FRAME, message, attempts)
        return _TickerOutcome(ticker, bars, None, None, attempts)


def history_to_raw_bars(
    history: pd.DataFrame,
    ticker: str,
    fetched_at: dt.datetime | pd.Timestamp,
    session_dates: pd.DatetimeIndex,
) -> pd.DataFrame:
    """``Ticker.history(auto_adjust=False)`` output as ``RAW_PRICE_COLUMNS`` rows on ``session_dates``.

    A bar's session is its date in New York; bars on other dates are dropped.
    """
    if history.empty:
        return conform(pd.DataFrame(), RAW_PRICE_COLUMNS)
    dates = pd.DatetimeIndex(history.index)
    if dates.tz is not None:
        dates = dates.tz_convert(NEW_YORK).tz_localize(None)
    frame = history.reindex(columns=list(YAHOO_PRICE_COLUMNS)).rename(columns=YAHOO_PRICE_COLUMNS)
    frame = frame.reset_index(drop=True)
    frame["session_date"] = dates.normalize()
    frame["ticker"] = ticker
    frame["fetched_at"] = pd.Timestamp(fetched_at)
    frame = frame[frame["session_date"].isin(session_dates)]
    # Yahoo's values as given: a bad one becomes a null that validation quarantines.
    return conform(frame, RAW_PRICE_COLUMNS, lenient=True)


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
