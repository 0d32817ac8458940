"""Column layouts of the raw tables, shared by every source and by validation (pure, no Dagster).

Conventions for every DataFrame in the package:
- ``session_date`` is a naive ``datetime64[ns]`` at midnight (the NYSE session, New York date);
- ``created_utc`` and ``fetched_at`` are naive ``datetime64[ns]`` in UTC (warehouse reads too);
- text columns are ``object`` dtype and may hold ``None`` in raw frames (validation rejects them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RAW_POST_COLUMNS: dict[str, str] = {
    "post_id": "object",
    "subreddit": "object",
    "author": "object",
    "title": "object",
    "selftext": "object",
    "created_utc": "datetime64[ns]",
    "score": "float64",  # float so a missing score survives to validation instead of crashing a cast
    "num_comments": "float64",
    "url": "object",
    "fetched_at": "datetime64[ns]",
    "session_date": "datetime64[ns]",
    # Added later, so at the end (see TEXT_STATES and trading_calendar.fetch_lag_hours).
    "text_state": "object",
    "fetch_lag_hours": "float64",
}

RAW_COMMENT_COLUMNS: dict[str, str] = {
    "comment_id": "object",
    "post_id": "object",
    "subreddit": "object",
    "author": "object",
    "body": "object",
    "created_utc": "datetime64[ns]",
    "score": "float64",
    "fetched_at": "datetime64[ns]",
    "session_date": "datetime64[ns]",
    "text_state": "object",
    "fetch_lag_hours": "float64",
}

# Reddit replaces the text of a post or comment that is gone by a placeholder: "[deleted]" when the
# author deleted it, "[removed]" when moderators or Reddit removed it. The row is kept (the post or
# comment existed, and it counts), with ``text_state`` saying which; text features skip such text.
TEXT_STATES: tuple[str, ...] = ("present", "deleted", "removed")
REMOVED_TEXT_PLACEHOLDERS: dict[str, str] = {"[deleted]": "deleted", "[removed]": "removed"}


def text_state_of(texts: pd.Series) -> pd.Series:
    """``"deleted"`` / ``"removed"`` where a text is Reddit's placeholder, else ``"present"``."""
    stripped = texts.astype("object").where(texts.notna(), "").astype(str).str.strip()
    state = stripped.map(REMOVED_TEXT_PLACEHOLDERS).fillna("present")
    return state.astype("object")


def is_removed_text(texts: pd.Series) -> pd.Series:
    """True where a text is one of Reddit's placeholders (``[deleted]``, ``[removed]``)."""
    return text_state_of(texts) != "present"


RAW_PRICE_COLUMNS: dict[str, str] = {
    "ticker": "object",
    "session_date": "datetime64[ns]",
    "open": "float64",
    "high": "float64",
    "low": "float64",
    "close": "float64",
    "adj_close": "float64",
    "volume": "float64",  # float so NaN volume reaches validation
    "fetched_at": "datetime64[ns]",
}

# One row per ticker that could not be fetched in a run: the run goes on without it.
PRICE_FETCH_FAILURE_COLUMNS: dict[str, str] = {
    "ticker": "object",
    "error_type": "object",
    "message": "object",
    "attempts": "int64",
    "session_date": "datetime64[ns]",
}

# One row per ticker and ex-date session with a split, a dividend or both (issue 10, item 6).
# split_ratio: new shares per old share (4.0 for AAPL's 4:1 split on 2020-08-31; 1.0 when no split).
# dividend: cash per share paid to holders of record before the ex-date, in the as-traded units of
# the ex-date session (0.0 when none). session_date is the ex-date session.
CORPORATE_ACTION_COLUMNS: dict[str, str] = {
    "ticker": "object",
    "session_date": "datetime64[ns]",
    "split_ratio": "float64",
    "dividend": "float64",
    "fetched_at": "datetime64[ns]",
}

