"""Tests of the live Reddit source: real praw/prawcore against the fake Reddit on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
import math
import re
import traceback

import pandas as pd
import prawcore.sessions
import pytest
from dagster import AssetKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tft_pipeline.retry import REDDIT_CONFIG, RetryConfig
from tft_pipeline.sources.limits import DAGSTER_SCRAPER_MAX_RETRIES
from tft_pipeline.sources.reddit_live import (
    COMMENT_COLUMNS,
    CREDENTIALS_MESSAGE,
    MAX_HTTP_ATTEMPTS_PER_REQUEST,
    MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN,
    MAX_TOKEN_REQUESTS_PER_REQUEST,
    OLDER_POSTS_TO_STOP,
    POST_COLUMNS,
    LiveRedditSource,
    RedditSourceError,
)
from tft_pipeline.trading_calendar import reddit_window, session_of_timestamps
from tft_pipeline_tests.fakes.fake_reddit import FakeReddit, Fault, closed_port_url

CLIENT_ID = "client-id-4f7a9c"
CLIENT_SECRET = "client-secret-value-8d21e3"
PASSWORD = "hunter2-password-value-55"
USER_AGENT = "tft_pipeline tests (by u/tft_tests)"
START = pd.Timestamp("2024-03-04 21:00")  # naive = UTC, like the pipeline's windows
END = pd.Timestamp("2024-03-05 21:00")
FETCHED_AT = pd.Timestamp("2024-03-06 09:30", tz="UTC")
LISTING = r"^/r/[^/]+/new$"


class FakeTime:
    """A clock that only moves when slept on; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class MidpointDraw:
    """Jitter draws at the middle of the band, so delays are the nominal 2, 4, 8 ... seconds."""

    def random(self) -> float:
        return 0.5


def _sessions():
    import datetime as dt

    from tft_pipeline.defs.partitions import trading_session_partitions

    return trading_session_partitions(dt.date(2024, 1, 2))


SESSIONS = _sessions()
REDDIT_KEYS = [AssetKey(["raw", "reddit_posts"]), AssetKey(["raw", "reddit_comments"])]


@pytest.fixture(autouse=True)
def no_prawcore_sleep(monkeypatch):
    """prawcore sleeps 0-2 s and 2-4 s between its own retries: not in tests."""
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds", lambda self: None)


def make_source(url: str, fake_time: FakeTime | None = None, **overrides) -> LiveRedditSource:
    fake_time = fake_time or FakeTime()
    arguments = {
        "subreddits": ["wallstreetbets"],
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "user_agent": USER_AGENT,
        "oauth_url": url,
        "reddit_url": url,
        "requests_per_second": None,
        "sleep": fake_time.sleep,
        "clock": fake_time.clock,
        "now": lambda: FETCHED_AT,
        "rng": MidpointDraw(),
        **overrides,
    }
    return LiveRedditSource(**arguments)


def post(post_id: str, created: pd.Timestamp | str, subreddit: str = "wallstreetbets", **fields):
    return {
        "post_id": post_id,
        "subreddit": subreddit,
        "author": fields.pop("author", "trader_joe"),
        "title": f"title {post_id}",
        "selftext": f"text {post_id}",
        "created_utc": pd.Timestamp(created),
        **fields,
    }


def comment(comment_id: str, post_id: str, created: pd.Timestamp | str, **fields):
    return {
        "comment_id": comment_id,
        "post_id": post_id,
        "author": fields.pop("author", "commenter"),
        "body": f"body {comment_id}",
        "created_utc": pd.Timestamp(created),
        **fields,
    }


def minutes_before(stamp: pd.Timestamp, minutes: int) -> pd.Timestamp:
    return stamp - pd.Timedelta(minutes=minutes)


def hourly_posts(count: int, newest: pd.Timestamp = END) -> list[dict]:
    """``count`` posts one hour apart, the newest one minute before ``newest``."""
    return [
        post(f"h{index:04d}", newest - pd.Timedelta(minutes=1 + 60 * index))
        for index in range(count)
    ]


# --- posts -----------------------------------------------------------------------------------------


