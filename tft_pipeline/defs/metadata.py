"""Small helpers that turn frames into materialization metadata the UI shows well."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import pandas as pd
from dagster import MetadataValue


def preview(frame: pd.DataFrame, rows: int = 5, max_text: int = 60) -> MetadataValue:
    """The first rows as a Markdown table, long text cut."""
    head = frame.head(rows).copy()
    for column in head.select_dtypes(include="object"):
        head[column] = head[column].map(
            lambda v: v if not isinstance(v, str) or len(v) <= max_text else v[: max_text - 1] + "…"
        )
    return MetadataValue.md(head.to_markdown(index=False) if len(head) else "_no rows_")


def counts_table(counts: Mapping[str, int] | pd.Series, key: str, value: str = "rows") -> MetadataValue:
    """A two-column Markdown table of counts, largest first."""
    series = pd.Series(counts, dtype="int64").sort_values(ascending=False)
    if series.empty:
        return MetadataValue.md("_none_")
    frame = series.rename_axis(key).reset_index(name=value)
    return MetadataValue.md(frame.to_markdown(index=False))


def png(image: bytes, title: str) -> MetadataValue:
    """A PNG embedded in Markdown, so the UI shows it inline."""
    encoded = base64.b64encode(image).decode("ascii")
    return MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")