REJECTED_ROW_COLUMNS: dict[str, str] = {
    "source": "object",
    "record_key": "object",
    "reason": "object",
    "payload": "object",
    "session_date": "datetime64[ns]",
}


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    """An empty DataFrame with exactly ``columns`` and their dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def conform(frame: pd.DataFrame, columns: dict[str, str], *, lenient: bool = False) -> pd.DataFrame:
    """``frame`` with exactly ``columns`` in order and dtype (missing columns become nulls).

    Strict by default: a value that cannot be converted raises ``ValueError`` naming the column,
    the dtype and the values, so a type bug in a frame the pipeline built fails where it happens.
    ``lenient=True`` turns such values into nulls instead: only for raw source rows, whose bad
    values must reach validation and its quarantine. Missing values (None, NaN, NaT) stay missing
    either way; ``int64`` and ``bool`` columns cannot hold a null, so there they raise in both modes.
    """
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for name, dtype in columns.items():
        if name in frame.columns:
            series = frame[name].reset_index(drop=True)
        else:
            series = pd.Series(None, index=out.index, dtype="object")
        if dtype == "object":
            out[name] = series.astype("object").where(series.notna(), None)
            continue
        if dtype.startswith("datetime64"):
            converted = _to_naive_utc(series)
        else:
            converted = pd.to_numeric(series, errors="coerce")
        missing = series.isna().to_numpy()
        # pandas' nullable extension dtypes ("boolean", "Int64") hold nulls; numpy ints, bools not.
        resolved = pd.api.types.pandas_dtype(dtype)
        holds_nulls = isinstance(resolved, pd.api.extensions.ExtensionDtype) or (
            resolved.kind not in "iub"
        )
        if not lenient or not holds_nulls:
            _refuse(name, dtype, series, ~missing & converted.isna().to_numpy(), "cannot convert")
        if not holds_nulls:
            _refuse_inexact(name, dtype, series, converted, missing)
        out[name] = converted.astype(dtype)
    return out


def _to_naive_utc(series: pd.Series) -> pd.Series:
    """Timestamps as naive UTC; what cannot be parsed becomes NaT."""
    text = series.dtype == object or isinstance(series.dtype, pd.StringDtype)
    # ISO 8601 first: fast, and no guessing of the format from the first value.
    converted = pd.to_datetime(
        series, utc=True, errors="coerce", format="ISO8601" if text else None
    )
    # Anything else (another text format, epoch numbers among text) is parsed value by value.
    retry = series.notna().to_numpy() & converted.isna().to_numpy()
    if retry.any():
        converted[retry] = pd.to_datetime(series[retry], utc=True, errors="coerce", format="mixed")
    return converted.dt.tz_localize(None)


def _refuse_inexact(
    name: str, dtype: str, series: pd.Series, converted: pd.Series, missing: np.ndarray
) -> None:
    """Refuse what an int or bool cast would change silently (astype gives no error for it)."""
    _refuse(name, dtype, series, missing, "cannot hold missing values, found")
    values = converted.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        if np.dtype(dtype).kind == "b":
            # astype(bool) makes True of every non-zero number.
            changed = ~np.isin(values, (0.0, 1.0))
        else:
            # astype(int64) drops a fraction (2.5 -> 2) and wraps infinities.
            changed = ~np.isfinite(values) | (values != np.trunc(values))
    _refuse(name, dtype, series, changed & ~missing, "cannot convert exactly")


def _refuse(name: str, dtype: str, series: pd.Series, bad: np.ndarray, problem: str) -> None:
    """Raise ``ValueError`` naming the column, the dtype and the first few ``bad`` values."""
    rows = np.flatnonzero(bad)
    if not len(rows):
        return
    shown = ", ".join(f"{_plain(series.iloc[row])!r} (row {row})" for row in rows[:3])
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    raise ValueError(f"conform: column {name!r} to {dtype}: {problem} {shown}{more}")


def _plain(value: object) -> object:
    """A NumPy scalar as the Python value it holds, so a message shows 2.5, not np.float64(2.5)."""
    return value.item() if isinstance(value, np.generic) else value
