"""Tampering with the audit log as someone with write access to its database would, and what
the verifier must name: shared by the SQLite and the PostgreSQL tests, so both are held to the
same cases.

Every change here starts by dropping the append-only triggers: the chain and its checkpoints
are the proof against exactly the person who can.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import psycopg

from services.projection.audit import RECORD_VIEWED, AuditEntry, AuditLog, entry_hash
from services.projection.checkpoint import AnchoredVerification, Anchoring

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


def viewed(n: int) -> AuditEntry:
    return AuditEntry(
        kind=RECORD_VIEWED,
        viewer_staff_id=f"s{n:03}",
        viewer_agency="zama-shakyo",
        viewer_roles=("caseworker",),
        recorded_at=T0 + timedelta(minutes=n),
        person_id=f"p{n}",
        shown={"identity": ("consent", "c1")},
        request_id="r1",
        state_position=7,
        response_hash="a" * 64,
    )


def fill(log: AuditLog, count: int) -> None:
    start = log.head()[0]
    for n in range(start, start + count):
        log.append(viewed(n))


class Raw(Protocol):
    """A direct connection to the audit log's database, its triggers dropped."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def row(self, position: int) -> dict[str, Any]: ...


class SqliteRaw:
    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        for name in ("audit_log_no_update", "audit_log_no_delete"):
            self._connection.execute(f"DROP TRIGGER {name}")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._connection.execute(sql, tuple(params))

    def row(self, position: int) -> dict[str, Any]:
        found = self._connection.execute("SELECT * FROM audit_log WHERE position = ?", (position,))
        return dict(found.fetchone())

    def close(self) -> None:
        self._connection.close()


class PostgresRaw:
    def __init__(self, connection: psycopg.Connection[dict[str, Any]]) -> None:
        self._connection = connection
        for name in ("audit_log_append_only", "audit_log_no_truncate"):
            connection.execute(f"DROP TRIGGER {name} ON audit_log")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._connection.execute(sql.replace("?", "%s"), tuple(params))

    def row(self, position: int) -> dict[str, Any]:
        found = self._connection.execute("SELECT * FROM audit_log WHERE position = %s", (position,))
        row = found.fetchone()
        assert row is not None
        return row


Tamper = Callable[[Raw], None]


def tamper_file(path: Path, change: Tamper) -> None:
    """Change the audit log of a SQLite file, its triggers dropped."""
    raw = SqliteRaw(path)
    change(raw)
    raw.close()


def move(raw: Raw, first: int, by: int) -> None:
    """Shift the positions from ``first`` on, through a free range so no key collides."""
    raw.execute("UPDATE audit_log SET position = position + 1000000 WHERE position >= ?", (first,))
    raw.execute(
        "UPDATE audit_log SET position = position - 1000000 + ? WHERE position >= 1000000", (by,)
    )


def insert(raw: Raw, values: dict[str, Any]) -> None:
    marks = ", ".join("?" for _ in values)
    raw.execute(
        f"INSERT INTO audit_log ({', '.join(values)}) VALUES ({marks})", list(values.values())
    )


def forged(raw: Raw, after: int, position: int) -> dict[str, Any]:
    """A forger who knows the algorithm links the row correctly and hashes it correctly."""
    previous = raw.row(after)["entry_hash"]
    row = {**raw.row(after), "position": position, "person_id": "invented"}
    row["previous_hash"] = previous
    row["entry_hash"] = entry_hash(previous, row)
    return row


def alter(raw: Raw) -> None:
    raw.execute("UPDATE audit_log SET person_id = 'someone-else' WHERE position = 4")


def late_alter(raw: Raw) -> None:
    raw.execute("UPDATE audit_log SET categories = '[\"health\"]' WHERE position = 9")


def delete(raw: Raw) -> None:
    raw.execute("DELETE FROM audit_log WHERE position = 4")


def delete_and_renumber(raw: Raw) -> None:
    delete(raw)
    move(raw, 5, -1)


def swap(raw: Raw) -> None:
    raw.execute("UPDATE audit_log SET position = -1 WHERE position = 4")
    raw.execute("UPDATE audit_log SET position = 4 WHERE position = 5")
    raw.execute("UPDATE audit_log SET position = 5 WHERE position = -1")


