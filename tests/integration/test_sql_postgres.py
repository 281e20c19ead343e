"""The SQL adapter's own operations on real PostgreSQL: the same answers as on SQLite (many rows
going by COPY through a stage), and the locks that let replicas write side by side."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from services.platform.sql import Database, PostgresDatabase
from tests.infrastructure import Infrastructure, fresh_database
from tests.unit.test_sql import MANY, SqlOperations, check_append_only, made

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(infrastructure: Infrastructure) -> str:
    return fresh_database(infrastructure.database_url)


@pytest.fixture
def database(url: str) -> Iterator[PostgresDatabase]:
    """A schema of its own for each test, so each starts from nothing."""
    postgres = PostgresDatabase(url, f"s_{uuid.uuid4().hex[:12]}")
    yield postgres
    postgres.close()


@pytest.fixture
def raw(url: str, database: PostgresDatabase) -> Iterator[psycopg.Connection[Any]]:
    """Another session on the same schema, as another replica would have."""
    with psycopg.connect(
        url, autocommit=True, options=f"-c search_path={database.schema}"
    ) as connection:
        yield connection


class TestOnPostgres(SqlOperations):
    refused = psycopg.errors.RaiseException


def test_an_append_only_table_refuses_truncate_too(
    database: Database, raw: psycopg.Connection[Any]
) -> None:
    check_append_only(database, psycopg.errors.RaiseException)
    with pytest.raises(psycopg.errors.RaiseException, match="kept is append-only: TRUNCATE"):
        raw.execute("TRUNCATE kept")


def test_the_stage_of_a_table_is_emptied_between_loads_in_one_transaction(
    database: Database,
) -> None:
    """Bulk writes to one table in one transaction share its stage: each merges its own rows
    only (a delete that met the upserts' rows still staged would take them too)."""
    n = MANY
    made(database, "CREATE TABLE item (a TEXT PRIMARY KEY, note TEXT)")
    with database.transaction() as tx:
        tx.upsert_many("item", ("a",), ("note",), [(f"k{i}", "one") for i in range(n)])
        tx.upsert_many("item", ("a",), ("note",), [(f"j{i}", "two") for i in range(n)])
        tx.delete_many("item", ("a",), [(f"k{i}",) for i in range(n)])
        tx.delete_many("item", ("a",), [(f"x{i}",) for i in range(n)])
        left = tx.fetchall("SELECT note, COUNT(*) AS n FROM item GROUP BY note")
    assert left == [{"note": "two", "n": n}]


def test_appends_take_turns_and_readers_go_on(
    database: Database, raw: psycopg.Connection[Any]
) -> None:
    made(database, "CREATE TABLE entry (seq BIGINT PRIMARY KEY)")
    with database.transaction() as tx:
        tx.lock_for_append("entry")
        assert raw.execute("SELECT COUNT(*) FROM entry").fetchone() == (0,)
        with pytest.raises(psycopg.errors.LockNotAvailable), raw.transaction():
            raw.execute("LOCK TABLE entry IN EXCLUSIVE MODE NOWAIT")
    with raw.transaction():
        raw.execute("LOCK TABLE entry IN EXCLUSIVE MODE NOWAIT")


def test_a_turn_is_held_to_commit(database: Database, raw: psycopg.Connection[Any]) -> None:
    taken = "SELECT pg_try_advisory_xact_lock(hashtext('tsunagu test turn'))"
    with database.transaction() as tx:
        tx.take_turn("tsunagu test turn")
        assert raw.execute(taken).fetchone() == (False,)
    assert raw.execute(taken).fetchone() == (True,)


def test_shared_reads_stream_a_query_from_another_process(database: PostgresDatabase) -> None:
    made(database, "CREATE TABLE numbers (n INTEGER PRIMARY KEY, word TEXT)")
    with database.transaction() as tx:
        tx.upsert_many("numbers", ("n",), ("word",), [(i, f"w{i}") for i in range(MANY)])
    shared = database.shared_reads()
    # What a process of its own is handed: it opens the same schema with it.
    elsewhere = pickle.loads(pickle.dumps(shared))
    with elsewhere.stream("SELECT n, word FROM numbers WHERE n >= ? ORDER BY n", (5,)) as rows:
        assert list(rows) == [(i, f"w{i}") for i in range(5, MANY)]


def test_a_few_rows_asked_by_an_indexed_column_are_read_by_its_index(
    database: Database, raw: psycopg.Connection[Any]
) -> None:
    """A person's rows among many: read by the index, not by scanning the table (as a JSON
    set-returning function made the planner do, assuming a hundred values)."""
    raw.execute("CREATE TABLE fact (person_id TEXT NOT NULL, n INTEGER NOT NULL)")
    raw.execute("CREATE INDEX fact_person ON fact (person_id)")
    raw.execute("INSERT INTO fact SELECT 'p' || (i % 20000), i FROM generate_series(1, 60000) i")
    raw.execute("ANALYZE fact")
    # A session reports its counts at most once a second: let this one's (the index built by
    # scanning the table) arrive before counting.
    raw.execute("SELECT pg_sleep(1.5)")

    def scans() -> int:
        raw.execute("SELECT pg_stat_clear_snapshot()")
        row = raw.execute(
            "SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'fact'::regclass"
        ).fetchone()
        assert row is not None
        return int(row[0])

    before = scans()
    with database.transaction() as tx:
        found = tx.select_in("fact", "person_id", "TEXT", ["p7", "p8"])
    assert sorted(r["n"] for r in found) == [7, 8, 20007, 20008, 40007, 40008]
    # The statistics reach the view once the reading session reports them: wait for that.
    for _ in range(50):
        if scans() != before:
            break
        raw.execute("SELECT pg_sleep(0.1)")
    assert scans() == before


@pytest.mark.parametrize("snapshot", [True, False])
def test_a_snapshot_transaction_reads_one_instant_and_the_others_see_each_commit(
    database: Database, raw: psycopg.Connection[Any], snapshot: bool
) -> None:
    """A response's reads (a replay's proof of what it was built from) all see the instant of
    its first read; a transaction that did not ask for it sees what commits meanwhile."""
    raw.execute("CREATE TABLE counted (n INTEGER)")
    raw.execute("INSERT INTO counted VALUES (1)")
    with database.transaction(snapshot=snapshot) as tx:
        first = tx.fetchone("SELECT COUNT(*) AS n FROM counted")
        raw.execute("INSERT INTO counted VALUES (2)")
        second = tx.fetchone("SELECT COUNT(*) AS n FROM counted")
    assert first is not None and second is not None
    assert (first["n"], second["n"]) == ((1, 1) if snapshot else (1, 2))
    # The pool's connection is back at its default: the next transaction asked for none.
    with database.transaction() as tx:
        level = tx.fetchone("SELECT current_setting('transaction_isolation') AS level")
    assert level is not None and level["level"] == "read committed"


def test_reading_runs_outside_a_transaction_and_transactions_after_it_still_roll_back(
    database: Database, raw: psycopg.Connection[Any]
) -> None:
    """``reading`` (the key store's look-up on every answer) sends no BEGIN: the server sees
    no transaction open. The pool's connection it leaves in autocommit still gives the next
    ``transaction`` a transaction: one that fails leaves nothing behind."""
    raw.execute("CREATE TABLE counted (n INTEGER)")
    with database.reading() as tx:
        open_transaction = tx.fetchone("SELECT now() = statement_timestamp() AS outside")
    assert open_transaction is not None and open_transaction["outside"] is True
    with pytest.raises(RuntimeError), database.transaction() as tx:
        tx.execute("INSERT INTO counted VALUES (1)")
        raise RuntimeError("fails after writing")
    assert raw.execute("SELECT COUNT(*) FROM counted").fetchone() == (0,)
