"""Validation and deduplication of the raw price, post and comment tables (pure, no Dagster).

Design
------
Every rule a clean row obeys is written once, as a :class:`RowCheck`: a name (``check`` column of
the rejected rows, for "rejected rows by reason" reports), the rule in words, a message template
filled with the offending raw values, and a vectorized ``failed`` function returning one boolean
per row. The same objects serve twice:

- ``validate_*`` evaluates every check's mask over the whole frame (numpy, no per-row Python), so a
  row failing several checks gets all their messages, joined with ``"; "``;
- the pandera models (:class:`CleanPriceHistory`, :class:`CleanRedditPosts`,
  :class:`CleanRedditComments`) get one dataframe-level check per :class:`RowCheck` (named and
  described after it), plus dtypes, nullability and key uniqueness. They are what the Dagster layer
  turns into Dagster types, so a clean table is re-checked against the very same rules.

Rules and messages therefore cannot drift apart. pandera's own lazy validation is not used on the
raw frames: collecting failure cases per row is orders of magnitude slower than masks.

Order of work: coerce the required columns to their raw dtypes (unparseable values become missing
and are rejected, never raised on), reject invalid rows, then among the valid rows of one key keep
the most recently fetched (ties: the later row in the input). Row accounting always holds:
``len(raw) == len(clean) + len(rejected) + duplicates``.

Cleaning changes nothing else, except dtypes: ``volume`` is rounded to a whole ``int64`` (split
adjustment can leave fractions), Reddit counts must already be whole numbers (a fraction means a
corrupt row) and become ``int64``, missing optional text becomes ``None``.
"""

from __future__ import annotations

import datetime as dt
import math
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tft_pipeline.tables import (
    CORPORATE_ACTION_COLUMNS,
    RAW_COMMENT_COLUMNS,
    RAW_POST_COLUMNS,
    RAW_PRICE_COLUMNS,
    REJECTED_ROW_COLUMNS,
    TEXT_STATES,
    text_state_of,
)
from tft_pipeline.trading_calendar import fetch_lag_hours
from tft_pipeline.universe import TICKER_PATTERN

__all__ = [
    "COMMENT_RULES",
    "CORPORATE_ACTION_RULES",
    "NULL_OHLC_REASON",
    "POST_RULES",
    "PRICE_RULES",
    "REJECTED_COLUMNS",
    "CleanCorporateActions",
    "CleanPriceHistory",
    "CleanRedditComments",
    "CleanRedditPosts",
    "RejectedRows",
    "RowCheck",
    "TableRules",
    "ValidationResult",
    "validate_comments",
    "validate_corporate_actions",
    "validate_posts",
    "validate_prices",
    "validate_table",
]

MISSING_KEY = "<missing>"
REASON_SEPARATOR = "; "
# The rejected rows' layout: the warehouse table's columns, then the first failed check's name.
REJECTED_COLUMNS: dict[str, str] = {**REJECTED_ROW_COLUMNS, "check": "object"}
# Largest float that still fits an int64 once rounded (2**63 itself does not).
_INT64_LIMIT = float(2**63)

FrameLike = Mapping[str, Any]  # a DataFrame or a dict of equally long arrays


# --------------------------------------------------------------------------------------------
# Row checks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowCheck:
    """One rule every clean row satisfies, evaluated over whole columns at once.

    ``failed(frame)`` returns a boolean array, True where the row breaks the rule; ``frame`` is a
    DataFrame or a mapping of column name to array, with the table's clean/raw dtypes.
    ``message`` is a ``str.format`` template over column names, filled with the row's raw values.
    """

    name: str
    rule: str
    message: str
    failed: Callable[[FrameLike], np.ndarray]

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """The columns the message quotes."""
        return tuple(field for _, field, _, _ in string.Formatter().parse(self.message) if field)

    def explain(self, raw_rows: pd.DataFrame) -> list[str]:
        """The readable reason for each of ``raw_rows`` (failing rows), quoting their raw values."""
        if not self.fields:
            return [self.message] * len(raw_rows)
        shown = [[_show(value) for value in raw_rows[field].tolist()] for field in self.fields]
        return [
            self.message.format(**dict(zip(self.fields, values, strict=True)))
            for values in zip(*shown, strict=True)
        ]


def _floats(frame: FrameLike, column: str) -> np.ndarray:
    return np.asarray(frame[column], dtype="float64")


def _timestamps(frame: FrameLike, column: str) -> np.ndarray:
    return np.asarray(frame[column], dtype="datetime64[ns]")