def test_posts_are_exactly_those_created_in_the_window_with_the_raw_layout():
    one_second = pd.Timedelta(seconds=1)
    posts = [
        post("before", START - one_second),
        post("atstart", START, score=12, num_comments=3, url="https://example.com/a"),
        post("inside", START + one_second, author=None),
        post("lastin", END - one_second),
        post("atend", END),
        post("after", END + one_second),
        post("other", START + pd.Timedelta(hours=1), subreddit="stocks"),
        post("old_other", START - pd.Timedelta(days=3), subreddit="stocks"),
    ]
    with FakeReddit(posts) as fake:
        source = make_source(fake.url, subreddits=["wallstreetbets", "r/stocks"])
        fetch = source.fetch_posts(START, END)

    frame = fetch.frame.set_index("post_id")
    assert set(frame.index) == {"atstart", "inside", "lastin", "other"}
    assert list(fetch.frame.columns) == list(POST_COLUMNS)
    assert {name: str(dtype) for name, dtype in fetch.frame.dtypes.items()} == POST_COLUMNS
    assert fetch.complete and fetch.notes == ()
    first = frame.loc["atstart"]
    assert first["created_utc"] == START  # naive UTC
    assert (first["subreddit"], first["author"], first["title"]) == (
        "wallstreetbets",
        "trader_joe",
        "title atstart",
    )
    assert (first["score"], first["num_comments"], first["url"]) == (
        12.0,
        3.0,
        "https://example.com/a",
    )
    assert frame.loc["inside", "author"] is None  # a deleted author
    assert frame.loc["other", "subreddit"] == "stocks"
    assert (fetch.frame["fetched_at"] == FETCHED_AT.tz_localize(None)).all()
    # Every HTTP request counted: one token, one listing page per subreddit.
    assert fetch.requests == len(fake.requests) == 3


def test_paging_stops_at_the_first_post_older_than_the_range():
    # 1,000 hourly posts; the range holds the newest 150, so the walk needs two pages of 100.
    posts = hourly_posts(1000)
    start = END - pd.Timedelta(hours=150)
    with FakeReddit(posts) as fake:
        fetch = make_source(fake.url).fetch_posts(start, END)
        listing_requests = fake.count(LISTING)

    assert len(fetch.frame) == 150
    assert fetch.complete
    assert listing_requests == 2


def test_partial_coverage_when_the_listing_cap_is_reached():
    posts = hourly_posts(400)
    with FakeReddit(posts, listing_cap=250) as fake:
        fetch = make_source(fake.url).fetch_posts(END - pd.Timedelta(days=30), END)
        listing_requests = fake.count(LISTING)

    oldest_served = END - pd.Timedelta(minutes=1 + 60 * 249)
    assert len(fetch.frame) == 250
    assert fetch.frame["created_utc"].min() == oldest_served
    assert not fetch.complete
    assert fetch.notes == (
        (
            f"r/wallstreetbets: listing ended at {oldest_served:%Y-%m-%dT%H:%MZ} before the range "
            f"start {END - pd.Timedelta(days=30):%Y-%m-%dT%H:%MZ}; older posts are not served by "
            "Reddit"
        ),
    )
    assert listing_requests == 3


def test_fetched_frames_seed_a_fake_that_serves_the_same_rows_again():
    posts = [post(f"r{index}", START + pd.Timedelta(minutes=7 * index)) for index in range(30)]
    posts.append(post("older", START - pd.Timedelta(days=3)))
    comments = [
        comment(f"k{index}", f"r{index % 5}", START + pd.Timedelta(minutes=40 + index))
        for index in range(12)
    ]
    with FakeReddit(posts, comments) as fake:
        source = make_source(fake.url)
        first_posts, first_comments = (
            source.fetch_posts(START, END),
            source.fetch_comments(START, END),
        )
    # The raw frames themselves (DataFrames, naive UTC timestamps) seed a new fake.
    seed_posts = pd.concat(
        [first_posts.frame, pd.DataFrame([post("older", START - pd.Timedelta(days=3))])]
    )
    with FakeReddit(seed_posts, first_comments.frame) as fake:
        source = make_source(fake.url)
        again_posts, again_comments = (
            source.fetch_posts(START, END),
            source.fetch_comments(START, END),
        )
    pd.testing.assert_frame_equal(again_posts.frame, first_posts.frame)
    pd.testing.assert_frame_equal(again_comments.frame, first_comments.frame)
    assert len(first_posts.frame) == 30 and len(first_comments.frame) == 12


def test_an_empty_subreddit_is_partial_coverage_not_an_error():
    with FakeReddit([], subreddits=["quiet"]) as fake:
        fetch = make_source(fake.url, subreddits=["quiet"]).fetch_posts(START, END)
    assert fetch.frame.empty and list(fetch.frame.columns) == list(POST_COLUMNS)
    assert not fetch.complete
    assert fetch.notes[0].startswith("r/quiet: listing is empty before the range start")


