"""The sample sources: the bundled deterministic market behind the RedditSource/PriceSource interfaces.

Offline and deterministic. An optional ``now`` makes them behave like a scraper running at that
instant: a session is served only once its first fetches are done (``FIRST_FETCH_LAG`` after its
close), and no row fetched after ``now`` (a late re-fetch) is served, so nothing from the future
ever appears.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tft_pipeline.sample_market import (
    DEFAULT_SEED,
    generate_price_history,
    generate_reddit_comments,
    generate_reddit_posts,
)
from tft_pipeline.sample_market.span import calendar_closes_ns, calendar_sessions
from tft_pipeline.sources.base import PriceFetch, PriceSource, RedditFetch, RedditSource
from tft_pipeline.tables import (
    CORPORATE_ACTION_COLUMNS,
    PRICE_FETCH_FAILURE_COLUMNS,
    RAW_COMMENT_COLUMNS,
    RAW_POST_COLUMNS,
    empty_frame,
)
from tft_pipeline.trading_calendar import to_utc

# The sample scrapers fetch a session's bars, posts and comments within this long after its close.
FIRST_FETCH_LAG = pd.Timedelta(minutes=10)


def _naive_ns(timestamp: pd.Timestamp) -> np.datetime64:
    """The instant as a naive UTC datetime64[ns], comparable with the frames' columns."""
    return np.datetime64(to_utc(timestamp).as_unit("ns").value, "ns")


def _known_at(frame: pd.DataFrame, now: pd.Timestamp | None) -> pd.DataFrame:
    """The rows of ``frame`` a scraper would have by ``now``: sessions first fetched, rows fetched."""
    if now is None:
        return frame
    now_ns = _naive_ns(now).astype(np.int64)
    ordinals = calendar_sessions().get_indexer(frame["session_date"])
    first_fetch_done = calendar_closes_ns()[ordinals] + FIRST_FETCH_LAG.value <= now_ns
    fetched = frame["fetched_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64) <= now_ns
    return frame[first_fetch_done & fetched]


class SampleRedditSource(RedditSource):
    """Posts and comments of the sample Reddit about ``tickers`` in ``subreddits``."""

    def __init__(
        self,
        tickers: Sequence[str],
        subreddits: Sequence[str],
        seed: int = DEFAULT_SEED,
        scale: float = 1.0,
        now: pd.Timestamp | None = None,
        dirt: bool = True,
    ) -> None:
        self.tickers = tuple(tickers)
        self.subreddits = tuple(subreddits)
        self.seed = seed
        self.scale = scale
        self.now = to_utc(now) if now is not None else None
        self.dirt = dirt

    def sessions_overlapping(
        self, start_utc: pd.Timestamp, end_utc: pd.Timestamp
    ) -> pd.DatetimeIndex:
        """Sessions whose Reddit window meets ``[start_utc, end_utc)`` (and has closed by ``now``)."""
        start_ns = _naive_ns(start_utc).astype(np.int64)
        end_ns = _naive_ns(end_utc).astype(np.int64)
        if self.now is not None:
            end_ns = min(end_ns, int(_naive_ns(self.now).astype(np.int64)))
        closes = calendar_closes_ns()
        # Window k is [close k-1, close k): it meets the range when close k > start and close k-1 < end.
        first = int(np.searchsorted(closes, start_ns, side="right"))
        last = int(np.searchsorted(closes, end_ns, side="left"))
        first = max(first, 1)  # the span's first session has no window
        last = min(last, len(closes) - 1)
        if end_ns <= start_ns or first > last:
            return pd.DatetimeIndex([], name="session_date")
        return calendar_sessions()[first : last + 1]

    def _fetch(self, generate, columns: dict[str, str], start_utc, end_utc) -> RedditFetch:
        sessions = self.sessions_overlapping(start_utc, end_utc)
        if len(sessions) == 0:
            frame = empty_frame(columns)
        else:
            frame = generate(
                sessions,
                self.tickers,
                self.subreddits,
                seed=self.seed,
                scale=self.scale,
                dirt=self.dirt,
            )
        created = frame["created_utc"].to_numpy()
        inside = (created >= _naive_ns(start_utc)) & (created < _naive_ns(end_utc))
        frame = _known_at(frame[inside], self.now)
        without_session = [name for name in columns if name != "session_date"]
        return RedditFetch(frame=frame[without_session].reset_index(drop=True), complete=True)

    def fetch_posts(self, start_utc: pd.Timestamp, end_utc: pd.Timestamp) -> RedditFetch:
        """Posts created in ``[start_utc, end_utc)``, as fetched (dirt included)."""
        return self._fetch(generate_reddit_posts, RAW_POST_COLUMNS, start_utc, end_utc)

    def fetch_comments(self, start_utc: pd.Timestamp, end_utc: pd.Timestamp) -> RedditFetch:
        """Comments created in ``[start_utc, end_utc)``, as fetched (dirt included)."""
        return self._fetch(generate_reddit_comments, RAW_COMMENT_COLUMNS, start_utc, end_utc)


class SamplePriceSource(PriceSource):
    """Daily bars of the sample market for any tickers, known or made up.

    ``scale`` only sizes the sample Reddit; it is accepted so both sample sources are configured
    alike. The sample market never fails a ticker: the failures frame is always empty.
    """

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        scale: float = 1.0,
        now: pd.Timestamp | None = None,
        dirt: bool = True,
    ) -> None:
        self.seed = seed
        self.scale = scale
        self.now = to_utc(now) if now is not None else None
        self.dirt = dirt

    def fetch_prices(self, tickers: Sequence[str], sessions: pd.DatetimeIndex) -> PriceFetch:
        """Bars of ``tickers`` on ``sessions`` (with ``now``: only what was fetched by then)."""
        sessions = pd.DatetimeIndex(sessions)
        if self.now is not None and len(sessions):
            # Sessions after now are not generated at all (they may lie beyond the span).
            closes = pd.Series(calendar_closes_ns(), index=calendar_sessions())
            session_closes = closes.reindex(sessions.normalize()).to_numpy()
            sessions = sessions[session_closes <= int(_naive_ns(self.now).astype(np.int64))]
        bars = generate_price_history(tickers, sessions, seed=self.seed, dirt=self.dirt)
        bars = _known_at(bars, self.now).reset_index(drop=True)
        failures = empty_frame(PRICE_FETCH_FAILURE_COLUMNS).drop(columns="session_date")
        # The sample market has no splits or dividends: its bars are as traded and final.
        actions = empty_frame(CORPORATE_ACTION_COLUMNS)
        return PriceFetch(bars=bars, failures=failures, requests=0, actions=actions)