def _objects(frame: FrameLike, column: str) -> np.ndarray:
    return np.asarray(frame[column], dtype=object)


def _is_nonblank_text(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_text_or_missing(value: object) -> bool:
    return (
        value is None or isinstance(value, str) or (isinstance(value, float) and math.isnan(value))
    )


def _is_ticker(value: object) -> bool:
    # fullmatch: the pattern's ``$`` alone would accept a trailing newline.
    return isinstance(value, str) and TICKER_PATTERN.fullmatch(value) is not None


def _text_rule(values: np.ndarray, rule: Callable[[object], bool]) -> np.ndarray:
    """``rule`` applied to each value, evaluated once per distinct value (tickers repeat a lot)."""
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists, dicts): judge them one by one
        return np.fromiter((rule(v) for v in values), dtype=bool, count=len(values))
    # The extra last verdict is for missing values, which factorize codes as -1.
    verdicts = np.fromiter((rule(u) for u in uniques), dtype=bool, count=len(uniques))
    verdicts = np.append(verdicts, rule(None))
    return verdicts[codes]


def _required_text(column: str) -> RowCheck:
    return RowCheck(
        name=f"{column}_missing",
        rule=f"{column} is a non-empty string",
        message=f"{column} must be a non-empty string (got {{{column}}})",
        failed=lambda frame: ~_text_rule(_objects(frame, column), _is_nonblank_text),
    )


def _optional_text(column: str) -> RowCheck:
    return RowCheck(
        name=f"{column}_not_text",
        rule=f"{column} is a string or missing",
        message=f"{column} must be a string or missing (got {{{column}}})",
        failed=lambda frame: ~_text_rule(_objects(frame, column), _is_text_or_missing),
    )


def _required_timestamp(column: str) -> RowCheck:
    return RowCheck(
        name=f"{column}_missing",
        rule=f"{column} is a timestamp",
        message=f"{column} must be a timestamp (got {{{column}}})",
        failed=lambda frame: np.isnat(_timestamps(frame, column)),
    )


NULL_OHLC_REASON = "null OHLC from source (halted or missing session)"
OHLC = ("open", "high", "low", "close")


def _all_prices_missing(frame: FrameLike) -> np.ndarray:
    """True where open, high, low and close are all missing: Yahoo's bar of nulls."""
    missing = np.ones(len(frame[OHLC[0]]), dtype=bool)
    for column in OHLC:
        missing &= np.isnan(_floats(frame, column))
    return missing


def _null_ohlc() -> RowCheck:
    """A bar whose four prices are null: the source's answer for a halted or missing session.

    It gets this one reason, not one "must be finite" per price column.
    """
    return RowCheck(
        name="null_ohlc",
        rule="a bar has prices (not all of open, high, low, close null)",
        message=NULL_OHLC_REASON,
        failed=_all_prices_missing,
    )


def _positive_price(column: str) -> RowCheck:
    def failed(frame: FrameLike) -> np.ndarray:
        values = _floats(frame, column)
        # A bar of nulls has its own reason (null_ohlc).
        return ~(np.isfinite(values) & (values > 0)) & ~_all_prices_missing(frame)

    return RowCheck(
        name=f"{column}_not_positive",
        rule=f"{column} is finite and > 0",
        message=f"{column} must be finite and > 0 (got {{{column}}})",
        failed=failed,
    )


def _whole_number(column: str, *, non_negative: bool) -> RowCheck:
    def failed(frame: FrameLike) -> np.ndarray:
        values = _floats(frame, column)
        ok = np.isfinite(values) & (values == np.trunc(values))
        if non_negative:
            ok &= values >= 0
        return ~ok

    bound = " >= 0" if non_negative else ""
    return RowCheck(
        name=f"{column}_invalid",
        rule=f"{column} is a finite whole number{bound}",
        message=f"{column} must be a finite whole number{bound} (got {{{column}}})",
        failed=failed,
    )


def _non_negative(column: str) -> RowCheck:
    def failed(frame: FrameLike) -> np.ndarray:
        values = _floats(frame, column)
        return ~(np.isfinite(values) & (values >= 0))

    return RowCheck(
        name=f"{column}_invalid",
        rule=f"{column} is finite and >= 0",
        message=f"{column} must be finite and >= 0 (got {{{column}}})",
        failed=failed,
    )


