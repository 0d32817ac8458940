"""The terminal report of the warehouse: rows per table, rejects, what was traded and on what model's
word, and the latest session's decisions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from tft_pipeline.model.calibration import reliability_table
from tft_pipeline.warehouse import Warehouse

CLOSED_REASONS = ("stop", "target", "expiry")
RECENT_ACCEPTED = 10


def _table(title: str, frame: pd.DataFrame, numeric_format: str = "{:,.2f}") -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):  # a handful of report rows, not a hot path
        cells = []
        for value in row:
            if isinstance(value, pd.Timestamp) and value == value.normalize():
                cells.append(str(value.date()))
            elif isinstance(value, float):
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
        stats = (
            warehouse.query(
                f"SELECT count(*) AS rows, count(DISTINCT session_date) AS sessions, "
                f'min(session_date) AS first, max(session_date) AS last FROM "{schema}"."{table}"'
            )
            if _has_session_column(warehouse, schema, table)
            else warehouse.query(f'SELECT count(*) AS rows FROM "{schema}"."{table}"')
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
        latest = warehouse.query("SELECT max(session_date) AS d FROM signals.risk_decisions")[
            "d"
        ].iloc[0]
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
        summary.update(_trading_summary(warehouse, tables))
    return summary


def _trading_summary(warehouse: Warehouse, tables: list[str]) -> dict[str, pd.DataFrame]:
    """Every session's decisions at once: how many were accepted, the latest ones with their sizes,
    the model versions behind them and their out-of-sample skill, and how the trades came out."""
    summary = {
        "decisions": warehouse.query(
            "SELECT count(*) AS judged, count(*) FILTER (WHERE accepted) AS accepted, "
            "count(DISTINCT session_date) AS sessions FROM signals.risk_decisions"
        ),
        "recent_accepted": warehouse.query(
            "SELECT session_date AS session, ticker, direction, round(confidence, 3) AS confidence, "
            "shares, round(position_value, 2) AS position_value, model_version "
            "FROM signals.risk_decisions WHERE accepted "
            f"ORDER BY session_date DESC, confidence DESC LIMIT {RECENT_ACCEPTED}"
        ),
    }
    if "signals.model_versions" in tables:
        summary["models"] = warehouse.query(
            "SELECT model_version, min(session_date) AS first_session, "
            "max(session_date) AS last_session, any_value(n_train) AS n_train, "
            "round(any_value(holdout_auc), 3) AS auc, "
            "round(any_value(holdout_brier_skill), 4) AS brier_skill, "
            "any_value(has_skill) AS has_skill, "
            "count(*) FILTER (WHERE d.accepted > 0) AS sessions_traded "
            "FROM signals.model_versions v LEFT JOIN (SELECT session_date, "
            "count(*) FILTER (WHERE accepted) AS accepted FROM signals.risk_decisions "
            "GROUP BY ALL) d USING (session_date) GROUP BY model_version ORDER BY first_session"
        )
    if "portfolio.positions" in tables:
        positions = warehouse.query("SELECT * FROM portfolio.positions")
        closed = positions[positions["exit_reason"].isin(CLOSED_REASONS)]
        summary["trades"] = pd.DataFrame(
            {
                "closed": [len(closed)],
                "open": [int((positions["closed_on"].isna() & (positions["shares"] > 0)).sum())],
                "hit_rate": [
                    float((closed["exit_reason"] == "target").mean()) if len(closed) else 0.0
                ],
                "mean_confidence": [float(closed["confidence"].mean()) if len(closed) else 0.0],
                "gross_pnl": [float(closed["gross_pnl"].sum())],
                "costs": [float((closed["entry_costs"] + closed["exit_costs"]).sum())],
                "net_pnl": [float(closed["pnl"].sum())],
            }
        )
        calibration = reliability_table(
            closed["confidence"], (closed["exit_reason"] == "target").astype("float64")
        )
        summary["trade_calibration"] = calibration.rename(columns={"count": "trades"})
    if "portfolio.equity" in tables:
        summary["equity"] = warehouse.query(
            "SELECT session_date AS session, round(equity, 2) AS equity, "
            "round(drawdown, 4) AS drawdown, open_positions FROM portfolio.equity "
            "ORDER BY session_date DESC LIMIT 1"
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


def _print_trading(summary: dict[str, pd.DataFrame], console: Console) -> None:
    decisions = summary["decisions"].iloc[0]
    console.print(
        f"[bold]{int(decisions['accepted']):,} of {int(decisions['judged']):,} signals accepted[/bold] "
        f"over {int(decisions['sessions'])} scored sessions."
    )
    if "models" in summary and not summary["models"].empty:
        console.print(
            _table(
                "Model versions (out-of-sample skill on each one's holdout)",
                summary["models"],
                "{:,.4f}",
            )
        )
    if not summary["recent_accepted"].empty:
        console.print(
            _table(
                f"Accepted signals (latest {RECENT_ACCEPTED}), sized", summary["recent_accepted"]
            )
        )
    if "trades" in summary:
        console.print(
            _table("Paper trades (closed; P&L after commission and slippage)", summary["trades"])
        )
        if not summary["trade_calibration"].empty:
            console.print(
                _table(
                    "Closed trades: confidence against realized hit rate",
                    summary["trade_calibration"],
                    "{:,.3f}",
                )
            )
    if "equity" in summary and not summary["equity"].empty:
        console.print(_table("Paper portfolio after the latest session", summary["equity"]))


def print_report(warehouse_path: Path, console: Console) -> None:
    """Print the report of the warehouse at ``warehouse_path``."""
    summary = warehouse_summary(Warehouse(warehouse_path))
    console.print(_table(f"Warehouse {warehouse_path}", summary["tables"]))
    if "rejected" in summary:
        console.print(_table("Rejected raw rows by reason", summary["rejected"]))
    if "decisions" in summary:
        _print_trading(summary, console)
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
