"""The sample market's realistic dirt: repeated, corrected and broken fetches at documented rates.

Dirt only ever adds rows. The true row of every key stays in the frame, and validation (reject
invalid rows first, then keep the most recently fetched valid row per key) gets it back:
- an invalid extra row (bad price, missing title, empty body, malformed symbol) is rejected;
- a valid repeat carries the same values, or a valid correction that is the truth (a corrected
  price bar, an edited post with its new score and comment count) and is fetched later.
Each rate is the chance that one true row gets that kind of extra row, independently per kind.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tft_pipeline.sample_market import text
from tft_pipeline.sample_market.ids import (
    COMMENT_ID_BASE,
    COMMENT_ID_STRIDE,
    SHELL_ID_OFFSET,
    base36,
)
from tft_pipeline.sample_market.randomness import Stream, generator, hashed_uniforms, ticker_key
from tft_pipeline.sample_market.span import calendar_closes_ns, calendar_sessions

PRICE_DIRT_RATES: dict[str, float] = {
    "repeat_fetch": 0.015,  # the same bar fetched again later, identical
    "corrected_refetch": 0.01,  # a preliminary first fetch (partial volume, early close), then the final bar
    "non_positive_price": 0.005,  # a broken extra fetch with a zero or negative open, low or close
    "high_below_low": 0.005,  # a broken extra fetch with high and low crossed
    "nan_volume": 0.005,  # a broken extra fetch without volume
    "malformed_symbol": 0.005,  # an extra fetch under a mangled symbol: "AAPL!", "" or "aapl1"
}
POST_DIRT_RATES: dict[str, float] = {
    "repeat_fetch": 0.02,  # the same post fetched again later, identical
    "edited_refetch": 0.02,  # fetched again after an edit: new selftext, score and num_comments
    "missing_title": 0.01,  # a broken extra fetch with no title
}
COMMENT_DIRT_RATES: dict[str, float] = {
    "duplicate_fetch": 0.02,  # the same comment fetched again later (score may have moved)
    "empty_body": 0.01,  # shells of removed comments: own id, empty body, no author
}

_NS_PER_S = 1_000_000_000
_MINUTE = 60 * _NS_PER_S
_HOUR = 60 * _MINUTE


def _later(rng: np.random.Generator, count: int, low_ns: int, high_ns: int) -> np.ndarray:
    return (
        rng.integers(low_ns // _NS_PER_S, high_ns // _NS_PER_S, count).astype(np.int64) * _NS_PER_S
    )


def _shift(values: pd.Series, delay_ns: np.ndarray) -> np.ndarray:
    return (values.to_numpy(dtype="datetime64[ns]").astype(np.int64) + delay_ns).astype(
        "datetime64[ns]"
    )


# --------------------------------------------------------------------------------------------
# prices: draws are counter-based per (ticker, session), so a bar's dirt never depends on the range
# --------------------------------------------------------------------------------------------


def add_price_dirt(bars: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``bars`` (true bars) plus their dirt rows."""
    bars = bars.reset_index(drop=True)
    keys_by_ticker = {t: ticker_key(t) for t in pd.unique(bars["ticker"])}
    keys = bars["ticker"].map(keys_by_ticker).to_numpy(dtype=np.int64)
    ordinals = calendar_sessions().get_indexer(bars["session_date"]).astype(np.int64)

    def uniforms(slot: int) -> np.ndarray:
        return hashed_uniforms(seed, Stream.PRICE_DIRT, keys * 64 + slot, ordinals)

    def delay(slot: int, low_ns: int, high_ns: int) -> np.ndarray:
        seconds = low_ns // _NS_PER_S + (uniforms(slot) * ((high_ns - low_ns) // _NS_PER_S)).astype(
            np.int64
        )
        return seconds * _NS_PER_S

    extras: list[pd.DataFrame] = []
    hit = {kind: uniforms(i) < rate for i, (kind, rate) in enumerate(PRICE_DIRT_RATES.items())}

    repeat = bars[hit["repeat_fetch"]].copy()
    repeat["fetched_at"] = _shift(
        repeat["fetched_at"], delay(10, 30 * _MINUTE, 6 * _HOUR)[hit["repeat_fetch"]]
    )
    extras.append(repeat)

    # A correction: the true bar is fetched later; the first fetch held a preliminary bar whose
    # close sits inside the day's range and whose volume was still partial (valid, but stale).
    corrected = hit["corrected_refetch"]
    later = delay(11, 1 * _HOUR, 6 * _HOUR)
    preliminary = bars[corrected].copy()
    share = 0.7 + 0.25 * uniforms(12)[corrected]
    preliminary["volume"] = np.floor(preliminary["volume"].to_numpy() * share)
    position = uniforms(13)[corrected]
    factor = np.where(preliminary["close"].to_numpy() >= 1.0, 100.0, 10_000.0)
    low, high = preliminary["low"].to_numpy(), preliminary["high"].to_numpy()
    early_close = np.clip(np.round((low + (high - low) * position) * factor) / factor, low, high)
    preliminary["close"] = early_close
    preliminary["adj_close"] = early_close
    bars.loc[corrected, "fetched_at"] = _shift(bars.loc[corrected, "fetched_at"], later[corrected])
    extras.append(preliminary)

    broken_delay = delay(14, 5 * _MINUTE, 3 * _HOUR)

    bad_price = bars[hit["non_positive_price"]].copy()
    column = np.array(["open", "low", "close"])[
        (uniforms(15)[hit["non_positive_price"]] * 3).astype(int)
    ]
    negate = uniforms(16)[hit["non_positive_price"]] < 0.5
    for name in ("open", "low", "close"):
        chosen = column == name
        values = bad_price[name].to_numpy().copy()
        values[chosen] = np.where(negate[chosen], -values[chosen], 0.0)
        bad_price[name] = values
    bad_price["adj_close"] = bad_price["close"]
    extras.append(bad_price)

    crossed = bars[hit["high_below_low"]].copy()
    true_high, true_low = crossed["high"].to_numpy(), crossed["low"].to_numpy()
    crossed["high"], crossed["low"] = true_low * 0.99, true_high * 1.01
    extras.append(crossed)

    no_volume = bars[hit["nan_volume"]].copy()
    no_volume["volume"] = np.nan
    extras.append(no_volume)

    mangled = bars[hit["malformed_symbol"]].copy()
    style = (uniforms(17)[hit["malformed_symbol"]] * 3).astype(int)
    symbols = mangled["ticker"].to_numpy(dtype=object)
    mangled["ticker"] = np.select(
        [style == 0, style == 1],
        [text.concat(symbols, "!"), np.full(len(symbols), "", dtype=object)],
        text.concat(np.array([s.lower() for s in symbols], dtype=object), "1"),
    )
    extras.append(mangled)

    for frame, kind in zip(
        extras[2:], ("non_positive_price", "high_below_low", "nan_volume", "malformed_symbol")
    ):
        frame["fetched_at"] = _shift(frame["fetched_at"], broken_delay[hit[kind]])
    return pd.concat([bars, *extras], ignore_index=True)


