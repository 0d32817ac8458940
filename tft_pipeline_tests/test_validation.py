"""Tests of tft_pipeline.validation: checks and reasons, dedup, row accounting, schemas, properties."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pandera.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tft_pipeline.tables import (
    RAW_COMMENT_COLUMNS,
    RAW_POST_COLUMNS,
    RAW_PRICE_COLUMNS,
    conform,
    empty_frame,
)
from tft_pipeline.universe import TICKER_PATTERN
from tft_pipeline.validation import (
    COMMENT_RULES,
    POST_RULES,
    PRICE_RULES,
    REJECTED_COLUMNS,
    CleanPriceHistory,
    CleanRedditComments,
    CleanRedditPosts,
    RejectedRows,
    ValidationResult,
    validate_comments,
    validate_posts,
    validate_prices,
)

SESSION = pd.Timestamp("2024-01-02")
EARLY_FETCH = pd.Timestamp("2024-01-02 21:30")
LATE_FETCH = pd.Timestamp("2024-01-03 09:00")


def price_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "ticker": "AAPL",
        "session_date": SESSION,
        "open": 10.0,
        "high": 11.0,
        "low": 9.0,
        "close": 10.5,
        "adj_close": 10.4,
        "volume": 1_000.0,
        "fetched_at": EARLY_FETCH,
    }
    row.update(overrides)
    return row


def post_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "post_id": "p1",
        "subreddit": "stocks",
        "author": "alice",
        "title": "AAPL to the moon",
        "selftext": "",
        "created_utc": pd.Timestamp("2024-01-02 15:00"),
        "score": 10.0,
        "num_comments": 3.0,
        "url": "https://reddit.com/r/stocks/p1",
        "fetched_at": EARLY_FETCH,
        "session_date": SESSION,
    }
    row.update(overrides)
    return row


def comment_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "comment_id": "c1",
        "post_id": "p1",
        "subreddit": "stocks",
        "author": "bob",
        "body": "buying MSFT",
        "created_utc": pd.Timestamp("2024-01-02 15:05"),
        "score": 2.0,
        "fetched_at": EARLY_FETCH,
        "session_date": SESSION,
    }
    row.update(overrides)
    return row


def frame_of(rows: list[dict[str, object]], columns: dict[str, str]) -> pd.DataFrame:
    """Rows in the raw layout and dtypes (None in a numeric column becomes NaN)."""
    return conform(pd.DataFrame(rows, columns=list(columns)), columns)


def assert_accounted(raw: pd.DataFrame, result: ValidationResult) -> None:
    assert len(raw) == len(result.clean) + len(result.rejected) + result.duplicates


# ---------------------------------------------------------------------------------------------
# Every check and its reason
# ---------------------------------------------------------------------------------------------

PRICE_CASES = [
    (
        {"ticker": "aapl"},
        "ticker_malformed",
        "ticker must be a well-formed symbol such as AAPL or BRK.B (got 'aapl')",
    ),
    (
        {"ticker": None},
        "ticker_malformed",
        "ticker must be a well-formed symbol such as AAPL or BRK.B (got None)",
    ),
    (
        {"ticker": "TOOLONG"},
        "ticker_malformed",
        "ticker must be a well-formed symbol such as AAPL or BRK.B (got 'TOOLONG')",
    ),
    (
        {"ticker": "AAPL\n"},
        "ticker_malformed",
        "ticker must be a well-formed symbol such as AAPL or BRK.B (got 'AAPL\\n')",
    ),
    ({"session_date": None}, "session_date_missing", "session_date must be a timestamp (got NaT)"),
    ({"open": 0.0}, "open_not_positive", "open must be finite and > 0 (got 0.0)"),
    ({"high": math.inf}, "high_not_positive", "high must be finite and > 0 (got inf)"),
    ({"low": None}, "low_not_positive", "low must be finite and > 0 (got NaN)"),
    ({"close": -3.2}, "close_not_positive", "close must be finite and > 0 (got -3.2)"),
    (
        {"adj_close": -math.inf},
        "adj_close_not_positive",
        "adj_close must be finite and > 0 (got -inf)",
    ),
    ({"volume": None}, "volume_invalid", "volume must be finite and >= 0 (got NaN)"),
    ({"volume": -1.0}, "volume_invalid", "volume must be finite and >= 0 (got -1.0)"),
    ({"volume": 1e20}, "volume_too_large", "volume must fit an int64, below 2**63 (got 1e+20)"),
    ({"fetched_at": None}, "fetched_at_missing", "fetched_at must be a timestamp (got NaT)"),
    ({"open": 11.0, "high": 10.8}, "high_below_open", "high < open (high=10.8, open=11.0)"),
    ({"close": 11.5}, "high_below_close", "high < close (high=11.0, close=11.5)"),
    ({"open": 9.0, "low": 9.5}, "low_above_open", "low > open (low=9.5, open=9.0)"),
    ({"close": 9.0, "low": 9.5}, "low_above_close", "low > close (low=9.5, close=9.0)"),
]


@pytest.mark.parametrize(("overrides", "check", "reason"), PRICE_CASES)
def test_price_check_rejects_row_with_readable_reason(overrides, check, reason):
    raw = frame_of([price_row(**overrides), price_row(ticker="MSFT")], RAW_PRICE_COLUMNS)

    result = validate_prices(raw)

    assert result.clean["ticker"].tolist() == ["MSFT"]
    assert result.rejected["check"].tolist() == [check]
    assert result.rejected["reason"].tolist() == [reason]
    assert result.rejected["source"].tolist() == ["raw.price_history"]


POST_CASES = [
    ({"post_id": None}, "post_id_missing", "post_id must be a non-empty string (got None)"),
    ({"post_id": ""}, "post_id_missing", "post_id must be a non-empty string (got '')"),
    ({"subreddit": None}, "subreddit_missing", "subreddit must be a non-empty string (got None)"),
    ({"title": None}, "title_missing", "title must be a non-empty string (got None)"),
    ({"title": "   "}, "title_missing", "title must be a non-empty string (got '   ')"),
    ({"author": 42}, "author_not_text", "author must be a string or missing (got 42)"),
    ({"created_utc": None}, "created_utc_missing", "created_utc must be a timestamp (got NaT)"),
    ({"score": None}, "score_invalid", "score must be a finite whole number (got NaN)"),
    ({"score": math.inf}, "score_invalid", "score must be a finite whole number (got inf)"),
    ({"score": 1.5}, "score_invalid", "score must be a finite whole number (got 1.5)"),
    ({"score": 1e300}, "score_too_large", "score must fit an int64, below 2**63 (got 1e+300)"),
    (
        {"num_comments": -1.0},
        "num_comments_invalid",
        "num_comments must be a finite whole number >= 0 (got -1.0)",
    ),
    (
        {"num_comments": None},
        "num_comments_invalid",
        "num_comments must be a finite whole number >= 0 (got NaN)",
    ),
    ({"fetched_at": None}, "fetched_at_missing", "fetched_at must be a timestamp (got NaT)"),
    ({"session_date": None}, "session_date_missing", "session_date must be a timestamp (got NaT)"),
]


@pytest.mark.parametrize(("overrides", "check", "reason"), POST_CASES)
def test_post_check_rejects_row_with_readable_reason(overrides, check, reason):
    raw = frame_of([post_row(**overrides), post_row(post_id="p2")], RAW_POST_COLUMNS)

    result = validate_posts(raw)

    assert result.clean["post_id"].tolist() == ["p2"]
    assert result.rejected["check"].tolist() == [check]
    assert result.rejected["reason"].tolist() == [reason]


COMMENT_CASES = [
    (
        {"comment_id": "  "},
        "comment_id_missing",
        "comment_id must be a non-empty string (got '  ')",
    ),
    ({"post_id": None}, "post_id_missing", "post_id must be a non-empty string (got None)"),
    ({"body": ""}, "body_missing", "body must be a non-empty string (got '')"),
    ({"created_utc": None}, "created_utc_missing", "created_utc must be a timestamp (got NaT)"),
    ({"score": -math.inf}, "score_invalid", "score must be a finite whole number (got -inf)"),
    ({"fetched_at": None}, "fetched_at_missing", "fetched_at must be a timestamp (got NaT)"),
    ({"session_date": None}, "session_date_missing", "session_date must be a timestamp (got NaT)"),
]


@pytest.mark.parametrize(("overrides", "check", "reason"), COMMENT_CASES)
def test_comment_check_rejects_row_with_readable_reason(overrides, check, reason):
    raw = frame_of([comment_row(**overrides), comment_row(comment_id="c2")], RAW_COMMENT_COLUMNS)

    result = validate_comments(raw)

    assert result.clean["comment_id"].tolist() == ["c2"]
    assert result.rejected["check"].tolist() == [check]
    assert result.rejected["reason"].tolist() == [reason]


def test_every_failed_check_is_listed_in_order_and_the_first_names_the_row():
    raw = frame_of(
        [price_row(ticker="aapl", high=9.5, low=10.1, open=10.0, close=10.0, volume=None)],
        RAW_PRICE_COLUMNS,
    )

    rejected = validate_prices(raw).rejected

    assert rejected["reason"].iloc[0].split("; ") == [
        "ticker must be a well-formed symbol such as AAPL or BRK.B (got 'aapl')",
        "volume must be finite and >= 0 (got NaN)",
        "high < low (high=9.5, low=10.1)",
        "high < open (high=9.5, open=10.0)",
        "high < close (high=9.5, close=10.0)",
        "low > open (low=10.1, open=10.0)",
        "low > close (low=10.1, close=10.0)",
    ]
    assert rejected["check"].iloc[0] == "ticker_malformed"


def test_a_bad_price_is_not_also_blamed_on_the_bar_ordering():
    raw = frame_of([price_row(close=-3.2)], RAW_PRICE_COLUMNS)

    assert validate_prices(raw).rejected["reason"].tolist() == [
        "close must be finite and > 0 (got -3.2)"
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {"author": None},  # deleted account
        {"author": "[deleted]"},
        {"selftext": ""},
        {"selftext": None},
        {"url": None},
        {"score": -12.0},
        {"num_comments": 0.0},
    ],
)
def test_post_allowed_variations_are_kept(overrides):
    result = validate_posts(frame_of([post_row(**overrides)], RAW_POST_COLUMNS))

    assert result.rejected.empty
    assert len(result.clean) == 1


@pytest.mark.parametrize("ticker", ["BRK.B", "BF-B", "C", "GOOGL"])
def test_well_formed_class_share_and_short_tickers_are_kept(ticker):
    result = validate_prices(frame_of([price_row(ticker=ticker)], RAW_PRICE_COLUMNS))

    assert result.clean["ticker"].tolist() == [ticker]


def test_non_numbers_in_numeric_columns_are_rejected_quoting_the_raw_value():
    raw = frame_of([price_row(), price_row(ticker="MSFT")], RAW_PRICE_COLUMNS)
    raw["close"] = pd.Series(["abc", 10.5], dtype=object)

    result = validate_prices(raw)

    assert result.clean["ticker"].tolist() == ["MSFT"]
    assert result.rejected["reason"].tolist() == ["close must be finite and > 0 (got 'abc')"]
    assert json.loads(result.rejected["payload"].iloc[0])["close"] == "abc"


def test_timestamps_given_as_text_are_parsed_and_garbage_is_rejected():
    raw = frame_of([price_row(), price_row(ticker="MSFT")], RAW_PRICE_COLUMNS)
    raw["fetched_at"] = pd.Series(["2024-01-02T21:30:00Z", "yesterday"], dtype=object)

    result = validate_prices(raw)

    assert result.clean["fetched_at"].tolist() == [EARLY_FETCH]
    assert result.rejected["reason"].tolist() == [
        "fetched_at must be a timestamp (got 'yesterday')"
    ]
    assert json.loads(result.rejected["payload"].iloc[0])["fetched_at"] == "yesterday"


# ---------------------------------------------------------------------------------------------
# Rejected rows: key, payload, session
# ---------------------------------------------------------------------------------------------


def test_rejected_row_carries_key_session_and_raw_row_as_json():
    raw = frame_of(
        [
            price_row(
                close=math.nan, open=math.inf, fetched_at=pd.Timestamp("2024-01-02 21:30:05.25")
            )
        ],
        RAW_PRICE_COLUMNS,
    )

    rejected = validate_prices(raw).rejected

    assert list(rejected.columns) == list(REJECTED_COLUMNS)
    assert rejected["record_key"].tolist() == ["AAPL|2024-01-02"]
    assert rejected["session_date"].tolist() == [SESSION]
    payload = json.loads(rejected["payload"].iloc[0])
    assert payload == {
        "ticker": "AAPL",
        "session_date": "2024-01-02T00:00:00.000000",
        "open": "inf",
        "high": 11.0,
        "low": 9.0,
        "close": None,
        "adj_close": 10.4,
        "volume": 1000.0,
        "fetched_at": "2024-01-02T21:30:05.250000",
    }
    RejectedRows.validate(rejected)


@pytest.mark.parametrize(
    ("overrides", "record_key"),
    [({"ticker": None}, "<missing>|2024-01-02"), ({"session_date": None}, "AAPL|<missing>")],
)
def test_record_key_marks_a_missing_part(overrides, record_key):
    rejected = validate_prices(frame_of([price_row(**overrides)], RAW_PRICE_COLUMNS)).rejected

    assert rejected["record_key"].tolist() == [record_key]


def test_post_record_key_is_the_id_or_missing():
    raw = frame_of([post_row(title=None), post_row(post_id=None)], RAW_POST_COLUMNS)

    assert validate_posts(raw).rejected["record_key"].tolist() == ["p1", "<missing>"]


def test_rejections_by_check_counts_first_failed_checks():
    raw = frame_of(
        [price_row(close=-1.0), price_row(ticker="MSFT", close=-2.0), price_row(ticker="x")],
        RAW_PRICE_COLUMNS,
    )

    counts = validate_prices(raw).rejections_by_check()

    assert counts.to_dict() == {"close_not_positive": 2, "ticker_malformed": 1}


# ---------------------------------------------------------------------------------------------
# Deduplication
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("late_first", [True, False])
def test_latest_fetch_wins_whatever_the_row_order(late_first):
    early = price_row(close=10.5, fetched_at=EARLY_FETCH)
    late = price_row(close=10.7, fetched_at=LATE_FETCH)
    rows = [late, early] if late_first else [early, late]

    result = validate_prices(frame_of(rows, RAW_PRICE_COLUMNS))

    assert result.clean["close"].tolist() == [10.7]
    assert result.clean["fetched_at"].tolist() == [LATE_FETCH]
    assert result.duplicates == 1
    assert result.rejected.empty


def test_equal_fetch_times_keep_the_later_row():
    rows = [price_row(close=10.1), price_row(close=10.2), price_row(close=10.3)]

    result = validate_prices(frame_of(rows, RAW_PRICE_COLUMNS))

    assert result.clean["close"].tolist() == [10.3]
    assert result.duplicates == 2


def test_edited_post_refetched_with_new_score_keeps_the_new_version():
    rows = [
        post_row(title="AAPL earnings (edited)", score=42.0, fetched_at=LATE_FETCH),
        post_row(title="AAPL earnings", score=10.0, fetched_at=EARLY_FETCH),
        post_row(post_id="p2", score=1.0),
    ]

    result = validate_posts(frame_of(rows, RAW_POST_COLUMNS))

    edited = result.clean.set_index("post_id").loc["p1"]
    assert edited["score"] == 42
    assert edited["title"] == "AAPL earnings (edited)"
    assert result.duplicates == 1
    assert len(result.clean) == 2


def test_invalid_newer_fetch_does_not_beat_a_valid_older_one():
    rows = [
        comment_row(body="first version", fetched_at=EARLY_FETCH),
        comment_row(body="", fetched_at=LATE_FETCH),
    ]

    result = validate_comments(frame_of(rows, RAW_COMMENT_COLUMNS))

    assert result.clean["body"].tolist() == ["first version"]
    assert result.duplicates == 0
    assert result.rejected["check"].tolist() == ["body_missing"]


def test_clean_prices_are_sorted_by_key_with_a_fresh_index():
    rows = [
        price_row(ticker="MSFT", session_date=pd.Timestamp("2024-01-03")),
        price_row(ticker="AAPL", session_date=pd.Timestamp("2024-01-03")),
        price_row(ticker="MSFT", session_date=SESSION),
        price_row(ticker="AAPL", session_date=SESSION),
    ]
    raw = frame_of(rows, RAW_PRICE_COLUMNS)
    raw.index = [10, 3, 7, 1]

    clean = validate_prices(raw).clean

    assert list(zip(clean["ticker"], clean["session_date"].dt.strftime("%m-%d"), strict=True)) == [
        ("AAPL", "01-02"),
        ("AAPL", "01-03"),
        ("MSFT", "01-02"),
        ("MSFT", "01-03"),
    ]
    assert clean.index.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------
# Input shape, dtypes, empty frames, schemas
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validate", "columns", "row", "dropped"),
    [
        (validate_prices, RAW_PRICE_COLUMNS, price_row(), "volume"),
        (validate_posts, RAW_POST_COLUMNS, post_row(), "num_comments"),
        (validate_comments, RAW_COMMENT_COLUMNS, comment_row(), "session_date"),
    ],
)
def test_missing_required_column_raises_naming_it(validate, columns, row, dropped):
    raw = frame_of([row], columns).drop(columns=[dropped])

    with pytest.raises(ValueError, match=rf"missing required column\(s\) {dropped}"):
        validate(raw)


def test_non_frame_input_is_a_type_error():
    with pytest.raises(TypeError, match="DataFrame"):
        validate_prices([price_row()])  # type: ignore[arg-type]


def test_extra_columns_are_ignored_and_clean_dtypes_are_tidy():
    raw = frame_of([price_row(volume=1234.0)], RAW_PRICE_COLUMNS).assign(source_note="x")

    clean = validate_prices(raw).clean

    assert list(clean.columns) == list(RAW_PRICE_COLUMNS)
    assert clean["volume"].dtype == np.int64
    assert clean["session_date"].dtype == "datetime64[ns]"
    assert clean["ticker"].dtype == object
    assert clean["volume"].tolist() == [1234]


def test_timezone_aware_fetch_times_become_naive_utc():
    raw = frame_of([price_row()], RAW_PRICE_COLUMNS)
    raw["fetched_at"] = pd.Series([pd.Timestamp("2024-01-02 16:30", tz="America/New_York")])

    clean = validate_prices(raw).clean

    assert clean["fetched_at"].tolist() == [pd.Timestamp("2024-01-02 21:30")]


def test_post_counts_become_int64_and_missing_author_none():
    clean = validate_posts(frame_of([post_row(author=None)], RAW_POST_COLUMNS)).clean

    assert clean["score"].dtype == np.int64 and clean["num_comments"].dtype == np.int64
    assert clean["author"].tolist() == [None]
    CleanRedditPosts.validate(clean)


@pytest.mark.parametrize(
    ("validate", "columns", "schema"),
    [
        (validate_prices, RAW_PRICE_COLUMNS, CleanPriceHistory),
        (validate_posts, RAW_POST_COLUMNS, CleanRedditPosts),
        (validate_comments, RAW_COMMENT_COLUMNS, CleanRedditComments),
    ],
)
def test_empty_frame_gives_empty_results_with_the_clean_layout(validate, columns, schema):
    result = validate(empty_frame(columns))

    assert result.clean.empty and result.rejected.empty and result.duplicates == 0
    assert list(result.clean.columns) == list(columns)
    assert list(result.rejected.columns) == list(REJECTED_COLUMNS)
    schema.validate(result.clean)
    RejectedRows.validate(result.rejected)


@pytest.mark.parametrize("rules", [PRICE_RULES, POST_RULES, COMMENT_RULES])
def test_schema_row_checks_are_the_validation_checks(rules):
    schema = rules.schema.to_schema()

    assert [check.name for check in schema.checks] == [check.name for check in rules.checks]
    assert [check.description for check in schema.checks] == [c.rule for c in rules.checks]
    assert all(column.description for column in schema.columns.values())


def test_price_schema_refuses_a_broken_bar_and_a_repeated_key():
    clean = validate_prices(
        frame_of([price_row(), price_row(ticker="MSFT")], RAW_PRICE_COLUMNS)
    ).clean
    broken_bar = clean.assign(high=[8.0, 11.0])
    repeated_key = clean.assign(ticker=["AAPL", "AAPL"])

    with pytest.raises(pandera.errors.SchemaError, match="high_below_low"):
        CleanPriceHistory.validate(broken_bar)
    with pytest.raises(pandera.errors.SchemaError, match="not unique"):
        CleanPriceHistory.validate(repeated_key)


# ---------------------------------------------------------------------------------------------
# Properties over generated raw frames
# ---------------------------------------------------------------------------------------------

FETCH_TIMES = [EARLY_FETCH, LATE_FETCH, pd.Timestamp("2024-01-03 10:00"), pd.NaT]
PRICE_VALUES = [9.0, 10.0, 10.5, 11.0, 12.0, 0.0, -1.0, math.nan, math.inf, None]


def _with_odd_types(column: pd.Series, odd_values: list[object], draw) -> pd.Series:
    """Sometimes turn a numeric column into object dtype holding a non-number."""
    if not draw(st.booleans()) or column.empty:
        return column
    column = column.astype(object)
    column.iloc[draw(st.integers(0, len(column) - 1))] = draw(st.sampled_from(odd_values))
    return column


@st.composite
def raw_prices(draw) -> pd.DataFrame:
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "ticker": st.sampled_from(
                        ["AAPL", "MSFT", "BRK.B", "aapl", "", None, "AAPL\n"]
                    ),
                    "session_date": st.sampled_from([SESSION, pd.Timestamp("2024-01-03"), pd.NaT]),
                    **{c: st.sampled_from(PRICE_VALUES) for c in ("open", "high", "low", "close")},
                    "adj_close": st.sampled_from([10.0, -1.0, math.nan]),
                    "volume": st.sampled_from([0.0, 100.0, 2.5, -5.0, math.nan, math.inf, 1e19]),
                    "fetched_at": st.sampled_from(FETCH_TIMES),
                }
            ),
            max_size=25,
        )
    )
    raw = frame_of(rows, RAW_PRICE_COLUMNS)
    raw["close"] = _with_odd_types(raw["close"], ["10.5", True, None], draw)
    return raw


@st.composite
def raw_posts(draw) -> pd.DataFrame:
    text = st.sampled_from(["hello", "", "  ", None])
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "post_id": st.sampled_from(["p1", "p2", "p3", "", None]),
                    "subreddit": st.sampled_from(["stocks", "", None]),
                    "author": st.sampled_from(["alice", "[deleted]", None, 7]),
                    "title": text,
                    "selftext": text,
                    "created_utc": st.sampled_from([pd.Timestamp("2024-01-02 15:00"), pd.NaT]),
                    "score": st.sampled_from([0.0, 5.0, -3.0, 1.5, math.nan, math.inf]),
                    "num_comments": st.sampled_from([0.0, 4.0, -1.0, math.nan]),
                    "url": st.sampled_from(["https://x", None]),
                    "fetched_at": st.sampled_from(FETCH_TIMES),
                    "session_date": st.sampled_from([SESSION, pd.NaT]),
                }
            ),
            max_size=25,
        )
    )
    raw = frame_of(rows, RAW_POST_COLUMNS)
    raw["score"] = _with_odd_types(raw["score"], ["5", None], draw)
    return raw


@st.composite
def raw_comments(draw) -> pd.DataFrame:
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "comment_id": st.sampled_from(["c1", "c2", "c3", " ", None]),
                    "post_id": st.sampled_from(["p1", "", None]),
                    "subreddit": st.sampled_from(["stocks", None]),
                    "author": st.sampled_from(["bob", None]),
                    "body": st.sampled_from(["nice", "", None]),
                    "created_utc": st.sampled_from([pd.Timestamp("2024-01-02 15:00"), pd.NaT]),
                    "score": st.sampled_from([1.0, -2.0, 0.5, math.nan]),
                    "fetched_at": st.sampled_from(FETCH_TIMES),
                    "session_date": st.sampled_from([SESSION, pd.NaT]),
                }
            ),
            max_size=25,
        )
    )
    return frame_of(rows, RAW_COMMENT_COLUMNS)


def _is_number(value: object, *, low: float, high: float = math.inf, strict: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return False
    above = value > low if strict else value >= low
    return math.isfinite(value) and above and value < high


def _is_whole(value: object, *, non_negative: bool) -> bool:
    lowest = 0.0 if non_negative else -(2.0**63)
    return _is_number(value, low=lowest, high=2.0**63, strict=False) and float(value).is_integer()


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_time(value: object) -> bool:
    return value is not None and not pd.isna(value)


def price_row_is_valid(row: dict) -> bool:
    """An independent, row-by-row statement of the price rules."""
    prices = [row[c] for c in ("open", "high", "low", "close", "adj_close")]
    if not all(_is_number(p, low=0.0, strict=True) for p in prices):
        return False
    return (
        isinstance(row["ticker"], str)
        and TICKER_PATTERN.fullmatch(row["ticker"]) is not None
        and _is_time(row["session_date"])
        and _is_time(row["fetched_at"])
        and _is_number(row["volume"], low=0.0, high=2.0**63, strict=False)
        and row["high"] >= max(row["open"], row["close"], row["low"])
        and row["low"] <= min(row["open"], row["close"])
    )


def post_row_is_valid(row: dict) -> bool:
    return (
        all(_is_text(row[c]) for c in ("post_id", "subreddit", "title"))
        and all(row[c] is None or isinstance(row[c], str) for c in ("author", "selftext", "url"))
        and all(_is_time(row[c]) for c in ("created_utc", "fetched_at", "session_date"))
        and _is_whole(row["score"], non_negative=False)
        and _is_whole(row["num_comments"], non_negative=True)
    )


def comment_row_is_valid(row: dict) -> bool:
    return (
        all(_is_text(row[c]) for c in ("comment_id", "post_id", "body"))
        and all(row[c] is None or isinstance(row[c], str) for c in ("subreddit", "author"))
        and all(_is_time(row[c]) for c in ("created_utc", "fetched_at", "session_date"))
        and _is_whole(row["score"], non_negative=False)
    )


def expected_winners(raw: pd.DataFrame, is_valid, key: list[str]) -> pd.DataFrame:
    """Row-by-row oracle: valid rows, the latest fetch (then the later row) of each key."""
    records = raw.astype(object).where(raw.notna(), None).to_dict("records")
    best: dict[tuple, tuple] = {}
    for position, row in enumerate(records):
        if is_valid(row):
            rank = (row["fetched_at"], position)
            group = tuple(row[c] for c in key)
            if group not in best or rank > best[group]:
                best[group] = rank
    positions = [position for _, (_, position) in sorted(best.items())]
    return raw.iloc[positions].reset_index(drop=True)


PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TABLES = {
    "prices": (raw_prices(), validate_prices, price_row_is_valid, ["ticker", "session_date"]),
    "posts": (raw_posts(), validate_posts, post_row_is_valid, ["post_id"]),
    "comments": (raw_comments(), validate_comments, comment_row_is_valid, ["comment_id"]),
}


@pytest.mark.parametrize("table", list(TABLES))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_generated_raw_frames_are_fully_accounted_for(table, data):
    strategy, validate, is_valid, key = TABLES[table]
    raw = data.draw(strategy)
    rules = {"prices": PRICE_RULES, "posts": POST_RULES, "comments": COMMENT_RULES}[table]

    result = validate(raw)

    assert_accounted(raw, result)
    expected = expected_winners(raw, is_valid, key)
    assert (
        result.clean[key].astype(object).values.tolist()
        == expected[key].astype(object).values.tolist()
    )
    assert result.clean["fetched_at"].tolist() == expected["fetched_at"].tolist()
    valid_rows = sum(
        is_valid(r) for r in raw.astype(object).where(raw.notna(), None).to_dict("records")
    )
    assert len(result.rejected) == len(raw) - valid_rows
    assert not result.clean.duplicated(key).any()
    rules.schema.validate(result.clean)
    RejectedRows.validate(result.rejected)
    for reason, payload in zip(result.rejected["reason"], result.rejected["payload"], strict=True):
        assert reason
        assert set(json.loads(payload)) == set(rules.columns)


@pytest.mark.parametrize("table", list(TABLES))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_validating_clean_output_again_changes_nothing(table, data):
    strategy, validate, _, _ = TABLES[table]
    clean = validate(data.draw(strategy)).clean

    again = validate(clean)

    assert again.rejected.empty
    assert again.duplicates == 0
    pd.testing.assert_frame_equal(again.clean, clean)


# ---------------------------------------------------------------------------------------------
# Benchmark smoke test
# ---------------------------------------------------------------------------------------------


def test_quick_benchmark_reports_rates_and_agrees_with_duckdb():
    from bench.bench_validation import run

    figures = run(quick=True)

    assert figures["validation_rows"] == 50_000
    assert figures["validation_rows"] == (
        figures["validation_clean_rows"]
        + figures["validation_rejected_rows"]
        + figures["validation_duplicate_rows"]
    )
    assert figures["validation_rows_per_s"] > 0 and figures["duckdb_rows_per_s"] > 0
    assert figures["validation_vs_duckdb_ratio"] > 0
