"""The audit log on SQLite: the chain, the privacy officer's questions, and tampering caught,
against signed checkpoints kept in a file beside it."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from opentelemetry.sdk.trace import TracerProvider
from starlette.requests import Request

from contracts.errors import Conflict, NotFound
from contracts.events.audit import RecordViewed
from contracts.identity import Staff
from services.platform.disclose import Disclosure, Reader
from services.platform.keys import KeyStore
from services.platform.sealing import Opener, Sealer
from services.platform.settings import Settings
from services.platform.sql import Row, SqliteDatabase, Transaction
from services.projection.audit import (
    APPEND_ONLY,
    RECORD_VIEWED,
    TABLES,
    ZERO_HASH,
    AuditEntry,
    AuditLog,
    Verification,
    entry_hash,
)
from services.projection.chains import entry_of
from services.projection.checkpoint import (
    CHECKPOINT_FILE,
    DEV_KEY_FILE,
    PUBLIC_KEYS_FILE,
    Anchoring,
    Checkpoint,
    Checkpointer,
    FileCheckpoints,
    PublicKeys,
    anchoring,
    signer,
)
from tests.audit_tampering import (
    SEVEN,
    Named,
    Tamper,
    alter,
    anchored_chain,
    assert_named,
    delete,
    delete_and_renumber,
    insert_before_the_start,
    insert_forged,
    insert_stray,
    swap,
    tamper_file,
)

pytestmark = pytest.mark.unit

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


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


@pytest.fixture
def opener() -> Opener:
    return Opener(KeyStore(SqliteDatabase(":memory:"), os.urandom(32)))


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
    disclosed = replace(viewed(shown={"health": ("vital_interest", "v1")}), disclosed_by=("a1",))
    log.append_all([disclosed], ["event-1"])
    log.review(1, "po1", "checked the declaration")
    with (
        pytest.raises(sqlite3.DatabaseError, match=f"{table} is append-only"),
        log.database.transaction() as tx,
    ):
        tx.execute(statement.format(table=table))
    assert log.verify().ok


def test_a_chain_written_before_disclosed_by_was_kept_still_verifies_and_grows(
    path: Path,
) -> None:
    """The column is added to the old table, and the old entries keep their hashes."""
    [create] = [t for t in TABLES if "TABLE IF NOT EXISTS audit_log " in t]
    old_table = create.replace(",\n        disclosed_by TEXT", "")
    assert "disclosed_by" not in old_table
    database = SqliteDatabase(path)
    hashed: dict[str, Any] = {"position": 1, **viewed().columns()}
    del hashed["disclosed_by"]
    with database.transaction() as tx:
        tx.execute(old_table)
        row = {
            **hashed,
            "previous_hash": ZERO_HASH,
            "entry_hash": entry_hash(ZERO_HASH, {**hashed, "disclosed_by": None}),
        }
        tx.execute(
            f"INSERT INTO audit_log ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            tuple(row.values()),
        )
    log = AuditLog(database)
    assert log.verify().ok
    log.append(replace(viewed(), disclosed_by=("zama-jiritsu",)))
    assert log.verify() == Verification(True, 2, None, None)
    assert log.entry(2).disclosed_by == ["zama-jiritsu"]
    assert log.entry(1).disclosed_by is None


def test_a_batch_is_appended_in_order_and_an_event_appended_before_is_not_again(
    log: AuditLog,
) -> None:
    first = log.append_all([viewed(person="p1"), viewed(person="p2")], ["e1", None])
    again = log.append_all([viewed(person="p1"), viewed(person="p3")], ["e1", "e3"])
    assert [r.position for r in first] == [1, 2]
    assert [r.position for r in again] == [1, 3]
    assert again[0] == first[0]
    assert log.verify() == Verification(True, 3, None, None)


def test_an_event_delivered_twice_in_one_batch_is_appended_once(log: AuditLog) -> None:
    records = log.append_all([viewed(person="p1"), viewed(person="p1")], ["e1", "e1"])
    assert [r.position for r in records] == [1, 1]
    assert log.verify() == Verification(True, 1, None, None)


def test_an_own_agency_officer_sees_what_its_agency_received_or_made(log: AuditLog) -> None:
    log.append(replace(viewed(agency="oneaid"), disclosed_by=("zama-jiritsu",)))
    log.append(replace(viewed(agency="zama-shakyo"), disclosed_by=("oneaid",)))
    log.append(replace(viewed(agency="zama-shakyo"), disclosed_by=("zama-jiritsu",)))
    assert [r.position for r in log.seen_person("p1", involving="oneaid")] == [1, 2]
    assert [r.position for r in log.seen_person("p1")] == [1, 2, 3]
    assert [r.position for r in log.seen_by_agency("zama-shakyo", involving="oneaid")] == [2]
    assert log.under_consent("c1", involving="oneaid") == log.seen_person("p1")[:2]
    with pytest.raises(NotFound):
        log.entry(3, involving="oneaid")


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


@pytest.mark.parametrize(
    ("change", "first_bad", "kind"),
    [
        (alter, 4, "altered"),
        (delete, 4, "deleted"),
        (delete_and_renumber, 4, "broken_link"),
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
    tamper_file(path, change)
    verification = log.verify()
    assert not verification.ok
    assert (verification.first_bad_position, verification.kind) == (first_bad, kind)
    assert verification.problem is not None
    assert verification.problem.startswith(kind.replace("_", " "))
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

    def scrub(self) -> None:
        self._inner.scrub()

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        """The engine's own operations are the wrapped database's."""
        return getattr(self._inner, name)


class _Counting:
    def __init__(self, tx: Transaction, fetched: list[int]) -> None:
        self._tx, self._fetched = tx, fetched

    def __getattr__(self, name: str) -> Any:
        """The engine's own operations (bulk writes, locks, triggers) are the wrapped
        transaction's: only the rows fetched are counted."""
        return getattr(self._tx, name)

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

    tamper_file(path, lambda raw: raw.execute("DELETE FROM audit_log WHERE position = 8"))
    counting.fetched.clear()
    verification = batched.verify(batch_size=3)
    assert verification.first_bad_position == 8
    assert counting.fetched == [3, 3, 3]  # 1-3, 4-6, 7 9 10: the problem is found, no 4th read


