"""The DuckDB warehouse: atomic partition replacement by column name, reads and Parquet export.

Pure (no Dagster): the IO manager and the report call into it. Why not the stock DuckDB IO manager:
it deletes a partition and inserts the new rows in two statements (a failure between them loses the
partition) and inserts by column position (a reordered frame silently scrambles columns). Here one
transaction deletes and inserts ``BY NAME``, so a failed write leaves the previous rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

PARTITION_COLUMN = "session_date"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# A DuckDB file takes one writer process at a time; another process gets this error on connect.
_LOCK_CONFLICT = "Could not set lock"
_NAIVE_NS = np.dtype("datetime64[ns]")


class WarehouseError(RuntimeError):
    """A write or read the warehouse refused, with what to fix."""


def _split_table(table: str) -> tuple[str, str]:
    schema, _, name = table.partition(".")
    if not name:
        raise WarehouseError(f"table {table!r} must be written as schema.table")
    for part in (schema, name):
        if not _IDENTIFIER.match(part):
            raise WarehouseError(f"table {table!r}: {part!r} is not a plain lower-case identifier")
    return schema, name


def _session_days(partitions: Sequence[dt.date | str | pd.Timestamp]) -> list[dt.date]:
    return sorted({pd.Timestamp(p).date() for p in partitions})


class Warehouse:
    """One DuckDB file. Connections are short-lived so other processes can take their turn."""

    def __init__(
        self,
        path: str | Path,
        *,
        lock_timeout_s: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self._sleep = sleep
        self._clock = clock

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, waiting (bounded) while another process holds the file's lock."""
        if read_only and not self.path.exists():
            raise WarehouseError(f"the warehouse {self.path} does not exist yet: run `make run` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = self._clock() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                connection = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as error:
                if _LOCK_CONFLICT not in str(error) or self._clock() + delay > deadline:
                    raise
                logger.info("warehouse %s is locked by another process; waiting %.2fs", self.path, delay)
                self._sleep(delay)
                delay = min(delay * 2, 2.0)
        try:
            yield connection
        finally:
            connection.close()

    # -- writes ---------------------------------------------------------------------------------

    def replace_partitions(
        self,
        table: str,
        frame: pd.DataFrame,
        partitions: Sequence[dt.date | str | pd.Timestamp],
        *,
        before_insert: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> int:
        """Replace exactly ``partitions`` of ``table`` with ``frame``, in one transaction.

        Rows are inserted by column name; columns new to the table are added. ``frame`` must hold
        only rows of the given partitions. ``before_insert`` runs between the delete and the insert
        (tests inject failures there). Returns the number of rows written.
        """
        schema, name = _split_table(table)
        days = _session_days(partitions)
        if not days:
            raise WarehouseError(f"replace_partitions({table}): no partitions given")
        if PARTITION_COLUMN not in frame.columns:
            raise WarehouseError(f"{table}: the frame has no {PARTITION_COLUMN!r} column")
        frame_days = pd.to_datetime(frame[PARTITION_COLUMN]).dt.date
        stray = sorted(set(frame_days.dropna()) - set(days))
        if stray or frame_days.isna().any():
            shown = ", ".join(str(d) for d in stray[:5]) or "null"
            raise WarehouseError(
                f"{table}: the frame holds rows of session(s) {shown} outside the partitions "
                f"being written ({days[0]}..{days[-1]})"
            )
        with self._writing(schema, frame) as connection:
            self._create_or_evolve(connection, schema, name)
            connection.execute(
                f'DELETE FROM "{schema}"."{name}" WHERE {PARTITION_COLUMN} IN '
                f"(SELECT UNNEST(?::DATE[]))",
                [days],
            )
            if before_insert is not None:
                before_insert(connection)
            connection.execute(
                f'INSERT INTO "{schema}"."{name}" BY NAME SELECT * REPLACE '
                f"(CAST({PARTITION_COLUMN} AS DATE) AS {PARTITION_COLUMN}) FROM incoming_frame"
            )
        return len(frame)

    def replace_table(self, table: str, frame: pd.DataFrame) -> int:
        """Replace the whole of an unpartitioned ``table`` with ``frame``, atomically."""
        schema, name = _split_table(table)
        with self._writing(schema, frame) as connection:
            connection.execute(
                f'CREATE OR REPLACE TABLE "{schema}"."{name}" AS SELECT * FROM incoming_frame'
            )
        return len(frame)

    @contextmanager
    def _writing(
        self, schema: str, frame: pd.DataFrame
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction with ``frame`` registered as ``incoming_frame``: all of it or nothing."""
        with self.connect() as connection:
            connection.register("incoming_frame", frame)
            try:
                connection.execute("BEGIN TRANSACTION")
                connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            finally:
                connection.unregister("incoming_frame")

    @staticmethod
    def _create_or_evolve(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
        incoming = connection.execute(
            f"DESCRIBE SELECT * REPLACE (CAST({PARTITION_COLUMN} AS DATE) AS {PARTITION_COLUMN}) "
            "FROM incoming_frame"
        ).fetchall()
        existing = connection.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()
        if not existing:
            columns = ", ".join(f'"{column}" {_column_type(kind)}' for column, kind, *_ in incoming)
            connection.execute(f'CREATE TABLE "{schema}"."{name}" ({columns})')
            return
        known = {row[0] for row in existing}
        for column, kind, *_ in incoming:
            if column not in known:
                connection.execute(
                    f'ALTER TABLE "{schema}"."{name}" ADD COLUMN "{column}" {_column_type(kind)}'
                )

    # -- reads ----------------------------------------------------------------------------------

    def table_exists(self, table: str) -> bool:
        schema, name = _split_table(table)
        if not self.path.exists():
            return False
        with self.connect(read_only=True) as connection:
            return bool(
                connection.execute(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = ? AND table_name = ?",
                    [schema, name],
                ).fetchone()[0]
            )

    def read_sessions(
        self,
        table: str,
        first_session: dt.date | str | pd.Timestamp | None = None,
        last_session: dt.date | str | pd.Timestamp | None = None,
        *,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of ``table`` with ``first_session <= session_date <= last_session`` (open ends allowed)."""
        schema, name = _split_table(table)
        selected = ", ".join(f'"{column}"' for column in columns) if columns else "*"
        clauses, parameters = [], []
        if first_session is not None:
            clauses.append(f"{PARTITION_COLUMN} >= ?::DATE")
            parameters.append(pd.Timestamp(first_session).date())
        if last_session is not None:
            clauses.append(f"{PARTITION_COLUMN} <= ?::DATE")
            parameters.append(pd.Timestamp(last_session).date())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.connect(read_only=True) as connection:
            return _naive_ns(
                connection.execute(
                    f'SELECT {selected} FROM "{schema}"."{name}" {where}', parameters
                ).df()
            )

    def read_table(self, table: str) -> pd.DataFrame:
        """The whole of ``table``."""
        schema, name = _split_table(table)
        with self.connect(read_only=True) as connection:
            return _naive_ns(connection.execute(f'SELECT * FROM "{schema}"."{name}"').df())

    def query(self, sql: str, parameters: Sequence | None = None) -> pd.DataFrame:
        """A read-only SQL query as a DataFrame."""
        with self.connect(read_only=True) as connection:
            return _naive_ns(connection.execute(sql, parameters or []).df())

    # -- export ---------------------------------------------------------------------------------

    def export_parquet(
        self,
        table: str,
        export_root: str | Path,
        partitions: Sequence[dt.date | str | pd.Timestamp],
    ) -> list[Path]:
        """Write ``partitions`` of ``table`` as Parquet under ``<root>/<table>/session_date=…/``.

        Idempotent: each exported session's folder is replaced, others are left alone.
        """
        _split_table(table)
        days = _session_days(partitions)
        table_root = Path(export_root) / table
        table_root.mkdir(parents=True, exist_ok=True)
        for day in days:
            shutil.rmtree(table_root / f"{PARTITION_COLUMN}={day.isoformat()}", ignore_errors=True)
        schema, name = _split_table(table)
        with self.connect(read_only=True) as connection:
            connection.execute(
                f"COPY (SELECT * FROM \"{schema}\".\"{name}\" WHERE {PARTITION_COLUMN} IN "
                f"(SELECT UNNEST(?::DATE[]))) TO '{table_root.as_posix()}' "
                f"(FORMAT parquet, PARTITION_BY ({PARTITION_COLUMN}), OVERWRITE_OR_IGNORE true, "
                "FILENAME_PATTERN 'part_{i}')",
                [days],
            )
        return sorted(table_root.glob(f"{PARTITION_COLUMN}=*/*.parquet"))


def _naive_ns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its naive datetime columns as ``datetime64[ns]``, the package's convention.

    DuckDB 2 returns DATE and TIMESTAMP columns as ``datetime64[us]``: converting here, once, spares
    every reader a cast. Timezone-aware columns are left as they are.
    """
    for position, dtype in enumerate(frame.dtypes):
        # By position: a query may return two columns of the same name.
        if isinstance(dtype, np.dtype) and dtype.kind == "M" and dtype != _NAIVE_NS:
            frame.isetitem(position, frame.iloc[:, position].astype(_NAIVE_NS))
    return frame


def _column_type(kind: str) -> str:
    # An all-null object column describes as "INTEGER"/"NULL"; store text there so later rows fit.
    return "VARCHAR" if kind in ("NULL", '"NULL"') else kind
