"""Small helpers that turn frames into materialization metadata the UI shows well."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping

import pandas as pd
from dagster import MetadataValue


def preview(frame: pd.DataFrame, rows: int = 5, max_text: int = 60) -> MetadataValue:
    """The first rows as a Markdown table, long text cut, dates shown as dates, and how many of how many.

    Built from the few rows shown with plain string formatting: a range run makes one preview per
    asset and session (21,250 for five years of the whole chain), and pandas' ``head().copy()``,
    ``select_dtypes`` and ``to_markdown`` cost milliseconds each.
    """
    if not len(frame):
        return MetadataValue.md("_no rows_")
    head = frame.iloc[:rows]
    columns = [str(column) for column in head.columns]
    numeric = [pd.api.types.is_numeric_dtype(dtype) and dtype != bool for dtype in head.dtypes]
    lines = [
        "| " + " | ".join(_escape(column) for column in columns) + " |",
        "|" + "|".join("---:" if is_numeric else ":---" for is_numeric in numeric) + "|",
        *(
            "| " + " | ".join(_preview_cell(value, max_text) for value in row) + " |"
            for row in head.itertuples(index=False, name=None)  # at most ``rows`` rows
        ),
    ]
    shown = f"_first {len(head)} of {len(frame):,} rows_\n\n" if len(frame) > len(head) else ""
    return MetadataValue.md(shown + "\n".join(lines))


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _preview_cell(value, max_text: int) -> str:
    """One cell of a preview: a date at midnight as a date, long text cut, NaN/None empty."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        text = f"{value:%Y-%m-%d}" if value == value.normalize() else str(value)
    elif isinstance(value, float):
        text = f"{value:g}" if abs(value) >= 1e6 or (value and abs(value) < 1e-4) else f"{value:.6g}"
    else:
        text = str(value)
        if isinstance(value, str) and len(text) > max_text:
            text = text[: max_text - 1] + "…"
    return _escape(text)


def counts_table(
    counts: Mapping[str, int] | pd.Series, key: str, value: str = "rows"
) -> MetadataValue:
    """A two-column Markdown table of counts, largest first."""
    series = pd.Series(counts, dtype="int64").sort_values(ascending=False)
    if series.empty:
        return MetadataValue.md("_none_")
    lines = [f"| {_escape(key)} | {_escape(value)} |", "|:---|---:|"]
    lines += [f"| {_escape(str(name))} | {int(count)} |" for name, count in series.items()]
    return MetadataValue.md("\n".join(lines))


def reliability_markdown(table: pd.DataFrame) -> MetadataValue:
    """A reliability table (band, count, mean confidence, hit rate) as Markdown, figures rounded."""
    if table.empty:
        return MetadataValue.md("_no resolved outcomes to compare with_")
    # Fixed decimals, so a hit rate of 1 reads 1.000 in a column of 0.179s.
    return MetadataValue.md(table.to_markdown(index=False, floatfmt=".3f"))


def png(image: bytes, title: str) -> MetadataValue:
    """A PNG embedded in Markdown, so the UI shows it inline."""
    encoded = base64.b64encode(image).decode("ascii")
    return MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def describe_each_session(
    context,
    frame: pd.DataFrame,
    describe: Callable[[pd.DataFrame, str], dict[str, MetadataValue]],
    *,
    asset_key: list[str] | None = None,
) -> dict[str, MetadataValue]:
    """Give each partition of the run metadata about its own rows; return what the run shares.

    A range run materializes every session in one step; Dagster then copies the output's metadata
    to every partition, so range-wide counts would read as each session's. ``describe`` gets the
    rows of one session (possibly none) and its key; its result is attached to that partition alone. The
    returned metadata (for the ``Output``) says which range the run covered, nothing more.
    """
    keys = sorted(context.partition_keys)
    sessions = (
        pd.to_datetime(frame["session_date"]).dt.strftime("%Y-%m-%d")
        if "session_date" in frame.columns and len(frame)
        else pd.Series("", index=frame.index)
    )
    groups = dict(tuple(frame.groupby(sessions.to_numpy(), sort=False))) if len(frame) else {}
    empty = frame.iloc[0:0]
    add_partition_metadata(
        context,
        {
            key: {
                "dagster/row_count": MetadataValue.int(len(groups.get(key, empty))),
                **describe(groups.get(key, empty), key),
            }
            for key in keys
        },
        asset_key=asset_key,
    )
    return run_range(keys)


def add_partition_metadata(
    context, by_partition: Mapping[str, Mapping[str, object]], *, asset_key=None
) -> None:
    """``context.add_asset_metadata(metadata, asset_key, partition_key=key)`` for every key of
    ``by_partition`` (partition keys of the run), in one step.

    Why not the loop: Dagster 1.13 rebuilds its whole metadata accumulator (a copy of every entry
    so far, each checked) and lists the run's partition keys on every call, so a five-year range
    run of a four-table step (5,000 calls) spent longer there than in the step's own work: the
    cost grows with the square of the range. This merges the entries into the step's accumulator
    once, as ``add_asset_metadata`` would one by one (later entries win, key by key). It reaches
    into a private attribute (``_metadata_accumulator``); without it (another Dagster) it falls
    back to the public loop. ``tft_pipeline_tests/test_defs_metadata.py`` pins both.
    """
    from dagster import AssetKey

    step = (
        context.get_step_execution_context()
        if hasattr(context, "get_step_execution_context")
        else None
    )
    accumulator = getattr(step, "_metadata_accumulator", None)
    merged_entries = getattr(accumulator, "per_output_metadata", None)
    assets_def = getattr(step, "assets_def", None)
    if (
        merged_entries is None
        or assets_def is None
        or (asset_key is None and len(assets_def.keys) != 1)
    ):
        for key, metadata in by_partition.items():
            context.add_asset_metadata(metadata, asset_key=asset_key, partition_key=key)
        return
    from dagster._core.execution.context.metadata_logging import (
        AssetMetadataHandle,
        OutputMetadataAccumulator,
    )

    key = AssetKey.from_coercible(asset_key) if asset_key is not None else assets_def.key
    if key not in assets_def.keys:  # the public path raises Dagster's own error
        context.add_asset_metadata({}, asset_key=asset_key)
    targeted = set(context.partition_keys)
    merged = dict(merged_entries)
    for partition, metadata in by_partition.items():
        if partition not in targeted:
            raise ValueError(f"partition {partition} is not one of this run's partitions")
        handle = AssetMetadataHandle(asset_key=key, partition_key=partition)
        merged[handle] = {**merged.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)


def run_range(keys: list[str]) -> dict[str, MetadataValue]:
    """For a range run: the range, so nobody reads its partition's page as the range's."""
    if len(keys) <= 1:
        return {}
    return {
        "materialized_in_range": MetadataValue.text(
            f"{keys[0]}..{keys[-1]}: {len(keys)} sessions materialized in one run. Figures named "
            "fetch_* or *_in_run are the run's; every other figure is this session's own"
        )
    }
