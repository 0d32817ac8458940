"""The live Reddit source on Reddit's own recorded answers, served on 127.0.0.1 to the real praw.

The answers come from praw's test cassettes (repository praw-dev/praw, commit
7b69758126d5a105ab7083ee49a3f6f400963ca9, tests/integration/cassettes; which cassette each file
comes from and what was trimmed: tft_pipeline_tests/recorded/reddit/SOURCES.md). Test windows are
chosen around the recorded timestamps; nothing in the answers is re-timed.
"""

from __future__ import annotations

import pandas as pd
import prawcore.sessions
import pytest

from tft_pipeline.features.mentions import extract_ticker_mentions
from tft_pipeline.sources.reddit_live import LiveRedditSource
from tft_pipeline.trading_calendar import (
    fetch_lag_hours,
    reddit_window,
    reddit_window_for_range,
    session_close,
    session_of_timestamps,
)
from tft_pipeline.validation import validate_comments, validate_posts
from tft_pipeline_tests.fakes import recorded_reddit as recorded
from tft_pipeline_tests.fakes.fake_reddit import FakeReddit

# When praw's maintainers recorded the 3hahrw tree: what "fetched" means for these answers.
TREE_FETCHED_AT = pd.Timestamp("2016-03-22 05:37:25", tz="UTC")
MORECHILDREN = r"^/api/morechildren"
CONTINUED = r"^/comments/3hahrw/_/"


@pytest.fixture(autouse=True)
def no_prawcore_sleep(monkeypatch):
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds", lambda self: None)


def make_source(url: str, now: pd.Timestamp = TREE_FETCHED_AT, **overrides) -> LiveRedditSource:
    arguments = {
        "subreddits": ["funny"],
        "client_id": "recorded-client",
        "client_secret": "recorded-secret",
        "user_agent": "tft_pipeline recorded tests (by u/tft_tests)",
        "oauth_url": url,
        "reddit_url": url,
        "requests_per_second": None,
        "sleep": lambda seconds: None,
        "now": lambda: now,
        **overrides,
    }
    return LiveRedditSource(**arguments)


def epoch(seconds: float) -> pd.Timestamp:
    return pd.Timestamp(seconds, unit="s", tz="UTC")


# --- 1. /new is not in creation order ----------------------------------------------------------


def test_posts_listed_late_on_a_real_new_page_are_kept():
    page = [child["data"] for child in recorded.new_page()["data"]["children"]]
    created = [post["created_utc"] for post in page]
    # The page as Reddit listed it: post 82 was created ~4.9 h after post 81 yet listed after it.
    assert created[82] - created[81] == 17_749.0
    start, end = epoch(created[81] + 1), epoch(max(created) + 1)
    in_window = {post["id"] for post in page if start.timestamp() <= post["created_utc"]}
    first_older = next(i for i, c in enumerate(created) if c < start.timestamp())
    assert (len(in_window), first_older) == (99, 81)  # the old walk kept 81 of 99 posts

    with FakeReddit(recorded=recorded.new_listing("pics")) as fake:
        fetch = make_source(fake.url, subreddits=["pics"]).fetch_posts(start, end)
        pages = fake.count(r"^/r/pics/new")

    assert set(fetch.frame["post_id"]) == in_window
    assert pages == 2  # the recorded page, then Reddit's empty page at the end of the listing
    (coverage,) = fetch.coverage
    assert (coverage["posts_seen"], coverage["posts_kept"]) == (100, 99)
    assert coverage["reached_start"] and coverage["listing_ended"]
    # The listing ran out far below Reddit's cap: there is nothing older it could have listed.
    assert fetch.complete and fetch.notes == ()


def test_a_real_page_reaching_the_range_start_but_not_the_margin_at_the_cap_is_partial(
    monkeypatch,
):
    # Were the recorded page the end of a capped listing, the walk could not vouch for posts
    # listed late: the same walk with the cap at 100 items says so.
    monkeypatch.setattr("tft_pipeline.sources.reddit_live.LISTING_CAP", 100)
    page = [child["data"] for child in recorded.new_page()["data"]["children"]]
    start = epoch(page[81]["created_utc"] + 1)
    end = epoch(max(post["created_utc"] for post in page) + 1)
    with FakeReddit(recorded=recorded.new_listing("pics")) as fake:
        fetch = make_source(fake.url, subreddits=["pics"]).fetch_posts(start, end)
    assert len(fetch.frame) == 99
    assert not fetch.complete
    assert fetch.notes == (
        (
            "r/pics: listing ended at 2016-07-17T01:47Z after 100 posts (Reddit serves about "
            "100), past the range start 2016-07-17T01:47Z but not its margin of 24 h; posts "
            "Reddit listed late may be missing"
        ),
    )


# --- 2. "more comments" stubs are expanded, within a budget --------------------------------------