# A listing with ties on the second and irregular gaps: the walk must agree with a brute-force filter
# and never ask for a page it does not need.
_LISTING_TIMES = sorted(
    {START + pd.Timedelta(seconds=(index * 7919) % 200_000) for index in range(260)}
    | {START, START + pd.Timedelta(seconds=1)}
)
_LISTING_POSTS = [post(f"q{index:04d}", created) for index, created in enumerate(_LISTING_TIMES)]
_LISTING_POSTS += [post("q9998", START), post("q9999", START)]  # same second as another post


@pytest.fixture(scope="module")
def listing_fake():
    with FakeReddit(_LISTING_POSTS) as fake:
        yield fake


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start_offset=st.integers(min_value=-3_000, max_value=205_000),
    length=st.integers(min_value=0, max_value=120_000),
    margin_seconds=st.sampled_from([0, 1, 3_600, 86_400]),
)
def test_the_walk_matches_a_brute_force_filter_and_fetches_only_needed_pages(
    listing_fake, start_offset, length, margin_seconds
):
    start = START + pd.Timedelta(seconds=start_offset)
    end = start + pd.Timedelta(seconds=length)
    margin = pd.Timedelta(seconds=margin_seconds)
    before = listing_fake.count(LISTING)
    fetch = make_source(listing_fake.url, new_listing_margin=margin).fetch_posts(start, end)
    pages = listing_fake.count(LISTING) - before

    created = pd.Series({item["post_id"]: item["created_utc"] for item in _LISTING_POSTS})
    expected = set(created[(created >= start) & (created < end)].index)
    assert set(fetch.frame["post_id"]) == expected
    reaching_start = int((created >= start).sum())
    # Up to and including the run of OLDER_POSTS_TO_STOP posts older than start - margin.
    needed = min(int((created >= start - margin).sum()) + OLDER_POSTS_TO_STOP, len(created))
    assert pages == max(1, math.ceil(needed / 100))
    assert fetch.complete == (reaching_start < len(created))


# --- comments --------------------------------------------------------------------------------------


def test_comments_of_the_busiest_posts_are_fetched_and_filtered_to_the_window():
    posts = [
        post("busy", START - pd.Timedelta(hours=20)),  # before the range, within the lookback
        post("busier", START + pd.Timedelta(hours=1)),
        post("quiet", START + pd.Timedelta(hours=2)),  # only one comment: not in the top 2
        post("ancient", START - pd.Timedelta(days=5)),  # beyond the lookback
    ]
    comments = [
        comment("b1", "busy", START - pd.Timedelta(minutes=5)),
        comment("b2", "busy", START),
        comment("b3", "busy", START + pd.Timedelta(hours=3), parent_id="t1_b2"),
        comment("b4", "busy", END, parent_id="t1_b3"),
        comment("r1", "busier", START + pd.Timedelta(hours=2), author=None),
        comment("r2", "busier", START + pd.Timedelta(hours=4)),
        comment("r3", "busier", END - pd.Timedelta(seconds=1), parent_id="t1_r2"),
        comment("q1", "quiet", START + pd.Timedelta(hours=3)),
        comment("a1", "ancient", START + pd.Timedelta(hours=1)),
        comment("a2", "ancient", START + pd.Timedelta(hours=2)),
        comment("a3", "ancient", START + pd.Timedelta(hours=3)),
        comment("a4", "ancient", START + pd.Timedelta(hours=4)),
    ]
    with FakeReddit(posts, comments, more_stub_posts=["busier"]) as fake:
        source = make_source(
            fake.url,
            top_posts_for_comments=2,
            comment_lookback=pd.Timedelta(days=1),
            more_comments_budget=0,
        )
        fetch = source.fetch_comments(START, END)
        tree_requests = sorted(
            record.path for record in fake.requests if record.path.startswith("/comments")
        )
        more_requests = fake.count("morechildren")

    frame = fetch.frame.set_index("comment_id")
    assert set(frame.index) == {"b2", "b3", "r1", "r2", "r3"}  # nested replies included
    assert list(fetch.frame.columns) == list(COMMENT_COLUMNS)
    assert {name: str(dtype) for name, dtype in fetch.frame.dtypes.items()} == COMMENT_COLUMNS
    assert frame.loc["b3", "post_id"] == "busy" and frame.loc["b3", "subreddit"] == "wallstreetbets"
    assert frame.loc["b2", "created_utc"] == START
    assert frame.loc["r1", "author"] is None
    assert (fetch.frame["fetched_at"] == FETCHED_AT.tz_localize(None)).all()
    assert tree_requests == ["/comments/busier/", "/comments/busy/"]
    assert more_requests == 0  # no budget: the stub is not expanded ...
    assert not fetch.complete  # ... and the coverage says so
    assert fetch.notes == (
        (
            "2024-03-04T21:00Z..2024-03-05T21:00Z: the budget of 0 'more comments' requests per "
            "session ran out with 1 stubs left (at least 7 comments not fetched)"
        ),
    )
    assert [
        (c["trees"], c["comments_reported"], c["comments_fetched"]) for c in fetch.coverage
    ] == [(2, 7, 7)]


