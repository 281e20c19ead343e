"""One small SQL adapter over SQLite (embedded) and PostgreSQL (distributed).

Statements are written once with ``?`` placeholders and portable SQL (``ON CONFLICT`` works in
both); the PostgreSQL side swaps the placeholder. Rows come back as dicts.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from services.platform.private_files import private_database

Row = dict[str, Any]


class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class Database(Protocol):
    dialect: str

    def transaction(self, snapshot: bool = False) -> Any:
        """``snapshot``: every read in the transaction sees one instant (for a proof of what a
        response was built from); SQLite's transactions always do."""

    def scrub(self) -> None:
        """Leave in the database's files no copy of what was deleted or overwritten (an
        erased key), as far as the engine allows."""

    def close(self) -> None: ...


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._connection.execute(sql, tuple(params)).rowcount

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._connection.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None


class SqliteDatabase:
    """A file (or ``:memory:``) database; one writer at a time, as SQLite wants."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            private_database(Path(path))
        self._connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA busy_timeout=10000")
        # A deleted or overwritten row is zeroed in its page, not left in free space.
        self._connection.execute("PRAGMA secure_delete=ON")
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self, snapshot: bool = False) -> Iterator[Transaction]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(self._connection)
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def scrub(self) -> None:
        # The write-ahead log still holds the pages as they were: copied back and emptied.
        with self._lock:
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._connection.close()


class _PostgresTransaction:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        return int(self._cursor.rowcount)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        return list(self._cursor.fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def copy_in(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Load rows with COPY: many rows for the cost of few (a batch's bulk writes)."""
        with self._cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


class PostgresDatabase:
    """A pool of connections whose ``search_path`` is the owning service's schema."""

    dialect = "postgresql"

    def __init__(
        self, url: str, schema: str, max_size: int = 8, *, followed_by_durable: bool = False
    ) -> None:
        """``followed_by_durable``: every write here is followed, before it matters, by a
        durable commit on the same server, so its own commit need not wait for the disk.
        PostgreSQL writes one log in order: flushing the later commit flushes this one too.
        (The key store: a data key is made just before the event sealed with it is stored.)"""
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        # Kept for work that needs connections of its own (other processes).
        self.url, self.schema = url, schema
        options = f"-c search_path={schema}"
        if followed_by_durable:
            options += " -c synchronous_commit=off"
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "options": options},
            open=True,
        )

    @contextmanager
    def transaction(self, snapshot: bool = False) -> Iterator[Transaction]:
        with (
            self._pool.connection() as connection,
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            if snapshot:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield _PostgresTransaction(cursor)

    def scrub(self) -> None:
        """Nothing PostgreSQL can promise: a row's old version stays in the table's free space
        and in the WAL until overwritten. What it held must be useless alone (a data key is
        kept wrapped by a key that is never in the database)."""

    def close(self) -> None:
        self._pool.close()


def connect(
    url: str | None, schema: str, sqlite_path: Path, *, followed_by_durable: bool = False
) -> Database:
    """PostgreSQL when a URL is configured, else the embedded SQLite file.
    ``followed_by_durable``: see ``PostgresDatabase``."""
    if url:
        return PostgresDatabase(url, schema, followed_by_durable=followed_by_durable)
    return SqliteDatabase(sqlite_path)
