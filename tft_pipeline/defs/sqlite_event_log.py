"""Dagster's SQLite event log storage, with its connections kept open and WAL commits unsynced.

Why: a single-run backfill writes one ``ASSET_MATERIALIZATION`` event per asset and partition
(17 assets x 1,250 sessions = 21,250 events for five years). The stock ``SqliteEventLogStorage``
creates a SQLAlchemy engine for every write (``NullPool``) and closes its connection afterwards;
closing the last connection of a WAL database checkpoints it (an fsync), and each commit fsyncs the
WAL (``synchronous=FULL``). Measured on this project's machine: 40-80 ms of wall time per
materialization event, which made event bookkeeping, not the pipeline, the cost of a backfill.

This subclass changes only how connections are made: one engine per shard (the index and the
most recent run shards), kept open, each connection with ``PRAGMA synchronous=NORMAL`` (SQLite's
recommended setting in WAL mode: the database stays consistent through a crash of the process or
the machine; a power loss may drop the last transactions, never corrupt the file). What is
written, and where, is unchanged: it is the same SQLite files, readable by the stock class.

Dagster has no documented setting for this: SQLite storage is meant for local development, and
production instances are on PostgreSQL (``deploy/postgres/dagster.yaml``), whose storage batches
writes itself. The class is configured through the documented ``event_log_storage`` key of
``dagster.yaml`` (``deploy/sqlite/dagster.yaml``) but overrides three private methods of
Dagster's classes (``_connect``, ``has_table`` and ``_has_asset_key_col_on_connection``, the
last asked twice per asset event); ``tft_pipeline_tests/test_sqlite_event_log.py`` pins that they
still exist and that events round-trip, so a Dagster upgrade that moves them fails a test instead
of silently falling back.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as db
from dagster import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Engines kept open: the index shard and the run shards written or read most recently (a run
# writes one shard; the webserver reads a few at a time).
MAX_OPEN_SHARDS = 8


def _event_logs_directory(dagster_home: str) -> str:
    """Where Dagster's default SQLite instance keeps its event logs."""
    return os.path.join(os.path.abspath(dagster_home), "history", "runs")


class ReusedConnectionSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with an open engine per shard and ``synchronous=NORMAL``.

    Config: ``dagster_home`` (the instance's directory; the event logs live under
    ``history/runs`` as with the stock storage) or ``base_dir`` (the event log directory itself).
    """

    def __init__(self, base_dir: str, inst_data=None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._known_tables: set[str] = set()
        self._known_asset_key_columns: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {
            "base_dir": Field(StringSource, is_required=False),
            "dagster_home": Field(StringSource, is_required=False),
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        base_dir = config_value.get("base_dir") or _event_logs_directory(
            config_value.get("dagster_home") or os.environ["DAGSTER_HOME"]
        )
        return cls(base_dir, inst_data=inst_data)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            engine = db.create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=8,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            db.event.listen(engine, "connect", _set_pragmas)
            self._engines[shard] = engine
            while len(self._engines) > MAX_OPEN_SHARDS:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # As Dagster's own _connect, with the engine kept instead of created and disposed.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Asked before every asset event (whether the tags table exists): a table, once there,
        # stays there.
        if table_name in self._known_tables:
            return True
        exists = super().has_table(table_name)
        if exists:
            self._known_tables.add(table_name)
        return exists

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        # Asked twice per asset event (whether the asset_keys table has its index columns), each
        # time by inspecting the table's schema: a column, once there, stays there.
        if column_name in self._known_asset_key_columns:
            return True
        exists = super()._has_asset_key_col_on_connection(conn, column_name)
        if exists:
            self._known_asset_key_columns.add(column_name)
        return exists

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def delete_events(self, run_id: str) -> None:
        self._dispose_engines()
        super().delete_events(run_id)

    def wipe(self) -> None:
        self._dispose_engines()
        self._known_tables.clear()
        self._known_asset_key_columns.clear()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


def _set_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
