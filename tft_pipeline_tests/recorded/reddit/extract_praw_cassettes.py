"""Extract the recorded Reddit answers the live-source tests serve, from praw's own test cassettes.

Usage: ``python extract_praw_cassettes.py <git dir of praw-dev/praw> [commit]``. It reads the
cassettes named below with ``git show``, keeps only the response bodies the tests need, drops
fields of each post/comment that neither praw nor the pipeline reads (see ``POST_FIELDS`` and
``COMMENT_FIELDS``; ``more`` stubs and listing envelopes are kept whole) and writes compact JSON
next to this file. ``SOURCES.md`` says what each file holds and which edits were made.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).parent
CASSETTES = "tests/integration/cassettes"
POST_FIELDS = (
    "id",
    "name",
    "subreddit",
    "author",
    "title",
    "selftext",
    "created_utc",
    "score",
    "num_comments",
    "url",
    "permalink",
    "is_self",
    "stickied",
    "edited",
    "removed_by_category",
)
COMMENT_FIELDS = (
    "id",
    "name",
    "parent_id",
    "link_id",
    "subreddit",
    "author",
    "body",
    "created_utc",
    "score",
    "edited",
    "replies",
)


def cassette(git_dir: str, commit: str, name: str) -> dict:
    text = subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"{commit}:{CASSETTES}/{name}.json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(text)


def trim(thing):
    """A Reddit JSON answer with only the needed fields of each t1/t3 (structure unchanged)."""
    if isinstance(thing, list):
        return [trim(item) for item in thing]
    if not isinstance(thing, dict):
        return thing
    kind = thing.get("kind")
    if kind == "Listing":
        data = dict(thing["data"])
        data["children"] = trim(data["children"])
        return {"kind": kind, "data": data}
    if kind == "t3":
        return {
            "kind": kind,
            "data": {k: thing["data"][k] for k in POST_FIELDS if k in thing["data"]},
        }
    if kind == "t1":
        data = {k: thing["data"][k] for k in COMMENT_FIELDS if k in thing["data"]}
        if isinstance(data.get("replies"), dict):
            data["replies"] = trim(data["replies"])
        return {"kind": kind, "data": data}
    if "json" in thing:  # /api/morechildren
        inner = dict(thing["json"])
        inner["data"] = {"things": trim(thing["json"]["data"]["things"])}
        return {"json": inner}
    return thing


def body(interaction: dict):
    return json.loads(interaction["response"]["body"]["string"])


def write(name: str, payload) -> None:
    (HERE / name).write_text(json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + "\n")


def main(git_dir: str, commit: str) -> None:
    # 1. A /new page whose order is not creation order (a post listed ~5 h late).
    record = cassette(git_dir, commit, "TestMultiredditListings.test_new")
    page = next(i for i in record["interactions"] if "/new" in i["request"]["uri"])
    write(
        "multireddit_new_page.json", {"recorded_at": page["recorded_at"], "page": trim(body(page))}
    )

    # 2. A comment tree with "load more comments" and "continue this thread" stubs, and every
    #    answer praw's replace_more(limit=None) got for it.
    record = cassette(git_dir, commit, "TestCommentForest.test_replace__all")
    tree: dict = {"recorded_at": None, "comments": {}, "morechildren": []}
    for interaction in record["interactions"]:
        request = interaction["request"]
        path = urlsplit(request["uri"]).path
        if path.startswith("/comments/"):
            tree["comments"][path.rstrip("/")] = trim(body(interaction))
            tree["recorded_at"] = tree["recorded_at"] or interaction["recorded_at"]
        elif path.startswith("/api/morechildren"):
            raw = request["body"]
            form = parse_qs(raw["string"] if isinstance(raw, dict) else raw)
            tree["morechildren"].append(
                {"children": form["children"][0].split(","), "answer": trim(body(interaction))}
            )
    write("tree_3hahrw.json", tree)

    # 3. Posts and comments as /api/info returned them, [deleted] and [removed] ones among them.
    record = cassette(git_dir, commit, "TestReddit.test_info")
    info = next(i for i in record["interactions"] if "/api/info" in i["request"]["uri"])
    # Subreddits (t5) among them are left out.
    things = [t for t in trim(body(info))["data"]["children"] if t["kind"] in ("t1", "t3")]
    write(
        "info_things.json",
        {"recorded_at": info["recorded_at"], "things": things},
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "HEAD")
