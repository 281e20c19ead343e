"""Sealing personal fields at the source, opening them in answers, and destroying keys."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate, DomainEvent

from contracts.errors import Conflict
from contracts.identity import Staff
from services.intake.application import IntakeApplication, OpenConsultation
from services.intake.consent import Consent
from services.intake.consultation import Consultation
from services.intake.integration import PUBLISHED as INTAKE
from services.intake.person import Person
from services.meeting.integration import PUBLISHED as MEETING
from services.meeting.meeting import Meeting
from services.meeting.support_case import SupportCase
from services.meeting.vital_interest import VitalInterestDeclaration
from services.platform.indexes import ListIndex, LocalIdIndex
from services.platform.keys import MISSING, KeyStore, WrongKeyEncryptionKey
from services.platform.publishing import Published
from services.platform.sealed_events import Sealing, sealed_fields, unmarked_attributes
from services.platform.sealing import Opener, Sealer, is_sealed, seal_with, subject_of
from services.platform.sql import SqliteDatabase
from services.referral.integration import PUBLISHED as REFERRAL
from services.referral.referral import Referral

pytestmark = pytest.mark.unit

AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CASEWORKER = Staff("s001", "zama-jiritsu", frozenset({"caseworker"}), "142182")
AGGREGATES: tuple[type[Aggregate], ...] = (
    Person,
    Consultation,
    Consent,
    Referral,
    SupportCase,
    Meeting,
    VitalInterestDeclaration,
    LocalIdIndex,
    ListIndex,
)
PUBLISHED: dict[type, Published] = {p.domain: p for p in (*INTAKE, *REFERRAL, *MEETING)}


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(SqliteDatabase(tmp_path / "keys.sqlite3"), os.urandom(32))


def events_of(aggregate: type[Aggregate]) -> list[type]:
    return [
        kind
        for kind in vars(aggregate).values()
        if isinstance(kind, type) and issubclass(kind, DomainEvent)
    ]


def test_every_text_attribute_of_every_stored_event_is_marked() -> None:
    unmarked = {
        f"{kind.__qualname__}.{name}"
        for aggregate in AGGREGATES
        for kind in events_of(aggregate)
        for name in unmarked_attributes(kind, PUBLISHED.get(kind))
        # eventsourcing's own bookkeeping: the class's topic and the id's type
        if name not in ("originator_topic", "originator_id_type")
    }
    assert unmarked == set()


def test_a_domain_attribute_takes_the_mark_of_the_published_field_it_becomes() -> None:
    fields = {
        f.path: f.subject for f in sealed_fields(Person.Registered, PUBLISHED[Person.Registered])
    }
    assert fields[("family_name",)] == ("originator_id",)
    assert fields[("birth_date",)] == ("originator_id",)
    plan = PUBLISHED[SupportCase.PlanDrafted]
    nested = {f.path: f.subject for f in sealed_fields(SupportCase.PlanDrafted, plan)}
    assert nested[("services", "description")] == ("person_id",)
    # A slip's provisional identity never leaves referral: it is marked on the domain event.
    sent = {f.path for f in sealed_fields(Referral.Sent, PUBLISHED[Referral.Sent])}
    assert ("provisional_identity",) in sent


def test_a_stored_event_holds_no_personal_value_in_clear_and_reads_back_sealed(
    keys: KeyStore, tmp_path: Path
) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "e.db")}
    intake = IntakeApplication(env, Sealing(INTAKE, Sealer(keys)))
    opened = intake.open_consultation(
        CASEWORKER,
        OpenConsultation(
            channel="phone",
            route_in="self",
            caller_kind="self",
            main_complaint="家賃を滞納した志村",
        ),
    )
    intake.close()
    stored = b"".join(
        path.read_bytes() for path in tmp_path.iterdir() if path.name.startswith("e.db")
    )
    assert "志村".encode() not in stored
    assert b"sealed:v1:" in stored
    again = IntakeApplication(env, Sealing(INTAKE, Sealer(keys)))
    complaint = again.fetch(Consultation, opened.id, "consultation").main_complaint
    assert isinstance(complaint, str) and is_sealed(complaint)
    assert subject_of(complaint) == opened.id
    assert Opener(keys).open({"complaint": complaint}) == {"complaint": "家賃を滞納した志村"}
    again.close()


def test_values_of_any_type_open_to_their_json(keys: KeyStore) -> None:
    subject = uuid4()
    sealer = Sealer(keys)
    document = {
        "born": sealer.seal(subject, date(1961, 4, 2), AT),
        "year": sealer.seal(subject, 1961, AT),
        "goals": [sealer.seal(subject, "就労", AT)],
        "none": sealer.seal(subject, None, AT),
    }
    assert Opener(keys).open(document) == {
        "born": "1961-04-02",
        "year": 1961,
        "goals": ["就労"],
        "none": None,
    }


def test_erasing_a_person_erases_every_subject_linked_to_them_in_turn(keys: KeyStore) -> None:
    person, case, meeting, other = uuid4(), uuid4(), uuid4(), uuid4()
    sealer = Sealer(keys)
    keys.link(case, person)
    keys.link(meeting, case)
    sealed = {s: sealer.seal(s, f"about {s}", AT) for s in (person, case, meeting, other)}
    erased = keys.erase([person], "subject_request", AT)
    assert set(erased) == {person, case, meeting}
    opened = Opener(keys).open(sealed)
    for subject in (person, case, meeting):
        assert opened[subject] == {
            "erased": True,
            "erased_at": AT.isoformat(),
            "reason": "subject_request",
        }
    assert opened[other] == f"about {other}"
    # A second erasure keeps the first date and reason.
    assert keys.erase([person], "retention", datetime(2027, 1, 1, tzinfo=UTC)) == []
    erasure = keys.erasure(person)
    assert erasure is not None and (erasure.reason, erasure.at) == ("subject_request", AT)


def test_nothing_new_is_sealed_for_an_erased_subject(keys: KeyStore) -> None:
    person = uuid4()
    Sealer(keys).seal(person, "name", AT)
    keys.erase([person], "subject_request", AT)
    with pytest.raises(Conflict):
        Sealer(keys).seal(person, "name again", AT)


def test_a_reader_missing_a_key_shows_the_value_erased_and_does_not_fail(
    keys: KeyStore, tmp_path: Path
) -> None:
    subject = uuid4()
    token = Sealer(keys).seal(subject, "志村", AT)
    elsewhere = KeyStore(SqliteDatabase(tmp_path / "replica.sqlite3"), os.urandom(32))
    assert Opener(elsewhere).open([token]) == [
        {"erased": True, "erased_at": None, "reason": "key_missing"}
    ]
    # A value sealed under another key than the one on record opens to nothing either.
    forged = seal_with(os.urandom(32), subject, "偽")
    assert Opener(keys).open(forged)["erased"] is True


def test_an_erased_key_leaves_nothing_of_itself_in_the_embedded_key_file(
    keys: KeyStore, tmp_path: Path
) -> None:
    person = uuid4()
    Sealer(keys).seal(person, "name", AT)
    with sqlite3.connect(tmp_path / "keys.sqlite3") as raw:
        [(wrapped,)] = raw.execute("SELECT wrapped FROM data_key").fetchall()
    keys.erase([person], "subject_request", AT)
    keys.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("keys"))
    assert wrapped.encode() not in stored


def unsaved_consultation(complaint: str) -> Consultation:
    """A consultation opened with ``complaint``, its first event not yet stored."""
    return Consultation(
        municipality="142182",
        agency="zama-jiritsu",
        staff_id="s1",
        opened_at=AT,
        channel="phone",
        route_in="self",
        caller_kind="self",
        person_id=None,
        main_complaint=complaint,
        notes=None,
    )


def test_an_events_subject_is_linked_to_the_person_it_names(keys: KeyStore) -> None:
    sealing = Sealing(INTAKE, Sealer(keys))
    consultation = unsaved_consultation("相談")
    person = uuid4()
    consultation.attach(person, staff_id="s1", at=AT)
    for event in consultation.collect_events():
        sealing.seal(event)
    keys.erase([person], "subject_request", AT)
    assert keys.erasure(consultation.id) is not None


def test_a_process_given_another_key_encryption_key_fails_at_start(
    keys: KeyStore, tmp_path: Path
) -> None:
    Sealer(keys).seal(uuid4(), "name", AT)
    with pytest.raises(WrongKeyEncryptionKey, match="TSUNAGU_KEY_ENCRYPTION_KEY"):
        KeyStore(SqliteDatabase(tmp_path / "keys.sqlite3"), os.urandom(32))


def test_a_data_key_wrapped_by_another_key_opens_nothing_and_fails_nothing(
    keys: KeyStore, tmp_path: Path
) -> None:
    subject = uuid4()
    token = Sealer(keys).seal(subject, "志村", AT)
    elsewhere = KeyStore(SqliteDatabase(tmp_path / "other.sqlite3"), os.urandom(32))
    Sealer(elsewhere).seal(subject, "x", AT)
    # The row copied into this store, as a restore from the wrong backup would.
    with sqlite3.connect(tmp_path / "other.sqlite3") as other:
        [(wrapped,)] = other.execute("SELECT wrapped FROM data_key").fetchall()
    with sqlite3.connect(tmp_path / "keys.sqlite3") as raw:
        raw.execute("UPDATE data_key SET wrapped = ? WHERE subject = ?", (wrapped, str(subject)))
    assert Opener(keys).open(token) == {"erased": True, "erased_at": None, "reason": "key_missing"}


def test_keys_asked_for_at_once_are_stored_once_each_and_shared(keys: KeyStore) -> None:
    shared, own = uuid4(), [uuid4() for _ in range(20)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        same = list(pool.map(lambda _: keys.sealing_key(shared, AT), range(20)))
        each = list(pool.map(lambda s: keys.sealing_key(s, AT), own))
    assert len({bytes(k) for k in same if isinstance(k, bytes)}) == 1 and len(same) == 20
    assert len({bytes(k) for k in each if isinstance(k, bytes)}) == 20
    # What another process reads back is what was handed out.
    stored = keys.opening_keys([shared, *own])
    assert stored[shared] == same[0] and [stored[s] for s in own] == each


def test_a_key_made_for_a_subject_a_save_creates_is_left_to_the_save_to_store(
    keys: KeyStore,
) -> None:
    created, known = uuid4(), uuid4()
    with keys.stored_with_events([created]) as new_keys:
        first = keys.sealing_key(created, AT)
        # The same subject again in the same save: the same key, made once.
        assert keys.sealing_key(created, AT) == first
        other = keys.sealing_key(known, AT)
    assert [(k.subject, k.created_at) for k in new_keys.rows()] == [(created, AT)]
    # Not stored by the key store: the event store writes it with the events.
    assert keys.opening_keys([created, known]) == {created: MISSING, known: other}
    # Once the save is stored, it is this process's key for the subject.
    assert keys.sealing_key(created, AT) == first


def test_a_key_made_for_a_save_that_failed_is_forgotten(keys: KeyStore) -> None:
    created = uuid4()
    with pytest.raises(RuntimeError), keys.stored_with_events([created]):
        made = keys.sealing_key(created, AT)
        raise RuntimeError("the save was not stored")
    again = keys.sealing_key(created, AT)
    assert again != made and keys.opening_keys([created]) == {created: again}


def test_only_a_process_that_makes_keys_runs_the_thread_that_stores_them(
    tmp_path: Path,
) -> None:
    def key_threads() -> int:
        return sum(thread.name == "data-keys" for thread in threading.enumerate())

    before = key_threads()
    reader = KeyStore(SqliteDatabase(tmp_path / "keys.sqlite3"), os.urandom(32))
    reader.opening_keys([uuid4()])
    assert key_threads() == before
    reader.sealing_key(uuid4(), AT)
    assert key_threads() == before + 1
    reader.close()
    assert key_threads() == before


def test_an_answer_opens_each_distinct_sealed_value_once_wherever_it_repeats(
    keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An as-of answer repeats a fact in every timeline row that carries it (B4)."""
    from services.platform import sealing

    person, other = uuid4(), uuid4()
    name, phone = Sealer(keys).seal(person, "志村", AT), Sealer(keys).seal(person, "090", AT)
    erased = Sealer(keys).seal(other, "消す", AT)
    keys.erase([other], "subject_request", AT)
    opened: list[str] = []
    original = sealing._opened

    def counted(cipher: object, token: str) -> object:
        opened.append(token)
        return original(cipher, token)  # type: ignore[arg-type]

    monkeypatch.setattr(sealing, "_opened", counted)
    rows = [{"name": name, "phone": phone, "note": erased, "n": i} for i in range(50)]
    document = {"timeline": rows, "current": {"name": name}, "pair": (name, None, 1.5)}

    answer = Opener(keys).open(document)

    assert sorted(opened) == sorted([name, phone, erased])
    assert answer["current"] == {"name": "志村"} and answer["pair"] == ["志村", None, 1.5]
    assert all(row["name"] == "志村" and row["phone"] == "090" for row in answer["timeline"])
    assert all(row["note"]["erased"] is True for row in answer["timeline"])


