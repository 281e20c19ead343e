"""The SQL adapter's own operations on SQLite: many rows at once, claims, numbered appends, a
queue taken from, added columns and append-only tables.

The ``check_*`` functions take any database: ``tests/integration/test_sql_postgres.py`` runs
them on PostgreSQL, where many rows take another path (COPY through a stage).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

import pytest

from services.platform.sql import Database, Row, SqliteDatabase

pytestmark = pytest.mark.unit

# More rows than one statement takes on either engine (SQLite: 200; PostgreSQL: 20 as
# parameters, more by COPY), and few enough for one statement on both.
MANY, FEW = 450, 3

ITEM = """CREATE TABLE item (
    a TEXT NOT NULL,
    b INTEGER NOT NULL,
    note TEXT,
    size BIGINT,
    PRIMARY KEY (a, b)
)"""
ENTRY = """CREATE TABLE entry (
    seq BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    part INTEGER,
    body TEXT NOT NULL
)"""
ENTRY_COLUMNS = {"name": "text", "part": "integer", "body": "text"}


def made(database: Database, *statements: str) -> Database:
    with database.transaction() as tx:
        for statement in statements:
            tx.execute(statement)
    return database


def rows(database: Database, sql: str) -> list[Row]:
    with database.transaction() as tx:
        found: list[Row] = tx.fetchall(sql)
    return found


def items(database: Database) -> dict[tuple[str, int], tuple[str | None, int | None]]:
    found = rows(database, "SELECT * FROM item")
    return {(r["a"], r["b"]): (r["note"], r["size"]) for r in found}


def check_upsert_many(database: Database, n: int) -> None:
    made(database, ITEM)
    with database.transaction() as tx:
        tx.upsert_many(
            "item", ("a", "b"), ("note", "size"), [(f"k{i}", i, "one", i) for i in range(n)]
        )
    with database.transaction() as tx:
        # Only the columns named change; the others keep what they held.
        tx.upsert_many("item", ("a", "b"), ("note",), [(f"k{i}", i, "two") for i in range(0, n, 2)])
    with database.transaction() as tx:
        # No columns: a row whose key is there is left as it is; a new one gets only its key.
        tx.upsert_many("item", ("a", "b"), (), [(f"k{i}", i) for i in range(n + 1)])
    expected = {(f"k{i}", i): ("two" if i % 2 == 0 else "one", i) for i in range(n)}
    assert items(database) == {**expected, (f"k{n}", n): (None, None)}


def check_delete_many(database: Database, n: int) -> None:
    made(database, ITEM)
    with database.transaction() as tx:
        tx.upsert_many("item", ("a", "b"), ("note",), [(f"k{i}", i, "x") for i in range(n)])
    with database.transaction() as tx:
        # A key matches on all its columns: ("k1", 0) names no row.
        gone = [(f"k{i}", i) for i in range(1, n, 2)] + [("k1", 0), ("missing", 1)]
        tx.delete_many("item", ("a", "b"), gone)
    assert set(items(database)) == {(f"k{i}", i) for i in range(0, n, 2)}


def check_select_in(database: Database, n: int) -> None:
    made(database, ITEM)
    with database.transaction() as tx:
        tx.upsert_many("item", ("a", "b"), ("note",), [(f"k{i}", i, "x") for i in range(n)])
    wanted = [f"k{i}" for i in range(0, n, 2)] + ["missing"]
    with database.transaction() as tx:
        found = tx.select_in("item", "a", "text", wanted)
        numbers = tx.select_in("item", "b", "integer", [1, 2, n + 5])
        nothing = tx.select_in("item", "a", "text", [])
    assert sorted(r["a"] for r in found) == sorted(wanted[:-1])
    assert {r["note"] for r in found} == {"x"}
    assert sorted(r["b"] for r in numbers) == [1, 2] and nothing == []


def check_insert_new(database: Database, n: int) -> None:
    made(database, "CREATE TABLE claim (id TEXT PRIMARY KEY, kind TEXT NOT NULL)")
    first = [(f"e{i}", "first") for i in range(n // 2)]
    every = [(f"e{i}", "again") for i in range(n)]
    with database.transaction() as tx:
        assert tx.insert_new("claim", ("id", "kind"), first) == {i for i, _ in first}
    with database.transaction() as tx:
        assert tx.insert_new("claim", ("id", "kind"), every) == {f"e{i}" for i in range(n // 2, n)}
        assert tx.insert_new("claim", ("id", "kind"), []) == set()
    kinds = {r["id"]: r["kind"] for r in rows(database, "SELECT * FROM claim")}
    # A key already there keeps its row as it was.
    assert kinds == {**dict(every), **dict(first)}


def check_append_numbered(database: Database, n: int) -> None:
    made(database, ENTRY)
    with database.transaction() as tx:
        tx.append_numbered("entry", "seq", ENTRY_COLUMNS, [("a", 7, "x"), ("b", None, "y")])
    # Appended again (a rebuild), a row keeps its number and takes no new one; the new rows
    # are numbered on from the last, in the order given. Every part NULL: typed all the same.
    again = [("b", None, "changed")] + [(f"n{i}", None, f"body {i}") for i in range(n)]
    with database.transaction() as tx:
        tx.append_numbered("entry", "seq", ENTRY_COLUMNS, again)
        tx.append_numbered("entry", "seq", ENTRY_COLUMNS, [])
    found = rows(database, "SELECT * FROM entry ORDER BY seq")
    assert [(r["seq"], r["name"], r["part"], r["body"]) for r in found] == [
        (1, "a", 7, "x"),
        (2, "b", None, "y"),
        *[(3 + i, f"n{i}", None, f"body {i}") for i in range(n)],
    ]


def check_add_columns(database: Database) -> None:
    made(database, "CREATE TABLE old (id INTEGER PRIMARY KEY, note TEXT)")
    with database.transaction() as tx:
        tx.execute("INSERT INTO old (id, note) VALUES (1, 'kept')")
    for _ in range(2):  # again on a table that has them: nothing to add
        with database.transaction() as tx:
            tx.add_columns("old", {"note": "TEXT", "later": "TEXT", "count": "BIGINT"})
    with database.transaction() as tx:
        tx.execute("INSERT INTO old (id, note, later, count) VALUES (2, 'new', 'l', 3)")
    assert rows(database, "SELECT id, note, later, count FROM old ORDER BY id") == [
        {"id": 1, "note": "kept", "later": None, "count": None},
        {"id": 2, "note": "new", "later": "l", "count": 3},
    ]


def check_append_only(database: Database, refused: type[Exception]) -> None:
    made(database, "CREATE TABLE kept (id INTEGER PRIMARY KEY)", "CREATE TABLE free (id INTEGER)")
    for _ in range(2):  # declared again, as at every start: the tables stay append-only
        with database.transaction() as tx:
            tx.append_only(["kept"])
    with database.transaction() as tx:
        tx.execute("INSERT INTO kept (id) VALUES (1)")
        tx.execute("INSERT INTO free (id) VALUES (1)")
    for statement in ("UPDATE kept SET id = 2", "DELETE FROM kept"):
        with pytest.raises(refused, match="kept is append-only"), database.transaction() as tx:
            tx.execute(statement)
    with database.transaction() as tx:
        tx.execute("DELETE FROM free")
    assert rows(database, "SELECT id FROM kept") == [{"id": 1}]


# Each writes or reads ``n`` rows at once, and checks the answer.
BULK = (
    check_upsert_many,
    check_delete_many,
    check_select_in,
    check_insert_new,
    check_append_numbered,
)


class SqlOperations:
    """The operations' answers, on the engine of the module's ``database`` fixture."""

    refused: type[Exception]  # what a change to an append-only table raises

    @pytest.mark.parametrize("n", [FEW, MANY])
    @pytest.mark.parametrize("check", BULK, ids=lambda check: check.__name__)
    def test_many_rows_at_once(
        self, database: Database, check: Callable[[Database, int], None], n: int
    ) -> None:
        check(database, n)

    def test_add_columns_adds_only_those_missing(self, database: Database) -> None:
        check_add_columns(database)

    def test_an_append_only_table_refuses_update_and_delete(self, database: Database) -> None:
        check_append_only(database, self.refused)


@pytest.fixture
def database() -> Iterator[SqliteDatabase]:
    sqlite = SqliteDatabase(":memory:")
    yield sqlite
    sqlite.close()


class TestOnSqlite(SqlOperations):
    refused = sqlite3.IntegrityError

    def test_the_embedded_file_is_read_by_its_own_process_alone(self, database: Database) -> None:
        assert database.shared_reads() is None