def _fits_int64(column: str) -> RowCheck:
    """A finite count too large for the clean int64 column (the other checks judge non-finite)."""

    def failed(frame: FrameLike) -> np.ndarray:
        values = _floats(frame, column)
        return np.isfinite(values) & (np.abs(values) >= _INT64_LIMIT)

    return RowCheck(
        name=f"{column}_too_large",
        rule=f"{column} fits an int64",
        message=f"{column} must fit an int64, below 2**63 (got {{{column}}})",
        failed=failed,
    )


def _valid_prices(*values: np.ndarray) -> np.ndarray:
    valid = np.ones(len(values[0]), dtype=bool)
    for price in values:
        valid &= np.isfinite(price) & (price > 0)
    return valid


def _high_not_below(column: str) -> RowCheck:
    """``high >= column``, judged only between valid prices (a bad price has its own reason)."""

    def failed(frame: FrameLike) -> np.ndarray:
        high, other = _floats(frame, "high"), _floats(frame, column)
        return _valid_prices(high, other) & (high < other)

    return RowCheck(
        name=f"high_below_{column}",
        rule=f"high >= {column}",
        message=f"high < {column} (high={{high}}, {column}={{{column}}})",
        failed=failed,
    )


def _low_not_above(column: str) -> RowCheck:
    """``low <= column``, judged only between valid prices (a bad price has its own reason)."""

    def failed(frame: FrameLike) -> np.ndarray:
        low, other = _floats(frame, "low"), _floats(frame, column)
        return _valid_prices(low, other) & (low > other)

    return RowCheck(
        name=f"low_above_{column}",
        rule=f"low <= {column}",
        message=f"low > {column} (low={{low}}, {column}={{{column}}})",
        failed=failed,
    )


def _ticker() -> RowCheck:
    return RowCheck(
        name="ticker_malformed",
        rule="ticker is a well-formed symbol (1-5 capitals, optional class suffix)",
        message="ticker must be a well-formed symbol such as AAPL or BRK.B (got {ticker})",
        failed=lambda frame: ~_text_rule(_objects(frame, "ticker"), _is_ticker),
    )


PRICE_CHECKS: tuple[RowCheck, ...] = (
    _ticker(),
    _required_timestamp("session_date"),
    _null_ohlc(),
    *(_positive_price(c) for c in ("open", "high", "low", "close", "adj_close")),
    _non_negative("volume"),
    _fits_int64("volume"),
    _required_timestamp("fetched_at"),
    _high_not_below("low"),
    _high_not_below("open"),
    _high_not_below("close"),
    _low_not_above("open"),
    _low_not_above("close"),
)

def _text_state() -> RowCheck:
    allowed = frozenset(TEXT_STATES)
    return RowCheck(
        name="text_state_unknown",
        rule=f"text_state is one of {', '.join(TEXT_STATES)}",
        message=f"text_state must be one of {', '.join(TEXT_STATES)} (got {{text_state}})",
        failed=lambda frame: ~_text_rule(
            _objects(frame, "text_state"), lambda value: value in allowed
        ),
    )


POST_CHECKS: tuple[RowCheck, ...] = (
    _required_text("post_id"),
    _required_text("subreddit"),
    _optional_text("author"),
    _required_text("title"),
    _optional_text("selftext"),
    _required_timestamp("created_utc"),
    _whole_number("score", non_negative=False),
    _fits_int64("score"),
    _whole_number("num_comments", non_negative=True),
    _fits_int64("num_comments"),
    _optional_text("url"),
    _required_timestamp("fetched_at"),
    _required_timestamp("session_date"),
    _text_state(),
)


def _split_ratio() -> RowCheck:
    def failed(frame: FrameLike) -> np.ndarray:
        values = _floats(frame, "split_ratio")
        return ~(np.isfinite(values) & (values > 0))

    return RowCheck(
        name="split_ratio_invalid",
        rule="split_ratio is finite and > 0",
        message="split_ratio must be finite and > 0 (got {split_ratio})",
        failed=failed,
    )


def _no_action() -> RowCheck:
    """A row that changes nothing (ratio 1, no cash), judged only between valid values."""

    def failed(frame: FrameLike) -> np.ndarray:
        ratio, dividend = _floats(frame, "split_ratio"), _floats(frame, "dividend")
        return (ratio == 1.0) & (dividend == 0.0)

    return RowCheck(
        name="no_action",
        rule="a row has a split (split_ratio != 1) or a dividend (dividend > 0)",
        message="neither a split nor a dividend (split_ratio={split_ratio}, dividend={dividend})",
        failed=failed,
    )


