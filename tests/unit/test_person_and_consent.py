from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from contracts.disclosure import Allow
from contracts.errors import Conflict, Forbidden, Invalid
from contracts.identity import Staff
from services.intake.application import (
    IntakeApplication,
    RecordConsent,
    RegisterPerson,
    WithdrawConsent,
)
from services.intake.integration import to_cloudevent
from services.intake.person import duplicate_key

pytestmark = pytest.mark.unit

JIRITSU = Staff("s001", "zama-jiritsu", frozenset({"caseworker"}), "142182")
SHUNO = Staff("t001", "zama-shuno", frozenset({"caseworker"}), "142182")
SHAKYO = Staff("k001", "zama-shakyo", frozenset({"caseworker"}), "142182")
KOKUHO = Staff("h001", "zama-kokuho", frozenset({"caseworker"}), "142182")
NOW = datetime.now(UTC)


@pytest.fixture
def intake() -> IntakeApplication:
    return IntakeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def register(intake: IntakeApplication, staff: Staff = JIRITSU, **fields: object) -> UUID:
    return intake.register_person(staff, RegisterPerson(**fields))  # type: ignore[arg-type]


def consent(
    intake: IntakeApplication, person: UUID, *, staff: Staff = JIRITSU, **terms: object
) -> UUID:
    values: dict[str, object] = dict(
        person_id=person,
        recipients=["zama-shakyo"],
        categories=["identity", "debt"],
        purposes=["support_coordination"],
        valid_from=NOW - timedelta(days=10),
        valid_until=NOW + timedelta(days=355),
    )
    values.update(terms)
    return intake.record_consent(staff, RecordConsent(**values))  # type: ignore[arg-type]


def test_names_in_any_script_old_kanji_and_emoji_round_trip_exactly(
    intake: IntakeApplication,
) -> None:
    names: dict[str, Any] = {
        "family_name": "髙﨑",
        "given_name": "𠮷子 🌸",
        "family_name_kana": "タカサキ",
    }
    person_id = register(intake, **names)
    person = intake.person(person_id)
    assert (person.family_name, person.given_name) == ("髙﨑", "𠮷子 🌸")
    [stored] = intake.recorder.select_notifications(start=None, limit=1)
    event = to_cloudevent(intake.mapper.to_domain_event(stored))
    assert event is not None and event.data["family_name"] == "髙﨑"


def test_a_local_id_belongs_to_one_person_and_finds_them(intake: IntakeApplication) -> None:
    person = register(intake, SHUNO, family_name="佐藤", local_id="T-000123")
    assert intake.find_by_local_id(SHUNO, "zama-shuno", "T-000123") == (
        person,
        Allow("own_record", None),
    )
    other = register(intake, SHUNO, family_name="鈴木")
    with pytest.raises(Conflict):
        intake.link(SHUNO, other, "T-000123")
    with pytest.raises(Conflict):
        intake.link(SHUNO, person, "T-999")  # one local id per agency and person


def test_another_agency_finds_a_person_by_local_id_only_with_a_basis(
    intake: IntakeApplication,
) -> None:
    person = register(intake, SHUNO, family_name="佐藤", local_id="T-000123")
    with pytest.raises(Forbidden, match="no basis"):
        intake.find_by_local_id(JIRITSU, "zama-shuno", "T-000123")
    consent(
        intake,
        person,
        staff=SHUNO,
        recipients=["zama-jiritsu"],
        categories=["identity", "tax"],
        purposes=["referral"],
        method="written_tsunagu_sheet",
    )
    found, basis = intake.find_by_local_id(JIRITSU, "zama-shuno", "T-000123")
    assert found == person and basis.basis == "consent"