def test_a_chain_that_fills_its_last_batch_exactly_verifies(log: AuditLog) -> None:
    fill(log, 9)
    assert log.verify(batch_size=3).checked == 9


def request(headers: list[tuple[bytes, bytes]]) -> Request:
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": headers}
    return Request(scope)


class ToLog:
    """A ``Sink`` appending to one chain, as the views' own does."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def record(self, municipality: str, entries: Sequence[RecordViewed]) -> None:
        self.log.append_all([entry_of(e) for e in entries])


def test_an_answer_keeps_who_saw_what_under_which_trace_with_the_body_hash(
    log: AuditLog, opener: Opener
) -> None:
    staff = Staff("s042", "zama-shakyo", frozenset({"caseworker", "supervisor"}), "142182")
    at = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    shown = Disclosure(
        {"person_id": "p1", "health": "..."},
        {"identity": ("own_record", None), "health": ("consent", "c9")},
        person_id="p1",
        view={"view": "person"},
        state_position=12,
    )
    tracer = TracerProvider().get_tracer(__name__)
    reader = Reader(request([(b"x-request-id", b"req-1")]), staff, ToLog(log), lambda: at, opener)
    with tracer.start_as_current_span("view") as span:
        answered = reader.answer(shown)
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
    assert answered.body == shown.body()
    assert record.response_hash == hashlib.sha256(shown.body()).hexdigest()


def test_an_answer_without_a_request_id_or_a_trace_makes_up_an_id(
    log: AuditLog, opener: Opener
) -> None:
    staff = Staff("s042", "zama-shakyo", frozenset({"caseworker"}), "142182")
    reader = Reader(request([]), staff, ToLog(log), lambda: datetime.now(UTC), opener)
    reader.answer(Disclosure({}, {}, person_id="p1", about_person=True))
    [record] = log.seen_person("p1")
    assert uuid.UUID(record.request_id or "")
    assert record.trace_id is None


def test_an_answer_showing_nothing_of_a_person_records_nothing(
    log: AuditLog, opener: Opener
) -> None:
    staff = Staff("s042", "zama-shakyo", frozenset({"caseworker"}), "142182")
    reader = Reader(request([]), staff, ToLog(log), lambda: datetime.now(UTC), opener)
    reader.answer(Disclosure({"categories": []}, {}, person_id="p1"))
    assert log.seen_person("p1") == []


def test_an_answer_of_a_page_of_persons_opens_them_all_with_one_look_up_of_keys(
    log: AuditLog, opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worklist's page shows twenty persons: twenty documents, one look-up of their keys
    (each was a look-up of its own, a third of the page's time), each entry the hash of its own
    document as served."""
    staff = Staff("s042", "zama-shakyo", frozenset({"caseworker"}), "142182")
    persons = [uuid.uuid4() for _ in range(20)]
    page = [
        Disclosure(
            {"name": Sealer(opener.keys).seal(p, "志村", datetime.now(UTC))},
            {"identity": ("consent", "c1")},
            person_id=str(p),
        )
        for p in persons
    ]
    looked_up: list[int] = []
    opening_keys = opener.keys.opening_keys

    def counted(subjects: Any) -> Any:
        looked_up.append(len(subjects))
        return opening_keys(subjects)

    monkeypatch.setattr(opener.keys, "opening_keys", counted)
    reader = Reader(request([]), staff, ToLog(log), lambda: datetime.now(UTC), opener)

    answered = reader.answer(page)

    assert looked_up == [20]
    assert [d["name"] for d in json.loads(bytes(answered.body))] == ["志村"] * 20
    for person in persons:
        [record] = log.seen_person(str(person))
        body = json.dumps({"name": "志村"}, ensure_ascii=False, sort_keys=True).encode()
        assert record.response_hash == hashlib.sha256(body).hexdigest()


