"""A fake Reddit API on 127.0.0.1 that real praw/prawcore talk to over plain HTTP.

It serves what ``LiveRedditSource`` uses, shaped like Reddit's answers:
- ``POST /api/v1/access_token`` (HTTP Basic client credentials, bearer token JSON);
- ``GET /r/<sub>/new`` newest first, ``limit`` (pages of at most 100) and ``after=t3_<id>``, the
  whole listing capped at ``listing_cap`` items like Reddit's ~1,000;
- ``GET /comments/<id>`` as ``[submission listing, comment listing]`` with nested replies.

Recorded answers (``recorded=RecordedAnswers(...)``, see ``tft_pipeline_tests/recorded/reddit``)
are served verbatim and take precedence: listing pages of ``/r/<sub>/new`` (the first page, then
the page after each page's ``after`` cursor; past the last recorded page an empty listing, as
Reddit answers at the end of a listing), ``GET /comments/<id>`` and ``/comments/<id>/_/<comment>``
("continue this thread"), and ``POST /api/morechildren`` (the answer recorded for the same
``children``; an unrecorded set answers 404 so a test cannot pass on an invented answer).
``posts`` may also hold Reddit's own ``{"kind": "t3", "data": {...}}`` things, served as they are.
An unknown subreddit answers 302 to ``/subreddits/search`` (what Reddit does), a private one 403, a
call without a token it issued 401 ``invalid_token``. Generous ``x-ratelimit-*`` headers keep
prawcore's own limiter from sleeping.

Faults are scripted per path pattern (a regex searched in the path): each request whose path matches
takes the next fault of the first matching non-empty queue, so ``[429, ok]`` or ``[503, 503, 503,
ok]`` play out request by request. Every request is recorded (method, path, query, Authorization
header) so tests count attempts at the server, where they really happen.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import pandas as pd

PAGE_CAP = 100
DEFAULT_LISTING_CAP = 1000
TOKEN_LIFETIME_SECONDS = 86_400
# remaining=1000, used=0: prawcore computes a zero wait from these (see prawcore.rate_limit).
GENEROUS_RATE_LIMIT_HEADERS = {
    "x-ratelimit-remaining": "1000",
    "x-ratelimit-used": "0",
    "x-ratelimit-reset": "600",
}


@dataclass(frozen=True)
class Fault:
    """One scripted answer: a status to send instead of the real one, and/or a delay before it.

    ``status=None`` serves the normal response (after ``delay_seconds``); ``drop`` closes the
    connection without answering.
    """

    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None
    delay_seconds: float = 0.0
    drop: bool = False

    @classmethod
    def ok(cls) -> Fault:
        return cls()

    @classmethod
    def too_many_requests(cls, retry_after: float | None = 2) -> Fault:
        headers = (("Retry-After", _number_text(retry_after)),) if retry_after is not None else ()
        return cls(status=429, headers=headers, body={"message": "Too Many Requests", "error": 429})

    @classmethod
    def server_error(cls, status: int = 503) -> Fault:
        return cls(status=status, body={"message": "Service Unavailable", "error": status})

    @classmethod
    def unauthorized(cls, invalid_token: bool = True) -> Fault:
        headers = (("www-authenticate", 'Bearer realm="reddit", error="invalid_token"'),)
        return cls(
            status=401,
            headers=headers if invalid_token else (),
            body={"message": "Unauthorized", "error": 401},
        )

    @classmethod
    def forbidden(cls) -> Fault:
        return cls(status=403, body={"message": "Forbidden", "error": 403, "reason": "private"})

    @classmethod
    def not_found(cls) -> Fault:
        return cls(status=404, body={"message": "Not Found", "error": 404})

    @classmethod
    def redirect_to_search(cls, name: str = "missing") -> Fault:
        return cls(status=302, headers=(("Location", f"/subreddits/search?q={name}"),), body="")

    @classmethod
    def oauth_error(cls, error: str = "invalid_grant") -> Fault:
        """Reddit's token endpoint answers some credential errors with 200 and an error body."""
        return cls(status=200, body={"error": error})

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """The normal answer, after ``seconds`` (longer than the client's timeout: a read timeout)."""
        return cls(delay_seconds=seconds)

    @classmethod
    def dropped(cls) -> Fault:
        """The connection is closed without an answer (the client sees a connection error)."""
        return cls(drop=True)


@dataclass(frozen=True)
class RequestRecord:
    """One request the fake received."""

    method: str
    path: str
    query: Mapping[str, str]
    authorization: str | None
    body: str


