"""The support case: every move from every state, plan versions, and who may approve."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from contracts import disclosure
from contracts.errors import Conflict, Forbidden, Invalid
from contracts.events import CATALOGUE, parse
from contracts.identity import Staff
from services.meeting.application import (
    Applicant,
    DraftPlan,
    MeetingApplication,
    MergedPerson,
    ServiceLine,
)
from services.meeting.integration import to_cloudevent
from services.meeting.support_case import MOVES
from tests.meeting_commands import hold, schedule

pytestmark = pytest.mark.unit


def staff(agency: str = "zama-jiritsu", *roles: str) -> Staff:
    return Staff("s001", agency, frozenset(roles or {"caseworker"}), "142182")


JIRITSU = staff()
APPROVER = staff("zama-jiritsu", "approver")
NOW = datetime.now(UTC)
START = NOW - timedelta(days=400)


@dataclass
class Facts:
    """Intake as the meeting feed would know it, without a feed."""

    applications: dict[UUID, UUID] = field(default_factory=dict)
    # Registered in JIRITSU's municipality, with or without an application.
    persons: set[UUID] = field(default_factory=set)
    consents: list[disclosure.Consent] = field(default_factory=list)

    def applicant(self, consultation_id: UUID) -> Applicant | None:
        person = self.applications.get(consultation_id)
        return Applicant(person, JIRITSU.agency) if person else None

    def knows_person(self, person_id: UUID, municipality: str) -> bool:
        registered = self.persons | set(self.applications.values())
        return municipality == JIRITSU.municipality and person_id in registered

    def consents_of(self, person_id: UUID) -> tuple[disclosure.Consent, ...]:
        return tuple(c for c in self.consents if c.person_id == str(person_id))

    def merged(self, person_id: UUID) -> MergedPerson:
        return MergedPerson(person_id, (person_id,))

    def consent(self, person_id: UUID, recipients: set[str], categories: set[str]) -> None:
        self.consents.append(
            disclosure.Consent(
                consent_id=str(uuid4()),
                person_id=str(person_id),
                recipients=frozenset(recipients),
                categories=frozenset(categories),
                purposes=frozenset({"meeting"}),
                valid_from=START,
                valid_until=NOW + timedelta(days=365),
            )
        )


@pytest.fixture
def app() -> MeetingApplication:
    return MeetingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
def facts() -> Facts:
    return Facts()


def open_case(app: MeetingApplication, facts: Facts) -> tuple[UUID, UUID]:
    """A new person's case, opened from their application: (case id, person id)."""
    person, consultation = uuid4(), uuid4()
    facts.applications[consultation] = person
    return app.open_case(JIRITSU, facts, consultation, person, START), person


def days(n: int) -> datetime:
    return START + timedelta(days=n)


def plan(version_day: int, **changes: object) -> DraftPlan:
    values: dict[str, object] = {
        "goals": ["月3〜5万円の就労収入"],
        "period_from": days(version_day).date(),
        "period_until": days(version_day + 90).date(),
        "at": days(version_day),
    }
    values.update(changes)
    return DraftPlan(**values)  # type: ignore[arg-type]


def discuss(app: MeetingApplication, case_id: UUID, day: int) -> UUID:
    """An individual coordination meeting on the case, scheduled and held on ``day`` (it
    asks nothing of intake: its person is the case's)."""
    meeting = app.schedule_meeting(
        JIRITSU,
        Facts(),
        schedule("individual_coordination", days(day), [case_id], at=days(day)),
    )
    app.hold_meeting(
        JIRITSU,
        meeting,
        hold(
            [("zama-jiritsu", "organiser"), ("hellowork-atsugi", "member")],
            person_attended=True,
            at=days(day),
        ),
    )
    return meeting


def assess(app: MeetingApplication, case_id: UUID, day: int = 1) -> None:
    app.record_assessment(JIRITSU, case_id, ["economic_hardship"], [], None, days(day))


# Each state the case can be in, reached through the application, and the moves it allows.
def _assessed(app: MeetingApplication, case_id: UUID) -> None:
    assess(app, case_id)


def _drafted(app: MeetingApplication, case_id: UUID) -> None:
    _assessed(app, case_id)
    app.draft_plan(JIRITSU, case_id, plan(2))


def _discussed(app: MeetingApplication, case_id: UUID) -> None:
    _drafted(app, case_id)
    discuss(app, case_id, 3)


def _approved(app: MeetingApplication, case_id: UUID) -> None:
    _discussed(app, case_id)
    app.approve_plan(APPROVER, case_id, days(3))


