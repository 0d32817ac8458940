"""Column layouts of the raw tables, shared by every source and by validation (pure, no Dagster).

Conventions for every DataFrame in the package:
- ``session_date`` is a naive ``datetime64`` at midnight (the NYSE session, New York date);
- ``created_utc`` and ``fetched_at`` are naive ``datetime64`` in UTC;
- text columns are ``object`` dtype and may hold ``None`` in raw frames (validation rejects them).
"""

from __future__ import annotations

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
}

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


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """``frame`` with exactly ``columns`` in order and dtype (missing columns become nulls)."""
    out = pd.DataFrame(index=frame.index)
    for name, dtype in columns.items():
        if name in frame.columns:
            series = frame[name]
        else:
            series = pd.Series(None, index=frame.index, dtype="object")
        if dtype.startswith("datetime64"):
            series = pd.to_datetime(series, utc=True, errors="coerce").dt.tz_localize(None)
            out[name] = series.astype(dtype)
        elif dtype == "object":
            out[name] = series.astype("object").where(series.notna(), None)
        else:
            out[name] = pd.to_numeric(series, errors="coerce").astype(dtype)
    return out.reset_index(drop=True)