CORPORATE_ACTION_CHECKS: tuple[RowCheck, ...] = (
    _ticker(),
    _required_timestamp("session_date"),
    _split_ratio(),
    _non_negative("dividend"),
    _no_action(),
    _required_timestamp("fetched_at"),
)

COMMENT_CHECKS: tuple[RowCheck, ...] = (
    _required_text("comment_id"),
    _required_text("post_id"),
    _optional_text("subreddit"),
    _optional_text("author"),
    _required_text("body"),
    _required_timestamp("created_utc"),
    _whole_number("score", non_negative=False),
    _fits_int64("score"),
    _required_timestamp("fetched_at"),
    _required_timestamp("session_date"),
    _text_state(),
)


# --------------------------------------------------------------------------------------------
# pandera models of the clean tables (row checks attached from the RowCheck lists above)
# --------------------------------------------------------------------------------------------


def _with_row_checks(checks: Sequence[RowCheck]) -> Callable[[type], type]:
    """Class decorator: one pandera dataframe check per ``RowCheck``, named and described by it."""

    def attach(model: type) -> type:
        for row_check in checks:

            def passes(cls: type, frame: pd.DataFrame, _check: RowCheck = row_check) -> pd.Series:
                return pd.Series(~_check.failed(frame), index=frame.index)

            method = pa.dataframe_check(name=row_check.name, description=row_check.rule)(passes)
            setattr(model, f"check_{row_check.name}", method)
        return model

    return attach


@_with_row_checks(PRICE_CHECKS)
class CleanPriceHistory(pa.DataFrameModel):
    """Validated daily bars: one row per (ticker, session_date), the most recent fetch."""

    ticker: Series[str] = pa.Field(description="Ticker symbol, e.g. AAPL or BRK.B.")
    session_date: Series[pd.Timestamp] = pa.Field(
        description="NYSE session of the bar (naive midnight)."
    )
    open: Series[float] = pa.Field(description="Opening price, finite and > 0.")
    high: Series[float] = pa.Field(description="High, >= open, close and low.")
    low: Series[float] = pa.Field(description="Low, <= open and close.")
    close: Series[float] = pa.Field(description="Closing price, finite and > 0.")
    adj_close: Series[float] = pa.Field(description="Close adjusted for splits and dividends, > 0.")
    volume: Series[np.int64] = pa.Field(description="Shares traded in the session, >= 0.")
    fetched_at: Series[pd.Timestamp] = pa.Field(description="When the bar was fetched (naive UTC).")

    class Config:
        strict = "filter"
        coerce = False
        unique: ClassVar[list[str]] = ["ticker", "session_date"]
        description = "clean.price_history: validated, deduplicated daily bars."


@_with_row_checks(CORPORATE_ACTION_CHECKS)
class CleanCorporateActions(pa.DataFrameModel):
    """Validated splits and dividends: one row per (ticker, ex-date session), the latest fetch."""

    ticker: Series[str] = pa.Field(description="Ticker symbol, e.g. AAPL or BRK.B.")
    session_date: Series[pd.Timestamp] = pa.Field(
        description="Ex-date session (naive midnight): the first session traded without it."
    )
    split_ratio: Series[float] = pa.Field(
        description="New shares per old share (4.0 for a 4:1 split), 1.0 when no split."
    )
    dividend: Series[float] = pa.Field(
        description="Cash per share, in the as-traded units of the ex-date session; 0.0 if none."
    )
    fetched_at: Series[pd.Timestamp] = pa.Field(description="When it was fetched (naive UTC).")

    class Config:
        strict = "filter"
        coerce = False
        unique: ClassVar[list[str]] = ["ticker", "session_date"]
        description = "clean.corporate_actions: validated splits and dividends per ex-date."


