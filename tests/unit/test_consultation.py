from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from contracts.errors import Forbidden, Invalid
from contracts.identity import Staff
from services.intake.application import IntakeApplication, OpenConsultation, RegisterPerson
from services.intake.consultation import Consultation

pytestmark = pytest.mark.unit

CASEWORKER = Staff("s001", "zama-jiritsu", frozenset({"caseworker"}), "142182")


@pytest.fixture
def intake() -> IntakeApplication:
    return IntakeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def test_an_anonymous_call_with_no_complaint_is_still_opened(intake: IntakeApplication) -> None:
    opened = intake.open_consultation(
        CASEWORKER, OpenConsultation(channel="phone", route_in="self", caller_kind="anonymous")
    )
    consultation = intake.consultation(opened.id)
    assert consultation.person_id is None
    assert consultation.main_complaint is None
    assert consultation.agency == "zama-jiritsu"
    assert consultation.municipality == "142182"
    [stored] = intake.recorder.select_notifications(start=None, limit=10)
    assert stored.topic.endswith("Consultation.Opened")


def test_blank_complaint_is_recorded_as_none(intake: IntakeApplication) -> None:
    opened = intake.open_consultation(
        CASEWORKER,
        OpenConsultation(channel="visit", route_in="self", caller_kind="self", main_complaint=" "),
    )
    assert intake.consultation(opened.id).main_complaint is None


def test_person_and_backdated_opening_are_kept(intake: IntakeApplication) -> None:
    person = intake.register_person(
        CASEWORKER, RegisterPerson(family_name="仮名", given_name="エー")
    )
    opened_at = datetime(2025, 4, 7, 1, 12, tzinfo=UTC)
    opened = intake.open_consultation(
        CASEWORKER,
        OpenConsultation(
            channel="phone",
            route_in="justice_system",
            caller_kind="self",
            person_id=person,
            main_complaint="仕事の相談をしたい",
            opened_at=opened_at,
        ),
    )
    consultation = intake.consultation(opened.id)
    assert (consultation.person_id, consultation.opened_at) == (person, opened_at)
    assert consultation.main_complaint == "仕事の相談をしたい"


@pytest.mark.parametrize(
    ("field", "command"),
    [
        ("channel", OpenConsultation(channel="fax", route_in="self", caller_kind="self")),
        ("route_in", OpenConsultation(channel="phone", route_in="tv", caller_kind="self")),
        ("caller_kind", OpenConsultation(channel="phone", route_in="self", caller_kind="robot")),
    ],
)
def test_unknown_codes_are_refused_naming_field_and_allowed_values(
    intake: IntakeApplication, field: str, command: OpenConsultation
) -> None:
    with pytest.raises(Invalid) as raised:
        intake.open_consultation(CASEWORKER, command)
    [problem] = raised.value.detail["problems"]
    assert problem["field"] == field
    assert problem["rule"] == "reference_code"
    assert len(problem["allowed"]) > 3


def test_an_unregistered_person_is_a_422_on_person_id(intake: IntakeApplication) -> None:
    with pytest.raises(Invalid) as raised:
        intake.open_consultation(
            CASEWORKER,
            OpenConsultation(
                channel="phone", route_in="self", caller_kind="self", person_id=uuid4()
            ),
        )
    assert raised.value.detail["problems"][0]["field"] == "person_id"


def test_future_and_naive_opening_times_are_refused(intake: IntakeApplication) -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    for when, rule in ((future, "not_in_future"), (datetime(2025, 1, 1), "timezone_required")):
        with pytest.raises(Invalid) as raised:
            intake.open_consultation(
                CASEWORKER,
                OpenConsultation(
                    channel="phone", route_in="self", caller_kind="self", opened_at=when
                ),
            )
        assert raised.value.detail["problems"][0]["rule"] == rule


def test_a_desk_without_a_consultation_service_must_refer_instead(
    intake: IntakeApplication,
) -> None:
    tax_desk = Staff("t001", "zama-shuno", frozenset({"caseworker"}), "142182")
    with pytest.raises(Forbidden) as raised:
        intake.open_consultation(
            tax_desk, OpenConsultation(channel="visit", route_in="self", caller_kind="self")
        )
    assert "zama-jiritsu" in raised.value.detail["allowed_agencies"]


def test_opened_event_carries_every_field() -> None:
    consultation = Consultation(
        municipality="142182",
        agency="zama-jiritsu",
        staff_id="s1",
        opened_at=datetime(2025, 8, 3, tzinfo=UTC),
        channel="phone",
        route_in="public_relations_bulletin",
        caller_kind="anonymous",
        person_id=None,
        main_complaint=None,
        notes="広報を見た",
    )
    [opened] = consultation.collect_events()
    assert isinstance(opened, Consultation.Opened)
    assert opened.route_in == "public_relations_bulletin"
    assert opened.notes == "広報を見た"