def test_opening_an_answers_json_gives_the_bytes_of_the_opened_document() -> None:
    """``Opener.open_json`` works on the served text (B4); whatever the document, its result is
    what dumping the opened document gives: the bytes served and hashed must not change."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    keys = KeyStore(SqliteDatabase(":memory:"), os.urandom(32))
    person, erased = uuid4(), uuid4()
    tokens = [
        Sealer(keys).seal(person, value, AT)
        for value in ("志村 けん", {"b": [1, "二"], "a": None}, 3.25, ["x", {"z": True}], 'q"\\')
    ]
    tokens.append(Sealer(keys).seal(erased, "消す", AT))
    keys.erase([erased], "subject_request", AT)
    opener = Opener(keys)
    leaves = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
        | st.sampled_from(tokens)
        # Any text sealed: its plaintext is served as it is, so it must be that JSON exactly.
        | st.text().map(lambda text: Sealer(keys).seal(person, text, AT))
        # Text that looks like a token in part: never opened, never broken.
        | st.sampled_from([f'say "{tokens[0]}" then', tokens[0] + " ", "sealed:v1:not-base64!"])
        # Shaped like a token: too short to name a subject; a subject with no key.
        | st.sampled_from(["sealed:v1:abc", "sealed:v1:" + "A" * 30])
    )
    documents = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=30,
    )

    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(documents)
    def same_bytes(document: object) -> None:
        text = json.dumps(document, ensure_ascii=False, sort_keys=True)
        expected = json.dumps(opener.open(document), ensure_ascii=False, sort_keys=True)
        assert opener.open_json([text]) == [expected]

    same_bytes()


def test_documents_opened_together_look_their_keys_up_once_and_read_as_if_alone(
    keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of twenty persons is twenty documents in one answer: one look-up of the keys
    of them all, each document the same bytes as opened alone (an erased one's notice too)."""
    persons = [uuid4() for _ in range(20)]
    texts = [
        json.dumps({"name": Sealer(keys).seal(p, f"志村{n}", AT), "n": n}, ensure_ascii=False)
        for n, p in enumerate(persons)
    ]
    keys.erase([persons[3]], "subject_request", AT)
    opener = Opener(keys)
    alone = [opener.open_json([text]) for text in texts]
    asked: list[set[UUID]] = []
    opening_keys = keys.opening_keys

    def counted(subjects: Any) -> Any:
        asked.append(set(subjects))
        return opening_keys(subjects)

    monkeypatch.setattr(keys, "opening_keys", counted)

    together = opener.open_json(texts)

    assert asked == [set(persons)]
    assert together == [each for [each] in alone]
    assert json.loads(together[0])["name"] == "志村0"
    assert json.loads(together[3])["name"]["erased"] is True