@_with_row_checks(POST_CHECKS)
class CleanRedditPosts(pa.DataFrameModel):
    """Validated Reddit posts: one row per post_id, the most recent fetch."""

    post_id: Series[str] = pa.Field(unique=True, description="Reddit's id of the post.")
    subreddit: Series[str] = pa.Field(description="Subreddit the post was made in.")
    author: Series[str] = pa.Field(nullable=True, description="Author's name; None if deleted.")
    title: Series[str] = pa.Field(description="Post title, never blank.")
    selftext: Series[str] = pa.Field(nullable=True, description="Body text; empty for link posts.")
    created_utc: Series[pd.Timestamp] = pa.Field(description="Creation time (naive UTC).")
    score: Series[np.int64] = pa.Field(description="Net upvotes when fetched.")
    num_comments: Series[np.int64] = pa.Field(description="Comment count when fetched, >= 0.")
    url: Series[str] = pa.Field(nullable=True, description="Link of the post.")
    fetched_at: Series[pd.Timestamp] = pa.Field(
        description="When the post was fetched (naive UTC)."
    )
    session_date: Series[pd.Timestamp] = pa.Field(
        description="Session whose window holds the post."
    )
    text_state: Series[str] = pa.Field(
        description="present, or deleted / removed: the text is Reddit's placeholder."
    )
    fetch_lag_hours: Series[float] = pa.Field(
        nullable=True, description="Hours from the session's close to the fetch."
    )

    class Config:
        strict = "filter"
        coerce = False
        description = "clean.reddit_posts: validated posts, latest fetch of each post_id."


@_with_row_checks(COMMENT_CHECKS)
class CleanRedditComments(pa.DataFrameModel):
    """Validated Reddit comments: one row per comment_id, the most recent fetch."""

    comment_id: Series[str] = pa.Field(unique=True, description="Reddit's id of the comment.")
    post_id: Series[str] = pa.Field(description="Id of the post the comment belongs to.")
    subreddit: Series[str] = pa.Field(nullable=True, description="Subreddit of the post.")
    author: Series[str] = pa.Field(nullable=True, description="Author's name; None if deleted.")
    body: Series[str] = pa.Field(description="Comment text, never blank.")
    created_utc: Series[pd.Timestamp] = pa.Field(description="Creation time (naive UTC).")
    score: Series[np.int64] = pa.Field(description="Net upvotes when fetched.")
    fetched_at: Series[pd.Timestamp] = pa.Field(
        description="When the comment was fetched (naive UTC)."
    )
    session_date: Series[pd.Timestamp] = pa.Field(
        description="Session whose window holds the comment."
    )
    text_state: Series[str] = pa.Field(
        description="present, or deleted / removed: the body is Reddit's placeholder."
    )
    fetch_lag_hours: Series[float] = pa.Field(
        nullable=True, description="Hours from the session's close to the fetch."
    )

    class Config:
        strict = "filter"
        coerce = False
        description = "clean.reddit_comments: validated comments, latest fetch of each comment_id."


class RejectedRows(pa.DataFrameModel):
    """Raw rows that failed validation, with why: clean.rejected_rows."""

    source: Series[str] = pa.Field(
        description="Raw table the row came from, e.g. raw.price_history."
    )
    record_key: Series[str] = pa.Field(
        description="The row's key, e.g. AAPL|2024-01-02, or <missing>."
    )
    reason: Series[str] = pa.Field(description="Every failed check, readable, joined with '; '.")
    payload: Series[str] = pa.Field(
        description="The raw row as JSON (ISO timestamps, NaN as null)."
    )
    session_date: Series[pd.Timestamp] = pa.Field(nullable=True, description="Raw row's session.")
    check: Series[str] = pa.Field(
        description="Name of the first failed check, e.g. high_below_low."
    )

    class Config:
        strict = "filter"
        coerce = False
        description = "clean.rejected_rows: one row per rejected raw row."


# --------------------------------------------------------------------------------------------
# Table rules and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableRules:
    """How one raw table is validated: its layout, key, checks and clean schema."""

    source: str
    columns: Mapping[str, str]
    key: tuple[str, ...]
    checks: tuple[RowCheck, ...]
    schema: type[pa.DataFrameModel]
    # Column -> clean dtype where it differs from the raw layout.
    clean_dtypes: Mapping[str, str]
    # Text columns that may be missing (NaN normalised to None in the clean frame).
    optional_text: tuple[str, ...] = ()
    # Columns added to the layout later: a raw frame may lack them (an older warehouse, an older
    # caller), and a missing value is derived from the row's other (typed) values.
    derived: Mapping[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]] = field(
        default_factory=dict
    )


def _derived_text_state(column: str) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    def derive(typed: Mapping[str, np.ndarray]) -> np.ndarray:
        return text_state_of(pd.Series(typed[column], dtype=object)).to_numpy(dtype=object)

    return derive


def _derived_fetch_lag(typed: Mapping[str, np.ndarray]) -> np.ndarray:
    return fetch_lag_hours(
        pd.Series(typed["fetched_at"]), pd.Series(typed["session_date"])
    ).to_numpy(dtype="float64")


