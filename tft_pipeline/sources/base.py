"""The source interfaces every implementation (sample, live) fulfils (pure, no Dagster).

Assets only see these interfaces; which implementation runs is chosen once, from settings.
Frames follow the layouts in ``tft_pipeline.tables`` without ``session_date``: the caller assigns
each row to its session with ``tft_pipeline.trading_calendar``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tft_pipeline.tables import CORPORATE_ACTION_COLUMNS, empty_frame


@dataclass(frozen=True)
class RedditFetch:
    """Rows fetched for one time range, and whether the source could reach back far enough.

    ``complete`` is False when the source ran out of history before ``start_utc`` (Reddit serves
    about 1,000 items per listing), or could not fetch everything it chose to (a comment budget
    used up, a tree gone): the rows are still right, only fewer than existed. ``coverage`` holds
    the figures behind that, one mapping per subreddit (and session window, for comments).
    """

    frame: pd.DataFrame
    complete: bool = True
    notes: tuple[str, ...] = ()
    requests: int = 0
    coverage: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class PriceFetch:
    """Bars of every ticker that could be fetched, and one failure row per ticker that could not."""

    bars: pd.DataFrame
    failures: pd.DataFrame  # columns: ticker, error_type, message, attempts
    requests: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Splits and dividends with their ex-date on one of the requested sessions, columns of
    # CORPORATE_ACTION_COLUMNS; ``bars`` are as traded on their session (see PriceSource).
    actions: pd.DataFrame = field(default_factory=lambda: empty_frame(CORPORATE_ACTION_COLUMNS))
    # Of the failed tickers, those whose failure may be cured by asking again (rate limits, the
    # network, Yahoo's error pages); the others are permanent (unknown or delisted tickers).
    transient_failures: tuple[str, ...] = ()


class RedditSource(ABC):
    """Posts and comments of the configured subreddits created in ``[start_utc, end_utc)``."""

    @abstractmethod
    def fetch_posts(self, start_utc: pd.Timestamp, end_utc: pd.Timestamp) -> RedditFetch:
        """Posts created in the range, columns of ``RAW_POST_COLUMNS`` but ``session_date``."""

    @abstractmethod
    def fetch_comments(self, start_utc: pd.Timestamp, end_utc: pd.Timestamp) -> RedditFetch:
        """Comments created in the range, columns of ``RAW_COMMENT_COLUMNS`` but ``session_date``."""


class PriceSource(ABC):
    """Daily bars of ``tickers`` for ``sessions`` (all of a run's sessions in one call per ticker)."""

    @abstractmethod
    def fetch_prices(self, tickers: Sequence[str], sessions: pd.DatetimeIndex) -> PriceFetch:
        """Bars with the columns of ``RAW_PRICE_COLUMNS`` (``session_date`` is the bar's date).

        Bars are as traded on their session: not adjusted for splits or dividends that came
        after it, whenever they are fetched. ``PriceFetch.actions`` holds the splits and
        dividends whose ex-date is one of ``sessions``.
        """

    def fetch_batch(self, tickers: Sequence[str], sessions: pd.DatetimeIndex) -> PriceFetch:
        """``fetch_prices`` for one batch of a larger universe: failures are recorded, never judged.

        A fanned-out fetch (one Dagster step per ticker batch) judges the failures of the whole
        universe at once with ``check_failures``, after merging the batches; a batch never fails
        alone on its own share. Sources without a failure budget fetch as ``fetch_prices``.
        """
        return self.fetch_prices(tickers, sessions)

    def check_failures(self, fetch: PriceFetch, tickers_total: int) -> None:
        """Raise when ``fetch`` (of ``tickers_total`` tickers) failed too many (default: never)."""
