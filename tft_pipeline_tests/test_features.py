"""Tests of tft_pipeline.features: mention extraction, trading sentiment, point-in-time snapshots."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tft_pipeline.features import (
    AMBIGUOUS_SYMBOLS,
    FEATURE_SNAPSHOT_COLUMNS,
    LOOKBACK_SESSIONS,
    TICKER_MENTION_COLUMNS,
    TRADING_LEXICON,
    WILDER_WINDOW,
    build_feature_snapshots,
    extract_ticker_mentions,
    find_mentions,
    score_sentiment,
)
from tft_pipeline.features import sentiment as sentiment_module
from tft_pipeline.features.catalysts import catalyst_direction
from tft_pipeline.tables import empty_frame
from tft_pipeline.trading_calendar import sessions_between

UNIVERSE = ("AAPL", "MSFT", "NVDA", "TSLA", "GME", "C", "V", "MA", "ALL", "IT", "ON", "F", "DD")
SESSIONS = sessions_between("2023-01-03", "2024-12-31")  # ~500 real NYSE sessions
SESSION = SESSIONS[300]


# --- frame builders -------------------------------------------------------------------------------


def make_posts(*rows: dict) -> pd.DataFrame:
    """clean.reddit_posts rows from partial dicts (id, title, selftext, author, score, session)."""
    records = []
    for number, row in enumerate(rows):
        session = pd.Timestamp(row.get("session", SESSION))
        records.append(
            {
                "post_id": row.get("id", f"p{number}"),
                "subreddit": "wallstreetbets",
                "author": row.get("author", f"author{number}"),
                "title": row.get("title", ""),
                "selftext": row.get("selftext", ""),
                "created_utc": session + pd.Timedelta(hours=15),
                "score": row.get("score", 1),
                "num_comments": 0,
                "url": "https://reddit.example/p",
                "fetched_at": session + pd.Timedelta(hours=23),
                "session_date": session,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=list(_POST_COLUMNS))
    return frame.astype(_POST_COLUMNS)


def make_comments(*rows: dict) -> pd.DataFrame:
    """clean.reddit_comments rows from partial dicts (id, body, author, score, session)."""
    records = []
    for number, row in enumerate(rows):
        session = pd.Timestamp(row.get("session", SESSION))
        records.append(
            {
                "comment_id": row.get("id", f"c{number}"),
                "post_id": "p0",
                "subreddit": "wallstreetbets",
                "author": row.get("author", f"commenter{number}"),
                "body": row.get("body", ""),
                "created_utc": session + pd.Timedelta(hours=14),
                "score": row.get("score", 1),
                "fetched_at": session + pd.Timedelta(hours=23),
                "session_date": session,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=list(_COMMENT_COLUMNS))
    return frame.astype(_COMMENT_COLUMNS)


_POST_COLUMNS = {
    "post_id": object,
    "subreddit": object,
    "author": object,
    "title": object,
    "selftext": object,
    "created_utc": "datetime64[ns]",
    "score": "int64",
    "num_comments": "int64",
    "url": object,
    "fetched_at": "datetime64[ns]",
    "session_date": "datetime64[ns]",
}
_COMMENT_COLUMNS = {
    "comment_id": object,
    "post_id": object,
    "subreddit": object,
    "author": object,
    "body": object,
    "created_utc": "datetime64[ns]",
    "score": "int64",
    "fetched_at": "datetime64[ns]",
    "session_date": "datetime64[ns]",
}
NO_POSTS = make_posts()
NO_COMMENTS = make_comments()


def mentions_in(text: str, universe=UNIVERSE) -> set[tuple[str, str]]:
    """(ticker, kind) found in one comment."""
    found = extract_ticker_mentions(NO_POSTS, make_comments({"body": text}), universe)
    return set(zip(found["ticker"], found["mention_kind"]))


def mention_rows(*rows: dict) -> pd.DataFrame:
    """features.ticker_mentions rows from partial dicts (ticker, session, author, score, sentiment)."""
    records = []
    for number, row in enumerate(rows):
        session = pd.Timestamp(row.get("session", SESSION))
        records.append(
            {
                "source_id": row.get("id", f"m{number}"),
                "source_type": row.get("source_type", "comment"),
                "ticker": row["ticker"],
                "session_date": session,
                "author": row.get("author", f"author{number}"),
                "created_utc": session + pd.Timedelta(hours=15),
                "score": row.get("score", 0),
                "mention_kind": "cashtag",
                "sentiment": row.get("sentiment", 0.0),
                "catalyst": row.get("catalyst", 0),
            }
        )
    if not records:
        return empty_frame(TICKER_MENTION_COLUMNS)
    return pd.DataFrame.from_records(records).astype(TICKER_MENTION_COLUMNS)


def bars(
    ticker: str,
    closes,
    *,
    end: pd.Timestamp = SESSION,
    highs=None,
    lows=None,
    volumes=None,
    adj_closes=None,
) -> pd.DataFrame:
    """clean.price_history bars of one ticker on the consecutive sessions ending at ``end``."""
    closes = np.asarray(closes, dtype="float64")
    end_position = SESSIONS.get_loc(end)
    sessions = SESSIONS[end_position - len(closes) + 1 : end_position + 1]
    return pd.DataFrame(
        {
            "ticker": ticker,
            "session_date": sessions,
            "open": closes,
            "high": closes + 1.0 if highs is None else np.asarray(highs, dtype="float64"),
            "low": closes - 1.0 if lows is None else np.asarray(lows, dtype="float64"),
            "close": closes,
            "adj_close": closes if adj_closes is None else np.asarray(adj_closes, dtype="float64"),
            "volume": (
                np.full(len(closes), 1_000_000) if volumes is None else np.asarray(volumes)
            ).astype("int64"),
            "fetched_at": end + pd.Timedelta(days=1),
        }
    )


def snapshot_on(mentions, prices, session=SESSION, universe=UNIVERSE) -> pd.DataFrame:
    """The snapshot rows of ``session``, indexed by ticker."""
    return build_feature_snapshots(mentions, prices, [session], universe).set_index("ticker")


def random_walk(length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, length)))


# --- mentions -------------------------------------------------------------------------------------


def test_cashtags_match_in_any_case_and_only_universe_tickers():
    found = mentions_in("Loading $nvda, $Aapl and $TSLA's dip. $XYZ is trash, so is $NVDAQ")
    assert found == {("NVDA", "cashtag"), ("AAPL", "cashtag"), ("TSLA", "cashtag")}


def test_bare_symbols_are_upper_case_whole_words_of_the_universe():
    text = "NVDA up, nvda Nvda NVDAX XNVDA NVDA2 aapl. (MSFT) and GME! But not ZZZZ."
    assert mentions_in(text) == {("NVDA", "symbol"), ("MSFT", "symbol"), ("GME", "symbol")}


def test_decoy_words_are_not_mentions_even_when_listed():
    assert {"YOLO", "DD", "CEO", "IMO", "ATH", "EPS", "A", "I"} <= AMBIGUOUS_SYMBOLS
    universe = UNIVERSE + ("YOLO", "CEO", "ATH", "EPS", "A")
    assert mentions_in("YOLO DD on A stock: CEO says ATH, EPS beat. IMO I am in", universe) == set()
    assert mentions_in("$DD $yolo $A", universe) == {
        ("DD", "cashtag"),
        ("YOLO", "cashtag"),
        ("A", "cashtag"),
    }


def test_ambiguous_universe_symbols_count_only_as_cashtags():
    assert mentions_in("IT is ALL ON, C V MA F") == set()
    assert mentions_in("$it $ALL $On $c $V $ma $F") == {
        (ticker, "cashtag") for ticker in ("IT", "ALL", "ON", "C", "V", "MA", "F")
    }


def test_one_row_per_source_and_ticker_and_the_cashtag_kind_wins():
    comments = make_comments(
        {"id": "c1", "body": "NVDA NVDA and again NVDA"},
        {"id": "c2", "body": "NVDA first, then $NVDA, then nvda"},
        {"id": "c3", "body": "NVDA NVDA and again NVDA"},  # same text, another source: its own row
    )
    found = extract_ticker_mentions(NO_POSTS, comments, UNIVERSE).set_index("source_id")
    assert found.index.tolist() == ["c1", "c2", "c3"]
    assert found["mention_kind"].to_dict() == {"c1": "symbol", "c2": "cashtag", "c3": "symbol"}


def test_posts_are_scanned_in_title_and_selftext_and_comments_in_body():
    posts = make_posts({"id": "p1", "title": "Thoughts on AAPL", "selftext": "and $msft"})
    comments = make_comments({"id": "c1", "body": "GME"})
    found = extract_ticker_mentions(posts, comments, UNIVERSE)
    assert set(zip(found["source_id"], found["source_type"], found["ticker"])) == {
        ("p1", "post", "AAPL"),
        ("p1", "post", "MSFT"),
        ("c1", "comment", "GME"),
    }


def test_a_title_and_selftext_do_not_glue_into_one_word():
    posts = make_posts({"title": "NV", "selftext": "DA"}, {"title": "GME", "selftext": "rocks"})
    assert extract_ticker_mentions(posts, NO_COMMENTS, UNIVERSE)["ticker"].tolist() == ["GME"]


def test_class_share_suffixes_map_to_the_universe_spelling():
    universe = ("BRK.B", "BF-B", "AAPL")
    assert mentions_in("BRK.B and BF.B; also $brk-b", universe) == {
        ("BRK.B", "cashtag"),
        ("BF-B", "symbol"),
    }
    assert mentions_in("AAPL.", universe) == {("AAPL", "symbol")}


def test_mention_rows_carry_the_source_and_its_sentiment():
    posts = make_posts(
        {"id": "p1", "title": "$NVDA to the moon, loading calls", "author": None, "score": 42}
    )
    comments = make_comments(
        {"id": "c1", "body": "TSLA is drilling, bought puts", "author": "bear1"}
    )
    found = extract_ticker_mentions(posts, comments, UNIVERSE)
    assert dict(found.dtypes.astype(str)) == TICKER_MENTION_COLUMNS
    post_row = found.set_index("source_id").loc["p1"]
    assert post_row["author"] is None and post_row["score"] == 42
    assert post_row["session_date"] == SESSION
    assert post_row["created_utc"] == SESSION + pd.Timedelta(hours=15)
    sentiment = found.set_index("source_id")["sentiment"]
    assert sentiment["p1"] > 0.3 and sentiment["c1"] < -0.3


def test_no_sources_or_no_mentions_give_an_empty_frame_with_the_columns():
    for posts, comments in [
        (NO_POSTS, NO_COMMENTS),
        (make_posts({"title": "nothing to see"}), make_comments({"body": "lowercase nvda"})),
    ]:
        found = extract_ticker_mentions(posts, comments, UNIVERSE)
        assert found.empty and dict(found.dtypes.astype(str)) == TICKER_MENTION_COLUMNS


_WORDS = st.sampled_from(
    [
        "NVDA",
        "AAPL",
        "GME",
        "C",
        "V",
        "IT",
        "ALL",
        "ON",
        "DD",
        "YOLO",
        "the",
        "moon",
        "nvda",
        "NVDAX",
        "XAAPL",
        "GME2",
        "ZZZ",
        "calls",
    ]
)
_CASHTAGS = st.builds(
    lambda symbol, upper: "$" + (symbol if upper else symbol.lower()),
    st.sampled_from(["NVDA", "AAPL", "C", "IT", "ON", "XYZ", "TSLA"]),
    st.booleans(),
)
_SEPARATORS = st.sampled_from([" ", ", ", ". ", "\n", "! ", " (", ") ", "? "])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.one_of(_WORDS, _CASHTAGS), _SEPARATORS), max_size=12))
def test_extraction_agrees_with_a_token_by_token_reading(tokens):
    text = "".join(word + separator for word, separator in tokens)
    expected: dict[str, str] = {}
    for word, _ in tokens:
        if word.startswith("$") and word[1:].upper() in UNIVERSE:
            expected[word[1:].upper()] = "cashtag"
        elif word in UNIVERSE and word not in AMBIGUOUS_SYMBOLS and len(word) > 1:
            expected.setdefault(word, "symbol")
    found = find_mentions(pd.Series([text]), UNIVERSE)
    assert dict(zip(found["ticker"], found["mention_kind"])) == expected


# --- sentiment ------------------------------------------------------------------------------------

BULLISH = [
    "NVDA to the moon 🚀🚀",
    "Loaded up on calls, tendies incoming",
    "Diamond hands, this squeeze is just starting",
    "Very bullish on AAPL after earnings",
    "My calls are printing, new all time high",
]
BEARISH = [
    "Bought puts, this thing will dump hard",
    "Bagholding since the rug pull",
    "TSLA is drilling, paper hands everywhere",
    "Extremely bearish, shorting here",
    "not bullish at all on this one",
]


@pytest.mark.parametrize("text", BULLISH)
def test_bullish_texts_score_positive(text):
    assert score_sentiment(pd.Series([text])).iloc[0] > 0.2


@pytest.mark.parametrize("text", BEARISH)
def test_bearish_texts_score_negative(text):
    assert score_sentiment(pd.Series([text])).iloc[0] < -0.2


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("buying calls", 1),
        ("buying puts", -1),
        ("tendies", 1),
        ("bagholder", -1),
        ("rug pull", -1),
        ("paper hands", -1),
        ("bullish", 1),
        ("bearish", -1),
        ("it is drilling", -1),
        ("to the moon 🚀", 1),
        ("short squeeze", 1),
        ("💎🙌", 1),
    ],
)
def test_trading_slang_plain_vader_misses_gets_its_sign(text, sign):
    assert SentimentIntensityAnalyzer().polarity_scores(text)["compound"] == 0.0
    assert np.sign(score_sentiment(pd.Series([text])).iloc[0]) == sign


def test_lexicon_weights_are_lower_case_and_on_vaders_scale():
    assert TRADING_LEXICON["calls"] > 0 > TRADING_LEXICON["puts"]
    for word, valence in TRADING_LEXICON.items():
        assert word == word.lower() and " " not in word
        assert -4.0 <= valence <= 4.0 and valence != 0.0


def test_each_distinct_text_is_scored_once_and_mapped_back(monkeypatch):
    analyzer = sentiment_module.trading_analyzer()
    scored: list[str] = []
    original = analyzer.polarity_scores

    def counting(text):
        scored.append(text)
        return original(text)

    monkeypatch.setattr(analyzer, "polarity_scores", counting)
    texts = pd.Series(["calls calls", "puts", None] * 500, index=np.arange(1500) * 7)
    scores = score_sentiment(texts)
    assert len(scored) == 3
    assert scores.index.equals(texts.index) and scores.dtype == "float64"
    assert scores.iloc[0] > 0 > scores.iloc[1] and scores.iloc[2] == 0.0
    assert (scores.iloc[::3] == scores.iloc[0]).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=8))
def test_sentiment_is_a_vader_compound_in_range(texts):
    scores = score_sentiment(pd.Series(texts, dtype=object))
    assert len(scores) == len(texts)
    assert ((scores >= -1.0) & (scores <= 1.0)).all()


# --- snapshots: mentions --------------------------------------------------------------------------

FLAT_PRICES = pd.concat([bars(t, np.full(30, 100.0)) for t in ("NVDA", "AAPL", "TSLA")])


def test_mentions_count_distinct_authors_and_unknown_authors_per_source():
    mentions = mention_rows(
        {"ticker": "NVDA", "author": "alice"},
        {"ticker": "NVDA", "author": "alice"},
        {"ticker": "NVDA", "author": "alice", "source_type": "post"},
        {"ticker": "NVDA", "author": "bob"},
        {"ticker": "NVDA", "author": "[deleted]"},
        {"ticker": "NVDA", "author": "[deleted]"},
        {"ticker": "NVDA", "author": None},
        {"ticker": "AAPL", "author": "alice"},
        {"ticker": "NVDA", "author": "carol", "session": SESSIONS[299]},  # the session before
    )
    snapshot = snapshot_on(mentions, FLAT_PRICES)
    assert snapshot["mentions"].to_dict() == {"AAPL": 1, "NVDA": 5, "TSLA": 0}
    assert snapshot["mentions"].dtype == "int64"


@pytest.mark.parametrize(
    ("text", "direction"),
    [
        ("$MRNA gets FDA approval for its flu shot", 1),
        ("NVDA wins $2B contract with the Pentagon", 1),
        ("AAPL announces a $90B buyback", 1),
        ("TSLA beats and raises, guidance raised for the year", 1),
        ("GME files for a secondary offering, dilution incoming", -1),
        ("MSFT cuts guidance after a weak quarter", -1),
        ("SEC probe into the company's accounting", -1),
        ("FDA rejects the drug, complete response letter", -1),
        ("NVDA to the moon, calls printing", 0),  # a mood, not news
        ("The buyback is done but they also announced a secondary offering", 0),  # mixed
    ],
)
def test_catalyst_vocabulary_reads_the_direction_of_the_news(text, direction):
    assert catalyst_direction(pd.Series([text])).iloc[0] == direction


def test_mention_rows_carry_the_catalyst_direction_of_their_source():
    comments = make_comments(
        {"body": "$NVDA wins a contract with the DoD"},
        {"body": "$AAPL guidance cut, ugly"},
        {"body": "$TSLA looks fine"},
    )
    found = extract_ticker_mentions(NO_POSTS, comments, UNIVERSE).set_index("ticker")
    assert found["catalyst"].to_dict() == {"AAPL": -1, "NVDA": 1, "TSLA": 0}
    assert found["catalyst"].dtype == "int8"


def test_catalyst_counts_are_distinct_authors_of_the_session_only():
    mentions = mention_rows(
        {"ticker": "NVDA", "author": "alice", "catalyst": 1},
        {"ticker": "NVDA", "author": "alice", "catalyst": 1},  # the same author again
        {"ticker": "NVDA", "author": "bob", "catalyst": 1},
        {"ticker": "NVDA", "author": "carol", "catalyst": -1},
        {"ticker": "NVDA", "author": "dave", "catalyst": 0},
        {"ticker": "AAPL", "author": "erin", "catalyst": -1},
        {"ticker": "TSLA", "author": "fay", "catalyst": 1, "session": SESSIONS[299]},  # before
        {"ticker": "TSLA", "author": "gus", "catalyst": 1, "session": SESSIONS[301]},  # after
    )
    snapshot = snapshot_on(mentions, FLAT_PRICES)
    assert snapshot["catalyst_bullish"].to_dict() == {"AAPL": 0, "NVDA": 2, "TSLA": 0}
    assert snapshot["catalyst_bearish"].to_dict() == {"AAPL": 1, "NVDA": 1, "TSLA": 0}
    earlier = snapshot_on(mentions, FLAT_PRICES, session=SESSIONS[299])
    assert earlier.loc["TSLA", "catalyst_bullish"] == 1  # its own window, not the later one


def test_mentions_written_before_the_catalyst_column_count_no_catalysts():
    mentions = mention_rows({"ticker": "NVDA", "author": "alice"}).drop(columns="catalyst")
    snapshot = snapshot_on(mentions, FLAT_PRICES)
    assert snapshot.loc["NVDA", "mentions"] == 1
    assert snapshot.loc["NVDA", "catalyst_bullish"] == 0


def test_mention_sentiment_is_the_score_weighted_mean():
    mentions = mention_rows(
        {"ticker": "NVDA", "sentiment": 0.9, "score": 0},  # weight 1
        {"ticker": "NVDA", "sentiment": -0.3, "score": 19},  # weight log(20) + 1
        {"ticker": "NVDA", "sentiment": 0.5, "score": -40},  # negative score: weight 1
        {"ticker": "AAPL", "sentiment": -0.6, "score": 3},
    )
    snapshot = snapshot_on(mentions, FLAT_PRICES)
    heavy = math.log(20.0) + 1.0
    assert snapshot.loc["NVDA", "mention_sentiment"] == pytest.approx(
        (0.9 - 0.3 * heavy + 0.5) / (2.0 + heavy)
    )
    assert snapshot.loc["AAPL", "mention_sentiment"] == pytest.approx(-0.6)
    assert snapshot.loc["TSLA", "mention_sentiment"] == 0.0


def test_mention_momentum_compares_with_the_trailing_20_sessions():
    position = SESSIONS.get_loc(SESSION)
    rows = []
    for back in range(1, 21):  # NVDA: 2 authors on each of the 20 sessions before D, 5 on D
        rows += [
            {"ticker": "NVDA", "author": f"a{i}", "session": SESSIONS[position - back]}
            for i in range(2)
        ]
    rows += [{"ticker": "NVDA", "author": f"a{i}"} for i in range(5)]
    # AAPL: 4 on the oldest session of the window, 7 just outside it, none on D
    rows += [
        {"ticker": "AAPL", "author": f"b{i}", "session": SESSIONS[position - 20]} for i in range(4)
    ]
    rows += [
        {"ticker": "AAPL", "author": f"b{i}", "session": SESSIONS[position - 21]} for i in range(7)
    ]
    snapshot = snapshot_on(mention_rows(*rows), FLAT_PRICES)
    assert snapshot.loc["NVDA", "mention_momentum"] == pytest.approx(math.log(6 / 3))
    assert snapshot.loc["AAPL", "mention_momentum"] == pytest.approx(math.log(1 / 1.2))
    assert snapshot.loc["TSLA", "mention_momentum"] == 0.0
    assert snapshot.loc["TSLA", "mentions"] == 0


def test_mentions_of_tickers_outside_the_universe_are_ignored():
    mentions = mention_rows({"ticker": "ZZZZ"}, {"ticker": "NVDA"})
    snapshot = snapshot_on(mentions, FLAT_PRICES, universe=("NVDA",))
    assert snapshot.index.tolist() == ["NVDA"] and snapshot.loc["NVDA", "mentions"] == 1


# --- snapshots: price technicals ------------------------------------------------------------------


def test_returns_and_volatility_match_a_hand_computation():
    closes = random_walk(25, seed=1)
    adjusted = closes * 0.97  # returns use adj_close, "close" stays the traded price
    snapshot = snapshot_on(mention_rows(), bars("NVDA", closes, adj_closes=adjusted)).loc["NVDA"]
    assert snapshot["close"] == closes[-1]
    assert snapshot["ret_1"] == pytest.approx(adjusted[-1] / adjusted[-2] - 1)
    assert snapshot["ret_5"] == pytest.approx(adjusted[-1] / adjusted[-6] - 1)
    assert snapshot["ret_20"] == pytest.approx(adjusted[-1] / adjusted[-21] - 1)
    daily_log_returns = np.diff(np.log(adjusted[-21:]))
    assert snapshot["volatility_20"] == pytest.approx(np.std(daily_log_returns, ddof=1))


def test_too_short_history_gives_nan():
    snapshot = snapshot_on(mention_rows(), bars("NVDA", random_walk(20, seed=2))).loc["NVDA"]
    assert not math.isnan(snapshot["ret_5"]) and not math.isnan(snapshot["atr_14"])
    for column in ("ret_20", "volatility_20", "volume_z"):
        assert math.isnan(snapshot[column]), column
    snapshot = snapshot_on(mention_rows(), bars("NVDA", random_walk(14, seed=2))).loc["NVDA"]
    assert math.isnan(snapshot["atr_14"]) and math.isnan(snapshot["rsi_14"])
    assert not math.isnan(snapshot["ret_1"])
    single = snapshot_on(mention_rows(), bars("NVDA", [10.0])).loc["NVDA"]
    assert single["close"] == 10.0 and math.isnan(single["ret_1"])


def test_rsi_on_known_sequences():
    def rsi(closes):
        return snapshot_on(mention_rows(), bars("NVDA", closes)).loc["NVDA", "rsi_14"]

    assert rsi(np.arange(100.0, 130.0)) == pytest.approx(100.0)
    assert rsi(np.arange(130.0, 100.0, -1.0)) == pytest.approx(0.0)
    assert rsi(np.full(30, 100.0)) == 50.0
    # Changes +2, -1, then 12 zeros; Wilder averages seeded with the first change:
    # gain 2 (13/14)^13, loss (1/14)(13/14)^12, so RS = 26 and RSI = 100 * 26 / 27.
    closes = [100.0, 102.0, 101.0] + [101.0] * 12
    assert rsi(closes) == pytest.approx(100.0 * 26.0 / 27.0)
    assert math.isnan(rsi(closes[:-1]))


def test_atr_is_the_wilder_average_of_true_range():
    closes = np.full(16, 100.0)
    highs, lows = closes + 1.0, closes - 1.0  # true range 2 on every bar
    atr = snapshot_on(mention_rows(), bars("NVDA", closes[:15], highs=highs[:15], lows=lows[:15]))
    assert atr.loc["NVDA", "atr_14"] == pytest.approx(2.0)
    # A gap up: high 116, low 110 after a close of 100 gives true range max(6, 16, 10) = 16.
    closes[-1], highs[-1], lows[-1] = 112.0, 116.0, 110.0
    atr = snapshot_on(mention_rows(), bars("NVDA", closes, highs=highs, lows=lows))
    assert atr.loc["NVDA", "atr_14"] == pytest.approx((13 * 2.0 + 16.0) / 14)


def test_volume_z_scores_the_session_against_the_20_before():
    volumes = np.array([1_000 + 10 * i for i in range(20)] + [2_000])
    snapshot = snapshot_on(mention_rows(), bars("NVDA", np.full(21, 10.0), volumes=volumes))
    previous = volumes[:20]
    expected = (2_000 - previous.mean()) / previous.std(ddof=1)
    assert snapshot.loc["NVDA", "volume_z"] == pytest.approx(expected)
    flat = snapshot_on(mention_rows(), bars("NVDA", np.full(21, 10.0)))
    assert math.isnan(flat.loc["NVDA", "volume_z"])  # undefined when the volume never moved


def test_technicals_of_each_ticker_use_only_its_own_bars():
    prices = pd.concat(
        [
            bars(ticker, random_walk(60, seed))
            for seed, ticker in enumerate(["TSLA", "AAPL", "NVDA"])
        ]
    ).sample(frac=1.0, random_state=3)  # interleaved, unsorted
    sessions = SESSIONS[SESSIONS.get_loc(SESSION) - 9 : SESSIONS.get_loc(SESSION) + 1]
    together = build_feature_snapshots(mention_rows(), prices, sessions, UNIVERSE)
    alone = pd.concat(
        build_feature_snapshots(
            mention_rows(), prices[prices["ticker"] == ticker], sessions, UNIVERSE
        )
        for ticker in ("TSLA", "AAPL", "NVDA")
    ).sort_values(["session_date", "ticker"], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone, check_exact=True)


def test_wilder_averages_forget_history_beyond_their_window_and_stay_close_to_unbounded():
    closes = random_walk(400, seed=5)
    rng = np.random.default_rng(6)
    highs, lows = closes * (1 + rng.uniform(0, 0.03, 400)), closes * (1 - rng.uniform(0, 0.03, 400))
    last = SESSIONS[450]
    full = bars("NVDA", closes, highs=highs, lows=lows, end=last)
    windowed = snapshot_on(mention_rows(), full, last).loc["NVDA"]
    just_enough = snapshot_on(mention_rows(), full.iloc[-(LOOKBACK_SESSIONS + 1) :], last).loc[
        "NVDA"
    ]
    assert LOOKBACK_SESSIONS >= WILDER_WINDOW
    for column in ("atr_14", "rsi_14"):
        assert just_enough[column] == pytest.approx(windowed[column], rel=1e-12)
    # The unbounded ewm over all 400 bars differs by the weight left on the window's seed: < 0.1 %.
    previous_close = full["close"].shift(1)
    true_range = np.maximum(
        full["high"] - full["low"],
        np.maximum((full["high"] - previous_close).abs(), (full["low"] - previous_close).abs()),
    )
    unbounded_atr = true_range.iloc[1:].ewm(alpha=1 / 14, adjust=False).mean().iloc[-1]
    assert windowed["atr_14"] == pytest.approx(unbounded_atr, rel=1e-3)
    change = full["adj_close"].diff().iloc[1:]
    gain = change.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean().iloc[-1]
    loss = (-change).clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean().iloc[-1]
    assert windowed["rsi_14"] == pytest.approx(100 * gain / (gain + loss), abs=0.1)


def test_rows_only_for_requested_sessions_universe_tickers_with_a_bar():
    prices = pd.concat(
        [
            bars("NVDA", random_walk(30, 1)),
            bars("AAPL", random_walk(29, 2), end=SESSIONS[299]),
            bars("ZZZZ", random_walk(30, 3)),
            bars("TSLA", random_walk(31, 4), end=SESSIONS[301]),
        ]
    )
    result = build_feature_snapshots(mention_rows(), prices, [SESSIONS[299], SESSION], UNIVERSE)
    assert dict(result.dtypes.astype(str)) == FEATURE_SNAPSHOT_COLUMNS
    assert list(zip(result["session_date"], result["ticker"])) == [
        (SESSIONS[299], "AAPL"),
        (SESSIONS[299], "NVDA"),
        (SESSIONS[299], "TSLA"),
        (SESSION, "NVDA"),
        (SESSION, "TSLA"),
    ]
    empty = build_feature_snapshots(mention_rows(), prices.iloc[:0], [SESSION], UNIVERSE)
    assert empty.empty and list(empty.columns) == list(FEATURE_SNAPSHOT_COLUMNS)


def test_a_day_that_is_not_a_session_is_refused():
    with pytest.raises(ValueError, match="2024-07-04"):
        build_feature_snapshots(mention_rows(), FLAT_PRICES, ["2024-07-04"], UNIVERSE)


def test_duplicate_bars_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        build_feature_snapshots(
            mention_rows(), pd.concat([FLAT_PRICES, FLAT_PRICES]), [SESSION], UNIVERSE
        )


# --- point in time --------------------------------------------------------------------------------

PIT_TICKERS = ("NVDA", "AAPL", "TSLA")
PIT_HISTORY = LOOKBACK_SESSIONS + 40
PIT_REQUESTED = SESSIONS[SESSIONS.get_loc(SESSION) - 14 : SESSIONS.get_loc(SESSION) + 1]


def _point_in_time_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    prices = []
    for seed, ticker in enumerate(PIT_TICKERS):
        closes = random_walk(PIT_HISTORY, seed)
        prices.append(
            bars(
                ticker,
                closes,
                highs=closes * (1 + rng.uniform(0, 0.03, PIT_HISTORY)),
                lows=closes * (1 - rng.uniform(0, 0.03, PIT_HISTORY)),
                volumes=rng.integers(1_000, 100_000, PIT_HISTORY),
                adj_closes=closes * 0.99,
            )
        )
    sessions = SESSIONS[SESSIONS.get_loc(SESSION) - PIT_HISTORY + 1 : SESSIONS.get_loc(SESSION) + 1]
    count = 600
    mentions = mention_rows(
        *[
            {
                "ticker": PIT_TICKERS[rng.integers(3)],
                "session": sessions[rng.integers(len(sessions))],
                "author": [None, "[deleted]", *(f"u{i}" for i in range(8))][rng.integers(10)],
                "score": int(rng.integers(-5, 200)),
                "sentiment": float(rng.uniform(-1, 1)),
            }
            for _ in range(count)
        ]
    )
    return mentions, pd.concat(prices, ignore_index=True)


PIT_MENTIONS, PIT_PRICES = _point_in_time_data()
PIT_UNIVERSE = PIT_TICKERS + ("GME",)  # GME has no bars: mentions of it never make a row


@pytest.fixture(scope="module")
def pit_snapshots() -> pd.DataFrame:
    """The requested range computed once from the unedited data."""
    return build_feature_snapshots(PIT_MENTIONS, PIT_PRICES, PIT_REQUESTED, PIT_UNIVERSE)


@st.composite
def _changes_after(draw):
    """A session D among the requested ones, and edits of prices and mentions after D."""
    cut = draw(st.integers(0, len(PIT_REQUESTED) - 2))
    d = PIT_REQUESTED[cut]
    prices, mentions = PIT_PRICES.copy(), PIT_MENTIONS.copy()
    future_prices = np.flatnonzero(prices["session_date"] > d)
    future_mentions = np.flatnonzero(mentions["session_date"] > d)
    edited = draw(st.lists(st.sampled_from(future_prices.tolist()), max_size=8, unique=True))
    for row in edited:
        factor = draw(st.floats(0.2, 5.0))
        for column in ("open", "high", "low", "close", "adj_close"):
            prices.iloc[row, prices.columns.get_loc(column)] *= factor
        prices.iloc[row, prices.columns.get_loc("volume")] = draw(st.integers(0, 10**9))
    dropped = draw(st.lists(st.sampled_from(future_prices.tolist()), max_size=5, unique=True))
    prices = prices.drop(index=prices.index[dropped])
    resentimented = draw(
        st.lists(st.sampled_from(future_mentions.tolist()), max_size=10, unique=True)
    )
    mentions.iloc[resentimented, mentions.columns.get_loc("sentiment")] = -mentions[
        "sentiment"
    ].iloc[resentimented]
    mentions.iloc[resentimented, mentions.columns.get_loc("score")] = 10_000
    mentions = mentions.drop(
        index=mentions.index[
            draw(st.lists(st.sampled_from(future_mentions.tolist()), max_size=10, unique=True))
        ]
    )
    later = PIT_REQUESTED[PIT_REQUESTED > d]
    added = draw(
        st.lists(
            st.tuples(st.sampled_from(list(later)), st.sampled_from(PIT_UNIVERSE)), max_size=20
        )
    )
    mentions = pd.concat(
        [
            mentions,
            mention_rows(
                *[
                    {
                        "ticker": t,
                        "session": s,
                        "id": f"new{i}",
                        "author": f"n{i}",
                        "sentiment": 1.0,
                        "score": 500,
                    }
                    for i, (s, t) in enumerate(added)
                ]
            ),
        ],
        ignore_index=True,
    )
    return d, mentions, prices


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=_changes_after())
def test_no_look_ahead_changes_after_d_leave_d_unchanged(pit_snapshots, case):
    d, mentions, prices = case
    before = pit_snapshots
    after = build_feature_snapshots(mentions, prices, PIT_REQUESTED, PIT_UNIVERSE)
    pd.testing.assert_frame_equal(
        after[after["session_date"] <= d].reset_index(drop=True),
        before[before["session_date"] <= d].reset_index(drop=True),
        check_exact=True,
    )


def test_a_range_in_one_call_equals_each_session_alone(pit_snapshots):
    whole = pit_snapshots
    assert len(whole) == len(PIT_REQUESTED) * len(PIT_TICKERS)
    assert whole[["ret_20", "volatility_20", "atr_14", "rsi_14", "volume_z"]].notna().all().all()
    assert whole["mentions"].sum() > 0
    one_by_one = pd.concat(
        build_feature_snapshots(PIT_MENTIONS, PIT_PRICES, [session], PIT_UNIVERSE)
        for session in PIT_REQUESTED
    ).reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, one_by_one, check_exact=True)


def test_a_daily_run_with_only_the_lookback_history_agrees_with_the_backfill(pit_snapshots):
    whole = pit_snapshots

    def known_on(frame: pd.DataFrame, session: pd.Timestamp) -> pd.DataFrame:
        """What a daily run for ``session`` loads: LOOKBACK_SESSIONS before it, up to it."""
        first = SESSIONS[SESSIONS.get_loc(session) - LOOKBACK_SESSIONS]
        return frame[(frame["session_date"] >= first) & (frame["session_date"] <= session)]

    daily = [
        build_feature_snapshots(
            known_on(PIT_MENTIONS, session), known_on(PIT_PRICES, session), [session], PIT_UNIVERSE
        )
        for session in PIT_REQUESTED
    ]
    daily_frame = pd.concat(daily).reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, daily_frame, check_exact=False, rtol=1e-10, atol=1e-12)


def test_the_benchmark_quick_run_reports_its_figures():
    from bench.bench_features import run

    figures = run(quick=True)
    assert figures["snapshot_rows"] == figures["snapshot_tickers"] * figures["snapshot_sessions"]
    assert (
        figures["mention_rows"] > 0 and figures["texts_with_mentions"] <= figures["mention_texts"]
    )
    for name in ("snapshot_rows_per_s", "find_mentions_texts_per_s", "sentiment_texts_per_s"):
        assert figures[name] > 0