# Anchoring: signed checkpoints of the chain, kept outside its database (a JSON-lines file).


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var")


@pytest.fixture
def anchor(settings: Settings) -> Anchoring:
    return anchoring(settings, signing=True)


def stored(settings: Settings) -> list[str]:
    return (settings.var_dir / CHECKPOINT_FILE).read_text(encoding="utf-8").splitlines()


def pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@pytest.mark.parametrize(("change", "named"), SEVEN, ids=[change.__name__ for change, _ in SEVEN])
def test_each_tampering_is_named_against_the_signed_checkpoints(
    log: AuditLog, path: Path, anchor: Anchoring, change: Tamper, named: Named
) -> None:
    anchored_chain(log, anchor)
    tamper_file(path, change)
    assert_named(anchor.verify(log), named)


def test_a_checkpoint_names_its_key_and_is_kept_outside_the_database(
    log: AuditLog, path: Path, anchor: Anchoring, settings: Settings
) -> None:
    fill(log, 3)
    signed = anchor.checkpoint(log)
    assert (signed.municipality, signed.length, signed.head) == ("142182", 3, log.head()[1])
    [line] = stored(settings)
    assert Checkpoint.parse(line) == signed
    keys = PublicKeys.from_file(settings.var_dir / PUBLIC_KEYS_FILE)
    assert signed.key_id in keys and keys.refusal(signed) is None
    # The signature covers every field: a checkpoint moved to another length no longer holds.
    assert keys.refusal(replace(signed, length=2)) == "forged_checkpoint"
    database = SqliteDatabase(path)
    with database.transaction() as tx:
        tables = [r["name"] for r in tx.fetchall("SELECT name FROM sqlite_master")]
    assert not [name for name in tables if "checkpoint" in name]


def test_verifying_needs_the_public_keys_alone(
    log: AuditLog, anchor: Anchoring, settings: Settings
) -> None:
    fill(log, 3)
    anchor.checkpoint(log)
    (settings.var_dir / DEV_KEY_FILE).unlink()
    verifier = anchoring(settings, signing=False)
    assert verifier.signer is None
    verification = verifier.verify(log)
    assert (verification.ok, verification.checkpoints, verification.anchored) == (True, 1, 3)
    with pytest.raises(RuntimeError, match="no signing key"):
        verifier.checkpoint(log)


def test_a_forged_or_unreadable_checkpoint_is_named_and_anchors_nothing(
    log: AuditLog, anchor: Anchoring, settings: Settings
) -> None:
    fill(log, 3)
    anchor.checkpoint(log)
    [line] = stored(settings)
    # Someone able to write the file claims the chain was longer, to hide entries as deleted.
    claimed = json.loads(line) | {"length": 5}
    file = settings.var_dir / CHECKPOINT_FILE
    file.write_text(json.dumps(claimed) + "\nnot json\n", encoding="utf-8")
    verification = anchor.verify(log)
    assert not verification.ok
    assert [f.kind for f in verification.findings] == ["forged_checkpoint", "unreadable_checkpoint"]
    assert "line 1" in verification.findings[0].message
    assert "line 2" in verification.findings[1].message
    assert (verification.checkpoints, verification.anchored, verification.not_yet_anchored) == (
        0,
        0,
        3,
    )