PRICE_RULES = TableRules(
    source="raw.price_history",
    columns=RAW_PRICE_COLUMNS,
    key=("ticker", "session_date"),
    checks=PRICE_CHECKS,
    schema=CleanPriceHistory,
    clean_dtypes={"volume": "int64"},
)
CORPORATE_ACTION_RULES = TableRules(
    source="raw.corporate_actions",
    columns=CORPORATE_ACTION_COLUMNS,
    key=("ticker", "session_date"),
    checks=CORPORATE_ACTION_CHECKS,
    schema=CleanCorporateActions,
    clean_dtypes={},
)
POST_RULES = TableRules(
    source="raw.reddit_posts",
    columns=RAW_POST_COLUMNS,
    key=("post_id",),
    checks=POST_CHECKS,
    schema=CleanRedditPosts,
    clean_dtypes={"score": "int64", "num_comments": "int64"},
    optional_text=("author", "selftext", "url"),
    derived={"text_state": _derived_text_state("selftext"), "fetch_lag_hours": _derived_fetch_lag},
)
COMMENT_RULES = TableRules(
    source="raw.reddit_comments",
    columns=RAW_COMMENT_COLUMNS,
    key=("comment_id",),
    checks=COMMENT_CHECKS,
    schema=CleanRedditComments,
    clean_dtypes={"score": "int64"},
    optional_text=("subreddit", "author"),
    derived={"text_state": _derived_text_state("body"), "fetch_lag_hours": _derived_fetch_lag},
)


@dataclass(frozen=True, eq=False)
class ValidationResult:
    """The outcome of validating one raw frame: ``raw rows == clean + rejected + duplicates``."""

    source: str
    clean: pd.DataFrame
    rejected: pd.DataFrame
    duplicates: int

    @property
    def raw_rows(self) -> int:
        """Rows of the raw frame this result accounts for."""
        return len(self.clean) + len(self.rejected) + self.duplicates

    def rejections_by_check(self) -> pd.Series:
        """Rejected rows per first failed check, most frequent first."""
        return self.rejected["check"].value_counts().rename("rows")


# --------------------------------------------------------------------------------------------
# Coercion of raw columns to their layout dtype (bad values become missing, never an exception)
# --------------------------------------------------------------------------------------------


def _number_or_nan(value: object) -> float:
    if isinstance(value, (bool, np.bool_)):
        return np.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        try:
            return float(value)
        except OverflowError:  # a Python int beyond float range
            return np.nan
    return np.nan


def _as_float(series: pd.Series) -> np.ndarray:
    dtype = series.dtype
    if dtype == np.float64:
        return series.to_numpy()
    if not pd.api.types.is_bool_dtype(dtype) and pd.api.types.is_numeric_dtype(dtype):
        try:
            return series.to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError):
            pass
    values = series.to_numpy(dtype=object)
    return np.fromiter((_number_or_nan(v) for v in values), dtype="float64", count=len(values))


