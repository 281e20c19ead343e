"""One small SQL adapter over SQLite (embedded) and PostgreSQL (distributed).

Statements are written once with ``?`` placeholders and portable SQL (``ON CONFLICT`` works in
both); the PostgreSQL side swaps the placeholder. Rows come back as dicts.

Where the two engines differ (many rows at once, locks, triggers, a table's columns) the
difference is a named operation of the transaction here, and no caller knows which engine
it runs on.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from services.platform.private_files import private_database

Row = dict[str, Any]

# Rows per statement when SQLite writes several: well under its limit of bound parameters.
_SQLITE_ROWS = 200
# PostgreSQL: up to this many rows go as a statement's parameters, in one round trip; more go by
# COPY through a temporary stage (three round trips, but less work per row). A batch that came
# in at a steady rate is a few events, and its latency is mostly round trips: measured, a batch
# of 2 consultations took 1.0 ms rather than 2.8, of 10 3.2 rather than 4.2, of 20 the same.
_PARAMETER_ROWS = 20


Values = Sequence[Any]  # one row's values, in the order of the columns named with them


class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def take_turn(self, name: str) -> None:
        """Hold the turn called ``name`` until commit: a transaction of any process that asks
        for it meanwhile waits (replicas creating the same tables as they start)."""

    def share_turn(self, name: str) -> None:
        """Hold a share of the turn called ``name`` until commit: any number of transactions
        hold one at once, and one taking the whole turn waits for them, as they for it."""

    def lock_for_append(self, table: str) -> None:
        """Hold the right to append to ``table`` until commit: appends take turns, so a row
        numbered after the last commits after it; reads go on meanwhile."""

    def select_in(self, table: str, column: str, sql_type: str, values: Values) -> list[Row]:
        """The rows of ``table`` whose ``column`` (of SQL type ``sql_type``) is one of
        ``values``, however many they are."""

    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Values]) -> set[Any]:
        """Insert each row whose key, the first of ``columns``, ``table`` does not hold yet;
        the keys of those inserted."""

    def upsert_many(
        self, table: str, key: Sequence[str], columns: Sequence[str], rows: Sequence[Values]
    ) -> None:
        """Insert each row (its ``key`` columns, then ``columns``), or, where its key is
        there, set ``columns`` of the row stored (none: leave it)."""

    def delete_many(self, table: str, key: Sequence[str], keys: Sequence[Values]) -> None:
        """Delete the rows whose ``key`` columns hold one of ``keys``."""

    def append_numbered(
        self, table: str, number: str, columns: Mapping[str, str], rows: Sequence[Values]
    ) -> None:
        """Append, in order, each row whose first column (unique in ``table``) holds a value not
        there yet, numbered in ``number`` on from the last; ``columns`` maps each column to its
        SQL type. Appends take turns (``lock_for_append``): number order is commit order."""

    def add_columns(self, table: str, columns: Mapping[str, str]) -> None:
        """Add to ``table`` each of ``columns`` (name: SQL type) it lacks, NULL in its rows:
        a table made before they were declared."""

    def append_only(self, tables: Sequence[str]) -> None:
        """Make each table refuse UPDATE and DELETE (and, where the engine has it, TRUNCATE)
        to anyone who has not dropped its triggers."""


class Database(Protocol):
    dialect: str

    def transaction(self, snapshot: bool = False) -> Any:
        """``snapshot``: every read in the transaction sees one instant (for a proof of what a
        response was built from); SQLite's transactions always do."""

    def reading(self) -> Any:
        """Statements that only read, each seeing its own instant: on PostgreSQL outside any
        transaction, with no BEGIN and COMMIT to wait for (a key look-up on every answer)."""

    def shared_reads(self) -> SharedReads | None:
        """How processes of their own read this database side by side (picklable); None
        where the engine gains nothing from it (SQLite's one embedded file)."""

    def scrub(self) -> None:
        """Leave in the database's files no copy of what was deleted or overwritten (an
        erased key), as far as the engine allows."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class SharedReads:
    """The PostgreSQL database, as another process opens it: its own connection each time."""

    url: str
    schema: str

    @contextmanager
    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Iterator[tuple[Any, ...]]]:
        """The rows of one query as tuples, read by a server-side cursor a slice at a time
        (a range of millions of rows in little memory); the connection closes on leaving."""
        import psycopg

        with (
            psycopg.connect(self.url, options=f"-c search_path={self.schema}") as connection,
            connection.cursor(name="stream") as cursor,
        ):
            cursor.itersize = 20_000
            cursor.execute(sql.replace("?", "%s"), tuple(params))
            yield iter(cursor)


def _marks(columns: Sequence[str]) -> str:
    return "(" + ", ".join("?" for _ in columns) + ")"


def _upsert_clauses(table: str, key: Sequence[str], columns: Sequence[str]) -> tuple[str, str]:
    """``upsert_many``'s INSERT, up to its rows, and its ON CONFLICT."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
    conflict = f"ON CONFLICT ({', '.join(key)}) " + (
        f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    )
    return f"INSERT INTO {table} ({', '.join((*key, *columns))})", conflict


