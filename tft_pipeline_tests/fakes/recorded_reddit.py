"""Reddit's own recorded answers (from praw's test cassettes), ready for ``FakeReddit``.

Where each file comes from and what was trimmed: ``tft_pipeline_tests/recorded/reddit/SOURCES.md``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from tft_pipeline_tests.fakes.fake_reddit import RecordedAnswers

RECORDED_DIR = Path(__file__).resolve().parents[1] / "recorded" / "reddit"
PRAW_REPOSITORY = "praw-dev/praw"
PRAW_COMMIT = "7b69758126d5a105ab7083ee49a3f6f400963ca9"


@cache
def _load(name: str) -> Any:
    return json.loads((RECORDED_DIR / name).read_text())


def new_page() -> dict[str, Any]:
    """One ``/new`` page of 100 posts (a multireddit, 2016-07-17), as Reddit listed them."""
    return _load("multireddit_new_page.json")["page"]


def new_listing(subreddit: str) -> RecordedAnswers:
    """``new_page()`` served as ``/r/<subreddit>/new`` (an empty page after it)."""
    return RecordedAnswers(listings={subreddit: [new_page()]})


def tree_answers() -> RecordedAnswers:
    """Post 3hahrw (r/funny, 543 comments): its tree, every "more" answer, every continued thread."""
    tree = _load("tree_3hahrw.json")
    return RecordedAnswers(
        comments=tree["comments"],
        morechildren=[(item["children"], item["answer"]) for item in tree["morechildren"]],
    )


def tree_post() -> dict[str, Any]:
    """Post 3hahrw as a ``t3`` thing, from its own comments answer."""
    return _load("tree_3hahrw.json")["comments"]["/comments/3hahrw"][0]["data"]["children"][0]


def tree_comments() -> list[dict[str, Any]]:
    """Every comment (``t1`` data) in the recorded answers of 3hahrw, nested ones included."""
    found: dict[str, dict[str, Any]] = {}

    def walk(things: list[dict[str, Any]]) -> None:
        for thing in things:
            if thing["kind"] != "t1":
                continue
            found.setdefault(thing["data"]["id"], thing["data"])
            replies = thing["data"].get("replies")
            if isinstance(replies, dict):
                walk(replies["data"]["children"])

    tree = _load("tree_3hahrw.json")
    for answer in tree["comments"].values():
        walk(answer[1]["data"]["children"])
    for item in tree["morechildren"]:
        walk(item["answer"]["json"]["data"]["things"])
    return list(found.values())


def info_things(kind: str) -> list[dict[str, Any]]:
    """Posts (``t3``) or comments (``t1``) as ``/api/info`` returned them (2016-11-17)."""
    return [thing for thing in _load("info_things.json")["things"] if thing["kind"] == kind]


def info_listing(subreddit: str) -> RecordedAnswers:
    """The ``/api/info`` posts as one ``/r/<subreddit>/new`` page: newest first, like ``/new``."""
    posts = sorted(
        info_things("t3"),
        key=lambda thing: (thing["data"]["created_utc"], int(thing["data"]["id"], 36)),
        reverse=True,
    )
    page = {
        "kind": "Listing",
        "data": {
            "after": None,
            "before": None,
            "dist": len(posts),
            "modhash": "",
            "children": posts,
        },
    }
    return RecordedAnswers(listings={subreddit: [page]})