def test_duplicates_are_proposed_by_kana_and_birth_date_and_merged_reversibly(
    intake: IntakeApplication,
) -> None:
    born = date(1948, 5, 1)
    first = register(
        intake,
        family_name="高橋",
        given_name="花子",
        family_name_kana="タカハシ",
        given_name_kana="ハナコ",
        birth_date=born,
    )
    second = register(
        intake,
        family_name="髙橋",
        given_name="花子",
        family_name_kana="たかはし",
        given_name_kana="ﾊﾅｺ",
        birth_date=born,
    )
    register(
        intake,
        family_name="高橋",
        given_name="花子",
        family_name_kana="タカハシ",
        given_name_kana="ハナコ",
        birth_date=date(1950, 1, 1),
    )
    assert intake.duplicates(JIRITSU, second).candidates == [first]
    intake.merge(JIRITSU, second, first, "同一人物（電話で確認）")
    assert intake.person(second).merged_into == first
    with pytest.raises(Conflict):
        intake.merge(JIRITSU, second, first, "again")
    intake.unmerge(JIRITSU, second, "別人と判明")
    assert intake.person(second).merged_into is None
    with pytest.raises(Conflict):
        intake.unmerge(JIRITSU, second, "again")
    with pytest.raises(Forbidden):
        intake.merge(SHUNO, second, first, "a tax desk does not merge persons")


def test_duplicate_key_folds_kana_width_and_script() -> None:
    assert duplicate_key("タカハシ", "ﾊﾅｺ", None, 1948) == duplicate_key(
        "たかはし", "はなこ", None, 1948
    )
    assert duplicate_key("タカハシ", None, None, 1948) is None


def test_the_ledger_answers_for_any_instant_including_after_partial_withdrawal(
    intake: IntakeApplication,
) -> None:
    person = register(intake, family_name="志村")
    consent_id = consent(
        intake,
        person,
        recipients=["zama-shakyo", "oneaid"],
        categories=["identity", "debt", "housing"],
    )
    before = NOW - timedelta(days=5)
    withdrawn_at = NOW - timedelta(days=2)
    intake.withdraw_consent(
        JIRITSU,
        consent_id,
        WithdrawConsent(recipients=["oneaid"], categories=["debt"], at=withdrawn_at),
    )
    in_force = intake.consents_in_force
    assert [c.id for c in in_force(person, "oneaid", "debt", "support_coordination", before)] == [
        consent_id
    ]
    assert in_force(person, "oneaid", "debt", "support_coordination", NOW) == []
    assert len(in_force(person, "oneaid", "housing", "support_coordination", NOW)) == 1
    assert len(in_force(person, "zama-shakyo", "debt", "support_coordination", NOW)) == 1
    assert in_force(person, "zama-shakyo", "debt", "referral", NOW) == []  # other purpose
    assert (
        in_force(person, "zama-shakyo", "debt", "support_coordination", NOW - timedelta(days=11))
        == []
    )  # before it started
    assert (
        in_force(person, "zama-shakyo", "debt", "support_coordination", NOW + timedelta(days=400))
        == []
    )  # expired by its period alone


def test_withdrawing_twice_is_a_conflict_and_partial_then_total_is_not(
    intake: IntakeApplication,
) -> None:
    person = register(intake, family_name="志村")
    consent_id = consent(intake, person)
    intake.withdraw_consent(JIRITSU, consent_id, WithdrawConsent(categories=["debt"]))
    intake.withdraw_consent(JIRITSU, consent_id, WithdrawConsent())
    with pytest.raises(Conflict):
        intake.withdraw_consent(JIRITSU, consent_id, WithdrawConsent())
    with pytest.raises(Conflict):
        intake.withdraw_consent(JIRITSU, consent_id, WithdrawConsent(categories=["identity"]))


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"recipients": ["acme"]}, "recipients"),
        ({"categories": ["shoe_size"]}, "categories"),
        ({"purposes": ["marketing"]}, "purposes"),
        ({"valid_until": NOW - timedelta(days=20)}, "valid_until"),
        ({"method": "telepathy"}, "method"),
        ({"method": "verbal_with_witness"}, "witness"),
        ({"given_by": "legal_representative"}, "representative_relationship"),
        ({"recipients": []}, "recipients"),
    ],
)
def test_bad_consent_terms_are_422_naming_the_field(
    intake: IntakeApplication, terms: dict[str, Any], field: str
) -> None:
    person = register(intake, family_name="志村")
    with pytest.raises(Invalid) as raised:
        consent(intake, person, **terms)
    assert raised.value.detail["problems"][0]["field"] == field


