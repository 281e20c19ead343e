"""Erasing a person (消去): keys destroyed for the person, their duplicates and their records;
PersonErased recorded and published; nothing new recorded about them afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.errors import Conflict, Forbidden, Invalid
from contracts.events import PersonErased
from contracts.identity import Staff
from services.feeds.store import ViewStore
from services.intake.application import (
    IntakeApplication,
    OpenConsultation,
    RecordConsent,
    RegisterPerson,
    retention_staff,
)
from services.intake.integration import PUBLISHED, to_cloudevent
from services.intake.retention import TABLES, RetentionBook, municipal_date, project_retention
from services.platform.keys import KeyStore
from services.platform.sealed_events import Sealing
from services.platform.sealing import Opener, Sealer
from services.platform.sql import SqliteDatabase, connect
from services.web.app import templates
from services.web.catalogue import Translator
from services.web.presenting import show

pytestmark = pytest.mark.unit

OFFICE = Staff("s001", "zama-jiritsu", frozenset({"caseworker"}), "142182")
# A privacy officer over their own agency only: an erasure reaches every agency's records.
SHUNO_OFFICER = Staff("p001", "zama-shuno", frozenset({"privacy_officer"}), "142182")
HELLOWORK = Staff("h001", "hellowork-atsugi", frozenset({"caseworker"}), "142182")
EBINA = Staff("e001", "ebina-jiritsu", frozenset({"caseworker"}), "142158")
AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(SqliteDatabase(tmp_path / "keys.sqlite3"), os.urandom(32))


@pytest.fixture
def intake(keys: KeyStore) -> IntakeApplication:
    env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    return IntakeApplication(env, Sealing(PUBLISHED, Sealer(keys)))


def register(intake: IntakeApplication, **fields: Any) -> UUID:
    names = {"family_name": "志村", "given_name": "和子", "sex": "female", **fields}
    return intake.register_person(OFFICE, RegisterPerson(**names))


def consult(intake: IntakeApplication, person: UUID | None = None) -> UUID:
    command = OpenConsultation(
        channel="phone",
        route_in="self",
        caller_kind="self",
        person_id=person,
        main_complaint="家賃を滞納",
    )
    return intake.open_consultation(OFFICE, command).id


def opened(keys: KeyStore, value: Any) -> Any:
    return Opener(keys).open(value)


def published(intake: IntakeApplication) -> list[Any]:
    stored = intake.recorder.select_notifications(start=None, limit=1000)
    found = [to_cloudevent(intake.mapper.to_domain_event(n)) for n in stored]
    return [e for e in found if e is not None and e.type.endswith("PersonErased")]


def test_an_erasure_destroys_the_keys_of_the_person_and_their_records_and_says_so(
    intake: IntakeApplication, keys: KeyStore
) -> None:
    person = register(intake)
    consultation = consult(intake, person)
    other = register(intake, family_name="別人")
    done = intake.erase_person(OFFICE, person, "subject_request", AT)
    assert (done.persons, done.reason, done.erased_at) == ([person], "subject_request", AT)
    marker = {"erased": True, "erased_at": AT.isoformat(), "reason": "subject_request"}
    assert opened(keys, intake.person(person).family_name) == marker
    assert opened(keys, intake.consultation(consultation).main_complaint) == marker
    assert opened(keys, intake.person(other).family_name) == "別人"
    [event] = published(intake)
    assert event.partitionkey == str(person)
    data = PersonErased.model_validate(event.data)
    assert (data.person_id, data.reason, data.at, data.erased_with) == (
        person,
        "subject_request",
        AT,
        None,
    )
    assert (data.agency, data.staff_id) == ("zama-jiritsu", "s001")


def test_a_second_erasure_is_409_with_when_and_why(intake: IntakeApplication) -> None:
    person = register(intake)
    intake.erase_person(OFFICE, person, "subject_request", AT)
    with pytest.raises(Conflict) as refused:
        intake.erase_person(OFFICE, person, "retention", AT + timedelta(days=1))
    assert refused.value.detail["current"] == {
        "state": "erased",
        "erased_at": AT.isoformat(),
        "reason": "subject_request",
    }


def test_the_duplicates_merged_into_the_person_go_with_them_and_not_one_unmerged(
    intake: IntakeApplication, keys: KeyStore
) -> None:
    survivor, duplicate, twice, unmerged = (register(intake) for _ in range(4))
    # Merged into a duplicate before that duplicate was merged in turn.
    intake.merge(OFFICE, twice, duplicate, "同一人物")
    intake.merge(OFFICE, duplicate, survivor, "同一人物")
    intake.merge(OFFICE, unmerged, survivor, "同一人物と思われた")
    intake.unmerge(OFFICE, unmerged, "別人と判明")
    # A duplicate is erased through the person it was merged into.
    with pytest.raises(Conflict) as refused:
        intake.erase_person(OFFICE, duplicate, "subject_request", AT)
    assert refused.value.detail["current"] == str(survivor)
    done = intake.erase_person(OFFICE, survivor, "subject_request", AT)
    assert set(done.persons) == {survivor, duplicate, twice}
    assert opened(keys, intake.person(twice).given_name)["erased"] is True
    assert opened(keys, intake.person(unmerged).given_name) == "和子"
    events = {PersonErased.model_validate(e.data).person_id: e for e in published(intake)}
    assert set(events) == {survivor, duplicate, twice}
    assert events[twice].data["erased_with"] == str(survivor)


def test_nothing_new_is_recorded_about_an_erased_person(
    intake: IntakeApplication, keys: KeyStore
) -> None:
    person = register(intake)
    attached = consult(intake, person)
    waiting = consult(intake)
    other = register(intake)
    intake.erase_person(OFFICE, person, "subject_request", AT)
    consent = RecordConsent(
        person_id=person,
        recipients=["zama-shakyo"],
        categories=["identity"],
        purposes=["support_coordination"],
        valid_until=datetime.now(UTC) + timedelta(days=30),
    )
    refusals: dict[str, Callable[[], object]] = {
        "link": lambda: intake.link(OFFICE, person, "J-1"),
        "merge it": lambda: intake.merge(OFFICE, person, other, "同一人物"),
        "merge into it": lambda: intake.merge(OFFICE, other, person, "同一人物"),
        "consent": lambda: intake.record_consent(OFFICE, consent),
        "consult": lambda: consult(intake, person),
        "attach": lambda: intake.attach(OFFICE, waiting, person),
        "apply": lambda: intake.receive_application(OFFICE, attached),
    }
    for name, attempt in refusals.items():
        with pytest.raises(Conflict) as refused:
            attempt()
        assert "erased" in refused.value.message, name
        assert refused.value.detail["current"]["reason"] == "subject_request", name


def test_a_record_of_another_service_cannot_be_tied_to_an_erased_person(
    keys: KeyStore, intake: IntakeApplication
) -> None:
    person, referral = register(intake), UUID(int=7)
    intake.erase_person(OFFICE, person, "retention", AT)
    with pytest.raises(Conflict) as refused:
        keys.link(referral, person)
    assert refused.value.detail["current"]["reason"] == "retention"


def test_only_the_office_or_a_municipality_s_privacy_officer_erases(
    intake: IntakeApplication,
) -> None:
    person = register(intake)
    for staff in (HELLOWORK, SHUNO_OFFICER):
        with pytest.raises(Forbidden) as refused:
            intake.erase_person(staff, person, "subject_request", AT)
        assert "self-reliance support office" in refused.value.message
    officer = Staff("p002", "zama-jiritsu", frozenset({"privacy_officer"}), "142182")
    assert intake.erase_person(officer, person, "subject_request", AT).persons == [person]


def test_another_municipality_s_office_cannot_find_the_person(intake: IntakeApplication) -> None:
    person = register(intake)
    with pytest.raises(Exception) as refused:
        intake.erase_person(EBINA, person, "subject_request", AT)
    assert getattr(refused.value, "status", None) == 404


def test_an_unknown_reason_is_422_naming_it(intake: IntakeApplication) -> None:
    person = register(intake)
    for reason in ("key_missing", "because"):
        with pytest.raises(Invalid) as refused:
            intake.erase_person(OFFICE, person, reason, AT)
        [problem] = refused.value.detail["problems"]
        assert (problem["field"], problem["rule"]) == ("reason", "reference_code")


def test_the_retention_sweeper_erases_as_the_municipality_s_office(
    intake: IntakeApplication,
) -> None:
    person = register(intake)
    sweeper = retention_staff("142182")
    assert (sweeper.agency, sweeper.staff_id) == ("zama-jiritsu", "system:retention")
    assert intake.erase_person(sweeper, person, "retention", AT).persons == [person]
    assert intake.person(person).erased is not None


# --- the desk ---------------------------------------------------------------------------------

NOTICE = {"erased": True, "erased_at": AT.isoformat(), "reason": "subject_request"}


def test_the_desk_writes_an_erased_value_with_its_date_in_the_era_and_its_reason() -> None:
    t = Translator("ja")
    assert show(t, "family_name", NOTICE) == "消去済み（令和8年12月3日・本人からの消去請求）"
    missing = {"erased": True, "erased_at": None, "reason": "key_missing"}
    assert show(t, "address", missing) == "消去済み（鍵がないため読めない）"
    assert (
        show(Translator("en"), "phone", NOTICE)
        == "Erased (令和8年12月3日, Erasure asked by the person)"
    )


def test_every_page_writes_an_erased_value_so_whatever_shows_it() -> None:
    env = templates().env
    written = env.from_string("{{ name }}|{{ born | wareki }}|{{ name or '—' }}").render(
        t=Translator("ja"), name=NOTICE, born=NOTICE
    )
    assert written == "|".join(["消去済み（令和8年12月3日・本人からの消去請求）"] * 3)
    assert env.from_string("{{ born | wareki }}").render(born="2025-04-01") == "令和7年4月1日"


# --- the order of an erasure, and what a crash or a concurrent extension leaves -----------------


@pytest.fixture
def book(tmp_path: Path) -> RetentionBook:
    return RetentionBook(ViewStore(connect(None, "intake", tmp_path / "feed.sqlite3"), TABLES))


def later_than_today(days: int) -> date:
    return municipal_date(datetime.now(UTC)) + timedelta(days=days)


def test_an_extension_recorded_while_the_sweep_erases_wins_and_nothing_is_erased(
    intake: IntakeApplication, keys: KeyStore, book: RetentionBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = register(intake)
    read = intake.person_here

    def extended_meanwhile(staff: Staff, person_id: UUID) -> Any:
        found = read(staff, person_id)
        monkeypatch.setattr(intake, "person_here", read)
        intake.extend_retention(OFFICE, book, person_id, later_than_today(400), "訴訟継続中")
        return found

    monkeypatch.setattr(intake, "person_here", extended_meanwhile)
    with pytest.raises(Conflict, match="changed while"):
        intake.erase_person(retention_staff("142182"), person, "retention", AT)
    monkeypatch.undo()

    assert intake.person(person).erased is None
    assert intake.person(person).retention_extended_until == later_than_today(400)
    assert keys.unerased([person]) == [person]
    assert opened(keys, intake.person(person).family_name) == "志村"


def test_retention_does_not_erase_a_person_kept_longer(
    intake: IntakeApplication, keys: KeyStore, book: RetentionBook
) -> None:
    person = register(intake)
    intake.extend_retention(OFFICE, book, person, later_than_today(30), "訴訟継続中")
    with pytest.raises(Conflict) as refused:
        intake.erase_person(retention_staff("142182"), person, "retention", datetime.now(UTC))
    assert refused.value.detail["current"] == {
        "state": "retained",
        "retained_until": later_than_today(30).isoformat(),
    }
    assert keys.unerased([person]) == [person]
    # At the person's own request, it still goes.
    intake.erase_person(OFFICE, person, "subject_request", datetime.now(UTC))
    assert keys.unerased([person]) == []


def test_keys_left_by_a_crash_after_the_erasure_was_recorded_go_at_the_next_sweep(
    intake: IntakeApplication, keys: KeyStore, book: RetentionBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    person, other = register(intake), register(intake, family_name="別人")

    def crash(*_: object) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(keys, "erase", crash)
    with pytest.raises(RuntimeError):
        intake.erase_person(OFFICE, person, "subject_request", AT)
    monkeypatch.undo()
    assert intake.person(person).erased is not None
    assert keys.unerased([person]) == [person]
    # Intake's retention feed sees the erasure, as it sees every event of intake's.
    [erasure] = published(intake)
    data = PersonErased.model_validate(erasure.data)
    book_store = book._store
    book_store.apply(erasure.id, erasure.type, lambda s: project_retention(s, erasure, data))

    assert intake.erase_due(book, AT + timedelta(days=1)) == []

    marker = {"erased": True, "erased_at": AT.isoformat(), "reason": "subject_request"}
    assert opened(keys, intake.person(person).family_name) == marker
    assert opened(keys, intake.person(other).family_name) == "別人"


def test_the_keys_of_more_persons_than_one_statement_can_name_are_asked_after(
    keys: KeyStore,
) -> None:
    """The sweep asks after every person erased in a municipality: SQLite takes 32,766 values
    in one statement at most (250,000 as Debian builds it)."""
    erased, many = uuid4(), [uuid4() for _ in range(300_000)]
    keys.erase([erased], "retention", AT)
    assert set(keys.unerased([erased, *many])) == set(many)