# --------------------------------------------------------------------------------------------
# Reddit: one generator per (seed, session), over that session's rows in their fixed order
# --------------------------------------------------------------------------------------------


def add_post_dirt(
    posts: pd.DataFrame, chatters: list, seed: int, stream: Stream = Stream.POST_DIRT
) -> pd.DataFrame:
    """``posts`` (true posts, in the order of ``chatters``) plus their dirt rows.

    ``stream`` keys the draws: each kind of chatter (ordinary, catalyst) has its own, so adding
    one kind never moves the other's dirt.
    """
    posts = posts.reset_index(drop=True)
    repeat_rows, repeat_delay = [], []
    edit_rows, edit_delay, edit_counts, edit_growth, edit_note = [], [], [], [], []
    broken_rows, broken_delay = [], []
    offset = 0
    for chatter in chatters:
        count = len(chatter.post_id)
        if count == 0:  # nothing to dirty (most sessions have no catalyst posts)
            continue
        rng = generator(seed, stream, chatter.ordinal)
        draws = rng.random((count, len(POST_DIRT_RATES)))
        repeat = np.flatnonzero(draws[:, 0] < POST_DIRT_RATES["repeat_fetch"])
        edited = np.flatnonzero(draws[:, 1] < POST_DIRT_RATES["edited_refetch"])
        broken = np.flatnonzero(draws[:, 2] < POST_DIRT_RATES["missing_title"])

        repeat_rows.append(offset + repeat)
        repeat_delay.append(_later(rng, len(repeat), 10 * _MINUTE, 6 * _HOUR))

        later = _later(rng, len(edited), 2 * _HOUR, 20 * _HOUR)
        refetched_at = np.full(count, np.iinfo(np.int64).min)
        refetched_at[edited] = chatter.post_fetched[edited] + later
        # The comment count at the re-fetch includes late comments that arrived in the meantime.
        counted = chatter.comment_created < refetched_at[chatter.comment_post]
        edit_counts.append(np.bincount(chatter.comment_post[counted], minlength=count)[edited])
        edit_rows.append(offset + edited)
        edit_delay.append(later)
        edit_growth.append(rng.uniform(1.2, 3.0, len(edited)))
        edit_note.append(rng.integers(0, len(text.EDITS), len(edited)))

        broken_rows.append(offset + broken)
        broken_delay.append(_later(rng, len(broken), 5 * _MINUTE, 3 * _HOUR))
        offset += count

    repeats = posts.iloc[np.concatenate(repeat_rows)].copy()
    repeats["fetched_at"] = _shift(repeats["fetched_at"], np.concatenate(repeat_delay))

    edits = posts.iloc[np.concatenate(edit_rows)].copy()
    edits["fetched_at"] = _shift(edits["fetched_at"], np.concatenate(edit_delay))
    edits["selftext"] = text.concat(
        edits["selftext"].to_numpy(dtype=object), text.EDITS[np.concatenate(edit_note)]
    )
    edits["score"] = np.round(edits["score"].to_numpy() * np.concatenate(edit_growth)) + 1.0
    edits["num_comments"] = np.concatenate(edit_counts).astype(np.float64)

    broken = posts.iloc[np.concatenate(broken_rows)].copy()
    broken["fetched_at"] = _shift(broken["fetched_at"], np.concatenate(broken_delay))
    broken["title"] = None
    return pd.concat([posts, repeats, edits, broken], ignore_index=True)