def test_consent_for_an_unregistered_person_is_422(intake: IntakeApplication) -> None:
    with pytest.raises(Invalid) as raised:
        consent(intake, UUID(int=7))
    assert raised.value.detail["problems"][0]["field"] == "person_id"


def test_the_receipt_has_the_kantara_fields(intake: IntakeApplication) -> None:
    person = register(intake, family_name="志村")
    consent_id = consent(
        intake, person, categories=["identity", "health"], evidence_ref="申込票#12"
    )
    receipt = intake.consent(consent_id).receipt()
    for key in (
        "version",
        "jurisdiction",
        "consentTimestamp",
        "collectionMethod",
        "consentReceiptID",
        "piiPrincipalId",
        "piiControllers",
        "services",
        "sensitive",
    ):
        assert key in receipt
    assert receipt["consentReceiptID"] == str(consent_id)
    assert receipt["collectionMethod"] == "written_application_form"
    [purpose] = receipt["services"][0]["purposes"]
    assert purpose["piiCategory"] == ["identity", "health"]
    assert purpose["thirdPartyName"] == ["座間市社会福祉協議会"]
    assert receipt["sensitive"] is True and receipt["spiCat"] == ["health"]


def test_a_consent_is_read_only_by_its_recorder_recipients_and_privacy_officers(
    intake: IntakeApplication,
) -> None:
    person = register(intake, SHUNO, family_name="志村")
    consent_id = consent(intake, person, staff=SHUNO)
    assert intake.readable_consent(SHAKYO, consent_id).id == consent_id
    with pytest.raises(Forbidden):
        intake.readable_consent(KOKUHO, consent_id)
    # A privacy officer over the whole municipality reads it; one over its own agency only
    # reads its agency's (reference data: oversight_roles).
    officer = Staff("p1", "zama-jiritsu", frozenset({"privacy_officer"}), "142182")
    assert intake.readable_consent(officer, consent_id).id == consent_id
    own_agency = Staff("p2", "zama-kokuho", frozenset({"privacy_officer"}), "142182")
    with pytest.raises(Forbidden):
        intake.readable_consent(own_agency, consent_id)


def test_coverage_names_what_a_receiver_may_be_sent_under_a_consent_now(
    intake: IntakeApplication,
) -> None:
    person = register(intake, family_name="佐藤")
    consent_id = consent(
        intake,
        person,
        recipients=["zama-jiritsu", "zama-shakyo"],
        categories=["tax", "identity", "contact"],
        purposes=["referral"],
    )
    intake.withdraw_consent(
        JIRITSU, consent_id, WithdrawConsent(recipients=["zama-shakyo"], categories=["tax"])
    )
    terms, now = intake.consent(consent_id), datetime.now(UTC)
    assert terms.coverage("zama-jiritsu", "referral", now) == ["identity", "contact", "tax"]
    assert terms.coverage("zama-shakyo", "referral", now) == ["identity", "contact"]
    assert terms.coverage("zama-shakyo", "meeting", now) == []  # a purpose not consented to
    assert terms.coverage("oneaid", "referral", now) == []  # not a recipient


def test_a_withdrawal_effect_lists_who_would_lose_what_before_it_is_made(
    intake: IntakeApplication,
) -> None:
    person = register(intake, family_name="志村")
    consent_id = consent(
        intake,
        person,
        recipients=["zama-shakyo", "oneaid"],
        categories=["identity", "debt", "housing"],
    )
    intake.withdraw_consent(
        JIRITSU, consent_id, WithdrawConsent(recipients=["oneaid"], categories=["debt"])
    )
    terms, now = intake.consent(consent_id), datetime.now(UTC)
    assert terms.withdrawal_effect(None, None, now) == {
        "zama-shakyo": ["identity", "debt", "housing"],
        "oneaid": ["identity", "housing"],  # debt is already withdrawn for it
    }
    assert terms.withdrawal_effect(["oneaid"], ["debt"], now) == {}
    assert terms.withdrawal_effect(None, ["housing"], now) == {
        "zama-shakyo": ["housing"],
        "oneaid": ["housing"],
    }
