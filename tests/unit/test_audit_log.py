"""The audit log on SQLite: the chain, the privacy officer's questions, and tampering caught."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from starlette.requests import Request

from contracts.errors import Conflict
from contracts.identity import Staff
from services.platform.sql import Row, SqliteDatabase, Transaction
from services.projection.audit import (
    APPEND_ONLY,
    RECORD_VIEWED,
    ZERO_HASH,
    AuditEntry,
    AuditLog,
    Verification,
    entry_hash,
)
from services.projection.audit_api import record_view

pytestmark = pytest.mark.unit

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
Tamper = Callable[[sqlite3.Connection], None]


def viewed(
    person: str = "p1",
    agency: str = "zama-shakyo",
    at: datetime = T0,
    shown: dict[str, tuple[str, str | None]] | None = None,
) -> AuditEntry:
    return AuditEntry(
        kind=RECORD_VIEWED,
        viewer_staff_id="s001",
        viewer_agency=agency,
        viewer_roles=("caseworker",),
        recorded_at=at,
        person_id=person,
        shown={"identity": ("consent", "c1")} if shown is None else shown,
        request_id="r1",
        trace_id="0" * 31 + "1",
        state_position=7,
        response_hash="a" * 64,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.sqlite3"


@pytest.fixture
def log(path: Path) -> AuditLog:
    return AuditLog(SqliteDatabase(path))


def fill(log: AuditLog, count: int) -> None:
    for n in range(count):
        log.append(viewed(person=f"p{n}", at=T0 + timedelta(minutes=n)))


def test_each_entry_links_to_the_previous_one_by_hash(log: AuditLog) -> None:
    first, second = log.append(viewed()), log.append(viewed(person="p2"))
    assert (first.position, second.position) == (1, 2)
    assert first.previous_hash == ZERO_HASH
    assert second.previous_hash == first.entry_hash
    stored = {"viewer_roles": '["caseworker"]', "categories": '["identity"]'}
    hashed = {**vars(second), **stored}
    hashed["bases"] = '{"identity":{"basis":"consent","basis_id":"c1"}}'
    assert second.entry_hash == entry_hash(first.entry_hash, hashed)
    assert log.verify().ok and log.verify().checked == 2


def test_an_empty_log_verifies(log: AuditLog) -> None:
    assert log.verify() == Verification(True, 0, None, None)


def test_tables_and_triggers_can_be_declared_again_on_a_used_database(
    log: AuditLog, path: Path
) -> None:
    log.append(viewed())
    again = AuditLog(SqliteDatabase(path))
    assert again.append(viewed()).position == 2
    with (
        pytest.raises(sqlite3.DatabaseError, match="append-only"),
        again.database.transaction() as tx,
    ):
        tx.execute("DELETE FROM audit_log")


@pytest.mark.parametrize("table", APPEND_ONLY)
@pytest.mark.parametrize("statement", ["UPDATE {table} SET position = 99", "DELETE FROM {table}"])
def test_stored_rows_can_be_neither_changed_nor_removed(
    log: AuditLog, table: str, statement: str
) -> None:
    log.append(viewed(shown={"health": ("vital_interest", "v1")}))
    log.review(1, "po1", "checked the declaration")
    with (
        pytest.raises(sqlite3.DatabaseError, match=f"{table} is append-only"),
        log.database.transaction() as tx,
    ):
        tx.execute(statement.format(table=table))
    assert log.verify().ok


def test_entries_with_unknown_kinds_or_bases_or_naive_times_are_refused(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="kind"):
        log.append(AuditEntry("peeked", "s001", "zama-shakyo", (), T0))
    with pytest.raises(ValueError, match="bases"):
        log.append(viewed(shown={"health": ("curiosity", None)}))
    with pytest.raises(ValueError, match="UTC offset"):
        log.append(viewed(at=datetime(2025, 4, 1, 9, 0)))
    assert log.verify().checked == 0


def test_who_saw_a_person_between_two_times(log: AuditLog) -> None:
    for minutes, person in enumerate(["p1", "p2", "p1", "p1"]):
        log.append(viewed(person=person, at=T0 + timedelta(minutes=minutes)))
    assert [r.position for r in log.seen_person("p1")] == [1, 3, 4]
    # since inclusive, until exclusive
    window = log.seen_person("p1", T0 + timedelta(minutes=2), T0 + timedelta(minutes=3))
    assert [r.position for r in window] == [3]
    # the same instant in another offset is the same instant
    jst = T0.astimezone(datetime.fromisoformat("2025-01-01T00:00+09:00").tzinfo)
    assert [r.position for r in log.seen_person("p1", since=jst, until=jst + timedelta(1))] == [
        1,
        3,
        4,
    ]


def test_everything_one_agency_saw(log: AuditLog) -> None:
    log.append(viewed(agency="zama-shakyo"))
    log.append(viewed(agency="zama-zeimu"))
    log.append(viewed(agency="zama-shakyo", at=T0 + timedelta(days=2)))
    assert [r.position for r in log.seen_by_agency("zama-shakyo")] == [1, 3]
    assert [r.position for r in log.seen_by_agency("zama-shakyo", until=T0 + timedelta(1))] == [1]


def test_what_was_disclosed_under_one_consent(log: AuditLog) -> None:
    log.append(viewed(shown={"identity": ("consent", "c1"), "health": ("consent", "c2")}))
    log.append(viewed(shown={"identity": ("own_record", None)}))
    log.append(viewed(shown={"housing": ("consent", "c2")}))
    log.append(viewed(shown={"family": ("article9_meeting", "c2")}))
    records = log.under_consent("c2")
    assert [r.position for r in records] == [1, 3]
    assert records[0].bases["health"] == {"basis": "consent", "basis_id": "c2"}
    assert records[0].categories == ["identity", "health"]


def test_vital_interest_disclosures_wait_for_review_without_touching_the_chain(
    log: AuditLog,
) -> None:
    log.append(viewed(shown={"health": ("vital_interest", "v1")}))
    log.append(viewed(shown={"health": ("consent", "c1")}))
    log.append(viewed(shown={"health": ("vital_interest", "v2")}))
    assert [r.position for r in log.vital_interest_pending()] == [1, 3]
    review = log.review(1, "po1", "life at risk; declaration justified")
    assert (review.position, review.reviewer_staff_id) == (1, "po1")
    assert [r.position for r in log.vital_interest_pending()] == [3]
    assert log.verify().ok and log.verify().checked == 3


@pytest.mark.parametrize("position", [1, 2, 99])
def test_only_a_pending_vital_interest_disclosure_can_be_reviewed(
    log: AuditLog, position: int
) -> None:
    log.append(viewed(shown={"health": ("vital_interest", "v1")}))
    log.append(viewed(shown={"health": ("consent", "c1")}))
    log.review(1, "po1", "ok")
    with pytest.raises(Conflict, match="awaiting review"):
        log.review(position, "po2", "again")


# Tampering: someone with write access to the file drops the triggers first.


def row(connection: sqlite3.Connection, position: int) -> dict[str, Any]:
    connection.row_factory = sqlite3.Row
    found = connection.execute("SELECT * FROM audit_log WHERE position = ?", (position,))
    return dict(found.fetchone())


def move(connection: sqlite3.Connection, first: int, by: int) -> None:
    """Shift the positions from ``first`` on, through a free range so no key collides."""
    connection.execute(
        "UPDATE audit_log SET position = position + 1000000 WHERE position >= ?", (first,)
    )
    connection.execute(
        "UPDATE audit_log SET position = position - 1000000 + ? WHERE position >= 1000000", (by,)
    )


def insert(connection: sqlite3.Connection, values: dict[str, Any]) -> None:
    marks = ", ".join("?" for _ in values)
    connection.execute(
        f"INSERT INTO audit_log ({', '.join(values)}) VALUES ({marks})", tuple(values.values())
    )


def alter(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE audit_log SET person_id = 'someone-else' WHERE position = 4")


def delete(connection: sqlite3.Connection) -> None:
    connection.execute("DELETE FROM audit_log WHERE position = 4")


def delete_and_renumber(connection: sqlite3.Connection) -> None:
    delete(connection)
    move(connection, 5, -1)


def swap(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE audit_log SET position = -1 WHERE position = 4")
    connection.execute("UPDATE audit_log SET position = 4 WHERE position = 5")
    connection.execute("UPDATE audit_log SET position = 5 WHERE position = -1")


def insert_forged(connection: sqlite3.Connection) -> None:
    # A forger who knows the algorithm links the row correctly and hashes it correctly.
    previous = row(connection, 3)["entry_hash"]
    forged = {
        **row(connection, 3),
        "position": 4,
        "person_id": "invented",
        "previous_hash": previous,
    }
    forged["entry_hash"] = entry_hash(previous, forged)
    move(connection, 4, 1)
    insert(connection, forged)


def insert_stray(connection: sqlite3.Connection) -> None:
    stray = {**row(connection, 3), "position": 4, "previous_hash": "f" * 64}
    move(connection, 4, 1)
    insert(connection, stray)


def insert_before_the_start(connection: sqlite3.Connection) -> None:
    insert(connection, {**row(connection, 1), "position": 0})


def tamper(path: Path, change: Tamper) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    for name in ("audit_log_no_update", "audit_log_no_delete"):
        connection.execute(f"DROP TRIGGER {name}")
    change(connection)
    connection.close()


@pytest.mark.parametrize(
    ("change", "first_bad", "kind"),
    [
        (alter, 4, "altered"),
        (delete, 4, "deleted"),
        (delete_and_renumber, 4, "broken link"),
        (swap, 4, "reordered"),
        (insert_forged, 4, "inserted"),
        (insert_stray, 4, "inserted"),
        (insert_before_the_start, 0, "inserted"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_the_verifier_names_the_first_tampered_entry(
    log: AuditLog, path: Path, change: Tamper, first_bad: int, kind: str
) -> None:
    fill(log, 8)
    assert log.verify().ok
    tamper(path, change)
    verification = log.verify()
    assert not verification.ok
    assert verification.first_bad_position == first_bad
    assert verification.problem is not None and verification.problem.startswith(kind)
    assert verification.checked == max(first_bad - 1, 0)


class CountingDatabase:
    """A SQLite database that remembers how many rows each query returned."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self._inner = SqliteDatabase(path)
        self.fetched: list[int] = []

    @contextmanager
    def transaction(self, snapshot: bool = False) -> Iterator[Transaction]:
        with self._inner.transaction(snapshot) as tx:
            yield _Counting(tx, self.fetched)

    def close(self) -> None:
        self._inner.close()