class _Statements(ABC):
    """The operations both engines run as the same SQL, a statement per ``_rows`` rows."""

    _rows: int | None  # None: all the rows in one statement

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    @abstractmethod
    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def _chunks(self, items: Sequence[Any]) -> Iterator[Sequence[Any]]:
        size = self._rows or len(items)
        for start in range(0, len(items), size or 1):
            yield items[start : start + size]

    def select_in(self, table: str, column: str, sql_type: str, values: Values) -> list[Row]:
        found: list[Row] = []
        for chunk in self._chunks(values):
            found += self.fetchall(
                f"SELECT * FROM {table} WHERE {column} IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
        return found

    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Values]) -> set[Any]:
        insert = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {_marks(columns)} "
            f"ON CONFLICT ({columns[0]}) DO NOTHING"
        )
        return {row[0] for row in rows if self.execute(insert, row)}

    def upsert_many(
        self, table: str, key: Sequence[str], columns: Sequence[str], rows: Sequence[Values]
    ) -> None:
        insert, conflict = _upsert_clauses(table, key, columns)
        one = _marks((*key, *columns))
        for chunk in self._chunks(rows):
            self.execute(
                f"{insert} VALUES {', '.join(one for _ in chunk)} {conflict}",
                [v for row in chunk for v in row],
            )

    def delete_many(self, table: str, key: Sequence[str], keys: Sequence[Values]) -> None:
        one = _marks(key)
        for chunk in self._chunks(keys):
            self.execute(
                f"DELETE FROM {table} WHERE ({', '.join(key)}) "
                f"IN ({', '.join(one for _ in chunk)})",
                [v for k in chunk for v in k],
            )


class _SqliteTransaction(_Statements):
    """SQLite: one writer at a time (``BEGIN IMMEDIATE``), so turns and appends need no lock."""

    _rows = _SQLITE_ROWS

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._connection.execute(sql, tuple(params)).rowcount

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._connection.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def take_turn(self, name: str) -> None:
        """The write transaction already excludes every other."""

    def share_turn(self, name: str) -> None:
        """The write transaction already excludes every other."""

    def lock_for_append(self, table: str) -> None:
        """The write transaction already excludes every other."""

    def append_numbered(
        self, table: str, number: str, columns: Mapping[str, str], rows: Sequence[Values]
    ) -> None:
        # One row at a time, each after the last (the transactions never overlap); "WHERE 1 = 1"
        # lets SQLite parse the ON CONFLICT after a SELECT.
        insert = (
            f"INSERT INTO {table} ({number}, {', '.join(columns)}) "
            f"SELECT COALESCE(MAX({number}), 0) + 1, {', '.join('?' for _ in columns)} "
            f"FROM {table} WHERE 1 = 1 ON CONFLICT ({next(iter(columns))}) DO NOTHING"
        )
        for row in rows:
            self.execute(insert, row)

    def add_columns(self, table: str, columns: Mapping[str, str]) -> None:
        present = {row["name"] for row in self.fetchall(f"PRAGMA table_info({table})")}
        for column, sql_type in columns.items():
            if column not in present:
                self.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")

    def append_only(self, tables: Sequence[str]) -> None:
        for table in tables:
            for operation in ("UPDATE", "DELETE"):
                self.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} "
                    f"BEFORE {operation} ON {table} BEGIN SELECT RAISE(ABORT, "
                    f"'{table} is append-only: {operation} refused'); END"
                )


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

    def reading(self) -> AbstractContextManager[Transaction]:
        # One embedded file: a transaction costs no round trip.
        return self.transaction()

    def shared_reads(self) -> None:
        return None

    def scrub(self) -> None:
        # The write-ahead log still holds the pages as they were: copied back and emptied.
        with self._lock:
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._connection.close()