@dataclass(frozen=True)
class RecordedAnswers:
    """Reddit's own answers, to serve verbatim (keys: see the module docstring)."""

    listings: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # subreddit -> pages
    comments: Mapping[str, Any] = field(default_factory=dict)  # "/comments/<id>[/_/<c>]" -> answer
    morechildren: Sequence[tuple[Sequence[str], Any]] = ()  # (children ids, answer)

    def merged(self, other: RecordedAnswers) -> RecordedAnswers:
        return RecordedAnswers(
            listings={**self.listings, **other.listings},
            comments={**self.comments, **other.comments},
            morechildren=(*self.morechildren, *other.morechildren),
        )


@dataclass
class _State:
    posts_by_subreddit: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    posts_by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments_by_post: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    more_stub_posts: set[str] = field(default_factory=set)
    private_subreddits: set[str] = field(default_factory=set)
    faults: list[tuple[re.Pattern[str], list[Fault]]] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)
    issued_tokens: set[str] = field(default_factory=set)


class FakeReddit:
    """A threaded fake Reddit on ``127.0.0.1:<free port>``; use as a context manager.

    ``posts`` and ``comments`` are dicts or DataFrames with the raw table's column names
    (``post_id``/``comment_id`` may also be ``id``); ``created_utc`` is epoch seconds or a timestamp
    (naive = UTC). A comment's parent is ``parent_id`` (``t1_<id>`` or ``t3_<id>``), by default the
    post. ``client_id``/``client_secret``, when given, are checked at the token endpoint (401 when
    wrong, like Reddit).
    """

    def __init__(
        self,
        posts: Iterable[Mapping[str, Any]] | pd.DataFrame = (),
        comments: Iterable[Mapping[str, Any]] | pd.DataFrame = (),
        *,
        subreddits: Iterable[str] = (),
        private_subreddits: Iterable[str] = (),
        listing_cap: int = DEFAULT_LISTING_CAP,
        client_id: str | None = None,
        client_secret: str | None = None,
        more_stub_posts: Iterable[str] = (),
        recorded: RecordedAnswers | None = None,
    ) -> None:
        self.listing_cap = listing_cap
        self.recorded = recorded or RecordedAnswers()
        self._recorded_listings = {
            name.lower(): list(pages) for name, pages in self.recorded.listings.items()
        }
        self._client_id = client_id
        self._client_secret = client_secret
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._state = _State(
            private_subreddits={name.lower() for name in private_subreddits},
            more_stub_posts=set(more_stub_posts),
        )
        self._token_counter = 0
        for name in [*subreddits, *self._recorded_listings]:
            self._state.posts_by_subreddit.setdefault(name.lower(), [])
        self._seed(_records(posts), _records(comments))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        fake = self

        class Handler(_Handler):
            owner = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting and inspection ---------------------------------------------------------------

    def script(self, path_pattern: str, faults: Sequence[Fault]) -> None:
        """Requests whose path matches ``path_pattern`` (``re.search``) get ``faults`` in order."""
        with self._lock:
            self._state.faults.append((re.compile(path_pattern), list(faults)))

    def clear_faults(self) -> None:
        with self._lock:
            self._state.faults.clear()

    def pending_faults(self) -> int:
        with self._lock:
            return sum(len(queue) for _, queue in self._state.faults)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._state.requests)

    def count(self, path_pattern: str = "", method: str | None = None) -> int:
        """How many requests matched ``path_pattern`` (``re.search``) and ``method``."""
        pattern = re.compile(path_pattern)
        return sum(
            1
            for record in self.requests
            if pattern.search(record.path) and (method is None or record.method == method)
        )

    def token_requests(self) -> int:
        return self.count(r"^/api/v1/access_token$", method="POST")

    def issued_tokens(self) -> set[str]:
        with self._lock:
            return set(self._state.issued_tokens)

    def authorization_headers(self) -> list[tuple[str, str | None]]:
        """``(path, Authorization header)`` of every request, to check where secrets travel."""
        return [(record.path, record.authorization) for record in self.requests]

    # --- seeding ---------------------------------------------------------------------------------

    def _seed(self, posts: list[dict[str, Any]], comments: list[dict[str, Any]]) -> None:
        comment_counts: dict[str, int] = {}
        for raw in comments:
            comment = _comment_json(raw)
            post_id = comment["link_id"].removeprefix("t3_")
            self._state.comments_by_post.setdefault(post_id, []).append(comment)
            comment_counts[post_id] = comment_counts.get(post_id, 0) + 1
        for raw in posts:
            verbatim = raw.get("kind") == "t3"
            post = dict(raw["data"]) if verbatim else _post_json(raw, comment_counts)
            self._state.posts_by_subreddit.setdefault(post["subreddit"].lower(), []).append(post)
            self._state.posts_by_id[post["id"]] = post
        for listing in self._state.posts_by_subreddit.values():
            # Newest first, like /new; ids break ties the way Reddit's increasing ids would.
            listing.sort(key=lambda post: (post["created_utc"], _base36(post["id"])), reverse=True)

    # --- request handling (called from server threads) -----------------------------------------

    def _record_and_take_fault(self, record: RequestRecord) -> Fault | None:
        with self._lock:
            self._state.requests.append(record)
            for pattern, queue in self._state.faults:
                if queue and pattern.search(record.path):
                    return queue.pop(0)
        return None

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _token_response(self, record: RequestRecord) -> tuple[int, dict[str, str], Any]:
        if self._client_id is not None or self._client_secret is not None:
            expected = f"{self._client_id or ''}:{self._client_secret or ''}"
            given = _basic_credentials(record.authorization)
            if given != expected:
                return 401, {}, {"message": "Unauthorized", "error": 401}
        with self._lock:
            self._token_counter += 1
            token = f"fake-access-token-{self._token_counter:04d}"
            self._state.issued_tokens.add(token)
        body = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "scope": "*",
        }
        return 200, {}, body

    def _api_response(self, record: RequestRecord) -> tuple[int, dict[str, str], Any]:
        token = (record.authorization or "").removeprefix("bearer ").strip()
        with self._lock:
            token_ok = token in self._state.issued_tokens
        if not token_ok:
            return (
                401,
                dict(Fault.unauthorized().headers),
                {"message": "Unauthorized", "error": 401},
            )
        if record.method == "POST":
            if record.path.rstrip("/") == "/api/morechildren":
                return self._morechildren_response(record.body)
            return 404, {}, {"message": "Not Found", "error": 404}
        listing_match = re.fullmatch(r"/r/([^/]+)/new/?", record.path)
        if listing_match:
            name = listing_match.group(1).lower()
            if name in self._recorded_listings:
                return self._recorded_listing_response(name, record.query)
            return self._listing_response(listing_match.group(1), record.query)
        recorded_tree = self.recorded.comments.get(record.path.rstrip("/"))
        if recorded_tree is not None:
            return 200, {}, recorded_tree
        comments_match = re.fullmatch(r"/comments/([^/]+)/?", record.path)
        if comments_match:
            return self._comments_response(comments_match.group(1))
        return 404, {}, {"message": "Not Found", "error": 404}

    def _recorded_listing_response(
        self, name: str, query: Mapping[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        pages = self._recorded_listings[name]
        after = query.get("after")
        index = 0
        if after:
            cursors = [page["data"]["after"] for page in pages]
            index = cursors.index(after) + 1 if after in cursors else len(pages)
        if index < len(pages):
            return 200, {}, pages[index]
        return 200, {}, _listing([])

    def _morechildren_response(self, form_body: str) -> tuple[int, dict[str, str], Any]:
        form = {key: values[-1] for key, values in parse_qs(form_body).items()}
        wanted = set(form.get("children", "").split(","))
        for children, answer in self.recorded.morechildren:
            if set(children) == wanted:
                return 200, {}, answer
        return 404, {}, {"message": "no recorded answer for these children", "error": 404}

    def _listing_response(
        self, subreddit: str, query: Mapping[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        key = subreddit.lower()
        if key in self._state.private_subreddits:
            return 403, {}, {"message": "Forbidden", "error": 403, "reason": "private"}
        if key not in self._state.posts_by_subreddit:
            return 302, {"Location": f"/subreddits/search?q={subreddit}"}, ""
        listing = self._state.posts_by_subreddit[key][: self.listing_cap]
        page_size = max(1, min(int(query.get("limit", 25)), PAGE_CAP))
        start = 0
        after = query.get("after")
        if after:
            ids = [post["name"] for post in listing]
            # An unknown cursor yields an empty page, as on Reddit.
            start = ids.index(after) + 1 if after in ids else len(listing)
        page = listing[start : start + page_size]
        more = start + page_size < len(listing)
        body = {
            "kind": "Listing",
            "data": {
                "after": page[-1]["name"] if page and more else None,
                "before": None,
                "dist": len(page),
                "modhash": "",
                "children": [{"kind": "t3", "data": dict(post)} for post in page],
            },
        }
        return 200, {}, body

    def _comments_response(self, post_id: str) -> tuple[int, dict[str, str], Any]:
        post = self._state.posts_by_id.get(post_id)
        if post is None:
            return 404, {}, {"message": "Not Found", "error": 404}
        comments = [
            {**comment, "subreddit": comment["subreddit"] or post["subreddit"]}
            for comment in self._state.comments_by_post.get(post_id, [])
        ]
        tree = _comment_tree(comments, post["name"])
        if post_id in self._state.more_stub_posts:
            tree.append(
                {
                    "kind": "more",
                    "data": {
                        "count": 7,
                        "name": "t1_zzzzzz",
                        "id": "zzzzzz",
                        "parent_id": post["name"],
                        "depth": 0,
                        "children": ["zzzzzz"],
                    },
                }
            )
        submission_listing = _listing([{"kind": "t3", "data": dict(post)}])
        return 200, {}, [submission_listing, _listing(tree)]


class _Handler(BaseHTTPRequestHandler):
    owner: FakeReddit
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        """Silent: tests inspect ``FakeReddit.requests`` instead."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        record = RequestRecord(
            method=method,
            path=split.path,
            query={key: values[-1] for key, values in parse_qs(split.query).items()},
            authorization=self.headers.get("Authorization"),
            body=body,
        )
        fault = self.owner._record_and_take_fault(record)
        if fault is not None and fault.delay_seconds:
            self.owner._wait(fault.delay_seconds)
        if fault is not None and fault.drop:
            self.close_connection = True
            return
        if fault is not None and fault.status is not None:
            status, headers, payload = fault.status, dict(fault.headers), fault.body
        elif method == "POST" and split.path == "/api/v1/access_token":
            status, headers, payload = self.owner._token_response(record)
        elif method in ("GET", "POST"):
            status, headers, payload = self.owner._api_response(record)
        else:
            status, headers, payload = 405, {}, {"message": "Method Not Allowed", "error": 405}
        self._send(status, headers, payload)

    def _send(self, status: int, headers: Mapping[str, str], payload: Any) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            for name, value in {**GENEROUS_RATE_LIMIT_HEADERS, **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (read timeout): nothing left to answer


def closed_port_url() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- JSON shaping -------------------------------------------------------------------------------


def _records(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> list[dict[str, Any]]:
    if isinstance(rows, pd.DataFrame):
        return rows.astype(object).where(rows.notna(), None).to_dict("records")
    return [dict(row) for row in rows]


def _epoch_seconds(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.timestamp()


def _number_text(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def _base36(identifier: str) -> int:
    try:
        return int(identifier, 36)
    except ValueError:
        return 0


def _post_json(raw: Mapping[str, Any], comment_counts: Mapping[str, int]) -> dict[str, Any]:
    post_id = str(raw.get("post_id") or raw["id"]).removeprefix("t3_")
    subreddit = str(raw["subreddit"])
    author = raw.get("author")
    num_comments = raw.get("num_comments")
    if num_comments is None:
        num_comments = comment_counts.get(post_id, 0)
    return {
        "id": post_id,
        "name": f"t3_{post_id}",
        "subreddit": subreddit,
        "subreddit_name_prefixed": f"r/{subreddit}",
        "author": author if author is not None else "[deleted]",
        "title": raw.get("title", ""),
        "selftext": raw.get("selftext", ""),
        "created_utc": _epoch_seconds(raw["created_utc"]),
        "score": int(raw.get("score") or 0),
        "num_comments": int(num_comments),
        "url": raw.get("url") or f"https://www.reddit.com/r/{subreddit}/comments/{post_id}/",
        "permalink": f"/r/{subreddit}/comments/{post_id}/",
        "is_self": True,
    }


def _comment_json(raw: Mapping[str, Any]) -> dict[str, Any]:
    comment_id = str(raw.get("comment_id") or raw["id"]).removeprefix("t1_")
    post_id = str(raw["post_id"]).removeprefix("t3_")
    author = raw.get("author")
    return {
        "id": comment_id,
        "name": f"t1_{comment_id}",
        "link_id": f"t3_{post_id}",
        "parent_id": raw.get("parent_id") or f"t3_{post_id}",
        "subreddit": raw.get("subreddit") or "",
        "author": author if author is not None else "[deleted]",
        "body": raw.get("body", ""),
        "created_utc": _epoch_seconds(raw["created_utc"]),
        "score": int(raw.get("score") or 0),
    }


def _listing(children: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "Listing",
        "data": {"after": None, "before": None, "dist": None, "modhash": "", "children": children},
    }


def _comment_tree(comments: list[dict[str, Any]], root_name: str) -> list[dict[str, Any]]:
    """Nest flat comments under their parents, as Reddit's ``replies`` listings."""
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for comment in comments:
        by_parent.setdefault(comment["parent_id"], []).append(comment)

    def build(parent_name: str) -> list[dict[str, Any]]:
        children = []
        for comment in by_parent.get(parent_name, []):
            replies = build(comment["name"])
            data = {**comment, "replies": _listing(replies) if replies else ""}
            children.append({"kind": "t1", "data": data})
        return children

    return build(root_name)


def _basic_credentials(authorization: str | None) -> str | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        return base64.b64decode(authorization.split(" ", 1)[1]).decode()
    except ValueError:
        return None
