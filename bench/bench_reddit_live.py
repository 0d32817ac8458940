"""Benchmark of the live Reddit source: client-side cost of posts and comments against the loopback fake Reddit.

Real praw/prawcore run end to end (HTTP, JSON, praw's objects, our retry layer and mapping); only
Reddit is replaced by the fake on 127.0.0.1, so the figures are what the client costs, without the
internet's latency or Reddit's rate limits. Our rate limiter is off; at the default 1 request per
second a real walk of N pages takes at least N seconds on top. Also reported: the retry layer's
cost per listing step, and the attempt bound the module documents.
"""

from __future__ import annotations

import time

import pandas as pd

from tft_pipeline.sources.reddit_live import (
    MAX_HTTP_ATTEMPTS_PER_REQUEST,
    MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN,
    LiveRedditSource,
)
from tft_pipeline_tests.fakes.fake_reddit import FakeReddit

NEWEST = pd.Timestamp("2024-03-05 21:00")


def _posts(count: int) -> list[dict]:
    return [
        {
            "post_id": f"b{index:05d}",
            "subreddit": "wallstreetbets",
            "author": "bench",
            "title": f"title {index} $AAPL",
            "selftext": "text " * 20,
            "created_utc": NEWEST - pd.Timedelta(minutes=1 + index),
        }
        for index in range(count)
    ]


def _comments(post_count: int, per_post: int) -> list[dict]:
    return [
        {
            "comment_id": f"c{post:03d}{index:04d}",
            "post_id": f"b{post:05d}",
            "parent_id": None if index % 3 == 0 else f"t1_c{post:03d}{index - 1:04d}",
            "author": "bench",
            "body": "comment " * 10,
            "created_utc": NEWEST - pd.Timedelta(seconds=30 * (index + 1)),
        }
        for post in range(post_count)
        for index in range(per_post)
    ]


def _source(url: str, top_posts: int) -> LiveRedditSource:
    return LiveRedditSource(
        subreddits=["wallstreetbets"],
        client_id="bench-id",
        client_secret="bench-secret",
        user_agent="tft_pipeline bench (by u/tft_bench)",
        oauth_url=url,
        reddit_url=url,
        requests_per_second=None,
        top_posts_for_comments=top_posts,
        comment_lookback=pd.Timedelta(days=2),
    )


def run(quick: bool = False) -> dict[str, float | int | str]:
    """Walk a full listing, then fetch the comment trees of the busiest posts."""
    post_count = 300 if quick else 1000
    top_posts = 5 if quick else 25
    per_post = 40 if quick else 200
    start = NEWEST - pd.Timedelta(days=30)  # beyond the listing: the whole listing is walked
    with FakeReddit(_posts(post_count), _comments(top_posts, per_post)) as fake:
        source = _source(fake.url, top_posts)
        started = time.perf_counter()
        posts = source.fetch_posts(start, NEWEST)
        posts_seconds = time.perf_counter() - started
        listing_requests = fake.count(r"/new$")

        comment_start = NEWEST - pd.Timedelta(days=1)
        started = time.perf_counter()
        comments = source.fetch_comments(comment_start, NEWEST)
        comments_seconds = time.perf_counter() - started
        tree_requests = fake.count(r"^/comments/")
    if len(posts.frame) != post_count or len(comments.frame) != top_posts * per_post:
        raise RuntimeError("benchmark fetch incomplete")
    return {
        "posts": post_count,
        "listing_requests": listing_requests,
        "posts_seconds": round(posts_seconds, 3),
        "posts_per_second": round(post_count / posts_seconds),
        "ms_per_listing_page": round(1000 * posts_seconds / listing_requests, 2),
        "comment_trees": tree_requests,
        "comments": len(comments.frame),
        "comments_seconds": round(comments_seconds, 3),
        "ms_per_comment_tree": round(1000 * comments_seconds / tree_requests, 2),
        "comments_per_second": round(len(comments.frame) / comments_seconds),
        "max_http_attempts_per_request": MAX_HTTP_ATTEMPTS_PER_REQUEST,
        "max_http_attempts_per_request_per_run": MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN,
        "server": "fake Reddit on 127.0.0.1 (no network latency, rate limiter off)",
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
