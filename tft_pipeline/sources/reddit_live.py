"""Live Reddit source: posts and comments of the configured subreddits via praw (pure, no Dagster).

Posts come from ``/r/<sub>/new``, newest first. That listing is not strictly in creation order (a
post a moderator approves late is listed among newer ones), so the walk goes on past the range
start by ``new_listing_margin`` (24 h by default) and stops only after ``OLDER_POSTS_TO_STOP`` posts
in a row created before ``start - margin``; every post created in the range that it saw is kept.
Reddit serves about 1,000 items per listing: when the listing ends before the range start, or
before the margin, the rows are returned as partial coverage (``complete=False`` with a note).

Comments are chosen per session, so a range run and one run per session fetch the same trees: for
each session window ``[ws, we)`` inside the range, the ``top_posts_for_comments`` busiest posts per
subreddit created in ``[ws - comment_lookback, we)``; of their trees only comments created in the
window are kept. "Load more comments" and "continue this thread" stubs are expanded, largest
first (as praw's ``replace_more`` orders them), each by praw's ``MoreComments.comments()`` as one
logical request of its own (retried like any other), up to ``more_comments_budget`` expansions per
session; stubs left over make the coverage partial. A tree chosen by two sessions of a run is
fetched once (praw caches what each stub returned).

Rows whose text Reddit replaced by ``[deleted]`` / ``[removed]`` are kept with ``text_state``
saying so (``tft_pipeline.tables.TEXT_STATES``). ``RedditFetch.coverage`` holds the figures:
posts seen and kept per subreddit, comments Reddit reported (``num_comments``) and fetched per
session and subreddit.

Failures. Every logical request (one step of a listing, one comment tree; the OAuth token is fetched
inside them) runs under ``tft_pipeline.retry`` with ``REDDIT_CONFIG``, honouring ``Retry-After``.
Permanent failures become ``RedditSourceError(permanent=True)`` with a message that says what to fix
(credentials, a private or missing subreddit); exhausted transient failures become
``RedditSourceError(permanent=False)``. Messages never contain credentials or tokens.

How many HTTP attempts one logical request can make, layer by layer:
- prawcore retries 5xx, 408, connection errors, read timeouts and 401s (refetching the token
  first) by itself: 3 attempts per call (``FiniteRetryStrategy``, sleeping 0-2 s then 2-4 s);
  429, 403 and 404 it does not retry;
- our layer: ``REDDIT_CONFIG`` makes at most 6 calls;
- so ``MAX_HTTP_ATTEMPTS_PER_REQUEST`` = 3 x 6 = 18 requests to the endpoint within one Dagster
  step attempt, plus at most as many token requests (``MAX_TOKEN_REQUESTS_PER_REQUEST``: one
  before the first attempt and before each attempt after a 401; a token request that cannot
  connect is retried by prawcore like the call itself);
- Dagster re-runs a failed scraper step ``DAGSTER_SCRAPER_MAX_RETRIES`` = 2 more times, so across a
  run ``MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN`` = 18 x 3 = 54.
In time, one logical request gives up within 18 timeouts + 6 x 6 s of prawcore's sleeps + our
backoff of at most 68.2 s (2, 4, 8, 16, 32 s, +10 % jitter; a Retry-After counts up to 120 s each):
about 6.5 minutes with the default 16 s timeout.

The HTTP timeout is ``timeout_seconds`` when given. Otherwise it is prawcore's: ``PRAWCORE_TIMEOUT``
(default 16 s), read once when prawcore is imported (it becomes the default argument of
``prawcore.sessions.Session.request``); praw's own ``timeout`` setting is never passed on.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pandas as pd
import praw
import praw.exceptions
import prawcore
import prawcore.exceptions
import requests
from praw.models import Comment, MoreComments
from praw.models.comment_forest import CommentForest
from prawcore.requestor import Requestor
from prawcore.sessions import FiniteRetryStrategy
from pydantic import SecretStr

from tft_pipeline.retry import (
    REDDIT_CONFIG,
    RateLimiter,
    RetryConfig,
    RetryEvent,
    UniformSource,
    describe_failure,
    http_status_of,
    retry_with_backoff,
    should_retry,
)
from tft_pipeline.sources.base import RedditFetch, RedditSource
from tft_pipeline.sources.limits import DAGSTER_SCRAPER_ATTEMPTS
from tft_pipeline.tables import RAW_COMMENT_COLUMNS, RAW_POST_COLUMNS, conform, text_state_of
from tft_pipeline.trading_calendar import nyse_calendar, to_utc

_logger = logging.getLogger(__name__)

T = TypeVar("T")

PRAWCORE_ATTEMPTS_PER_CALL = FiniteRetryStrategy.DEFAULT_RETRIES + 1
RETRY_LAYER_ATTEMPTS = REDDIT_CONFIG.max_attempts
MAX_HTTP_ATTEMPTS_PER_REQUEST = PRAWCORE_ATTEMPTS_PER_CALL * RETRY_LAYER_ATTEMPTS
MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN = MAX_HTTP_ATTEMPTS_PER_REQUEST * DAGSTER_SCRAPER_ATTEMPTS
# Each attempt fetches the token at most once, before the API call (first call, or after a 401).
MAX_TOKEN_REQUESTS_PER_REQUEST = MAX_HTTP_ATTEMPTS_PER_REQUEST

DEFAULT_TOP_POSTS_FOR_COMMENTS = 25
DEFAULT_COMMENT_LOOKBACK = pd.Timedelta(days=2)
# /new is walked this far past the range start, for posts listed late (approved by a moderator).
DEFAULT_NEW_LISTING_MARGIN = pd.Timedelta(hours=24)
# ... and stops after this many posts in a row older than start - margin (one old post listed late
# must not end the walk).
OLDER_POSTS_TO_STOP = 5
# Expansions of "more comments" stubs per session (one request each; each brings up to 100).
DEFAULT_MORE_COMMENTS_BUDGET = 100
# Reddit's listings end at about 1,000 items.
LISTING_CAP = 1000
DEFAULT_REQUESTS_PER_SECOND = 1.0  # Reddit allows 100 OAuth requests a minute; stay well under
# Newest first: when Reddit caps a big tree, the comments of a recent range are the ones kept.
COMMENT_SORT = "new"

# The asset adds what depends on the session: ``session_date`` and ``fetch_lag_hours``.
_ASSET_COLUMNS = ("session_date", "fetch_lag_hours")
POST_COLUMNS = {
    name: dtype for name, dtype in RAW_POST_COLUMNS.items() if name not in _ASSET_COLUMNS
}
COMMENT_COLUMNS = {
    name: dtype for name, dtype in RAW_COMMENT_COLUMNS.items() if name not in _ASSET_COLUMNS
}

CREDENTIALS_MESSAGE = (
    "Reddit rejected the credentials (401): check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"
)


class RedditSourceError(RuntimeError):
    """A fetch that failed; ``permanent`` says whether retrying later can help."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        status: int | None = None,
        subreddit: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.subreddit = subreddit
        self.attempts = attempts


