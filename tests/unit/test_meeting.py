"""Meetings: holding them, 支援会議 sharing and its tax rule, membership periods, vital interest."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest

from contracts.errors import Conflict, Forbidden, Invalid
from contracts.events import CATALOGUE, parse
from services.meeting.application import (
    DeclareVitalInterest,
    MeetingApplication,
    ScheduleMeeting,
)
from services.meeting.integration import to_cloudevent
from tests.meeting_commands import hold, schedule
from tests.unit.test_support_case import (
    JIRITSU,
    NOW,
    Facts,
    app,
    days,
    facts,
    open_case,
    staff,
)

pytestmark = pytest.mark.unit
__all__ = ["app", "facts"]  # fixtures shared with the case tests

MEMBERS = ("zama-jiritsu", "zama-shakyo", "seikatsuclub", "zama-shuno")
SHUNO, CLUB = staff("zama-shuno"), staff("seikatsuclub")
OFFICER = staff("zama-jiritsu", "privacy_officer")
SUPERVISOR = staff("zama-jiritsu", "supervisor")


def article9(
    app: MeetingApplication, facts: Facts, person: UUID, *, club_until: int = 800, held: bool = True
) -> UUID:
    """A 支援会議 on ``person`` held on day 10; seikatsuclub is a member until ``club_until``."""
    members: list[tuple[str, datetime | None, datetime]] = [
        (a, None, days(800)) for a in MEMBERS if a != "seikatsuclub"
    ]
    members.append(("seikatsuclub", None, days(club_until)))
    facts.persons.add(person)
    meeting = app.schedule_meeting(
        JIRITSU,
        facts,
        schedule(
            "article9_support_meeting", days(10), person_id=person, members=members, at=days(9)
        ),
    )
    if held:
        attendees = [(a, "member") for a in MEMBERS]
        app.hold_meeting(JIRITSU, meeting, hold(attendees, at=days(10)))
    return meeting


def test_tax_is_refused_citing_the_law_and_naming_members_without_consent(
    app: MeetingApplication, facts: Facts
) -> None:
    person = uuid4()
    meeting = article9(app, facts, person)
    facts.consent(person, {"zama-shakyo"}, {"tax"})
    with pytest.raises(Forbidden) as refused:
        app.share_information(SHUNO, facts, meeting, ["tax"], "滞納額", days(11))
    assert "地方税法第22条" in refused.value.message
    assert refused.value.detail["members_without_consent"] == ["seikatsuclub", "zama-jiritsu"]
    assert app.meeting(meeting).shared == []


def test_tax_is_shared_when_every_other_member_consented_for_the_meeting(
    app: MeetingApplication, facts: Facts
) -> None:
    person = uuid4()
    meeting = article9(app, facts, person)
    facts.consent(person, {"zama-jiritsu", "zama-shakyo", "seikatsuclub"}, {"tax"})
    app.share_information(SHUNO, facts, meeting, ["tax"], "分納可能", days(11))
    [item] = app.information(CLUB, facts, meeting)
    assert item.bases["tax"].basis == "consent"


def test_a_consent_for_another_purpose_does_not_open_tax_to_the_meeting(
    app: MeetingApplication, facts: Facts
) -> None:
    """Scenario 03: the つなぐシート covered tax for the referral, not for a meeting."""
    person = uuid4()
    meeting = article9(app, facts, person)
    facts.consent(person, {"zama-jiritsu", "zama-shakyo", "seikatsuclub"}, {"tax"})
    facts.consents[0] = replace(facts.consents[0], purposes=frozenset({"referral"}))
    with pytest.raises(Forbidden, match="地方税法第22条"):
        app.share_information(SHUNO, facts, meeting, ["tax"], None, days(11))


def test_members_see_what_is_shared_on_the_article9_basis_without_consent(
    app: MeetingApplication, facts: Facts
) -> None:
    person = uuid4()
    meeting = article9(app, facts, person)
    categories = ["consultation", "mental_health", "employment"]
    app.share_information(JIRITSU, facts, meeting, categories, "就労意欲あり", days(11))
    [item] = app.information(CLUB, facts, meeting)
    assert item.note == "就労意欲あり" and item.agency == "zama-jiritsu"
    assert {c: (a.basis, a.basis_id) for c, a in item.bases.items()} == {
        c: ("article9_meeting", str(meeting)) for c in categories
    }
    [own] = app.information(JIRITSU, facts, meeting)
    assert {a.basis for a in own.bases.values()} == {"own_record"}
    with pytest.raises(Forbidden):
        app.information(staff("oneaid"), facts, meeting)


def test_the_basis_ends_with_the_membership(app: MeetingApplication, facts: Facts) -> None:
    person = uuid4()
    meeting = article9(app, facts, person, club_until=20)
    app.share_information(JIRITSU, facts, meeting, ["employment"], None, days(11))
    organiser = staff("seikatsuclub", "meeting_organiser")
    assert len(app.information(organiser, facts, meeting, days(19))) == 1
    assert app.information(organiser, facts, meeting, days(20)) == []
    assert app.information(CLUB, facts, meeting) == []  # now, long after day 20
    with pytest.raises(Forbidden, match="not a member"):
        app.share_information(CLUB, facts, meeting, ["employment"], None, days(21))
    assert "employment" not in app.visibility(OFFICER, facts, person, "seikatsuclub", days(21))


def test_reading_as_of_another_instant_is_for_those_who_oversee(
    app: MeetingApplication, facts: Facts
) -> None:
    meeting = article9(app, facts, uuid4())
    with pytest.raises(Forbidden, match="another instant"):
        app.information(CLUB, facts, meeting, days(11))


def test_sharing_needs_a_held_article9_meeting_and_its_categories_are_known(
    app: MeetingApplication, facts: Facts
) -> None:
    person = uuid4()
    meeting = article9(app, facts, person, held=False)
    with pytest.raises(Conflict) as refused:
        app.share_information(JIRITSU, facts, meeting, ["employment"], None, days(9))
    assert refused.value.detail["allowed"] == ["hold"]
    app.hold_meeting(JIRITSU, meeting, hold([("zama-jiritsu", "chair")], at=days(10)))
    with pytest.raises(Invalid, match="unknown category"):
        app.share_information(JIRITSU, facts, meeting, ["gossip"], None, days(11))
    with pytest.raises(Forbidden):
        app.share_information(staff("oneaid"), facts, meeting, ["employment"], None, days(11))


def test_attendees_are_known_agencies_and_article9_attendees_are_members(
    app: MeetingApplication, facts: Facts
) -> None:
    case_id, person = open_case(app, facts)
    meeting = app.schedule_meeting(
        JIRITSU, facts, schedule("individual_coordination", days(3), [case_id], at=days(3))
    )
    with pytest.raises(Invalid) as unknown:
        app.hold_meeting(JIRITSU, meeting, hold([("acme-npo", "member")], at=days(3)))
    [problem] = unknown.value.detail["problems"]
    assert problem["field"] == "attendees.0.agency" and "oneaid" in problem["allowed"]
    confidential = article9(app, facts, person, held=False)
    with pytest.raises(Invalid, match="not a member"):
        app.hold_meeting(JIRITSU, confidential, hold([("oneaid", "member")], at=days(10)))


def test_a_meeting_is_held_once_by_its_organiser(app: MeetingApplication, facts: Facts) -> None:
    case_id, _ = open_case(app, facts)
    meeting = app.schedule_meeting(
        JIRITSU, facts, schedule("individual_coordination", days(3), [case_id], at=days(3))
    )
    held = hold([("zama-jiritsu", "chair")], person_attended=True, at=days(3))
    with pytest.raises(Forbidden):
        app.hold_meeting(staff("zama-shakyo"), meeting, held)
    app.hold_meeting(JIRITSU, meeting, held)
    with pytest.raises(Conflict, match="already held"):
        app.hold_meeting(JIRITSU, meeting, held)


def test_the_person_attends_only_their_individual_meeting(
    app: MeetingApplication, facts: Facts
) -> None:
    regular = app.schedule_meeting(JIRITSU, facts, schedule("regular_coordination", days(3)))
    with pytest.raises(Invalid) as refused:
        app.hold_meeting(
            JIRITSU,
            regular,
            hold([("zama-jiritsu", "chair")], person_attended=True, at=days(3)),
        )
    assert refused.value.detail["problems"][0]["field"] == "person_attended"


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (schedule("weekly_tea", NOW), "kind"),
        (schedule("individual_coordination", NOW), "case_ids"),
        (schedule("article9_support_meeting", NOW, members=[]), "person_id"),
        (schedule("article9_support_meeting", NOW, person_id=uuid4()), "members"),
        (
            schedule(
                "article9_support_meeting",
                NOW,
                person_id=uuid4(),
                members=[("zama-shakyo", None, NOW + timedelta(days=1))],
            ),
            "members",
        ),
        (
            schedule(
                "article9_support_meeting",
                NOW,
                person_id=uuid4(),
                members=[("zama-jiritsu", None, NOW - timedelta(days=1))],
            ),
            "members.0.valid_until",
        ),
        (
            schedule("regular_coordination", NOW, members=[("zama-jiritsu", None, NOW)]),
            "members",
        ),
    ],
)
def test_each_kind_of_meeting_is_scheduled_with_what_it_needs(
    app: MeetingApplication, facts: Facts, command: ScheduleMeeting, field: str
) -> None:
    if command.person_id is not None:
        facts.persons.add(command.person_id)
    with pytest.raises(Invalid) as refused:
        app.schedule_meeting(JIRITSU, facts, command)
    assert refused.value.detail["problems"][0]["field"] == field


def test_a_support_meeting_is_only_about_a_person_registered_in_the_municipality(
    app: MeetingApplication, facts: Facts
) -> None:
    members: list[tuple[str, datetime | None, datetime]] = [
        (agency, None, NOW + timedelta(days=30)) for agency in ("zama-jiritsu", "zama-shakyo")
    ]
    unknown = schedule("article9_support_meeting", NOW, person_id=uuid4(), members=members)
    with pytest.raises(Invalid) as refused:
        app.schedule_meeting(JIRITSU, facts, unknown)
    assert refused.value.detail["problems"][0] == {
        "field": "person_id",
        "rule": "known_person",
        "message": f"no person {unknown.person_id} is known",
    }
    facts.persons.add(uuid4())
    [known] = facts.persons
    app.schedule_meeting(JIRITSU, facts, unknown.model_copy(update={"person_id": known}))


def test_only_the_support_office_organises_meetings(app: MeetingApplication, facts: Facts) -> None:
    with pytest.raises(Forbidden):
        app.schedule_meeting(staff("zama-shakyo"), facts, schedule("regular_coordination", NOW))


def test_the_regular_meeting_lists_the_resource_gaps_noted_since_the_last_one(
    app: MeetingApplication, facts: Facts
) -> None:
    first, _ = open_case(app, facts)
    second, _ = open_case(app, facts)
    app.note_resource_gap(JIRITSU, first, "刑余者の市外転居を受け入れる居住支援", None, days(5))
    earlier = app.schedule_meeting(JIRITSU, facts, schedule("regular_coordination", days(10)))
    app.hold_meeting(JIRITSU, earlier, hold([("zama-jiritsu", "chair")], at=days(10)))
    app.note_resource_gap(JIRITSU, second, "夜間の一時保護", None, days(50))
    later = app.schedule_meeting(JIRITSU, facts, schedule("regular_coordination", days(90)))
    app.hold_meeting(JIRITSU, later, hold([("zama-jiritsu", "chair")], at=days(90)))
    assert [g["gap"] for g in app.meeting(earlier).resource_gaps] == [
        "刑余者の市外転居を受け入れる居住支援"
    ]
    assert [(g["case_id"], g["gap"]) for g in app.meeting(later).resource_gaps] == [
        (second, "夜間の一時保護")
    ]


def declaration(person: UUID, **changes: object) -> DeclareVitalInterest:
    values: dict[str, object] = {
        "person_id": person,
        "recipients": ["zama-kodomo"],
        "categories": ["family"],
        "reason": "妹の逮捕により子どもの保護が必要",
        "hours": 72,
        "at": days(30),
    }
    values.update(changes)
    return DeclareVitalInterest(**values)  # type: ignore[arg-type]


def test_vital_interest_opens_its_window_and_closes_it(
    app: MeetingApplication, facts: Facts
) -> None:
    _, person = open_case(app, facts)
    declared = app.declare_vital_interest(SUPERVISOR, facts, declaration(person))
    inside = app.visibility(OFFICER, facts, person, "zama-kodomo", days(30) + timedelta(hours=3))
    assert {c: (a.basis, a.basis_id) for c, (_, a) in inside.items()} == {
        "family": ("vital_interest", str(declared))
    }
    assert app.visibility(OFFICER, facts, person, "zama-kodomo", days(33)) == {}
    assert app.visibility(OFFICER, facts, person, "zama-kodomo", days(29)) == {}
    [listed] = app.vital_interests(OFFICER, facts, person)
    assert listed.flagged_for_review and listed.valid_until == days(33)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hours": 73}, "hours"),
        ({"hours": 0}, "hours"),
        ({"categories": ["tax"]}, "categories"),
        ({"recipients": ["acme"]}, "recipients"),
        ({"reason": " "}, "reason"),
        ({"person_id": uuid4()}, "person_id"),
    ],
)
def test_vital_interest_terms_are_lawful(
    app: MeetingApplication, facts: Facts, changes: dict[str, object], field: str
) -> None:
    _, person = open_case(app, facts)
    with pytest.raises(Invalid) as refused:
        app.declare_vital_interest(SUPERVISOR, facts, declaration(person, **changes))
    assert refused.value.detail["problems"][0]["field"] == field


def test_only_supervisors_declare_and_only_they_and_privacy_officers_list(
    app: MeetingApplication, facts: Facts
) -> None:
    _, person = open_case(app, facts)
    with pytest.raises(Forbidden):
        app.declare_vital_interest(JIRITSU, facts, declaration(person))
    with pytest.raises(Forbidden):
        app.vital_interests(JIRITSU, facts, person)
    with pytest.raises(Forbidden, match="another agency"):
        app.visibility(JIRITSU, facts, person, "zama-kodomo")
    # A supervisor only in an agency the reference data names for the role declares.
    for unnamed in ("minsei", "oneaid"):
        with pytest.raises(Forbidden, match=f"{unnamed!r} is not one"):
            app.declare_vital_interest(staff(unnamed, "supervisor"), facts, declaration(person))
    assert app.declare_vital_interest(
        staff("zama-kodomo", "supervisor"), facts, declaration(person)
    )
    # An own-agency supervisor reads only the declarations its agency made or received.
    assert app.vital_interests(staff("zama-shogai", "supervisor"), facts, person) == []
    assert len(app.vital_interests(SUPERVISOR, facts, person)) == 1


def test_meeting_events_are_published_on_schema(app: MeetingApplication, facts: Facts) -> None:
    _, person = open_case(app, facts)
    meeting = article9(app, facts, person)
    app.share_information(JIRITSU, facts, meeting, ["employment"], "メモ", days(11))
    app.declare_vital_interest(SUPERVISOR, facts, declaration(person))
    published = [
        e
        for n in app.recorder.select_notifications(start=1, limit=1000)
        if (e := to_cloudevent(app.mapper.to_domain_event(n))) is not None
    ]
    assert [e.name for e in published][1:] == [
        "MeetingScheduled",
        "MeetingHeld",
        "InformationShared",
        "VitalInterestDeclared",
    ]
    for event in published:
        assert type(parse(event)) is CATALOGUE[(event.name, 1)]
        assert event.partitionkey == str(person)
    assert parse(published[-1]).model_dump()["flagged_for_review"] is True