def add_comment_dirt(
    comments: pd.DataFrame,
    seed: int,
    stream: Stream = Stream.COMMENT_DIRT,
    shell_id_offset: int = SHELL_ID_OFFSET,
) -> pd.DataFrame:
    """``comments`` (true comments, sorted by session, time and id) plus their dirt rows.

    ``stream`` and ``shell_id_offset`` belong to the kind of chatter (ordinary, catalyst), so each
    kind's dirt and shell ids are its own.
    """
    comments = comments.reset_index(drop=True)
    ordinals = calendar_sessions().get_indexer(comments["session_date"])
    boundaries = np.flatnonzero(np.diff(ordinals)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(comments)]])
    created = comments["created_utc"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    closes = calendar_closes_ns()

    duplicate_rows, duplicate_delay, duplicate_votes = [], [], []
    shell_template, shell_created, shell_ids, shell_fetched = [], [], [], []
    for start, end in zip(starts, ends):
        ordinal = int(ordinals[start])
        count = end - start
        rng = generator(seed, stream, ordinal)
        duplicated = np.flatnonzero(rng.random(count) < COMMENT_DIRT_RATES["duplicate_fetch"])
        duplicate_rows.append(start + duplicated)
        duplicate_delay.append(_later(rng, len(duplicated), 10 * _MINUTE, 6 * _HOUR))
        duplicate_votes.append(rng.integers(0, 4, len(duplicated)))

        shells = int(rng.binomial(count, COMMENT_DIRT_RATES["empty_body"]))
        template = start + rng.integers(0, count, shells)
        # A shell replies to the same post as its template, later than it, inside the same window.
        room = closes[ordinal] - created[template]
        shell_template.append(template)
        shell_created.append(created[template] + (rng.random(shells) * room).astype(np.int64))
        shell_ids.append(
            COMMENT_ID_BASE + ordinal * COMMENT_ID_STRIDE + shell_id_offset + np.arange(shells)
        )
        shell_fetched.append(closes[ordinal] + _later(rng, shells, 1 * _MINUTE, 10 * _MINUTE))

    duplicates = comments.iloc[np.concatenate(duplicate_rows)].copy()
    duplicates["fetched_at"] = _shift(duplicates["fetched_at"], np.concatenate(duplicate_delay))
    duplicates["score"] = duplicates["score"].to_numpy() + np.concatenate(duplicate_votes)

    shells = comments.iloc[np.concatenate(shell_template)].copy()
    shells["comment_id"] = base36(np.concatenate(shell_ids))
    shells["created_utc"] = np.concatenate(shell_created).astype("datetime64[ns]")
    shells["fetched_at"] = np.concatenate(shell_fetched).astype("datetime64[ns]")
    shells["body"] = ""
    shells["author"] = None
    shells["score"] = 1.0
    return pd.concat([comments, duplicates, shells], ignore_index=True)