TREE_SESSIONS = ("2015-08-17", "2015-08-19")
# Synthetic posts well before the recorded one, so the /new walk has older posts to stop on.
OLDER_POSTS = [
    {"post_id": f"old{index}", "subreddit": "funny", "created_utc": "2015-08-01"}
    for index in range(6)
]  # the post's session and the two days it is chosen


def tree_fetch(budget: int | None = None, sessions=TREE_SESSIONS):
    start, end = reddit_window_for_range(*sessions)
    overrides = {} if budget is None else {"more_comments_budget": budget}
    with FakeReddit([recorded.tree_post(), *OLDER_POSTS], recorded=recorded.tree_answers()) as fake:
        fetch = make_source(fake.url, **overrides).fetch_comments(start, end)
        counts = (fake.count(MORECHILDREN, method="POST"), fake.count(CONTINUED))
    return fetch, counts, (start, end)


def recorded_comments_between(start: pd.Timestamp, end: pd.Timestamp) -> set[str]:
    return {
        comment["id"]
        for comment in recorded.tree_comments()
        if start.timestamp() <= comment["created_utc"] < end.timestamp()
    }


def test_a_real_tree_is_expanded_through_every_more_and_continued_thread():
    fetch, (more_requests, continued), (start, end) = tree_fetch()

    assert (more_requests, continued) == (12, 6)  # what replace_more(limit=None) asked Reddit
    assert set(fetch.frame["comment_id"]) == recorded_comments_between(start, end)
    assert fetch.frame["comment_id"].is_unique
    assert (fetch.frame["post_id"] == "3hahrw").all()
    # Reddit reported 543 comments; the expanded tree holds 541 (the stubs' own counts included).
    fetched = sum(row["comments_fetched"] for row in fetch.coverage)
    reported = {row["comments_reported"] for row in fetch.coverage}
    assert reported == {543}
    assert {row["comments_fetched"] for row in fetch.coverage} == {541}
    assert fetched == 541 * len(fetch.coverage)
    assert sum(row["comments_in_window"] for row in fetch.coverage) == len(fetch.frame)
    assert fetch.complete and fetch.notes == ()


def test_without_a_budget_the_tree_stops_at_its_stubs_and_says_so():
    fetch, (more_requests, continued), (start, end) = tree_fetch(budget=0)
    assert (more_requests, continued) == (0, 0)
    assert {row["comments_fetched"] for row in fetch.coverage} == {476}  # the figure
    assert len(fetch.frame) < len(recorded_comments_between(start, end))
    assert not fetch.complete
    assert all("'more comments' requests per session ran out" in note for note in fetch.notes)


def test_a_small_budget_expands_the_largest_stubs_first():
    fetch, (more_requests, continued), _ = tree_fetch(budget=3, sessions=("2015-08-17",) * 2)
    assert more_requests + continued == 3
    (row,) = fetch.coverage
    # The three largest stubs (counts 12, 12 and 9) brought 12 + 12 + 9 comments... at most.
    assert 476 < row["comments_fetched"] <= 476 + 12 + 12 + 9
    assert row["more_requests"] == 3 and row["stubs_left"] > 0
    assert not fetch.complete
    # 18 stubs announce 61 comments (6 "continue this thread" stubs announce none); 12 + 12 + 9
    # of them were fetched.
    assert fetch.notes[0].endswith("ran out with 15 stubs left (at least 28 comments not fetched)")


def test_a_failing_more_request_is_retried_like_any_other():
    from tft_pipeline_tests.fakes.fake_reddit import Fault

    start, end = reddit_window("2015-08-17")
    with FakeReddit([recorded.tree_post(), *OLDER_POSTS], recorded=recorded.tree_answers()) as fake:
        fake.script(MORECHILDREN, [Fault.server_error(503)] * 4)
        fetch = make_source(fake.url).fetch_comments(start, end)
        more_requests = fake.count(MORECHILDREN, method="POST")
    assert more_requests == 12 + 4  # prawcore retried 3 times, our layer once more
    assert set(fetch.frame["comment_id"]) == recorded_comments_between(start, end)


# --- 3. [deleted] / [removed] ------------------------------------------------------------------