def _replanning(app: MeetingApplication, case_id: UUID) -> None:
    _approved(app, case_id)
    app.evaluate_plan(JIRITSU, case_id, "replan", None, days(5))


def _evaluated_close(app: MeetingApplication, case_id: UUID) -> None:
    _approved(app, case_id)
    app.evaluate_plan(JIRITSU, case_id, "close", None, days(5))


def _closed(app: MeetingApplication, case_id: UUID) -> None:
    app.close_case(JIRITSU, case_id, "contact_lost", None, None, days(6))


ALWAYS_OPEN = ("note_resource_gap", "record_emergency_support", "close")
STATES: dict[str, tuple[Callable[[MeetingApplication, UUID], None], set[str]]] = {
    "opened": (lambda app, case_id: None, {"record_assessment", *ALWAYS_OPEN}),
    "assessed": (_assessed, {"record_assessment", "draft_plan", *ALWAYS_OPEN}),
    "drafted": (_drafted, {"record_assessment", "draft_plan", *ALWAYS_OPEN}),
    "discussed": (_discussed, {"record_assessment", "draft_plan", "approve_plan", *ALWAYS_OPEN}),
    "approved": (
        _approved,
        {"record_assessment", "record_monitoring", "evaluate_plan", *ALWAYS_OPEN},
    ),
    "replanning": (_replanning, {"record_assessment", "draft_plan", *ALWAYS_OPEN}),
    "evaluated_close": (_evaluated_close, {"record_assessment", *ALWAYS_OPEN}),
    "closed": (_closed, {"reopen", "record_follow_up", "record_emergency_support"}),
}


def take(app: MeetingApplication, case_id: UUID, move: str) -> None:
    """Take ``move`` with valid input, as whoever may take it."""
    at = days(10)
    match move:
        case "record_assessment":
            app.record_assessment(JIRITSU, case_id, ["debt"], ["歩く"], "メモ", at)
        case "draft_plan":
            app.draft_plan(JIRITSU, case_id, plan(10))
        case "approve_plan":
            app.approve_plan(APPROVER, case_id, at)
        case "record_monitoring":
            app.record_monitoring(JIRITSU, case_id, "面接に行けた", at)
        case "evaluate_plan":
            app.evaluate_plan(JIRITSU, case_id, "replan", None, at)
        case "note_resource_gap":
            app.note_resource_gap(JIRITSU, case_id, "刑余者の居住支援", None, at)
        case "record_emergency_support":
            app.record_emergency_support(JIRITSU, case_id, "food", "フードバンク", at)
        case "close":
            app.close_case(JIRITSU, case_id, "moved_away", date(2100, 1, 1), None, at)
        case "reopen":
            app.reopen_case(JIRITSU, case_id, "再び相談に来た", at)
        case "record_follow_up":
            app.record_follow_up(JIRITSU, case_id, "転居先で元気", at)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("move", MOVES)
def test_every_move_from_every_state(
    app: MeetingApplication, facts: Facts, state: str, move: str
) -> None:
    reach, allowed = STATES[state]
    case_id, _ = open_case(app, facts)
    reach(app, case_id)
    assert set(app.case(case_id).moves()) == allowed
    if move in allowed:
        take(app, case_id, move)
    else:
        with pytest.raises(Conflict) as refused:
            take(app, case_id, move)
        assert set(refused.value.detail["allowed"]) == allowed


@pytest.mark.parametrize(
    ("state", "move", "says"),
    [
        ("approved", "approve_plan", "already approved"),
        ("closed", "close", r"closed \(contact_lost\)"),
        ("drafted", "evaluate_plan", "no approved plan"),
        ("drafted", "approve_plan", "not been discussed"),
        ("opened", "draft_plan", "assessment first"),
        ("approved", "draft_plan", "evaluation with outcome replan"),
    ],
)
def test_refusals_say_why(
    app: MeetingApplication, facts: Facts, state: str, move: str, says: str
) -> None:
    case_id, _ = open_case(app, facts)
    STATES[state][0](app, case_id)
    with pytest.raises(Conflict, match=says):
        take(app, case_id, move)