def test_a_post_whose_comments_vanished_is_skipped_with_a_note():
    posts = [
        post("gone", START + pd.Timedelta(hours=1)),
        post("here", START + pd.Timedelta(hours=2)),
    ]
    comments = [
        comment("g1", "gone", START + pd.Timedelta(hours=2)),
        comment("g2", "gone", START + pd.Timedelta(hours=2)),
        comment("h1", "here", START + pd.Timedelta(hours=3)),
    ]
    with FakeReddit(posts, comments) as fake:
        fake.script(r"^/comments/gone/?$", [Fault.not_found()])
        fetch = make_source(fake.url).fetch_comments(START, END)
    assert list(fetch.frame["comment_id"]) == ["h1"]
    assert not fetch.complete
    assert fetch.notes[-1] == "r/wallstreetbets: comments of post gone unavailable (404)"


# --- transient failures ----------------------------------------------------------------------------


def test_429_waits_exactly_the_retry_after_the_server_asked_for():
    fake_time = FakeTime()
    with FakeReddit(hourly_posts(3)) as fake:
        fake.script(LISTING, [Fault.too_many_requests(retry_after=7)])
        fetch = make_source(fake.url, fake_time).fetch_posts(START, END)
        listing_requests = fake.count(LISTING)
    assert len(fetch.frame) == 3
    assert fake_time.sleeps == [7.0]  # not the 2 s the backoff would have chosen
    assert listing_requests == 2  # prawcore does not retry a 429; our layer did, once