def insert_forged(raw: Raw) -> None:
    row = forged(raw, 3, 4)
    move(raw, 4, 1)
    insert(raw, row)


def insert_stray(raw: Raw) -> None:
    stray = {**raw.row(3), "position": 4, "previous_hash": "f" * 64}
    move(raw, 4, 1)
    insert(raw, stray)


def insert_before_the_start(raw: Raw) -> None:
    insert(raw, {**raw.row(1), "position": 0})


def cut_tail(raw: Raw) -> None:
    """The newest entries deleted: what is left still links up."""
    raw.execute("DELETE FROM audit_log WHERE position >= 7")


def append_forged(raw: Raw) -> None:
    """An entry appended after the newest, with a correctly computed hash."""
    insert(raw, forged(raw, 10, 11))


def replace_tail(raw: Raw) -> None:
    """The newest entries deleted and forged ones appended in their place, as many."""
    cut_tail(raw)
    for position in range(7, 11):
        insert(raw, forged(raw, position - 1, position))


def rewrite(raw: Raw) -> None:
    """Entry 2 altered and every later hash recomputed: the chain links up again."""
    raw.execute("UPDATE audit_log SET person_id = 'someone-else' WHERE position = 2")
    previous = raw.row(1)["entry_hash"]
    for position in range(2, 11):
        row = {**raw.row(position), "previous_hash": previous}
        previous = entry_hash(previous, row)
        raw.execute(
            "UPDATE audit_log SET previous_hash = ?, entry_hash = ? WHERE position = ?",
            (row["previous_hash"], previous, position),
        )


@dataclass(frozen=True)
class Named:
    """What the verifier must say after a tampering (``kind`` None: nothing is wrong)."""

    kind: str | None
    first: int | None = None
    last: int | None = None
    checked: int = 10
    anchored: int = 8
    not_yet_anchored: int = 2


# Ten entries; checkpoints signed after the 4th and the 8th.
SEVEN: list[tuple[Tamper, Named]] = [
    (alter, Named("altered", 4, 4, checked=3, anchored=0)),
    (delete, Named("deleted", 4, 4, checked=3, anchored=0, not_yet_anchored=2)),
    (swap, Named("reordered", 4, 4, checked=3, anchored=0)),
    (insert_forged, Named("inserted", 4, 4, checked=3, anchored=0, not_yet_anchored=3)),
    (cut_tail, Named("truncated", 7, 8, checked=6, anchored=4, not_yet_anchored=0)),
    # A forged append after the last checkpoint cannot be told from a real one by length or
    # hash: it is counted as not yet anchored, and nothing else can be said until the next.
    (append_forged, Named(None, checked=11, not_yet_anchored=3)),
    # Once a checkpoint covered the entries it replaced, the head no longer matches.
    (replace_tail, Named("rewritten", 5, 8, anchored=4)),
    (rewrite, Named("rewritten", 1, 4, anchored=0)),
]


def anchored_chain(log: AuditLog, anchor: Anchoring) -> None:
    fill(log, 4)
    anchor.checkpoint(log)
    fill(log, 4)
    anchor.checkpoint(log)
    fill(log, 2)
    verification = anchor.verify(log)
    assert (verification.ok, verification.anchored, verification.not_yet_anchored) == (True, 8, 2)


def assert_named(verification: AnchoredVerification, named: Named) -> None:
    """The verifier names the tampering, where it is, and how much of the chain still holds."""
    summary = (
        verification.checked,
        verification.anchored,
        verification.not_yet_anchored,
        verification.checkpoints,
    )
    assert summary == (named.checked, named.anchored, named.not_yet_anchored, 2), verification
    if named.kind is None:
        assert verification.ok and not verification.findings, verification
        return
    assert not verification.ok
    [finding] = verification.findings
    assert (finding.kind, finding.first_position, finding.last_position) == (
        named.kind,
        named.first,
        named.last,
    ), finding
    assert finding.message.startswith(named.kind)
    assert (verification.first_bad_position, verification.problem) == (named.first, finding.message)