def test_seed_003_case_1_four_meetings_four_plan_versions(
    app: MeetingApplication, facts: Facts
) -> None:
    """Plan ①, then re-plans after rejections at job interviews, each through its meeting."""
    case_id, _ = open_case(app, facts)
    assess(app, case_id)
    goals = [
        "債務と生活費の目途",
        "ハローワーク同伴で仕事探し",
        "ストレス対処と対人スキル",
        "中間的就労",
    ]
    meetings = []
    for number, goal in enumerate(goals):
        day = 10 + number * 60
        version = app.draft_plan(JIRITSU, case_id, plan(day, goals=[goal]))
        assert version == number + 1
        meetings.append(discuss(app, case_id, day + 1))
        assert app.approve_plan(APPROVER, case_id, days(day + 1)) == version
        app.record_monitoring(JIRITSU, case_id, "面接を受けるが不採用", days(day + 30))
        if number < len(goals) - 1:
            app.evaluate_plan(JIRITSU, case_id, "replan", "不採用が続く", days(day + 50))
    case = app.case(case_id)
    assert [p.goals[0] for p in case.plans] == goals
    assert [p.approved_in for p in case.plans] == meetings
    assert [p.status for p in case.plans] == ["evaluated"] * 3 + ["approved"]
    assert [p.outcome for p in case.plans[:3]] == ["replan"] * 3
    assert all(len(p.monitoring) == 1 for p in case.plans)


def test_a_redrafted_plan_needs_its_own_meeting(app: MeetingApplication, facts: Facts) -> None:
    case_id, _ = open_case(app, facts)
    _discussed(app, case_id)
    app.draft_plan(JIRITSU, case_id, plan(4, goals=["修正したプラン"]))
    with pytest.raises(Conflict, match="version 2 has not been discussed"):
        app.approve_plan(APPROVER, case_id, days(4))
    discuss(app, case_id, 5)
    assert app.approve_plan(APPROVER, case_id, days(5)) == 2
    assert app.case(case_id).plans[0].status == "draft"  # the first draft stays in the history


def test_a_meeting_scheduled_but_not_held_does_not_allow_approval(
    app: MeetingApplication, facts: Facts
) -> None:
    case_id, _ = open_case(app, facts)
    _drafted(app, case_id)
    meeting = app.schedule_meeting(
        JIRITSU, facts, schedule("individual_coordination", days(3), [case_id], at=days(3))
    )
    with pytest.raises(Conflict):
        app.approve_plan(APPROVER, case_id, days(3))
    app.hold_meeting(JIRITSU, meeting, hold([("zama-jiritsu", "organiser")], at=days(4)))
    app.approve_plan(APPROVER, case_id, days(4))
    assert app.case(case_id).plan is not None


@pytest.mark.parametrize(
    "approver",
    [staff("zama-jiritsu", "caseworker"), staff("zama-shakyo", "approver")],
    ids=["not an approver", "agency does not approve plans"],
)
def test_only_an_approver_of_the_approving_agency_decides(
    app: MeetingApplication, facts: Facts, approver: Staff
) -> None:
    case_id, _ = open_case(app, facts)
    _discussed(app, case_id)
    with pytest.raises(Forbidden) as refused:
        app.approve_plan(approver, case_id, days(4))
    assert refused.value.detail["allowed_agencies"] == ["zama-jiritsu"]


def test_steps_are_taken_by_the_agency_holding_the_case(
    app: MeetingApplication, facts: Facts
) -> None:
    case_id, _ = open_case(app, facts)
    with pytest.raises(Forbidden):
        app.record_assessment(staff("zama-shakyo"), case_id, ["debt"], [], None, days(1))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"period_until": days(1).date()}, "period_until"),
        ({"goals": [" "]}, "goals"),
        ({"monitoring_dates": [days(200).date()]}, "monitoring_dates"),
    ],
)
def test_bad_plans_are_422(
    app: MeetingApplication, facts: Facts, changes: dict[str, object], field: str
) -> None:
    case_id, _ = open_case(app, facts)
    assess(app, case_id)
    with pytest.raises(Invalid) as refused:
        app.draft_plan(JIRITSU, case_id, plan(2, **changes))
    assert refused.value.detail["problems"][0]["field"] == field


@pytest.mark.parametrize(
    ("service", "field", "allowed_example"),
    [
        ({"provider": "acme"}, "services.0.provider", "oneaid"),
        ({"program": "lottery"}, "services.0.program", "household_finance"),
        ({"service_class": "F"}, "services.0.service_class", "D"),
    ],
)
def test_plan_services_use_the_reference_data(
    app: MeetingApplication,
    facts: Facts,
    service: dict[str, str],
    field: str,
    allowed_example: str,
) -> None:
    case_id, _ = open_case(app, facts)
    assess(app, case_id)
    line = ServiceLine(**{"provider": "zama-shakyo", "service_class": "A", **service})  # type: ignore[arg-type]
    with pytest.raises(Invalid) as refused:
        app.draft_plan(JIRITSU, case_id, plan(2, services=[line]))
    [problem] = refused.value.detail["problems"]
    assert problem["field"] == field and allowed_example in problem["allowed"]


