"""Resources: the Reddit and price source interfaces with a sample and a live implementation each,
and the warehouse. Assets only see ``RedditSourceResource`` / ``PriceSourceResource``;
``definitions.py`` picks the implementation from settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from tft_pipeline.sources.base import PriceSource, RedditSource
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

    def build_source(self) -> RedditSource:
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
        )


class PriceSourceResource(ConfigurableResource, ABC):
    """Where daily price bars come from."""

    @abstractmethod
    def build_source(self) -> PriceSource:
        """The pure source object that does the fetching."""


class SamplePriceResource(PriceSourceResource):
    """The bundled deterministic sample market (offline)."""

    seed: int
    scale: float = 1.0

    def build_source(self) -> PriceSource:
        from tft_pipeline.sources.sample import SamplePriceSource

        return SamplePriceSource(seed=self.seed, scale=self.scale)


class LivePriceResource(PriceSourceResource):
    """Yahoo Finance through yfinance (no credentials needed)."""

    requests_per_second: float = 2.0
    max_failed_share: float = 0.2

    def build_source(self) -> PriceSource:
        from tft_pipeline.sources.prices_live import LivePriceSource

        return LivePriceSource(
            requests_per_second=self.requests_per_second,
            max_failed_share=self.max_failed_share,
        )


class UniverseResource(ConfigurableResource):
    """The tickers the pipeline follows (``TFT_TICKERS``)."""

    tickers: list[str]


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
