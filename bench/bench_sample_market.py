"""Benchmark of tft_pipeline.sample_market: generation speed at scale 1 and at 500 tickers, scale 50,
and the size of its planted edges (the sentiment edge and the catalyst events)."""

from __future__ import annotations

import time

from tft_pipeline.sample_market import (
    catalyst_edge_summary,
    generate_price_history,
    generate_reddit_comments,
    generate_reddit_posts,
    planted_edge_summary,
)
from tft_pipeline.sample_market import catalysts as catalysts_module
from tft_pipeline.sample_market import prices as prices_module
from tft_pipeline.sample_market import reddit as reddit_module
from tft_pipeline.sample_market.span import calendar_sessions
from tft_pipeline.trading_calendar import sessions_between
from tft_pipeline.universe import CORE_UNIVERSE, synthetic_universe

SEED = 20240102
SUBREDDITS = ("wallstreetbets", "stocks", "investing")
LAST_SESSION = "2024-12-31"
# The catalyst edge is rare (0.4 % of ticker-sessions): measured over a long span of the default
# universe, the one the sample_market docstring quotes.
CATALYST_SPAN = ("2010-01-04", "2030-12-31")


def _clear_caches() -> None:
    # Every figure is measured cold: nothing simulated before the timer starts.
    prices_module.ticker_path.cache_clear()
    prices_module.ticker_profile.cache_clear()
    prices_module.market_path.cache_clear()
    catalysts_module.catalyst_path.cache_clear()
    reddit_module._session_chatter.cache_clear()
    reddit_module._session_catalyst_chatter.cache_clear()


def _last_sessions(count: int):
    sessions = sessions_between("2024-01-02", LAST_SESSION)
    return sessions[-count:]


def _generate(tickers, sessions, scale: float) -> dict[str, float | int]:
    """Cold generation of prices, posts and comments; seconds and row counts."""
    _clear_caches()
    started = time.perf_counter()
    bars = generate_price_history(tickers, sessions, seed=SEED)
    priced = time.perf_counter()
    posts = generate_reddit_posts(sessions, tickers, SUBREDDITS, seed=SEED, scale=scale)
    posted = time.perf_counter()
    comments = generate_reddit_comments(sessions, tickers, SUBREDDITS, seed=SEED, scale=scale)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "price_seconds": priced - started,
        "reddit_seconds": done - priced,
        "post_seconds": posted - priced,
        "bars": len(bars),
        "posts": len(posts),
        "comments": len(comments),
    }


def run(quick: bool = False) -> dict[str, float | int | str]:
    """Sessions/s, posts/s and comments/s at scale 1 (50 tickers) and at 500 tickers, scale 50."""
    figures: dict[str, float | int | str] = {}

    small_sessions = _last_sessions(20 if quick else 60)
    small = _generate(CORE_UNIVERSE, small_sessions, 1.0)
    figures["scale1_tickers"] = len(CORE_UNIVERSE)
    figures["scale1_sessions"] = len(small_sessions)
    figures["scale1_seconds"] = round(small["seconds"], 3)
    figures["scale1_sessions_per_s"] = round(len(small_sessions) / small["seconds"], 1)
    figures["scale1_posts_per_session"] = round(small["posts"] / len(small_sessions), 1)
    figures["scale1_comments_per_post"] = round(small["comments"] / small["posts"], 2)
    figures["scale1_posts_per_s"] = round(small["posts"] / small["post_seconds"], 0)
    figures["scale1_reddit_rows_per_s"] = round(
        (small["posts"] + small["comments"]) / small["reddit_seconds"], 0
    )

    big_tickers = synthetic_universe(500)
    big_sessions = _last_sessions(3 if quick else 20)
    big = _generate(big_tickers, big_sessions, 50.0)
    figures["scale50_tickers"] = len(big_tickers)
    figures["scale50_sessions"] = len(big_sessions)
    figures["scale50_seconds"] = round(big["seconds"], 3)
    figures["scale50_sessions_per_s"] = round(len(big_sessions) / big["seconds"], 2)
    # The one-off cost of simulating each ticker over the whole span (then cached).
    figures["scale50_price_path_ms_per_ticker"] = round(
        1000 * big["price_seconds"] / len(big_tickers), 2
    )
    figures["scale50_posts_per_session"] = round(big["posts"] / len(big_sessions), 0)
    figures["scale50_posts_per_s"] = round(big["posts"] / big["post_seconds"], 0)
    figures["scale50_reddit_rows_per_s"] = round(
        (big["posts"] + big["comments"]) / big["reddit_seconds"], 0
    )

    if not quick:
        edge = planted_edge_summary(CORE_UNIVERSE, calendar_sessions(), seed=SEED)
        figures["planted_edge_ic_1"] = round(edge["ic_1"], 4)
        figures["planted_edge_ic_5"] = round(edge["ic_5"], 4)
        figures["planted_edge_quintile_spread_5"] = round(edge["quintile_spread_5"], 5)

        started = time.perf_counter()
        catalyst = catalyst_edge_summary(CORE_UNIVERSE, sessions_between(*CATALYST_SPAN), SEED)
        figures["catalyst_summary_seconds"] = round(time.perf_counter() - started, 3)
        figures["catalyst_events"] = catalyst["events"]
        figures["catalyst_events_per_1000"] = round(catalyst["events_per_1000"], 3)
        for key in (
            "hit_rate",
            "hit_rate_bullish",
            "hit_rate_bearish",
            "base_hit_rate_long",
            "base_hit_rate_short",
            "mean_event_return_10",
            "event_session_return_t",
        ):
            figures[f"catalyst_{key}"] = round(catalyst[key], 4)
    return figures


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