@pytest.mark.parametrize("failures", [1, 2, 3, 4, 7])
def test_503s_are_retried_by_prawcore_then_by_us_until_success(failures):
    fake_time = FakeTime()
    with FakeReddit(hourly_posts(3)) as fake:
        fake.script(LISTING, [Fault.server_error(503)] * failures)
        fetch = make_source(fake.url, fake_time).fetch_posts(START, END)
        listing_requests = fake.count(LISTING)
    assert len(fetch.frame) == 3
    assert listing_requests == failures + 1
    # prawcore absorbs up to 3 failures per call; each call it gives up on costs one backoff of ours.
    assert fake_time.sleeps == [2.0 * 2**index for index in range(failures // 3)]


def test_on_retry_hears_each_backoff_but_not_the_rate_limiters_waits():
    fake_time = FakeTime()
    events = []
    with FakeReddit(hourly_posts(3)) as fake:
        fake.script(LISTING, [Fault.server_error(503)] * 6)
        make_source(
            fake.url, fake_time, requests_per_second=10.0, on_retry=events.append
        ).fetch_posts(START, END)
        total_requests = len(fake.requests)
    assert [(event.attempt, event.delay, event.status) for event in events] == [
        (1, 2.0, 503),
        (2, 4.0, 503),
    ]
    # Each request waited its 0.1 s slot, except the first and those right after a backoff (their
    # slot had already passed); the fake clock moves only when slept on.
    pacing = [seconds for seconds in fake_time.sleeps if seconds not in (2.0, 4.0)]
    assert pacing == pytest.approx([0.1] * (total_requests - 1 - len(events)))
    assert sum(fake_time.sleeps) == pytest.approx(2.0 + 4.0 + 0.1 * len(pacing))


def test_connection_refused_is_retried_then_fails_with_a_clear_message():
    fake_time = FakeTime()
    source = make_source(closed_port_url(), fake_time)
    with pytest.raises(RedditSourceError) as raised:
        source.fetch_posts(START, END)
    error = raised.value
    assert not error.permanent
    assert error.attempts == REDDIT_CONFIG.max_attempts == 6
    assert "could not connect to Reddit (ConnectionError)" in str(error)
    assert "r/wallstreetbets" in str(error) and "6 times" in str(error)
    assert fake_time.sleeps == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert source.http_requests == MAX_HTTP_ATTEMPTS_PER_REQUEST  # 3 by prawcore x 6 by us


def test_read_timeouts_are_retried_then_fail_with_a_clear_message():
    config = RetryConfig(max_retries=1, base_delay=2.0, max_delay=120.0)
    fake_time = FakeTime()
    with FakeReddit(hourly_posts(3)) as fake:
        fake.script(LISTING, [Fault.slow(2.0)] * 10)
        source = make_source(fake.url, fake_time, timeout_seconds=0.05, retry_config=config)
        with pytest.raises(RedditSourceError) as raised:
            source.fetch_posts(START, END)
        listing_requests = fake.count(LISTING)
    assert not raised.value.permanent
    assert "Reddit did not answer in time (ReadTimeout)" in str(raised.value)
    assert listing_requests == 3 * config.max_attempts
    assert fake_time.sleeps == [2.0]


def test_without_timeout_seconds_prawcores_own_timeout_applies(monkeypatch):
    # PRAWCORE_TIMEOUT is read once at import into Session.request's default argument.
    monkeypatch.setitem(prawcore.sessions.Session.request.__kwdefaults__, "timeout", 0.05)
    with FakeReddit(hourly_posts(3)) as fake:
        fake.script(LISTING, [Fault.slow(2.0)])
        fetch = make_source(fake.url).fetch_posts(START, END)
        listing_requests = fake.count(LISTING)
    assert len(fetch.frame) == 3
    assert listing_requests == 2  # the slow answer timed out and prawcore asked again


def test_a_dropped_connection_is_retried():
    with FakeReddit(hourly_posts(3)) as fake:
        fake.script(LISTING, [Fault.dropped()])
        fetch = make_source(fake.url).fetch_posts(START, END)
    assert len(fetch.frame) == 3


# --- permanent failures ----------------------------------------------------------------------------

PERMANENT_CASES = {
    # name: (faults on the listing, faults on the token endpoint, message, API calls, token calls)
    "401 invalid_token": ([Fault.unauthorized(True)] * 3, [], CREDENTIALS_MESSAGE, 3, 3),
    "401 bare (KeyError)": ([Fault.unauthorized(False)] * 3, [], CREDENTIALS_MESSAGE, 3, 3),
    "token 401": ([], [Fault(status=401)], CREDENTIALS_MESSAGE, 0, 1),
    "token OAuthException": ([], [Fault.oauth_error()], CREDENTIALS_MESSAGE, 0, 1),
    "403": (
        [Fault.forbidden()],
        [],
        (
            "Reddit refused access (403) to r/wallstreetbets: the subreddit is private or the "
            "app lacks the scope"
        ),
        1,
        1,
    ),
    "404": ([Fault.not_found()], [], "r/wallstreetbets does not exist (404)", 1, 1),
    "302 to search": (
        [Fault.redirect_to_search()],
        [],
        "r/wallstreetbets does not exist (404)",
        1,
        1,
    ),
}


@pytest.mark.parametrize("case", list(PERMANENT_CASES))
def test_permanent_failures_stop_after_one_attempt_with_a_clear_message(case):
    listing_faults, token_faults, message, api_calls, token_calls = PERMANENT_CASES[case]
    fake_time = FakeTime()
    with FakeReddit(hourly_posts(3)) as fake:
        fake.script(LISTING, listing_faults)
        fake.script(r"^/api/v1/access_token$", token_faults)
        with pytest.raises(RedditSourceError) as raised:
            make_source(fake.url, fake_time).fetch_posts(START, END)
        seen = (fake.count(LISTING), fake.token_requests())
    assert str(raised.value) == message
    assert raised.value.permanent
    assert raised.value.attempts == 1
    assert fake_time.sleeps == []
    assert seen == (api_calls, token_calls)  # prawcore's own handling, measured at the server


def test_wrong_client_secret_is_rejected_at_the_token_endpoint():
    with FakeReddit(hourly_posts(3), client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as fake:
        with pytest.raises(RedditSourceError, match=r"rejected the credentials \(401\)"):
            make_source(fake.url, client_secret="not-the-secret").fetch_posts(START, END)
        assert len(make_source(fake.url).fetch_posts(START, END).frame) == 3


@pytest.mark.parametrize(
    ("fake_arguments", "message"),
    [
        (
            {"private_subreddits": ["secretclub"], "subreddits": ["secretclub"]},
            "Reddit refused access (403) to r/secretclub",
        ),
        ({}, "r/secretclub does not exist (404)"),
    ],
)
def test_private_and_missing_subreddits_as_reddit_answers_them(fake_arguments, message):
    with (
        FakeReddit(hourly_posts(2), **fake_arguments) as fake,
        pytest.raises(RedditSourceError, match=re.escape(message)) as raised,
    ):
        make_source(fake.url, subreddits=["wallstreetbets", "secretclub"]).fetch_posts(START, END)
    assert raised.value.permanent and raised.value.subreddit == "secretclub"


# --- the attempt bound -----------------------------------------------------------------------------


def test_the_documented_bound_is_prawcores_attempts_times_ours_times_dagsters():
    assert MAX_HTTP_ATTEMPTS_PER_REQUEST == 3 * REDDIT_CONFIG.max_attempts == 18
    assert MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN == 18 * (DAGSTER_SCRAPER_MAX_RETRIES + 1) == 54


TOKEN = r"^/api/v1/access_token$"
FAULT_SEQUENCES = {
    "503 forever (the bound is reached)": [Fault.server_error(503)] * 40,
    "502/504/500 mixed forever": [Fault.server_error(s) for s in (502, 504, 500, 520, 522)] * 8,
    "429 forever": [Fault.too_many_requests(retry_after=1)] * 40,
    "429 without Retry-After forever": [Fault.too_many_requests(retry_after=None)] * 40,
    "dropped connections forever": [Fault.dropped()] * 40,
    "401 then 503s": [Fault.unauthorized(True)] + [Fault.server_error(503)] * 40,
    "503, 401, 503 ...": [Fault.server_error(503), Fault.unauthorized(True)] * 20,
    "bare 401 then 503s": [Fault.unauthorized(False), Fault.unauthorized(False)]
    + [Fault.server_error(503)] * 40,
    "429 and 503 alternating": [Fault.too_many_requests(1), Fault.server_error(503)] * 20,
    "403 after 503s": [Fault.server_error(503)] * 5 + [Fault.forbidden()],
}
TOKEN_FAULT_SEQUENCES = {
    "token 500 forever": [Fault.server_error(500)] * 40,
    "token connection dropped forever (the bound is reached)": [Fault.dropped()] * 40,
    "token 429 forever": [Fault.too_many_requests(1)] * 40,
}


@pytest.mark.parametrize(
    ("pattern", "sequence"),
    [(LISTING, name) for name in FAULT_SEQUENCES]
    + [(TOKEN, name) for name in TOKEN_FAULT_SEQUENCES],
)
def test_no_fault_sequence_makes_more_attempts_than_the_bound(pattern, sequence):
    faults = {**FAULT_SEQUENCES, **TOKEN_FAULT_SEQUENCES}[sequence]
    with FakeReddit(hourly_posts(3)) as fake:
        fake.script(pattern, faults)
        with pytest.raises(RedditSourceError):
            make_source(fake.url).fetch_posts(START, END)
        api_calls, token_calls = fake.count(LISTING), fake.token_requests()
    assert api_calls <= MAX_HTTP_ATTEMPTS_PER_REQUEST
    assert token_calls <= MAX_TOKEN_REQUESTS_PER_REQUEST
    if pattern == LISTING:
        # A token request is always followed by the API attempt it was fetched for.
        assert token_calls <= api_calls
    if "the bound is reached" in sequence:
        assert max(api_calls, token_calls) == MAX_HTTP_ATTEMPTS_PER_REQUEST


@pytest.fixture(scope="module")
def bound_fake():
    with FakeReddit(hourly_posts(3)) as fake:
        yield fake


_ANY_FAULT = st.sampled_from(
    [
        Fault.ok(),
        Fault.server_error(503),
        Fault.server_error(500),
        Fault.too_many_requests(retry_after=3),
        Fault.unauthorized(True),
        Fault.unauthorized(False),
        Fault.dropped(),
        Fault.forbidden(),
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(faults=st.lists(_ANY_FAULT, max_size=30))
def test_any_fault_sequence_stays_within_the_bound_and_ends_as_documented(bound_fake, faults):
    bound_fake.clear_faults()
    calls_before, tokens_before = bound_fake.count(LISTING), bound_fake.token_requests()
    bound_fake.script(LISTING, faults)
    try:
        fetch = make_source(bound_fake.url).fetch_posts(START, END)
    except RedditSourceError as error:
        outcome: object = error
    else:
        outcome = fetch
    calls = bound_fake.count(LISTING) - calls_before
    tokens = bound_fake.token_requests() - tokens_before
    assert calls <= MAX_HTTP_ATTEMPTS_PER_REQUEST
    assert tokens <= calls
    if isinstance(outcome, RedditSourceError):
        # Only a permanent failure, or a transient one our layer retried to its limit, ends it.
        assert outcome.permanent or outcome.attempts == REDDIT_CONFIG.max_attempts
    else:
        assert len(outcome.frame) == 3


# --- secrets and pacing ----------------------------------------------------------------------------


def test_no_secret_reaches_messages_logs_or_requests_other_than_the_token_endpoint(caplog):
    caplog.set_level(logging.DEBUG)  # every logger: ours, the retry layer, prawcore, urllib3
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    texts: list[str] = []

    def capture(error: BaseException) -> None:
        texts.append(str(error))
        texts.extend(traceback.format_exception(error))

    with FakeReddit(hourly_posts(3), client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as fake:
        scenarios = [
            (LISTING, [Fault.unauthorized(True)] * 3),
            (LISTING, [Fault.server_error(503)] * 40),
            (LISTING, [Fault.too_many_requests(1)] * 40),
            (r"^/api/v1/access_token$", [Fault.oauth_error("invalid_grant")]),
        ]
        for pattern, faults in scenarios:
            fake.clear_faults()
            fake.script(pattern, faults)
            source = make_source(fake.url, username="tft_bot", password=PASSWORD)
            texts.append(repr(source))
            with pytest.raises(RedditSourceError) as raised:
                source.fetch_posts(START, END)
            capture(raised.value)
        with pytest.raises(RedditSourceError) as raised:
            make_source(closed_port_url(), password=PASSWORD, username="tft_bot").fetch_posts(
                START, END
            )
        capture(raised.value)
        tokens = fake.issued_tokens()
        headers = fake.authorization_headers()
        token_bodies = [r.body for r in fake.requests if r.path == "/api/v1/access_token"]

    assert tokens and caplog.records
    texts.extend(record.getMessage() for record in caplog.records)
    everything = "\n".join(texts)
    for secret in (CLIENT_ID, CLIENT_SECRET, PASSWORD, basic, *tokens):
        assert secret not in everything
    assert "Reddit rejected the credentials (401)" in everything
    # Client credentials travel only to the token endpoint; API calls carry only bearer tokens.
    for path, authorization in headers:
        if path == "/api/v1/access_token":
            assert authorization == f"Basic {basic}"
        else:
            assert authorization is not None and authorization.removeprefix("bearer ") in tokens
    assert all("grant_type=password" in body for body in token_bodies)


def test_our_rate_limiter_spaces_every_http_request_token_included():
    fake_time = FakeTime()
    with FakeReddit(hourly_posts(150)) as fake:
        fetch = make_source(fake.url, fake_time, requests_per_second=4.0).fetch_posts(
            END - pd.Timedelta(days=30), END
        )
        total_requests = len(fake.requests)
    assert total_requests == 3  # token and two pages
    assert fake_time.sleeps == [0.25] * (total_requests - 1)
    assert fetch.requests == total_requests


# --- configuration ---------------------------------------------------------------------------------


def test_credentials_come_from_praws_own_configuration_when_not_given(monkeypatch):
    monkeypatch.setenv("praw_client_id", CLIENT_ID)
    monkeypatch.setenv("praw_client_secret", CLIENT_SECRET)
    monkeypatch.setenv("praw_user_agent", USER_AGENT)
    with FakeReddit(hourly_posts(3), client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as fake:
        source = make_source(fake.url, client_id=None, client_secret=None, user_agent=None)
        assert len(source.fetch_posts(START, END).frame) == 3


def test_missing_credentials_fail_at_construction_with_the_variables_to_set(monkeypatch):
    for variable in ("praw_client_id", "praw_client_secret", "praw_user_agent", "praw_site"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(RedditSourceError, match="REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET") as raised:
        LiveRedditSource(subreddits=["stocks"], client_secret=CLIENT_SECRET, user_agent=USER_AGENT)
    assert raised.value.permanent
    assert CLIENT_SECRET not in str(raised.value)


# --- with the rest of the pipeline ------------------------------------------------------------------


def test_a_sessions_window_fetch_maps_every_row_to_that_session():
    session = pd.Timestamp("2024-03-04")  # a Monday: its window starts at Friday's close
    start, end = reddit_window(session)
    posts = [
        post("friday_after_close", start + pd.Timedelta(minutes=1)),
        post("saturday", pd.Timestamp("2024-03-02 15:00")),
        post("monday_morning", pd.Timestamp("2024-03-04 14:00")),
        post("at_monday_close", end),  # belongs to Tuesday
        post("friday_before_close", start - pd.Timedelta(minutes=1)),
    ]
    with FakeReddit(posts) as fake:
        fetch = make_source(fake.url).fetch_posts(start, end)
    assert set(fetch.frame["post_id"]) == {"friday_after_close", "saturday", "monday_morning"}
    assert (session_of_timestamps(fetch.frame["created_utc"]) == session).all()


def test_the_dagster_raw_assets_store_what_the_fake_reddit_serves(tmp_path):
    from dagster import DagsterInstance, materialize

    from tft_pipeline.defs.assets.ingest import ingest_assets
    from tft_pipeline.defs.io_manager import WarehouseIOManager
    from tft_pipeline.defs.resources import LiveRedditResource
    from tft_pipeline.warehouse import Warehouse

    session = "2024-03-05"
    start, end = reddit_window(session)
    posts = [
        post("p_in", start + pd.Timedelta(hours=2)),
        post("p_old", start - pd.Timedelta(hours=2)),
    ]
    comments = [
        comment("c_in", "p_old", start + pd.Timedelta(hours=1)),
        comment("c_old", "p_old", start - pd.Timedelta(hours=1)),
        comment("c_in2", "p_in", end - pd.Timedelta(minutes=1)),
    ]
    database = str(tmp_path / "warehouse.duckdb")
    with FakeReddit(posts, comments, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as fake:
        resource = LiveRedditResource(
            subreddits=["wallstreetbets"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            user_agent=USER_AGENT,
            oauth_url=fake.url,
            reddit_url=fake.url,
            requests_per_second=1000.0,
        )
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                [a for a in ingest_assets(SESSIONS) if a.keys & set(REDDIT_KEYS)],
                partition_key=session,
                instance=instance,
                resources={
                    "reddit": resource,
                    "warehouse_io_manager": WarehouseIOManager(database=database),
                },
            )
    assert result.success
    warehouse = Warehouse(database)
    stored_posts = warehouse.read_table("raw.reddit_posts")
    stored_comments = warehouse.read_table("raw.reddit_comments")
    assert list(stored_posts["post_id"]) == ["p_in"]
    assert sorted(stored_comments["comment_id"]) == ["c_in", "c_in2"]
    assert (stored_posts["session_date"] == pd.Timestamp(session)).all()
    assert (stored_comments["session_date"] == pd.Timestamp(session)).all()


def test_a_credentials_failure_fails_the_dagster_step_once_without_retries(tmp_path):
    from dagster import DagsterEventType, DagsterInstance, materialize

    from tft_pipeline.defs.assets.ingest import ingest_assets
    from tft_pipeline.defs.io_manager import WarehouseIOManager
    from tft_pipeline.defs.resources import LiveRedditResource

    with FakeReddit(hourly_posts(3), client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as fake:
        resource = LiveRedditResource(
            subreddits=["wallstreetbets"],
            client_id=CLIENT_ID,
            client_secret="a-wrong-secret-1234",
            user_agent=USER_AGENT,
            oauth_url=fake.url,
            reddit_url=fake.url,
            requests_per_second=1000.0,
        )
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                [a for a in ingest_assets(SESSIONS) if a.keys == {REDDIT_KEYS[0]}],
                partition_key="2024-03-05",
                instance=instance,
                resources={
                    "reddit": resource,
                    "warehouse_io_manager": WarehouseIOManager(database=str(tmp_path / "w.duckdb")),
                },
                raise_on_error=False,
            )
        token_requests = fake.token_requests()
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    retries = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(failures) == 1 and retries == []
    assert CREDENTIALS_MESSAGE in str(failures[0].event_specific_data.error)
    assert "a-wrong-secret-1234" not in str(failures[0].event_specific_data.error)
    assert token_requests == 1
