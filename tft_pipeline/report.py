"""The terminal report of the warehouse: rows per table, rejects, the latest session's decisions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from tft_pipeline.warehouse import Warehouse


def _table(title: str, frame: pd.DataFrame, numeric_format: str = "{:,.2f}") -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):  # a handful of report rows, not a hot path
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append(numeric_format.format(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table


def warehouse_summary(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    """The frames the report shows (empty frames where a table does not exist yet)."""
    tables = warehouse.query(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('main', 'information_schema') ORDER BY 1"
    )["name"].tolist()
    counts = []
    for name in tables:
        schema, table = name.split(".")
        stats = warehouse.query(
            f'SELECT count(*) AS rows, count(DISTINCT session_date) AS sessions, '
            f'min(session_date) AS first, max(session_date) AS last FROM "{schema}"."{table}"'
        ) if _has_session_column(warehouse, schema, table) else warehouse.query(
            f'SELECT count(*) AS rows FROM "{schema}"."{table}"'
        )
        counts.append({"table": name, **stats.iloc[0].to_dict()})
    tables_frame = pd.DataFrame(counts)
    for column in ("rows", "sessions"):
        if column in tables_frame:
            tables_frame[column] = tables_frame[column].fillna(0).astype("int64")
    for column in ("first", "last"):
        if column in tables_frame:
            tables_frame[column] = tables_frame[column].dt.strftime("%Y-%m-%d").fillna("")
    summary = {"tables": tables_frame}
    if "clean.rejected_rows" in tables:
        summary["rejected"] = warehouse.query(
            "SELECT source, split_part(split_part(reason, ';', 1), ' (', 1) AS reason, count(*) AS rows "
            "FROM clean.rejected_rows GROUP BY ALL ORDER BY rows DESC"
        )
    if "signals.risk_decisions" in tables:
        latest = warehouse.query("SELECT max(session_date) AS d FROM signals.risk_decisions")["d"].iloc[0]
        summary["latest_session"] = pd.DataFrame({"session": [latest]})
        summary["accepted"] = warehouse.query(
            "SELECT ticker, direction, round(confidence, 3) AS confidence, entry, stop_loss, "
            "take_profit, shares, position_value, risk_dollars, round(reward_risk, 2) AS reward_risk "
            "FROM signals.risk_decisions WHERE session_date = ? AND accepted ORDER BY confidence DESC",
            [latest],
        )
        summary["rejections"] = warehouse.query(
            "SELECT code AS reason, count(*) AS signals FROM (SELECT unnest(string_split(reasons, ';')) "
            "AS code FROM signals.risk_decisions WHERE session_date = ? AND NOT accepted) "
            "GROUP BY ALL ORDER BY signals DESC",
            [latest],
        )
    return summary


def _has_session_column(warehouse: Warehouse, schema: str, table: str) -> bool:
    return bool(
        len(
            warehouse.query(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                "AND column_name = 'session_date'",
                [schema, table],
            )
        )
    )


def print_report(warehouse_path: Path, console: Console) -> None:
    """Print the report of the warehouse at ``warehouse_path``."""
    summary = warehouse_summary(Warehouse(warehouse_path))
    console.print(_table(f"Warehouse {warehouse_path}", summary["tables"]))
    if "rejected" in summary:
        console.print(_table("Rejected raw rows by reason", summary["rejected"]))
    if "accepted" in summary and pd.isna(summary["latest_session"]["session"].iloc[0]):
        console.print(
            "No trading signal yet: the walk-forward model scores a session only once enough "
            "labels (10-session horizon) were known before it; materialize more sessions."
        )
    elif "accepted" in summary:
        session = pd.Timestamp(summary["latest_session"]["session"].iloc[0]).date()
        accepted = summary["accepted"]
        if accepted.empty:
            console.print(f"No signal was accepted on {session}.")
        else:
            console.print(_table(f"Accepted signals on {session}", accepted))
        if not summary["rejections"].empty:
            console.print(_table(f"Rejected signals on {session} by reason", summary["rejections"]))