def test_a_new_key_signs_new_checkpoints_and_old_ones_verify_while_their_key_is_listed(
    log: AuditLog, tmp_path: Path, settings: Settings
) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = tmp_path / "keys.pem"
    configured = replace(settings, checkpoint_public_keys=keys)
    old_anchor = anchoring(replace(configured, checkpoint_key=pem(old)), signing=True)
    new_key_file = tmp_path / "new.pem"
    new_key_file.write_text(pem(new), encoding="utf-8")
    new_anchor = anchoring(replace(configured, checkpoint_key_file=new_key_file), signing=True)
    assert old_anchor.signer and new_anchor.signer
    keys.write_bytes(old_anchor.signer.public_pem())

    fill(log, 2)
    first = old_anchor.checkpoint(log)
    fill(log, 2)
    # Rotation: the new public key joins the list, the old one stays.
    keys.write_bytes(old_anchor.signer.public_pem() + new_anchor.signer.public_pem())
    second = new_anchor.checkpoint(log)
    assert first.key_id != second.key_id
    verification = new_anchor.verify(log)
    assert (verification.ok, verification.checkpoints, verification.anchored) == (True, 2, 4)

    keys.write_bytes(new_anchor.signer.public_pem())
    [finding] = new_anchor.verify(log).findings
    assert finding.kind == "unknown_key" and first.key_id in finding.message
    # A configured key never adds itself to the list the verifier trusts.
    assert not (settings.var_dir / PUBLIC_KEYS_FILE).exists()


def test_the_development_key_is_made_once_private_and_its_public_key_listed(
    settings: Settings,
) -> None:
    first, again = signer(settings), signer(settings)
    assert first.key_id == again.key_id
    key_file = settings.var_dir / DEV_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    listed = (settings.var_dir / PUBLIC_KEYS_FILE).read_bytes()
    assert listed == first.public_pem()


def test_a_signing_key_that_is_not_ed25519_is_refused(settings: Settings) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    text = other.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    with pytest.raises(ValueError, match="Ed25519"):
        signer(replace(settings, checkpoint_key=text))


def test_another_municipalitys_checkpoints_say_nothing_of_this_chain(
    log: AuditLog, anchor: Anchoring, settings: Settings
) -> None:
    fill(log, 2)
    assert anchor.signer is not None
    elsewhere = anchor.signer.sign("141500", 99, "e" * 64, datetime.now(UTC))
    FileCheckpoints(settings.var_dir / CHECKPOINT_FILE).append(elsewhere)
    verification = anchor.verify(log)
    assert (verification.ok, verification.checkpoints, verification.not_yet_anchored) == (
        True,
        0,
        2,
    )


def test_an_empty_chain_is_anchored_at_length_zero(log: AuditLog, anchor: Anchoring) -> None:
    signed = anchor.checkpoint(log)
    assert (signed.length, signed.head) == (0, ZERO_HASH)
    fill(log, 1)
    verification = anchor.verify(log)
    assert (verification.ok, verification.anchored, verification.not_yet_anchored) == (True, 0, 1)


def test_the_checkpointer_signs_only_when_the_chain_has_grown(
    log: AuditLog, anchor: Anchoring, settings: Settings
) -> None:
    checkpointer = Checkpointer(anchor, log)
    assert checkpointer.tick() is not None
    assert checkpointer.tick() is None
    fill(log, 2)
    grown = checkpointer.tick()
    assert grown is not None and grown.length == 2
    assert len(stored(settings)) == 2


class FlakyStore(FileCheckpoints):
    """Fails its first append (a full disk, say), stops the checkpointer after its second."""

    def __init__(self, path: Path, stop: threading.Event) -> None:
        super().__init__(path)
        self.stop, self.appended = stop, 0

    def append(self, checkpoint: Checkpoint) -> None:
        self.appended += 1
        if self.appended == 1:
            raise OSError("no space left on device")
        super().append(checkpoint)
        self.stop.set()


def test_the_checkpointer_process_signs_again_after_a_failed_checkpoint(
    log: AuditLog, anchor: Anchoring, settings: Settings
) -> None:
    stop = threading.Event()
    flaky = FlakyStore(settings.var_dir / CHECKPOINT_FILE, stop)
    fill(log, 2)
    Checkpointer(replace(anchor, store=flaky), log).run(0, stop)
    assert flaky.appended == 2
    [line] = stored(settings)
    assert Checkpoint.parse(line).length == 2