class _Counting:
    def __init__(self, tx: Transaction, fetched: list[int]) -> None:
        self._tx, self._fetched = tx, fetched

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._tx.execute(sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows = self._tx.fetchall(sql, params)
        self._fetched.append(len(rows))
        return rows

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._tx.fetchone(sql, params)


def test_verify_reads_the_chain_in_batches_and_stops_at_the_first_bad_one(
    log: AuditLog, path: Path
) -> None:
    fill(log, 10)
    counting = CountingDatabase(path)
    batched = AuditLog(counting)
    counting.fetched.clear()
    assert batched.verify(batch_size=3) == Verification(True, 10, None, None)
    assert counting.fetched == [3, 3, 3, 1]

    tamper(path, lambda c: c.execute("DELETE FROM audit_log WHERE position = 8").close())
    counting.fetched.clear()
    verification = batched.verify(batch_size=3)
    assert verification.first_bad_position == 8
    assert counting.fetched == [3, 3, 3]  # 1-3, 4-6, 7 9 10: the problem is found, no 4th read


def test_a_chain_that_fills_its_last_batch_exactly_verifies(log: AuditLog) -> None:
    fill(log, 9)
    assert log.verify(batch_size=3).checked == 9


def request(headers: list[tuple[bytes, bytes]]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def test_record_view_keeps_who_saw_what_under_which_trace_with_the_body_hash(
    log: AuditLog,
) -> None:
    staff = Staff("s042", "zama-shakyo", frozenset({"caseworker", "supervisor"}), "142182")
    body = b'{"person_id":"p1","health":"..."}'
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("view") as span:
        record_view(
            log,
            request([(b"x-request-id", b"req-1")]),
            staff,
            "p1",
            {"identity": ("own_record", None), "health": ("consent", "c9")},
            body,
            at=datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
            state_position=12,
            view={"view": "person"},
        )
    [record] = log.seen_person("p1")
    assert record.kind == RECORD_VIEWED
    assert (record.viewer_staff_id, record.viewer_agency) == ("s042", "zama-shakyo")
    assert record.viewer_roles == ["caseworker", "supervisor"]
    assert record.bases == {
        "identity": {"basis": "own_record", "basis_id": None},
        "health": {"basis": "consent", "basis_id": "c9"},
    }
    assert record.request_id == "req-1"
    assert record.trace_id == format(span.get_span_context().trace_id, "032x")
    assert record.state_position == 12
    assert record.view_request == {"view": "person"}
    assert record.recorded_at == "2026-11-01T09:30:00.000000+00:00"
    assert record.response_hash == hashlib.sha256(body).hexdigest()


def test_record_view_without_a_request_id_or_a_trace_makes_up_an_id(log: AuditLog) -> None:
    staff = Staff("s042", "zama-shakyo", frozenset({"caseworker"}), "142182")
    at = datetime.now(UTC)
    record_view(log, request([]), staff, "p1", {}, b"{}", at=at, state_position=0, view={})
    [record] = log.seen_person("p1")
    assert uuid.UUID(record.request_id or "")
    assert record.trace_id is None