def _as_timestamp(series: pd.Series) -> np.ndarray:
    """Naive datetime64[ns]; aware values are converted to UTC, unparseable ones become NaT."""
    dtype = series.dtype
    try:
        if isinstance(dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            dtype = series.dtype
        if dtype.kind == "M":
            return series.astype("datetime64[ns]").to_numpy()
    except (ValueError, OverflowError):  # out of the ns range: fall back to value by value
        pass
    values = series.to_numpy(dtype=object)
    parseable = np.fromiter(
        (isinstance(v, (str, dt.date, np.datetime64)) for v in values),
        dtype=bool,
        count=len(values),
    )
    candidates = pd.Series(np.where(parseable, values, None), dtype=object)
    try:
        parsed = pd.to_datetime(candidates, errors="coerce", utc=True, format="mixed")
        return parsed.dt.tz_localize(None).astype("datetime64[ns]").to_numpy()
    except (ValueError, TypeError, OverflowError):
        return np.array([_one_timestamp(v) for v in candidates], dtype="datetime64[ns]")


def _one_timestamp(value: object) -> np.datetime64:
    try:
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return stamp.as_unit("ns").to_datetime64()
    except (ValueError, TypeError, OverflowError):
        return np.datetime64("NaT", "ns")


def _as_object(series: pd.Series) -> np.ndarray:
    if series.dtype == object:
        return series.to_numpy()
    return series.astype(object).where(series.notna(), None).to_numpy()


def _typed_columns(raw: pd.DataFrame, columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    typed: dict[str, np.ndarray] = {}
    for name, dtype in columns.items():
        series = raw[name]
        if dtype.startswith("datetime64"):
            typed[name] = _as_timestamp(series)
        elif dtype == "object":
            typed[name] = _as_object(series)
        else:
            typed[name] = _as_float(series)
    return typed


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_prices(raw_df: pd.DataFrame) -> ValidationResult:
    """Validate and deduplicate ``raw.price_history`` rows (key: ticker, session_date)."""
    return validate_table(raw_df, PRICE_RULES)


def validate_corporate_actions(raw_df: pd.DataFrame) -> ValidationResult:
    """Validate and deduplicate ``raw.corporate_actions`` rows (key: ticker, session_date)."""
    return validate_table(raw_df, CORPORATE_ACTION_RULES)


def validate_posts(raw_df: pd.DataFrame) -> ValidationResult:
    """Validate and deduplicate ``raw.reddit_posts`` rows (key: post_id)."""
    return validate_table(raw_df, POST_RULES)


def validate_comments(raw_df: pd.DataFrame) -> ValidationResult:
    """Validate and deduplicate ``raw.reddit_comments`` rows (key: comment_id)."""
    return validate_table(raw_df, COMMENT_RULES)


def validate_table(raw_df: pd.DataFrame, rules: TableRules) -> ValidationResult:
    """Reject invalid rows, then keep the latest fetch of each key; raises only on a bad input shape."""
    if not isinstance(raw_df, pd.DataFrame):
        raise TypeError(f"{rules.source}: expected a pandas DataFrame, got {type(raw_df).__name__}")
    late = [name for name in rules.derived if name not in raw_df.columns]
    if late:
        raw_df = raw_df.assign(**dict.fromkeys(late))
    missing = [name for name in rules.columns if name not in raw_df.columns]
    if missing:
        raise ValueError(
            f"{rules.source}: missing required column(s) {', '.join(missing)} "
            f"(expected {', '.join(rules.columns)})"
        )
    repeated = [name for name in rules.columns if (raw_df.columns == name).sum() > 1]
    if repeated:
        raise ValueError(f"{rules.source}: column(s) {', '.join(repeated)} appear more than once")

    typed = _typed_columns(raw_df, rules.columns)
    for name, derive in rules.derived.items():
        unknown = pd.isna(typed[name])
        if unknown.any():
            typed[name] = np.where(unknown, derive(typed), typed[name])
    row_count = len(raw_df)
    failures = np.empty((row_count, len(rules.checks)), dtype=bool)
    for position, row_check in enumerate(rules.checks):
        failures[:, position] = row_check.failed(typed)
    is_rejected = failures.any(axis=1)

    valid_rows = np.flatnonzero(~is_rejected)
    kept_rows = _latest_fetch_per_key(typed, valid_rows, rules.key)
    rejected_rows = np.flatnonzero(is_rejected)
    return ValidationResult(
        source=rules.source,
        clean=_clean_frame(typed, kept_rows, rules),
        rejected=_rejected_frame(raw_df, typed, rejected_rows, failures[rejected_rows], rules),
        duplicates=int(len(valid_rows) - len(kept_rows)),
    )


def _latest_fetch_per_key(
    typed: Mapping[str, np.ndarray], valid_rows: np.ndarray, key: Sequence[str]
) -> np.ndarray:
    """Row positions of the winner of each key (latest ``fetched_at``, then later row), in key order.

    Each key column is factorized with sorted uniques, so one stable sort of the integer codes
    orders rows by key and, within a key, by input order. Only the few keys fetched more than once
    need a second sort on ``fetched_at``.
    """
    if len(valid_rows) == 0:
        return valid_rows
    composite = np.zeros(len(valid_rows), dtype=np.int64)
    for column in key:
        codes, uniques = pd.factorize(typed[column][valid_rows], sort=True)
        composite = composite * len(uniques) + codes
    order = np.argsort(composite, kind="stable")
    sorted_keys = composite[order]
    starts_key = np.empty(len(sorted_keys), dtype=bool)
    starts_key[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts_key[1:])
    key_of_position = np.cumsum(starts_key) - 1
    key_starts = np.flatnonzero(starts_key)
    key_sizes = np.diff(np.append(key_starts, len(sorted_keys)))

    winner = order[key_starts]  # right for every key seen once
    repeated = np.flatnonzero(key_sizes[key_of_position] > 1)
    if len(repeated):
        fetched = typed["fetched_at"][valid_rows[order[repeated]]].view(np.int64)
        keys = key_of_position[repeated]
        # Stable: equal fetch times keep input order, so the later row ends its group.
        by_fetch = repeated[np.lexsort((fetched, keys))]
        sorted_repeat_keys = key_of_position[by_fetch]
        ends_key = np.append(sorted_repeat_keys[1:] != sorted_repeat_keys[:-1], True)
        winner[sorted_repeat_keys[ends_key]] = order[by_fetch[ends_key]]
    return valid_rows[winner]


def _clean_frame(
    typed: Mapping[str, np.ndarray], kept_rows: np.ndarray, rules: TableRules
) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for name in rules.columns:
        values = typed[name][kept_rows]
        clean_dtype = rules.clean_dtypes.get(name)
        if clean_dtype == "int64":
            values = np.rint(values).astype(np.int64)
        elif name in rules.optional_text:
            values = np.where(pd.isna(values), None, values) if len(values) else values
        columns[name] = values
    # The arrays are fresh (taken above), so the frame may own them without a copy.
    return pd.DataFrame(columns, copy=False)


def _rejected_frame(
    raw_df: pd.DataFrame,
    typed: Mapping[str, np.ndarray],
    rejected_rows: np.ndarray,
    failures: np.ndarray,
    rules: TableRules,
) -> pd.DataFrame:
    if len(rejected_rows) == 0:
        return pd.DataFrame(
            {name: pd.Series(dtype=dtype) for name, dtype in REJECTED_COLUMNS.items()}
        )
    raw_rejected = raw_df.iloc[rejected_rows][list(rules.columns)].reset_index(drop=True)
    reasons: list[list[str]] = [[] for _ in rejected_rows]
    first_check = np.array([rules.checks[i].name for i in failures.argmax(axis=1)], dtype=object)
    # Loop over checks, then only over the (few) rows each one rejected.
    for position, row_check in enumerate(rules.checks):
        failing = np.flatnonzero(failures[:, position])
        if len(failing) == 0:
            continue
        reasons_of_check = row_check.explain(raw_rejected.iloc[failing])
        for row, reason in zip(failing.tolist(), reasons_of_check, strict=True):
            reasons[row].append(reason)
    return pd.DataFrame(
        {
            "source": rules.source,
            "record_key": _record_keys(typed, rejected_rows, rules.key),
            "reason": [REASON_SEPARATOR.join(parts) for parts in reasons],
            "payload": _payloads(raw_rejected),
            "session_date": typed["session_date"][rejected_rows],
            "check": first_check,
        },
        columns=list(REJECTED_COLUMNS),
    )


def _record_keys(
    typed: Mapping[str, np.ndarray], rows: np.ndarray, key: Sequence[str]
) -> np.ndarray:
    """Readable keys such as ``AAPL|2024-01-02``; a missing part reads ``<missing>``."""
    parts = [_key_parts(typed[column][rows]) for column in key]
    keys = parts[0]
    for more in parts[1:]:
        keys = keys + "|" + more
    return keys


def _key_parts(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "M":
        is_date = (values.view(np.int64) % (86_400 * 10**9) == 0) | np.isnat(values)
        text = np.datetime_as_string(values, unit="D" if is_date.all() else "auto")
        return np.where(np.isnat(values), MISSING_KEY, text).astype(object)
    return np.array([_key_part(value) for value in values], dtype=object)


def _key_part(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_KEY
    text = str(value)
    return text if text.strip() else MISSING_KEY


def _payloads(raw_rejected: pd.DataFrame) -> list[str]:
    """Each rejected raw row as one JSON object: ISO timestamps, NaN as null, inf as "inf"."""
    frame = raw_rejected.copy()
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "f":
            infinite = np.isinf(column.to_numpy())
            if infinite.any():
                # JSON has no infinity and null would hide it: keep it visible as a string.
                as_text = np.where(column.to_numpy() > 0, "inf", "-inf")
                frame[name] = column.astype(object).where(~infinite, as_text)
    lines = frame.to_json(
        orient="records", lines=True, date_format="iso", date_unit="us", default_handler=str
    )
    return lines.rstrip("\n").split("\n")


def _show(value: object) -> str:
    """A raw value as quoted in a reason: numbers plain, text quoted, missing as None/NaN/NaT."""
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)  # .item() would give nanoseconds as an int
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "None"
    if value is pd.NaT:
        return "NaT"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else repr(value)
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    return repr(value)