def test_real_deleted_and_removed_posts_are_kept_and_marked():
    posts = [thing["data"] for thing in recorded.info_things("t3")]
    start = epoch(min(post["created_utc"] for post in posts))
    end = epoch(max(post["created_utc"] for post in posts) + 1)
    with FakeReddit(recorded=recorded.info_listing("all")) as fake:
        fetch = make_source(fake.url, subreddits=["all"]).fetch_posts(start, end)
    frame = fetch.frame.set_index("post_id")
    assert len(frame) == len(posts) == 33
    assert frame["text_state"].value_counts().to_dict() == {
        "present": 29,
        "deleted": 2,
        "removed": 2,
    }
    assert list(frame.index[frame["text_state"] == "deleted"].sort_values()) == [
        "5dec01",
        "5dec18",
    ]
    assert frame.loc["5dec01", "author"] is None  # "[deleted]" author: praw gives None
    assert frame.loc["5dec21", "text_state"] == "removed"
    assert frame.loc["5dec21", "author"] == "mp4downloader"  # removed by moderators, author kept

    raw = fetch.frame.assign(session_date=session_of_timestamps(fetch.frame["created_utc"]))
    result = validate_posts(raw)
    assert len(result.clean) == 33 and result.rejected.empty  # every row stays and counts
    assert result.clean.set_index("post_id").loc["5dec30", "text_state"] == "removed"


def test_real_deleted_comments_are_kept_marked_and_out_of_text_features():
    fetch, _, _ = tree_fetch()
    frame = fetch.frame.set_index("comment_id")
    deleted = frame[frame["text_state"] == "deleted"]
    assert len(deleted) >= 1 and (deleted["body"] == "[deleted]").all()
    assert deleted["author"].isna().all()
    assert (frame.loc[frame["body"] != "[deleted]", "text_state"] == "present").all()

    raw = fetch.frame.assign(session_date=session_of_timestamps(fetch.frame["created_utc"]))
    clean = validate_comments(raw).clean
    assert set(deleted.index) <= set(clean["comment_id"])
    # A removed text never feeds mentions or sentiment, even if a body is still there.
    flagged = clean.assign(
        body=clean["body"].where(clean["text_state"] == "present", "$AAPL to the moon")
    )
    posts = pd.DataFrame(columns=["post_id", "title", "selftext", "session_date", "author"])
    posts = posts.assign(created_utc=pd.Series(dtype="datetime64[ns]"), score=pd.Series())
    mentions = extract_ticker_mentions(posts, flagged, ["AAPL"])
    assert set(mentions["source_id"]).isdisjoint(set(deleted.index))


# --- 4. the comment trees are chosen per session -----------------------------------------------

FOUR_SESSIONS = ("2015-08-17", "2015-08-20")


def four_session_posts():
    """The real post 3hahrw (543 comments), a smaller one two days later, older ones to stop on."""
    later = pd.Timestamp("2015-08-19 14:00")
    posts = [
        recorded.tree_post(),
        {"post_id": "later1", "subreddit": "funny", "created_utc": later, "num_comments": 3},
        *OLDER_POSTS,
    ]
    comments = [
        {
            "comment_id": f"lc{index}",
            "post_id": "later1",
            "created_utc": later + pd.Timedelta(hours=7 * index),
        }
        for index in range(3)
    ]
    return posts, comments


def test_a_range_run_and_one_run_per_session_fetch_the_same_comments():
    posts, comments = four_session_posts()
    sessions = pd.bdate_range(*FOUR_SESSIONS)
    with FakeReddit(posts, comments, recorded=recorded.tree_answers()) as fake:
        source = make_source(fake.url, top_posts_for_comments=1)
        ranged = source.fetch_comments(*reddit_window_for_range(*FOUR_SESSIONS))
        range_requests = len(fake.requests)
        daily = [source.fetch_comments(*reddit_window(session)) for session in sessions]
        daily_requests = len(fake.requests) - range_requests
    together = pd.concat([fetch.frame for fetch in daily], ignore_index=True)
    key = ["comment_id"]
    pd.testing.assert_frame_equal(
        ranged.frame.sort_values(key, ignore_index=True),
        together.sort_values(key, ignore_index=True),
    )
    # 3hahrw is chosen by 2015-08-17..19; 2015-08-20 no longer sees it and chooses later1, whose
    # comments a choice over the whole range (busiest 1 of the range: 3hahrw) would have lost.
    assert {"lc1", "lc2"} <= set(ranged.frame["comment_id"])
    assert set(ranged.frame["post_id"]) == {"3hahrw", "later1"}
    assert ranged.complete and all(fetch.complete for fetch in daily)
    # The range run fetched the shared tree once; the daily runs once each.
    assert range_requests < daily_requests


# --- 5. fetch lag ------------------------------------------------------------------------------


def test_the_fetch_lag_of_recorded_comments_is_the_time_from_their_session_close():
    fetch, _, _ = tree_fetch()
    sessions = session_of_timestamps(fetch.frame["created_utc"])
    lag = fetch_lag_hours(fetch.frame["fetched_at"], sessions)
    expected = sessions.map(lambda s: (TREE_FETCHED_AT - session_close(s)) / pd.Timedelta(hours=1))
    assert lag.to_numpy() == pytest.approx(expected.to_numpy(dtype=float))
    # Recorded seven months after the post: its scores and removals are those of March 2016.
    assert lag.min() > 24 * 200
