"""Resources: the Reddit and price source interfaces with a sample and a live implementation each,
and the warehouse. Assets only see ``RedditSourceResource`` / ``PriceSourceResource``;
``definitions.py`` picks the implementation from settings.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod

import numpy as np
import pandas as pd
from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from tft_pipeline.sources.base import PriceSource, RedditSource
from tft_pipeline.universe import Membership, members_during, membership_mask
from tft_pipeline.warehouse import Warehouse


class RedditSourceResource(ConfigurableResource, ABC):
    """Where Reddit posts and comments come from."""

    subreddits: list[str]

    @abstractmethod
    def build_source(self) -> RedditSource:
        """The pure source object that does the fetching."""


class SampleRedditResource(RedditSourceResource):
    """The bundled deterministic sample Reddit (offline)."""

    tickers: list[str]
    seed: int
    scale: float = 1.0

    def build_source(self) -> RedditSource:
        from tft_pipeline.sources.sample import SampleRedditSource

        return SampleRedditSource(
            tickers=tuple(self.tickers),
            subreddits=tuple(self.subreddits),
            seed=self.seed,
            scale=self.scale,
        )


class LiveRedditResource(RedditSourceResource):
    """Reddit through praw. Credentials are ``EnvVar``s: the UI shows their names, never values."""

    client_id: str = Field(description="REDDIT_CLIENT_ID")
    client_secret: str = Field(description="REDDIT_CLIENT_SECRET")
    user_agent: str = Field(description="REDDIT_USER_AGENT")
    username: str | None = None
    password: str | None = None
    oauth_url: str | None = None  # None: praw.ini or Reddit's
    reddit_url: str | None = None
    top_posts_for_comments: int = 25
    requests_per_second: float = 1.0
    more_comments_budget: int = 100  # expansions of "more comments" stubs per session
    new_listing_margin_hours: float = 24.0  # /new walked this far past the range start

    def build_source(self) -> RedditSource:
        import pandas as pd
        from pydantic import SecretStr

        from tft_pipeline.sources.reddit_live import LiveRedditSource

        return LiveRedditSource(
            client_id=self.client_id,
            client_secret=SecretStr(self.client_secret),
            user_agent=self.user_agent,
            username=self.username,
            password=SecretStr(self.password) if self.password else None,
            oauth_url=self.oauth_url,
            reddit_url=self.reddit_url,
            subreddits=tuple(self.subreddits),
            top_posts_for_comments=self.top_posts_for_comments,
            requests_per_second=self.requests_per_second,
            more_comments_budget=self.more_comments_budget,
            new_listing_margin=pd.Timedelta(hours=self.new_listing_margin_hours),
        )


class PriceSourceResource(ConfigurableResource, ABC):
    """Where daily price bars come from, and how many tickers one fetch step asks for."""

    batch_tickers: int = 100  # TFT_PRICE_BATCH_TICKERS

    @abstractmethod
    def build_source(self, concurrent_fetches: int = 1) -> PriceSource:
        """The pure source object that does the fetching.

        ``concurrent_fetches``: how many fetch steps may call the source at once (the price
        batches of a run, bounded by the ``yahoo_prices`` pool); a rate-limited source gives each
        its share of the one rate.
        """


class SamplePriceResource(PriceSourceResource):
    """The bundled deterministic sample market (offline)."""

    seed: int
    scale: float = 1.0

    def build_source(self, concurrent_fetches: int = 1) -> PriceSource:
        from tft_pipeline.sources.sample import SamplePriceSource

        return SamplePriceSource(seed=self.seed, scale=self.scale)


class LivePriceResource(PriceSourceResource):
    """Yahoo Finance through yfinance (no credentials needed)."""

    requests_per_second: float = 2.0  # TFT_PRICE_RPS: for all the fetch steps running at once
    max_failed_share: float = 0.2

    def build_source(self, concurrent_fetches: int = 1) -> PriceSource:
        from tft_pipeline.sources.prices_live import LivePriceSource

        if concurrent_fetches < 1:
            raise ValueError(f"concurrent_fetches must be at least 1, got {concurrent_fetches}")
        return LivePriceSource(
            requests_per_second=self.requests_per_second / concurrent_fetches,
            max_failed_share=self.max_failed_share,
        )


class UniverseResource(ConfigurableResource):
    """The tickers the pipeline follows (``TFT_TICKERS`` or ``TFT_UNIVERSE_FILE``).

    ``ranges`` holds the tickers whose membership is bounded, one ``TICKER|first|last`` entry per
    range (ISO dates, empty for open-ended); a ticker without an entry belongs on every session.
    """

    tickers: list[str]
    ranges: list[str] = Field(default_factory=list)

    def _ranges(self) -> dict[str, list[tuple[str | None, str | None]]]:
        parsed: dict[str, list[tuple[str | None, str | None]]] = {}
        for entry in self.ranges:
            ticker, first, last = entry.split("|")
            parsed.setdefault(ticker, []).append((first or None, last or None))
        return parsed

    def tickers_during(self, sessions: pd.DatetimeIndex) -> tuple[str, ...]:
        """The tickers that belong to the universe on at least one of ``sessions``."""
        ranges = self._ranges()
        bounded = [
            Membership(ticker, *(dt.date.fromisoformat(d) if d else None for d in pair))
            for ticker, pairs in ranges.items()
            for pair in pairs
        ]
        inside = set(members_during(bounded, sessions[0].date(), sessions[-1].date()))
        return tuple(t for t in self.tickers if t not in ranges or t in inside)

    def members(self, frame: pd.DataFrame) -> np.ndarray:
        """True for each row of ``frame`` (ticker, session_date) inside its ticker's membership."""
        return membership_mask(frame["ticker"], frame["session_date"], self._ranges())


class WarehouseResource(ConfigurableResource):
    """The DuckDB warehouse, for assets that read history beyond their own partitions."""

    path: str
    export_dir: str

    def warehouse(self) -> Warehouse:
        return Warehouse(self.path)


def live_reddit_credentials() -> dict[str, EnvVar]:
    """The credential fields of ``LiveRedditResource`` as environment references."""
    return {
        "client_id": EnvVar("REDDIT_CLIENT_ID"),
        "client_secret": EnvVar("REDDIT_CLIENT_SECRET"),
        "user_agent": EnvVar("REDDIT_USER_AGENT"),
    }