# No "%" or "?" below: the PostgreSQL adapter rewrites "?" and psycopg reads "%". Named when
# only the audit log was append-only: existing databases' triggers call it by this name.
_REFUSE_CHANGE = """CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused';
END
$$"""


def _any_of(column: str, sql_type: str) -> str:
    """PostgreSQL: ``column`` is one of the values of one array parameter (a batch's ids).
    An array, not a JSON set-returning function: the planner then knows how many values there
    are and reads a few rows by the column's index, where for a function it assumed a hundred
    and scanned the whole table (a single person's read took 42 ms rather than 0.04)."""
    return f"{column} = ANY(?::{sql_type}[])"


@functools.lru_cache(maxsize=1024)
def _numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders numbered as PostgreSQL's own ``$1``, ``$2``…, which
    psycopg's raw cursors send as they are. Its ``%s`` placeholders it parses again for every
    statement of more than 50 parameters (the twenty entries of a page's audit, a few events'
    rows): a millisecond each, half of a page's audit append."""
    parts = sql.split("?")
    numbered = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        numbered += (f"${n}", part)
    return "".join(numbered)


class _PostgresTransaction(_Statements):
    """PostgreSQL: many rows at once go by COPY, and replicas writing side by side take turns
    by locks held to commit."""

    _rows = None

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._staged: set[str] = set()  # the tables whose stage this transaction has loaded

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(_numbered(sql), tuple(params))
        return int(self._cursor.rowcount)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(_numbered(sql), tuple(params))
        return list(self._cursor.fetchall())

    def take_turn(self, name: str) -> None:
        self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))

    def share_turn(self, name: str) -> None:
        self.execute("SELECT pg_advisory_xact_lock_shared(hashtext(?))", (name,))

    def lock_for_append(self, table: str) -> None:
        # EXCLUSIVE: other writers wait, readers (the verifier, the queries) do not.
        self.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")

    def _copy_in(self, table: str, columns: Sequence[str], rows: Iterable[Values]) -> None:
        """Load rows with COPY: many rows for the cost of few (a batch's bulk writes)."""
        with self._cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _stage(self, table: str, columns: Sequence[str], rows: Iterable[Values]) -> str:
        """Rows COPYed into a temporary table like ``table``, for one statement to merge.

        COPY costs the client and the server a fraction of what parameters cost, row for row.
        Each connection keeps its stages, emptied at every commit.
        """
        stage = f"stage_{table}"
        if table in self._staged:
            self.execute(f"TRUNCATE {stage}")
        else:
            self.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS "
                f"AS SELECT * FROM {table} WITH NO DATA"
            )
            self._staged.add(table)
        self._copy_in(stage, columns, rows)
        return stage

    def select_in(self, table: str, column: str, sql_type: str, values: Values) -> list[Row]:
        if not values:
            return []
        return self.fetchall(
            f"SELECT * FROM {table} WHERE {_any_of(column, sql_type)}", (list(values),)
        )

    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Values]) -> set[Any]:
        if not rows:
            return set()
        params: list[Any] = []
        if len(rows) > _PARAMETER_ROWS:
            source = f"SELECT {', '.join(columns)} FROM {self._stage(table, columns, rows)}"
        else:
            source = f"VALUES {', '.join(_marks(columns) for _ in rows)}"
            params = [v for row in rows for v in row]
        key = columns[0]
        found = self.fetchall(
            f"INSERT INTO {table} ({', '.join(columns)}) {source} "
            f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}",
            params,
        )
        return {row[key] for row in found}

    def upsert_many(
        self, table: str, key: Sequence[str], columns: Sequence[str], rows: Sequence[Values]
    ) -> None:
        if len(rows) <= _PARAMETER_ROWS:
            super().upsert_many(table, key, columns, rows)
            return
        insert, conflict = _upsert_clauses(table, key, columns)
        every = (*key, *columns)
        stage = self._stage(table, every, rows)
        self.execute(f"{insert} SELECT {', '.join(every)} FROM {stage} {conflict}")

    def delete_many(self, table: str, key: Sequence[str], keys: Sequence[Values]) -> None:
        if len(keys) <= _PARAMETER_ROWS:
            super().delete_many(table, key, keys)
            return
        stage = self._stage(table, key, keys)
        match = " AND ".join(f"{table}.{c} = s.{c}" for c in key)
        self.execute(f"DELETE FROM {table} USING {stage} AS s WHERE {match}")

    def append_numbered(
        self, table: str, number: str, columns: Mapping[str, str], rows: Sequence[Values]
    ) -> None:
        if not rows:
            return
        # Taken last and held to commit, so number order is commit order even with several
        # replicas: a reader that sees number N sees every row before it.
        self.lock_for_append(table)
        names = list(columns)
        unique = names[0]
        if len(rows) <= _PARAMETER_ROWS:
            # One statement, the server numbering after the last it sees. Typed, since a
            # column of only NULL parameters would otherwise be text.
            row = "(?::integer, " + ", ".join(f"?::{t}" for t in columns.values()) + ")"
            self.execute(
                f"INSERT INTO {table} ({number}, {', '.join(names)}) "
                f"SELECT (SELECT COALESCE(MAX({number}), 0) FROM {table}) "
                "+ ROW_NUMBER() OVER (ORDER BY e.n), "
                f"{', '.join(f'e.{c}' for c in names)} "
                f"FROM (VALUES {', '.join(row for _ in rows)}) AS e (n, {', '.join(names)}) "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} j WHERE j.{unique} = e.{unique})",
                [v for n, values in enumerate(rows) for v in (n, *values)],
            )
            return
        kept = {
            found[unique]
            for found in self.fetchall(
                f"SELECT {unique} FROM {table} WHERE {_any_of(unique, columns[unique])}",
                ([values[0] for values in rows],),
            )
        }
        fresh = [values for values in rows if values[0] not in kept]
        if not fresh:
            return
        last = self.fetchone(f"SELECT MAX({number}) AS last FROM {table}")
        start = int(last["last"]) + 1 if last and last["last"] is not None else 1
        self._copy_in(
            table,
            (number, *names),
            [(n, *values) for n, values in enumerate(fresh, start=start)],
        )

    def add_columns(self, table: str, columns: Mapping[str, str]) -> None:
        for column, sql_type in columns.items():
            self.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {sql_type}")

    def append_only(self, tables: Sequence[str]) -> None:
        self.execute(_REFUSE_CHANGE)
        for table in tables:
            for statement in (
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
            ):
                self.execute(statement)


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
        from psycopg import RawCursor
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
            kwargs={"row_factory": dict_row, "cursor_factory": RawCursor, "options": options},
            open=True,
        )

    @contextmanager
    def transaction(self, snapshot: bool = False) -> Iterator[Transaction]:
        from psycopg import IsolationLevel

        with self._pool.connection() as connection:
            # Named in the transaction's BEGIN: no statement (and round trip) of its own.
            connection.isolation_level = IsolationLevel.REPEATABLE_READ if snapshot else None
            with connection.transaction(), connection.cursor() as cursor:
                yield _PostgresTransaction(cursor)

    @contextmanager
    def reading(self) -> Iterator[Transaction]:
        with self._pool.connection() as connection:
            # Left so: ``transaction`` sends its own BEGIN and COMMIT on any connection.
            connection.autocommit = True
            with connection.cursor() as cursor:
                yield _PostgresTransaction(cursor)

    def shared_reads(self) -> SharedReads:
        return SharedReads(self.url, self.schema)

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
