"""Meeting's integration events: the support case (支援プラン) and its meetings.

A case's events and the meetings on one person are keyed by the person. A regular coordination
meeting (定例支援調整会議) reviews many people's cases, so its events carry no person and are
keyed by the meeting.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.events import Act, IntegrationEvent, register
from contracts.personal import CODE, OF_PERSON, NotPersonal, Personal

# A regular meeting's conclusions may speak of any person reviewed: they are the meeting's
# own, tied to each of them.
OF_MEETING = Personal(subject="meeting_id")

__all__ = [
    "AssessmentRecorded",
    "Attendee",
    "CaseClosed",
    "CaseEvent",
    "CaseOpened",
    "CaseReopened",
    "DiscussedPlan",
    "EmergencySupportRecorded",
    "FollowUpRecorded",
    "InformationShared",
    "MeetingEvent",
    "MeetingHeld",
    "MeetingScheduled",
    "Membership",
    "MonitoringRecorded",
    "PlanApproved",
    "PlanDrafted",
    "PlanEvaluated",
    "PlanEvaluatedV1",
    "PlanService",
    "ResourceGap",
    "ResourceGapNoted",
    "VitalInterestDeclared",
]


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanService(Part):
    """One service in a plan: who provides it, under which programme, of which class (A–E)."""

    provider: Annotated[str, CODE] = Field(min_length=1)
    program: Annotated[str | None, CODE] = None  # a statutory programme (reference `programs`)
    service_class: Annotated[str, CODE] = Field(pattern=r"^[A-E]$")
    period_from: date
    period_until: date
    description: Annotated[str | None, OF_PERSON] = None


class Membership(Part):
    """A member agency of a 支援会議 and the period its confidentiality basis lasts."""

    agency: Annotated[str, CODE] = Field(min_length=1)
    valid_from: datetime
    valid_until: datetime


class Attendee(Part):
    agency: Annotated[str, CODE] = Field(min_length=1)
    role: Annotated[str, NotPersonal("the attending agency's part in the meeting")] = Field(
        min_length=1
    )


class DiscussedPlan(Part):
    case_id: UUID
    plan_version: int = Field(ge=1)


class ResourceGap(Part):
    case_id: UUID
    gap_id: UUID
    # A case is its person's (CaseOpened): the gap is theirs.
    gap: Annotated[str, Personal(subject="case_id")]
    at: datetime


class MeetingEvent(Act):
    service: ClassVar[str] = "meeting"
    version: ClassVar[int] = 1


class CaseEvent(MeetingEvent):
    case_id: UUID
    person_id: UUID


@register
class CaseOpened(CaseEvent):
    name: ClassVar[str] = "CaseOpened"
    summary: ClassVar[str] = "A support case was opened for a person, from their application."

    consultation_id: UUID


@register
class AssessmentRecorded(CaseEvent):
    name: ClassVar[str] = "AssessmentRecorded"
    summary: ClassVar[str] = (
        "アセスメント: issues (reference `issue_categories`), strengths and notes; a case may "
        "have several, numbered from 1."
    )

    assessment_number: int = Field(ge=1)
    issues: Annotated[list[str], CODE] = Field(min_length=1)
    strengths: Annotated[list[str], OF_PERSON] = Field(default_factory=list)
    notes: Annotated[str | None, OF_PERSON] = None


@register
class PlanDrafted(CaseEvent):
    name: ClassVar[str] = "PlanDrafted"
    summary: ClassVar[str] = (
        "プラン案, drafted with the person: goals, services, monitoring dates and the plan "
        "period. A re-plan is a new version; earlier versions stay."
    )

    plan_version: int = Field(ge=1)
    goals: Annotated[list[str], OF_PERSON] = Field(min_length=1)
    services: list[PlanService]
    monitoring_dates: list[date]
    period_from: date
    period_until: date
    drafted_with_person: bool


@register
class PlanApproved(CaseEvent):
    name: ClassVar[str] = "PlanApproved"
    summary: ClassVar[str] = (
        "支援決定 by the municipality, for the plan version discussed at the meeting named."
    )

    plan_version: int = Field(ge=1)
    meeting_id: UUID


@register
class MonitoringRecorded(CaseEvent):
    name: ClassVar[str] = "MonitoringRecorded"
    summary: ClassVar[str] = "モニタリング of the approved plan version."

    plan_version: int = Field(ge=1)
    note: Annotated[str, OF_PERSON]


@register
class PlanEvaluatedV1(CaseEvent):
    """Superseded by v2 (work outcomes); kept so that old messages still read."""

    name: ClassVar[str] = "PlanEvaluated"
    summary: ClassVar[str] = "プラン評価: the approved plan version ends in closure or a re-plan."

    plan_version: int = Field(ge=1)
    outcome: Annotated[str, CODE] = Field(pattern=r"^(close|replan)$")
    note: Annotated[str | None, OF_PERSON] = None


@register
class PlanEvaluated(CaseEvent):
    name: ClassVar[str] = "PlanEvaluated"
    version: ClassVar[int] = 2
    summary: ClassVar[str] = (
        "プラン評価: the approved plan version ends in closure or a re-plan; with the work "
        "outcomes the evaluation found (into_work, increased_income) for the monthly report."
    )

    plan_version: int = Field(ge=1)
    outcome: Annotated[str, CODE] = Field(pattern=r"^(close|replan)$")
    note: Annotated[str | None, OF_PERSON] = None
    work_outcomes: Annotated[list[str], CODE] = Field(default_factory=list)

    @classmethod
    def upcast(cls, previous: IntegrationEvent) -> IntegrationEvent:
        # v1 evaluations recorded no work outcome: none is claimed for them.
        assert isinstance(previous, PlanEvaluatedV1)
        return cls.model_validate({**previous.model_dump(), "work_outcomes": []})


@register
class ResourceGapNoted(CaseEvent):
    name: ClassVar[str] = "ResourceGapNoted"
    summary: ClassVar[str] = (
        "An unmet need with no resource to meet it (社会資源の不足), for the regular meeting."
    )

    gap_id: UUID
    gap: Annotated[str, OF_PERSON] = Field(min_length=1)
    meeting_id: UUID | None = None


@register
class CaseClosed(CaseEvent):
    name: ClassVar[str] = "CaseClosed"
    summary: ClassVar[str] = (
        "終結, with a reason (reference `closure_reasons`) and, when follow-up is needed, the "
        "date it lasts until."
    )

    reason: Annotated[str, CODE]
    follow_up_until: date | None = None
    note: Annotated[str | None, OF_PERSON] = None


@register
class CaseReopened(CaseEvent):
    name: ClassVar[str] = "CaseReopened"
    summary: ClassVar[str] = "A closed case was reopened, with the reason."

    reason: Annotated[str, OF_PERSON] = Field(min_length=1)


@register
class FollowUpRecorded(CaseEvent):
    name: ClassVar[str] = "FollowUpRecorded"
    summary: ClassVar[str] = "フォローアップ: a contact after closure."

    note: Annotated[str, OF_PERSON] = Field(min_length=1)


@register
class EmergencySupportRecorded(CaseEvent):
    name: ClassVar[str] = "EmergencySupportRecorded"
    summary: ClassVar[str] = (
        "緊急的な支援 (food, shelter, a loan...), at any point of the case, even when closed."
    )

    kind: Annotated[str, CODE]
    note: Annotated[str | None, OF_PERSON] = None


@register
class MeetingScheduled(MeetingEvent):
    name: ClassVar[str] = "MeetingScheduled"
    summary: ClassVar[str] = (
        "A meeting was scheduled: individual or regular coordination (支援調整会議) on the "
        "cases named, or a 支援会議 (法9条) on one person with its members and their periods."
    )

    meeting_id: UUID
    kind: Annotated[str, CODE]
    person_id: UUID | None = None
    scheduled_for: datetime
    case_ids: list[UUID] = Field(default_factory=list)
    members: list[Membership] = Field(default_factory=list)


@register
class MeetingHeld(MeetingEvent):
    name: ClassVar[str] = "MeetingHeld"
    summary: ClassVar[str] = (
        "A meeting was held: attendees, whether the person attended, conclusions, the plan "
        "versions discussed and, at a regular meeting, the resource gaps it listed."
    )

    meeting_id: UUID
    kind: Annotated[str, CODE]
    person_id: UUID | None = None
    attendees: list[Attendee] = Field(min_length=1)
    person_attended: bool
    conclusions: Annotated[list[str], OF_MEETING] = Field(default_factory=list)
    plans_discussed: list[DiscussedPlan] = Field(default_factory=list)
    resource_gaps: list[ResourceGap] = Field(default_factory=list)


@register
class InformationShared(MeetingEvent):
    name: ClassVar[str] = "InformationShared"
    summary: ClassVar[str] = (
        "支援会議 (法9条): a member shared information in these data categories; members see it "
        "without consent, except tax (地方税法第22条)."
    )

    meeting_id: UUID
    item_id: UUID
    person_id: UUID
    categories: Annotated[list[str], CODE] = Field(min_length=1)
    note: Annotated[str | None, OF_PERSON] = None


@register
class VitalInterestDeclared(MeetingEvent):
    name: ClassVar[str] = "VitalInterestDeclared"
    summary: ClassVar[str] = (
        "A supervisor declared the person's life or body at risk with consent unobtainable: "
        "recipients and categories may see, for at most 72 hours; flagged for the privacy officer."
    )

    declaration_id: UUID
    person_id: UUID
    recipients: Annotated[list[str], CODE] = Field(min_length=1)
    categories: Annotated[list[str], CODE] = Field(min_length=1)
    reason: Annotated[str, OF_PERSON] = Field(min_length=1)
    valid_from: datetime
    valid_until: datetime
    flagged_for_review: bool