def test_assessment_issues_and_closure_reasons_come_from_the_reference(
    app: MeetingApplication, facts: Facts
) -> None:
    case_id, _ = open_case(app, facts)
    with pytest.raises(Invalid, match="at least one issue"):
        app.record_assessment(JIRITSU, case_id, [], [], None, days(1))
    with pytest.raises(Invalid, match="unknown issue"):
        app.record_assessment(JIRITSU, case_id, ["laziness"], [], None, days(1))
    with pytest.raises(Invalid) as refused:
        app.close_case(JIRITSU, case_id, "gave_up", None, None, days(1))
    assert "moved_away" in refused.value.detail["problems"][0]["allowed"]


def test_assessments_deepen_and_are_numbered(app: MeetingApplication, facts: Facts) -> None:
    case_id, _ = open_case(app, facts)
    assess(app, case_id, 1)
    assess(app, case_id, 20)
    assert len(app.case(case_id).assessments) == 2


def test_a_case_opens_only_from_a_known_application_once_per_person(
    app: MeetingApplication, facts: Facts
) -> None:
    with pytest.raises(Invalid) as unknown:
        app.open_case(JIRITSU, facts, uuid4(), uuid4(), START)
    assert unknown.value.detail["problems"][0]["field"] == "consultation_id"
    consultation, person = uuid4(), uuid4()
    facts.applications[consultation] = person
    with pytest.raises(Invalid) as other:
        app.open_case(JIRITSU, facts, consultation, uuid4(), START)
    assert other.value.detail["problems"][0]["field"] == "person_id"
    with pytest.raises(Forbidden):
        app.open_case(staff("zama-shakyo"), facts, consultation, person, START)
    # Ebina's office cannot open a case from an application Zama received: to it, none exists.
    ebina = Staff("s002", "ebina-jiritsu", frozenset({"caseworker"}), "142158")
    with pytest.raises(Invalid) as elsewhere:
        app.open_case(ebina, facts, consultation, person, START)
    assert elsewhere.value.detail["problems"][0]["rule"] == "application_received"
    case_id = app.open_case(JIRITSU, facts, consultation, person, START)
    with pytest.raises(Conflict) as again:
        app.open_case(JIRITSU, facts, consultation, person, START)
    assert again.value.detail["case_id"] == str(case_id)


def test_a_closed_case_is_reopened_and_keeps_its_history(
    app: MeetingApplication, facts: Facts
) -> None:
    case_id, _ = open_case(app, facts)
    _approved(app, case_id)
    app.close_case(JIRITSU, case_id, "moved_away", days(100).date(), None, days(10))
    app.record_follow_up(JIRITSU, case_id, "電話で近況確認", days(20))
    app.reopen_case(JIRITSU, case_id, "転居先で再び困窮", days(30))
    case = app.case(case_id)
    assert not case.closed and case.follow_up_until is None
    assert len(case.follow_ups) == 1 and case.plans[0].status == "approved"
    with pytest.raises(Invalid):
        app.reopen_case(JIRITSU, case_id, " ", days(31))


def test_follow_up_cannot_end_before_the_closure(app: MeetingApplication, facts: Facts) -> None:
    case_id, _ = open_case(app, facts)
    with pytest.raises(Invalid) as refused:
        app.close_case(JIRITSU, case_id, "moved_away", days(-5).date(), None, days(1))
    assert refused.value.detail["problems"][0]["field"] == "follow_up_until"


def test_every_case_event_is_published_keyed_by_the_person_and_on_schema(
    app: MeetingApplication, facts: Facts
) -> None:
    case_id, person = open_case(app, facts)
    for move in ("note_resource_gap", "record_emergency_support"):
        take(app, case_id, move)
    _replanning(app, case_id)
    take(app, case_id, "close")
    take(app, case_id, "record_follow_up")
    take(app, case_id, "reopen")
    published = [
        e
        for n in app.recorder.select_notifications(start=1, limit=1000)
        if (e := to_cloudevent(app.mapper.to_domain_event(n))) is not None
    ]
    names = [e.name for e in published if e.subject == str(case_id)]
    assert names == [
        "CaseOpened",
        "ResourceGapNoted",
        "EmergencySupportRecorded",
        "AssessmentRecorded",
        "PlanDrafted",
        "PlanApproved",
        "PlanEvaluated",
        "CaseClosed",
        "FollowUpRecorded",
        "CaseReopened",
    ]
    for event in published:
        assert type(parse(event)) is CATALOGUE[(event.name, event.eventversion)]
        assert event.personid == str(person) == event.partitionkey or event.personid is None
        assert event.municipality == "142182"
