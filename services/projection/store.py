"""The view store: applies projector changes, once per event id, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from services.platform.sql import Database, Row, Transaction
from services.projection.changes import Change, Delete, Upsert, ViewState

PROCESSED = """CREATE TABLE IF NOT EXISTS processed_event (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL
)"""

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


class ViewStore:
    """Tables kept by projectors, each event applied once; ``tables`` is their DDL."""

    def __init__(self, database: Database, tables: Sequence[str]) -> None:
        self.database = database
        with database.transaction() as tx:
            for statement in (PROCESSED, *tables):
                tx.execute(statement)

    def apply(
        self, event_id: str, event_type: str, changes: Callable[[ViewState], Sequence[Change]]
    ) -> bool:
        """Apply the changes unless this event id was applied before; True if applied."""
        with self.database.transaction() as tx:
            first_time = tx.execute(
                "INSERT INTO processed_event (event_id, event_type) VALUES (?, ?) "
                "ON CONFLICT (event_id) DO NOTHING",
                (event_id, event_type),
            )
            if not first_time:
                return False
            for change in changes(_State(tx)):
                _apply(tx, change)
        return True

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
