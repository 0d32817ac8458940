"""Ticker mentions in Reddit posts and comments, with each source's sentiment (pure, no Dagster).

A mention is either a cashtag (``$NVDA``; any case after the ``$``) or a bare symbol: an upper-case
whole word that is in the universe (``NVDA``, not ``nvda`` or ``NVDAX``). Upper-case words that are
also ordinary words or Reddit jargon (``IT``, ``ALL``, ``ON``, ``DD``, ``CEO``) and every one-letter
symbol (``C``, ``V``, ``F``) are far more often not the stock, so they count only as cashtags.
Extraction runs one compiled regex over the whole text column (``str.extractall``) and filters the
matches with vectorized lookups: no Python loop per text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd

from tft_pipeline.features.catalysts import catalyst_direction
from tft_pipeline.features.sentiment import score_sentiment
from tft_pipeline.tables import empty_frame, is_removed_text

TICKER_MENTION_COLUMNS: dict[str, str] = {
    "source_id": "object",  # post_id or comment_id
    "source_type": "object",  # "post" | "comment"
    "ticker": "object",
    "session_date": "datetime64[ns]",
    "author": "object",
    "created_utc": "datetime64[ns]",
    "score": "int64",
    "mention_kind": "object",  # "cashtag" | "symbol"
    "sentiment": "float64",  # VADER compound of the source's text, trading lexicon included
    # +1 / -1 when the source's text uses bullish / bearish catalyst vocabulary (FDA approval,
    # buyback, guidance cut, offering...), else 0: see tft_pipeline.features.catalysts.
    "catalyst": "int8",
}

# Words that look like tickers but in upper case usually are not one. A symbol on this list (or any
# one-letter symbol) is only taken as a cashtag. Words not in the universe need no entry: a bare
# word only ever matches a universe symbol. The list covers ordinary English words that are listed
# symbols (ALL, IT, ON, NOW, KEY, LOW...), Reddit and finance jargon (DD, YOLO, CEO, EPS, ATH, IV,
# OTM...) and the ambiguous names of the bundled universe (MA, MS, HD, BA, DIS, COST).
AMBIGUOUS_SYMBOLS: frozenset[str] = frozenset(
    """
    A I AM AN AS AT BE BY DO GO HE IF IN IS IT ME MY NO OF OH OK ON OR SO TO UP US WE
    ALL AND ANY ARE BIG BUT CAN FOR FUN HAS HOW NEW NOT NOW ONE OUT OWN SEE THE TOO TWO WHO WHY YOU
    BEST CASH CASE EDGE EVER FAST FREE GOOD HIGH HOLD HOPE HUGE JUST KEY LIFE LOVE LOW MAN NICE
    OPEN PEAK PLAY PLUS POST REAL RUN SAFE TRUE VERY WELL WOW NEXT ROCK SUN FLY EAT ELSE
    BUY SELL CALL CALLS PUT PUTS LONG SHORT MOON GAIN LOSS BULL BEAR PUMP DUMP RIP
    DD YOLO FOMO HODL FD FDS TLDR TL DR EDIT IMO IMHO LOL LMAO OMG WTF WSB RH OP OG GG
    CEO CFO CTO COO IPO ETF SEC FED FOMC CPI PPI GDP PE EPS ER PT TA ATH ATL ATM OTM ITM IV DTE
    EOD EOW EOY YTD YOY QOQ ROI USD EUR GBP USA UK EU UN IRS AH PM PR API AI AR VR EV TV PC CPU GPU
    ML LLM SPAC NFT EST PST UTC DM
    MA MS HD BA DIS COST
    """.split()  # noqa: SIM905 - a word list reads better as words
)

# Cashtag: "$" then 1-5 letters of any case, optional class suffix (BRK.B, BF-B). Bare symbol: 1-5
# upper-case letters with the same suffix, as a whole word not glued to "$" or a word character.
MENTION_PATTERN: re.Pattern[str] = re.compile(
    r"(?<![\w$])\$(?P<cashtag>[A-Za-z]{1,5}(?:[.\-][A-Za-z]{1,2})?)(?![\w$])"
    r"|(?<![\w$])(?P<symbol>[A-Z]{1,5}(?:[.\-][A-Z]{1,2})?)(?![\w$])"
)


def _canonical(symbols: pd.Series) -> pd.Series:
    """Upper case with "-" class separators as "." so BF-B in text matches BF.B in the universe."""
    return symbols.str.upper().str.replace("-", ".", regex=False)


def _readable(texts: pd.Series, state: pd.Series | None = None) -> pd.Series:
    """``texts`` as strings, with Reddit's ``[deleted]``/``[removed]`` placeholders (and any text
    whose row says ``text_state`` deleted/removed) as empty strings: not text anyone wrote."""
    text = texts.fillna("").astype(str)
    gone = is_removed_text(text)
    if state is not None:
        gone |= state.fillna("present").astype(str).isin(("deleted", "removed"))
    return text.where(~gone, "")


def _source_texts(posts: pd.DataFrame, comments: pd.DataFrame) -> pd.DataFrame:
    """One row per post and comment: its id, type, metadata and the text to scan.

    A removed or deleted body is left out of the text (the row stays: it existed and counts); a
    post's title stays unless it is itself a placeholder.
    """
    post_state = posts["text_state"] if "text_state" in posts.columns else None
    comment_state = comments["text_state"] if "text_state" in comments.columns else None
    post_text = _readable(posts["title"]) + "\n\n" + _readable(posts["selftext"], post_state)
    post_rows = pd.DataFrame(
        {
            "source_id": posts["post_id"].to_numpy(dtype=object),
            "source_type": "post",
            "session_date": posts["session_date"].to_numpy(),
            "author": posts["author"].to_numpy(dtype=object),
            "created_utc": posts["created_utc"].to_numpy(),
            "score": posts["score"].to_numpy(),
            "text": post_text.to_numpy(dtype=object),
        }
    )
    comment_rows = pd.DataFrame(
        {
            "source_id": comments["comment_id"].to_numpy(dtype=object),
            "source_type": "comment",
            "session_date": comments["session_date"].to_numpy(),
            "author": comments["author"].to_numpy(dtype=object),
            "created_utc": comments["created_utc"].to_numpy(),
            "score": comments["score"].to_numpy(),
            "text": _readable(comments["body"], comment_state).to_numpy(dtype=object),
        }
    )
    frames = [frame for frame in (post_rows, comment_rows) if not frame.empty]
    if not frames:
        return post_rows.iloc[0:0]
    return pd.concat(frames, ignore_index=True)


def find_mentions(
    texts: pd.Series,
    universe: Sequence[str],
    ambiguous_symbols: Collection[str] = AMBIGUOUS_SYMBOLS,
) -> pd.DataFrame:
    """The tickers each text mentions: columns ``row`` (the text's index label), ``ticker``, ``mention_kind``.

    One row per (text, ticker); a cashtag wins over a bare symbol in the same text.
    """
    canonical_to_universe = {
        symbol.strip().upper().lstrip("$").replace("-", "."): symbol.strip().upper().lstrip("$")
        for symbol in universe
    }
    ambiguous = {symbol.upper().replace("-", ".") for symbol in ambiguous_symbols}
    empty = pd.DataFrame(
        {
            "row": pd.Series(dtype=texts.index.dtype),
            "ticker": pd.Series(dtype=object),
            "mention_kind": pd.Series(dtype=object),
        }
    )
    if texts.empty or not canonical_to_universe:
        return empty
    matches = texts.fillna("").astype(str).str.extractall(MENTION_PATTERN)
    if matches.empty:
        return empty
    is_cashtag = matches["cashtag"].notna()
    canonical = _canonical(matches["cashtag"].where(is_cashtag, matches["symbol"]))
    ticker = canonical.map(canonical_to_universe)
    base_symbol = canonical.str.split(".", n=1).str[0]
    ambiguous_bare = ~is_cashtag & (canonical.isin(ambiguous) | (base_symbol.str.len() == 1))
    keep = ticker.notna() & ~ambiguous_bare
    found = pd.DataFrame(
        {
            "row": matches.index.get_level_values(0)[keep.to_numpy()],
            "ticker": ticker[keep].to_numpy(dtype=object),
            "mention_kind": np.where(is_cashtag[keep], "cashtag", "symbol").astype(object),
        }
    )
    # "cashtag" sorts before "symbol": keeping the first row per (text, ticker) lets the cashtag win.
    found = found.sort_values(["row", "ticker", "mention_kind"], kind="stable")
    return found.drop_duplicates(["row", "ticker"], keep="first").reset_index(drop=True)


def extract_ticker_mentions(
    posts: pd.DataFrame,
    comments: pd.DataFrame,
    universe: Sequence[str],
    *,
    ambiguous_symbols: Collection[str] = AMBIGUOUS_SYMBOLS,
) -> pd.DataFrame:
    """``features.ticker_mentions``: one row per (source_id, ticker) found in posts and comments.

    Posts are scanned in ``title`` and ``selftext``, comments in ``body``. ``sentiment`` is the
    VADER compound (trading lexicon) of the whole source text; only texts with a mention are scored.
    """
    sources = _source_texts(posts, comments)
    if sources.empty:
        return empty_frame(TICKER_MENTION_COLUMNS)
    found = find_mentions(sources["text"], universe, ambiguous_symbols)
    if found.empty:
        return empty_frame(TICKER_MENTION_COLUMNS)
    mentioned_rows = found["row"].to_numpy()
    mentioned_texts = sources["text"].iloc[np.unique(mentioned_rows)]
    sentiment_by_row = score_sentiment(mentioned_texts)
    catalyst_by_row = catalyst_direction(mentioned_texts)
    mentions = sources.drop(columns="text").iloc[mentioned_rows].reset_index(drop=True)
    mentions["ticker"] = found["ticker"].to_numpy()
    mentions["mention_kind"] = found["mention_kind"].to_numpy()
    mentions["sentiment"] = sentiment_by_row.reindex(mentioned_rows).to_numpy()
    mentions["catalyst"] = catalyst_by_row.reindex(mentioned_rows).to_numpy(dtype="int8")
    mentions["author"] = mentions["author"].where(mentions["author"].notna(), None)
    mentions["score"] = pd.to_numeric(mentions["score"]).fillna(0).astype("int64")
    mentions = mentions[list(TICKER_MENTION_COLUMNS)]
    return mentions.sort_values(
        ["session_date", "source_type", "source_id", "ticker"], kind="stable", ignore_index=True
    )
