"""The view store: applies projector changes, once per event id, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.platform.sql import Database, Row, Transaction
from services.projection.changes import Change, Delete, Upsert, ViewState

PROCESSED = """CREATE TABLE IF NOT EXISTS processed_event (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL
)"""
# Where the feed has got to in each topic partition, written with the rows themselves.
POSITION = """CREATE TABLE IF NOT EXISTS feed_position (
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, part)
)"""

# Every event a journalled store applied, in the order its transaction committed: what a
# disclosure replay re-derives a response from. ``seq`` is the position an audit entry records.
# A rebuild keeps it: the positions already recorded must keep naming the same events.
JOURNAL = (
    """CREATE TABLE IF NOT EXISTS event_journal (
        seq BIGINT PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        topic TEXT,
        part INTEGER,
        kafka_offset BIGINT,
        partition_key TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
)

CONSULTATION_VIEW = (
    """CREATE TABLE IF NOT EXISTS consultation_view (
        agency TEXT NOT NULL,
        consultation_id TEXT NOT NULL,
        municipality TEXT NOT NULL,
        person_id TEXT,
        opened_at TEXT NOT NULL,
        channel TEXT NOT NULL,
        route_in TEXT NOT NULL,
        caller_kind TEXT NOT NULL,
        main_complaint TEXT,
        notes TEXT,
        event_id TEXT NOT NULL,
        PRIMARY KEY (agency, consultation_id)
    )""",
)


class _State(ViewState):
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        where = " AND ".join(f"{column} = ?" for column in key)
        return self._tx.fetchone(f"SELECT * FROM {table} WHERE {where}", tuple(key.values()))

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        """Every row matching ``where`` (the person views read a person's facts at once)."""
        clause = " AND ".join(f"{column} = ?" for column in where) or "1 = 1"
        return self._tx.fetchall(f"SELECT * FROM {table} WHERE {clause}", tuple(where.values()))


def _apply(tx: Transaction, change: Change) -> None:
    if isinstance(change, Upsert):
        row = {**change.key, **change.values}
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in change.values) or None
        conflict = f"ON CONFLICT ({', '.join(change.key)}) " + (
            f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        )
        tx.execute(
            f"INSERT INTO {change.table} ({columns}) VALUES ({marks}) {conflict}",
            tuple(row.values()),
        )
    elif isinstance(change, Delete):
        where = " AND ".join(f"{column} = ?" for column in change.key)
        tx.execute(f"DELETE FROM {change.table} WHERE {where}", tuple(change.key.values()))


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Journalled:
    """The message an event came in, as the journal keeps it."""

    partition_key: str
    body: bytes
    position: Position | None = None


def _journal(tx: Transaction, dialect: str, event_id: str, entry: Journalled) -> None:
    if dialect == "postgresql":
        # Taken last and held to commit, so seq order is commit order even with several
        # projector replicas: a reader that sees seq N sees every event before it.
        tx.execute("LOCK TABLE event_journal IN EXCLUSIVE MODE")
    at = entry.position
    tx.execute(
        "INSERT INTO event_journal "
        "(seq, event_id, topic, part, kafka_offset, partition_key, body) "
        # A rebuild applies journalled events again; "WHERE 1 = 1" lets SQLite parse the
        # ON CONFLICT after a SELECT.
        "SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ? FROM event_journal WHERE 1 = 1 "
        "ON CONFLICT (event_id) DO NOTHING",
        (
            event_id,
            at.topic if at else None,
            at.partition if at else None,
            at.offset if at else None,
            entry.partition_key,
            entry.body.decode("utf-8"),
        ),
    )


def journal_position(tx: Transaction) -> int:
    """The last journalled event a transaction sees: the state a response was built from."""
    row = tx.fetchone("SELECT MAX(seq) AS seq FROM event_journal")
    return int(row["seq"]) if row and row["seq"] is not None else 0


def _advance(tx: Transaction, position: Position) -> None:
    tx.execute(
        "INSERT INTO feed_position (topic, part, next_offset) VALUES (?, ?, ?) "
        "ON CONFLICT (topic, part) DO UPDATE SET next_offset = excluded.next_offset "
        "WHERE excluded.next_offset > feed_position.next_offset",
        (position.topic, position.partition, position.offset + 1),
    )


def _created_table(statement: str) -> str | None:
    words = statement.split()
    if words[:5] == ["CREATE", "TABLE", "IF", "NOT", "EXISTS"]:
        return words[5].split("(")[0]
    return None


class ViewStore:
    """Tables kept by projectors, each event applied once; ``tables`` is their DDL."""

    def __init__(self, database: Database, tables: Sequence[str], *, journal: bool = False) -> None:
        self.database = database
        self.journalled = journal
        with database.transaction() as tx:
            for statement in (PROCESSED, POSITION, *(JOURNAL if journal else ()), *tables):
                tx.execute(statement)
        self._tables = tuple(tables)

    def apply(
        self,
        event_id: str,
        event_type: str,
        changes: Callable[[ViewState], Sequence[Change]],
        position: Position | None = None,
        journalled: Journalled | None = None,
    ) -> bool:
        """Apply the changes unless this event id was applied before; True if applied.

        The position moves in the same transaction, duplicate or not: after a crash the views
        and the position agree, and a redelivered event is dropped by its id. A journalled
        store also keeps the event itself (``journalled``), in the same transaction.
        """
        with self.database.transaction() as tx:
            if position is not None:
                _advance(tx, position)
            first_time = tx.execute(
                "INSERT INTO processed_event (event_id, event_type) VALUES (?, ?) "
                "ON CONFLICT (event_id) DO NOTHING",
                (event_id, event_type),
            )
            if not first_time:
                return False
            for change in changes(_State(tx)):
                _apply(tx, change)
            if self.journalled and journalled is not None:
                _journal(tx, self.database.dialect, event_id, journalled)
        return True

    def apply_now(self, changes: Callable[[ViewState], Sequence[Change]]) -> None:
        """Apply changes that no event carries (a refresh at an instant): nothing to dedupe."""
        with self.database.transaction() as tx:
            for change in changes(_State(tx)):
                _apply(tx, change)

    def advance(self, position: Position) -> None:
        """Move past a message that changed no view (a dead letter)."""
        with self.database.transaction() as tx:
            _advance(tx, position)

    def positions(self) -> dict[tuple[str, int], int]:
        with self.database.transaction() as tx:
            rows = tx.fetchall("SELECT topic, part, next_offset FROM feed_position")
        return {(r["topic"], int(r["part"])): int(r["next_offset"]) for r in rows}

    def reset(self, keep: Sequence[str] = ()) -> None:
        """Drop every table this store keeps (but ``keep``) and start empty: for a rebuild."""
        with self.database.transaction() as tx:
            for statement in (PROCESSED, POSITION, *self._tables):
                name = _created_table(statement)
                if name is not None and name not in keep:
                    tx.execute(f"DROP TABLE IF EXISTS {name}")
            for statement in (PROCESSED, POSITION, *self._tables):
                tx.execute(statement)

    def consultations(self, agency: str) -> list[Row]:
        with self.database.transaction() as tx:
            rows: list[Row] = tx.fetchall(
                "SELECT * FROM consultation_view WHERE agency = ? "
                "ORDER BY opened_at, consultation_id",
                (agency,),
            )
        return rows

    def count(self, table: str) -> int:
        with self.database.transaction() as tx:
            row = tx.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
        return int(row["n"]) if row else 0
