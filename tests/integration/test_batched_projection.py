"""On PostgreSQL, batches (rows staged and merged by COPY) leave the views as SQLite, one event
at a time, does."""

from __future__ import annotations

import pytest

from services.platform.sql import PostgresDatabase, SqliteDatabase
from services.projection.runner import Outcome
from tests.infrastructure import Infrastructure, fresh_database
from tests.unit.test_batches import in_batches, messages, runner, tables

pytestmark = pytest.mark.integration


def test_postgres_batches_match_sqlite_one_by_one(infrastructure: Infrastructure) -> None:
    stream = messages(3000)
    one, one_store = runner(SqliteDatabase(":memory:"))
    database = PostgresDatabase(fresh_database(infrastructure.database_url), "projection")
    many, many_store = runner(database)

    for message in stream:
        one.consume(message)
    for batch in in_batches(stream, 700):
        assert {r.outcome for r in many.consume_batch(batch)} == {Outcome.APPLIED}
    # Delivered again after a crash: nothing changes.
    assert {r.outcome for r in many.consume_batch(stream[:700])} == {Outcome.DUPLICATE}

    try:
        assert tables(many_store) == tables(one_store)
    finally:
        database.close()