@dataclass(frozen=True)
class _Request:
    """What one logical request is about, for messages."""

    subreddit: str
    kind: Literal["listing", "comments"]
    description: str  # e.g. "the new posts of r/stocks"


@dataclass
class _Walk:
    """What one walk of ``/new`` saw."""

    kept: list[Any]
    seen: int = 0
    oldest_seen: float | None = None
    ended: bool = False  # the listing ran out before the walk could stop by itself
    reached_start: bool = False
    reached_margin: bool = False


@dataclass
class _Tree:
    """One post's comment tree as fetched: its comments, and the stubs still to expand."""

    post_id: str
    subreddit: str
    reported: int  # num_comments of the post
    comments: list[Any]
    stubs: list[Any]
    unavailable: str | None = None


class _PacedRequestor(Requestor):
    """prawcore's requestor with our rate limiter, a request counter and an enforced timeout.

    Every HTTP request praw makes goes through here, token requests and prawcore's own retries
    included, so the limiter paces real traffic and the counter is what the server saw.
    """

    def __init__(
        self,
        *,
        pace: Callable[[], object],
        timeout_seconds: float | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._pace = pace
        self._timeout_seconds = timeout_seconds
        self.http_requests = 0

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        self._pace()
        self.http_requests += 1
        return super().request(*args, timeout=self._timeout_seconds or timeout, **kwargs)


def _secret_value(value: SecretStr | str | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _default_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _name(value: Any) -> str | None:
    """The name of a praw Redditor/Subreddit (``str()`` gives it without a fetch), None stays None."""
    return None if value is None else str(value)


def _iso_minute(epoch_seconds: float) -> str:
    return pd.Timestamp(epoch_seconds, unit="s").strftime("%Y-%m-%dT%H:%MZ")


def _post_text_state(data: dict[str, Any]) -> str:
    """``text_state`` of a post: its selftext's placeholder, else Reddit's removal category."""
    state = str(text_state_of(pd.Series([data.get("selftext")])).iloc[0])
    category = data.get("removed_by_category")
    if state == "present" and category:
        # A link post has no selftext to replace; Reddit says it is gone in this field instead.
        state = "deleted" if category == "deleted" else "removed"
    return state


def session_slices(
    start: pd.Timestamp, end: pd.Timestamp
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``[start, end)`` cut at every NYSE close inside it: one slice per session window."""
    closes = nyse_calendar().closes
    cuts = [to_utc(close) for close in closes[(closes > start) & (closes < end)]]
    bounds = [start, *cuts, end]
    return [(low, high) for low, high in itertools.pairwise(bounds) if low < high]


def _flatten(items: Sequence[Any]) -> list[Any]:
    """Comments and stubs of a list (an /api/morechildren answer), their replies included."""
    flat: list[Any] = []
    for item in items:
        flat.append(item)
        if isinstance(item, Comment):
            flat.extend(item.replies.list())
    return flat


def _split_stubs(items: Sequence[Any], submission: Any) -> tuple[list[Any], list[Any]]:
    """``(comments, MoreComments stubs)``; stubs get the submission their request needs."""
    comments: list[Any] = []
    stubs: list[Any] = []
    for item in items:
        if isinstance(item, MoreComments):
            item.submission = submission
            stubs.append(item)
        else:
            comments.append(item)
    return comments, stubs


class LiveRedditSource(RedditSource):
    """Posts and comments of ``subreddits`` from Reddit's API through praw.

    Credentials may be ``SecretStr`` or plain strings. Anything not given (None) is left to praw's
    own configuration (``praw.ini`` section ``site_name`` or ``praw_site``, ``praw_*`` variables),
    as praw users expect; ``oauth_url``/``reddit_url`` likewise default to praw's (Reddit's).
    ``sleep``/``clock``/``rng`` drive the retry layer and the rate limiter (tests inject fakes);
    ``now`` stamps ``fetched_at``; ``on_retry`` hears of every backoff of our layer (not the rate
    limiter's waits, which share ``sleep``). ``requests_per_second=None`` turns our rate limiter off
    (prawcore still follows Reddit's rate-limit headers).
    """

    def __init__(
        self,
        *,
        subreddits: Sequence[str],
        client_id: SecretStr | str | None = None,
        client_secret: SecretStr | str | None = None,
        user_agent: str | None = None,
        username: str | None = None,
        password: SecretStr | str | None = None,
        oauth_url: str | None = None,
        reddit_url: str | None = None,
        site_name: str | None = None,
        top_posts_for_comments: int = DEFAULT_TOP_POSTS_FOR_COMMENTS,
        comment_lookback: pd.Timedelta | dt.timedelta = DEFAULT_COMMENT_LOOKBACK,
        rank_posts_by: Literal["num_comments", "score"] = "num_comments",
        new_listing_margin: pd.Timedelta | dt.timedelta = DEFAULT_NEW_LISTING_MARGIN,
        more_comments_budget: int = DEFAULT_MORE_COMMENTS_BUDGET,
        requests_per_second: float | None = DEFAULT_REQUESTS_PER_SECOND,
        timeout_seconds: float | None = None,
        retry_config: RetryConfig = REDDIT_CONFIG,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], pd.Timestamp | dt.datetime] = _default_now,
        rng: UniformSource | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        names = tuple(name.strip().removeprefix("r/") for name in subreddits if name.strip())
        if not names:
            raise ValueError("subreddits must name at least one subreddit")
        if top_posts_for_comments < 0:
            raise ValueError(f"top_posts_for_comments must be >= 0, got {top_posts_for_comments}")
        lookback = pd.Timedelta(comment_lookback)
        if lookback < pd.Timedelta(0):
            raise ValueError(f"comment_lookback must not be negative, got {comment_lookback}")
        if rank_posts_by not in ("num_comments", "score"):
            raise ValueError(
                f"rank_posts_by must be 'num_comments' or 'score', got {rank_posts_by!r}"
            )
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        margin = pd.Timedelta(new_listing_margin)
        if margin < pd.Timedelta(0):
            raise ValueError(f"new_listing_margin must not be negative, got {new_listing_margin}")
        if more_comments_budget < 0:
            raise ValueError(f"more_comments_budget must be >= 0, got {more_comments_budget}")

        self.subreddits = names
        self.top_posts_for_comments = top_posts_for_comments
        self.comment_lookback = lookback
        self.rank_posts_by = rank_posts_by
        self.new_listing_margin = margin
        self.more_comments_budget = more_comments_budget
        self.retry_config = retry_config
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._rng = rng
        self._on_retry = on_retry
        self._uses_password = bool(username or password)
        limiter = (
            RateLimiter(requests_per_second, clock=clock, sleep=sleep)
            if requests_per_second is not None
            else None
        )
        self._rate_limiter = limiter

        explicit = {
            "client_id": _secret_value(client_id),
            "client_secret": _secret_value(client_secret),
            "user_agent": user_agent,
            "username": username,
            "password": _secret_value(password),
            "oauth_url": oauth_url,
            "reddit_url": reddit_url,
        }
        try:
            self._reddit = praw.Reddit(
                site_name,
                check_for_updates=False,
                requestor_class=_PacedRequestor,
                requestor_kwargs={
                    "pace": limiter.wait_if_needed if limiter is not None else (lambda: None),
                    "timeout_seconds": timeout_seconds,
                },
                **{key: value for key, value in explicit.items() if value is not None},
            )
        except praw.exceptions.MissingRequiredAttributeException as error:
            setting = str(error).splitlines()[0]
            raise RedditSourceError(
                f"Reddit is not configured: {setting} (set REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET "
                "and REDDIT_USER_AGENT, or a praw.ini site)",
                permanent=True,
            ) from None
        except prawcore.exceptions.InvalidInvocation as error:
            raise RedditSourceError(
                f"Reddit is not configured: {error} (REDDIT_USER_AGENT must describe the app)",
                permanent=True,
            ) from None
        self._requestor: _PacedRequestor = self._reddit._core.requestor  # type: ignore[union-attr]

    def __repr__(self) -> str:
        # Never the credentials: praw's config holds them.
        return f"LiveRedditSource(subreddits={self.subreddits!r})"

    @property
    def http_requests(self) -> int:
        """HTTP requests made so far (token requests and prawcore's retries included)."""
        return self._requestor.http_requests

    # --- RedditSource ---------------------------------------------------------------------------

    def fetch_posts(self, start_utc: pd.Timestamp, end_utc: pd.Timestamp) -> RedditFetch:
        start, end = to_utc(start_utc), to_utc(end_utc)
        requests_before = self.http_requests
        rows: list[dict[str, Any]] = []
        notes: list[str] = []
        coverage: list[dict[str, Any]] = []
        for subreddit in self.subreddits:
            walk = self._walk_new(subreddit, oldest=start, newest=end)
            rows.extend(self._post_row(post) for post in walk.kept)
            note = self._walk_note(subreddit, walk, start)
            if note:
                notes.append(note)
            coverage.append(self._walk_coverage(subreddit, walk))
        frame = self._frame(rows, POST_COLUMNS, start, end)
        _logger.info(
            "reddit posts %s..%s: %d rows from %d subreddits, %d HTTP requests%s",
            start,
            end,
            len(frame),
            len(self.subreddits),
            self.http_requests - requests_before,
            "" if not notes else f"; partial: {'; '.join(notes)}",
        )
        return RedditFetch(
            frame=frame,
            complete=not notes,
            notes=tuple(notes),
            requests=self.http_requests - requests_before,
            coverage=tuple(coverage),
        )

    def fetch_comments(self, start_utc: pd.Timestamp, end_utc: pd.Timestamp) -> RedditFetch:
        start, end = to_utc(start_utc), to_utc(end_utc)
        requests_before = self.http_requests
        rows: list[dict[str, Any]] = []
        notes: list[str] = []
        coverage: list[dict[str, Any]] = []
        if self.top_posts_for_comments > 0:
            candidates: dict[str, list[Any]] = {}
            for subreddit in self.subreddits:
                walk = self._walk_new(subreddit, oldest=start - self.comment_lookback, newest=end)
                note = self._walk_note(subreddit, walk, start - self.comment_lookback)
                if note:
                    notes.append(note)
                candidates[subreddit] = walk.kept
            trees: dict[str, _Tree] = {}  # a tree two sessions choose is fetched once
            for window_start, window_end in session_slices(start, end):
                window_rows, window_notes, window_coverage = self._comments_of_window(
                    candidates, trees, window_start, window_end
                )
                rows.extend(window_rows)
                notes.extend(window_notes)
                coverage.extend(window_coverage)
        frame = self._frame(rows, COMMENT_COLUMNS, start, end)
        _logger.info(
            "reddit comments %s..%s: %d rows, %d HTTP requests%s",
            start,
            end,
            len(frame),
            self.http_requests - requests_before,
            "" if not notes else f"; partial: {'; '.join(notes)}",
        )
        return RedditFetch(
            frame=frame,
            complete=not notes,
            notes=tuple(notes),
            requests=self.http_requests - requests_before,
            coverage=tuple(coverage),
        )

    # --- fetching -------------------------------------------------------------------------------

    def _walk_new(self, subreddit: str, *, oldest: pd.Timestamp, newest: pd.Timestamp) -> _Walk:
        """Posts of ``/r/<sub>/new`` created in ``[oldest, newest)``, and what the walk saw.

        The walk stops after ``OLDER_POSTS_TO_STOP`` posts in a row created before ``oldest -
        new_listing_margin``: posts listed late (up to the margin) are kept, and no page beyond
        the one holding that run of old posts is requested.
        """
        oldest_epoch, newest_epoch = oldest.timestamp(), newest.timestamp()
        stop_epoch = (oldest - self.new_listing_margin).timestamp()
        listing: Iterator[Any] = self._reddit.subreddit(subreddit).new(limit=None)
        request = _Request(subreddit, "listing", f"the new posts of r/{subreddit}")
        # One step of the generator is one logical request: it fetches the next page when needed.
        next_post = self._guarded(request, lambda: next(listing, None))
        walk = _Walk(kept=[])
        older_in_a_row = 0
        while True:
            post = next_post()
            if post is None:
                walk.ended = True
                return walk
            created = float(vars(post)["created_utc"])
            walk.seen += 1
            walk.oldest_seen = (
                created if walk.oldest_seen is None else min(walk.oldest_seen, created)
            )
            walk.reached_start |= created < oldest_epoch
            if created < stop_epoch:
                walk.reached_margin = True
                older_in_a_row += 1
                if older_in_a_row >= OLDER_POSTS_TO_STOP:
                    return walk
                continue
            older_in_a_row = 0
            if oldest_epoch <= created < newest_epoch:
                walk.kept.append(post)

    def _walk_note(self, subreddit: str, walk: _Walk, oldest: pd.Timestamp) -> str | None:
        """Why a walk's coverage is partial, or None when it is complete."""
        if not walk.ended or walk.reached_margin:
            return None
        at_cap = walk.seen >= LISTING_CAP * 0.95
        if walk.reached_start and not at_cap:
            # The listing ran out well below Reddit's cap: there is nothing older to list.
            return None
        if walk.oldest_seen is None:
            where = "listing is empty"
        else:
            where = f"listing ended at {_iso_minute(walk.oldest_seen)}"
        cap = f" after {walk.seen} posts (Reddit serves about {LISTING_CAP:,})" if at_cap else ""
        if not walk.reached_start:
            return (
                f"r/{subreddit}: {where}{cap} before the range start "
                f"{_iso_minute(oldest.timestamp())}; older posts are not served by Reddit"
            )
        hours = self.new_listing_margin / pd.Timedelta(hours=1)
        return (
            f"r/{subreddit}: {where}{cap}, past the range start "
            f"{_iso_minute(oldest.timestamp())} but not its margin of {hours:g} h; "
            "posts Reddit listed late may be missing"
        )

    def _walk_coverage(self, subreddit: str, walk: _Walk) -> dict[str, Any]:
        return {
            "subreddit": subreddit,
            "posts_seen": walk.seen,
            "posts_kept": len(walk.kept),
            "oldest_seen": None if walk.oldest_seen is None else _iso_minute(walk.oldest_seen),
            "reached_start": walk.reached_start,
            "reached_margin": walk.reached_margin,
            "listing_ended": walk.ended,
        }

    def _busiest(self, posts: list[Any]) -> list[Any]:
        """The ``top_posts_for_comments`` posts with the most comments (or score)."""
        secondary = "score" if self.rank_posts_by == "num_comments" else "num_comments"
        ranked = sorted(
            posts,
            key=lambda post: (
                -float(vars(post).get(self.rank_posts_by) or 0),
                -float(vars(post).get(secondary) or 0),
                str(vars(post)["id"]),
            ),
        )
        return ranked[: self.top_posts_for_comments]

    def _comments_of_window(
        self,
        candidates: dict[str, list[Any]],
        trees: dict[str, _Tree],
        window_start: pd.Timestamp,
        window_end: pd.Timestamp,
    ) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
        """Comments created in one session's window, from the trees that session chooses."""
        low = (window_start - self.comment_lookback).timestamp()
        high = window_end.timestamp()
        label = f"{_iso_minute(window_start.timestamp())}..{_iso_minute(high)}"
        notes: list[str] = []
        chosen: list[_Tree] = []
        for subreddit, posts in candidates.items():
            eligible = [p for p in posts if low <= float(vars(p)["created_utc"]) < high]
            for post in self._busiest(eligible):
                post_id = str(vars(post)["id"])
                if post_id not in trees:
                    trees[post_id] = self._comment_tree(subreddit, post)
                tree = trees[post_id]
                if tree.unavailable:
                    notes.append(tree.unavailable)
                chosen.append(tree)

        # Every comment of the chosen trees, then the stubs, largest first, within the budget.
        found: dict[str, tuple[Any, _Tree]] = {}
        heap: list[tuple[int, int, Any, _Tree]] = []
        order = itertools.count()
        for tree in chosen:
            for comment in tree.comments:
                found.setdefault(str(vars(comment)["id"]), (comment, tree))
            for stub in tree.stubs:
                heapq.heappush(heap, (-int(stub.count), next(order), stub, tree))
        expansions: dict[str, int] = {}
        while heap and sum(expansions.values()) < self.more_comments_budget:
            _, _, stub, tree = heapq.heappop(heap)
            expansions[tree.subreddit] = expansions.get(tree.subreddit, 0) + 1
            try:
                comments, stubs = self._expand(tree, stub)
            except RedditSourceError as error:
                if error.permanent and error.status in (403, 404):
                    notes.append(
                        f"r/{tree.subreddit}: more comments of post {tree.post_id} unavailable "
                        f"({error.status})"
                    )
                    continue
                raise
            for comment in comments:
                found.setdefault(str(vars(comment)["id"]), (comment, tree))
            for more in stubs:
                heapq.heappush(heap, (-int(more.count), next(order), more, tree))
        left = [(stub, tree) for _, _, stub, tree in heap]
        if left:
            notes.append(
                f"{label}: the budget of {self.more_comments_budget} 'more comments' requests "
                f"per session ran out with {len(left)} stubs left "
                f"(at least {sum(int(stub.count) for stub, _ in left)} comments not fetched)"
            )

        rows: list[dict[str, Any]] = []
        coverage: list[dict[str, Any]] = []
        session_trees: dict[str, list[_Tree]] = {}
        for tree in chosen:
            session_trees.setdefault(tree.subreddit, []).append(tree)
        start_epoch = window_start.timestamp()
        for subreddit, subreddit_trees in session_trees.items():
            ids = {tree.post_id for tree in subreddit_trees}
            fetched = [(c, t) for c, t in found.values() if t.post_id in ids]
            kept = [
                (c, t)
                for c, t in fetched
                if start_epoch <= float(vars(c).get("created_utc") or float("nan")) < high
            ]
            rows.extend(self._comment_row(c, t.post_id) for c, t in kept)
            coverage.append(
                {
                    "window": label,
                    "subreddit": subreddit,
                    "trees": len(subreddit_trees),
                    "comments_reported": sum(t.reported for t in subreddit_trees),
                    "comments_fetched": len(fetched),
                    "comments_in_window": len(kept),
                    "more_requests": expansions.get(subreddit, 0),
                    "stubs_left": sum(1 for _, t in left if t.subreddit == subreddit),
                }
            )
        return rows, notes, coverage

    def _comment_tree(self, subreddit: str, post: Any) -> _Tree:
        """One post's comments and its "more" stubs (not expanded yet), or a note if it is gone."""
        post_id = str(vars(post)["id"])
        reported = int(float(vars(post).get("num_comments") or 0))
        request = _Request(
            subreddit, "comments", f"the comments of post {post_id} in r/{subreddit}"
        )

        def fetch() -> Any:
            # A fresh object per attempt: a failed fetch leaves no half-filled forest behind.
            submission = self._reddit.submission(id=post_id)
            submission.comment_sort = COMMENT_SORT
            return submission, submission.comments.list()

        try:
            submission, flat = self._guarded(request, fetch)()
        except RedditSourceError as error:
            if error.permanent and error.status in (403, 404):
                # The post was removed or locked away after the listing showed it.
                note = f"r/{subreddit}: comments of post {post_id} unavailable ({error.status})"
                return _Tree(post_id, subreddit, reported, [], [], unavailable=note)
            raise
        comments, stubs = _split_stubs(flat, submission)
        return _Tree(post_id, subreddit, reported, comments, stubs)

    def _expand(self, tree: _Tree, stub: Any) -> tuple[list[Any], list[Any]]:
        """What one stub stands for: one request (cached by praw on the stub)."""
        what = "continued thread" if int(stub.count) == 0 else "more comments"
        request = _Request(
            tree.subreddit,
            "comments",
            f"the {what} {stub.parent_id} of post {tree.post_id} in r/{tree.subreddit}",
        )
        result = self._guarded(request, lambda: stub.comments(update=False))()
        flat = result.list() if isinstance(result, CommentForest) else _flatten(result)
        return _split_stubs(flat, stub.submission)

    def _guarded(self, request: _Request, call: Callable[[], T]) -> Callable[[], T]:
        """``call`` under the retry layer, its failures turned into ``RedditSourceError``.

        Built once per listing walk and called per item: building the retry policy costs more
        than running it.
        """
        # Names the call in the retry layer's log lines ("retry the new posts of r/stocks: ..."),
        # which a Dagster run shows in its compute logs; a lambda's qualname says nothing.
        call.__qualname__ = request.description
        attempt = retry_with_backoff(
            self.retry_config,
            sleep=self._sleep,
            clock=self._clock,
            rng=self._rng,
            on_retry=self._on_retry,
        )(call)

        def guarded() -> T:
            try:
                return attempt()
            except (prawcore.exceptions.PrawcoreException, requests.RequestException) as error:
                attempts = attempt.retry_statistics.attempts  # type: ignore[attr-defined]
                raise self._source_error(error, request, attempts) from error
            except KeyError as error:
                if error.args != (401,):
                    raise
                # prawcore raises a bare KeyError for a 401 without ``www-authenticate``.
                attempts = attempt.retry_statistics.attempts  # type: ignore[attr-defined]
                raise self._source_error(error, request, attempts) from error

        return guarded

    def _source_error(
        self, error: BaseException, request: _Request, attempts: int
    ) -> RedditSourceError:
        status = http_status_of(error)
        name = request.subreddit
        if isinstance(
            error, prawcore.exceptions.OAuthException | prawcore.exceptions.InvalidToken
        ) or (status == 401):
            message = CREDENTIALS_MESSAGE
            if self._uses_password:
                message += " (and REDDIT_USERNAME / REDDIT_PASSWORD)"
            return RedditSourceError(
                message, permanent=True, status=401, subreddit=name, attempts=attempts
            )
        if isinstance(error, prawcore.exceptions.Forbidden | prawcore.exceptions.InsufficientScope):
            return RedditSourceError(
                f"Reddit refused access (403) to r/{name}: the subreddit is private or the app "
                "lacks the scope",
                permanent=True,
                status=403,
                subreddit=name,
                attempts=attempts,
            )
        if isinstance(error, prawcore.exceptions.NotFound | prawcore.exceptions.Redirect):
            message = f"r/{name} does not exist (404)"
            if request.kind == "comments":
                message = f"{request.description} do not exist (404)"
            return RedditSourceError(
                message, permanent=True, status=404, subreddit=name, attempts=attempts
            )
        transient = should_retry(error)
        if transient:
            message = (
                f"Reddit failed {request.description} {attempts} times in a row "
                f"(each attempt retried by prawcore up to {PRAWCORE_ATTEMPTS_PER_CALL} times); "
                f"giving up: {self._cause(error)}"
            )
        else:
            message = f"Reddit refused {request.description}: {self._cause(error)}"
        return RedditSourceError(
            message, permanent=not transient, status=status, subreddit=name, attempts=attempts
        )

    @staticmethod
    def _cause(error: BaseException) -> str:
        original = getattr(error, "original_exception", None)
        if isinstance(original, requests.Timeout):
            return f"Reddit did not answer in time ({type(original).__name__})"
        if isinstance(original, requests.ConnectionError):
            return f"could not connect to Reddit ({type(original).__name__})"
        return describe_failure(error)

    # --- rows -----------------------------------------------------------------------------------

    def _post_row(self, post: Any) -> dict[str, Any]:
        # vars(): attributes the listing delivered; getattr would fetch missing ones one by one.
        data = vars(post)
        return {
            "post_id": data.get("id"),
            "subreddit": _name(data.get("subreddit")),
            "author": _name(data.get("author")),
            "title": data.get("title"),
            "selftext": data.get("selftext"),
            "created_utc": data.get("created_utc"),
            "score": data.get("score"),
            "num_comments": data.get("num_comments"),
            "url": data.get("url"),
            "text_state": _post_text_state(data),
        }

    def _comment_row(self, comment: Any, post_id: str) -> dict[str, Any]:
        data = vars(comment)
        return {
            "comment_id": data.get("id"),
            "post_id": post_id,
            "subreddit": _name(data.get("subreddit")),
            "author": _name(data.get("author")),
            "body": data.get("body"),
            "created_utc": data.get("created_utc"),
            "score": data.get("score"),
            "text_state": text_state_of(pd.Series([data.get("body")])).iloc[0],
        }

    def _frame(
        self,
        rows: list[dict[str, Any]],
        columns: dict[str, str],
        start: pd.Timestamp,
        end: pd.Timestamp,
    ) -> pd.DataFrame:
        """Rows created in ``[start, end)``, in the raw layout, stamped with ``fetched_at``."""
        frame = pd.DataFrame(rows, columns=[name for name in columns if name != "fetched_at"])
        frame["created_utc"] = pd.to_datetime(
            pd.to_numeric(frame["created_utc"], errors="coerce"), unit="s", utc=True
        )
        in_range = (frame["created_utc"] >= start) & (frame["created_utc"] < end)
        frame = frame.loc[in_range.to_numpy()].assign(fetched_at=to_utc(self._now()))
        # Reddit's values as given: a bad one becomes a null that validation quarantines.
        return conform(frame, columns, lenient=True)


__all__ = [
    "CREDENTIALS_MESSAGE",
    "DEFAULT_COMMENT_LOOKBACK",
    "DEFAULT_MORE_COMMENTS_BUDGET",
    "DEFAULT_NEW_LISTING_MARGIN",
    "DEFAULT_TOP_POSTS_FOR_COMMENTS",
    "MAX_HTTP_ATTEMPTS_PER_REQUEST",
    "MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN",
    "MAX_TOKEN_REQUESTS_PER_REQUEST",
    "OLDER_POSTS_TO_STOP",
    "PRAWCORE_ATTEMPTS_PER_CALL",
    "RETRY_LAYER_ATTEMPTS",
    "LiveRedditSource",
    "RedditSourceError",
    "session_slices",
]
