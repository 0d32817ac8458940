"""Put generated frames in the exact raw layouts of ``tft_pipeline.tables`` (cheaply: they are
built with the right types already, so no parsing as in ``tables.conform`` is needed)."""

from __future__ import annotations

import pandas as pd


def exact_layout(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """``frame`` with exactly ``columns``, in order, cast to their dtypes, on a fresh 0..n index."""
    out = frame[list(columns)].astype(columns)
    return out.reset_index(drop=True)
