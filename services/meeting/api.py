"""Meeting's HTTP adapter: thin translation between JSON and the meeting application.

Every answer about a person's case, meetings, 支援会議 information, declarations or disclosure
is a read of that person, answered and recorded through ``Disclosures`` (refusals too). A case
or meeting shows another agency only the categories ``decide`` allows it now.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from contracts import disclosure
from contracts.errors import Forbidden
from contracts.fields import (
    Code,
    Codes,
    Day,
    Items,
    Moment,
    Note,
    RequestModel,
)
from contracts.identity import Staff
from services.feeds.store import ViewStore
from services.meeting.application import (
    CONSULTATION,
    PLAN,
    WELFARE_BENEFIT,
    CaseReading,
    DeclareVitalInterest,
    DraftPlan,
    HoldMeeting,
    KnownApplication,
    MeetingApplication,
    MemberPreview,
    Named,
    Reading,
    ScheduleMeeting,
    SharedItem,
    named,
)
from services.meeting.feed import FeedFacts
from services.meeting.meeting import Meeting
from services.meeting.support_case import SupportCase
from services.meeting.vital_interest import VitalInterestDeclaration
from services.platform.auth import authenticated_staff
from services.platform.disclose import (
    OWN_RECORD,
    Disclosure,
    Disclosures,
    Reader,
    Shown,
    bases_map,
    withheld_list,
)
from services.platform.pagination import Key, Page, after_cursor, link_of, page, respond
from services.projection.person_facts import CATEGORY_OF

At = Field(None, description="When it happened (business time); default now.")
Given = Field(min_length=1)


class OpenCaseRequest(RequestModel):
    consultation_id: UUID = Field(description="The consultation whose application opens the case.")
    person_id: UUID
    at: Moment | None = At


class AssessmentRequest(RequestModel):
    issues: Codes = Field(description="reference.yaml `issue_categories`, at least one.")
    strengths: Items = Field(default_factory=list)
    notes: Note | None = None
    at: Moment | None = At


class AtRequest(RequestModel):
    at: Moment | None = At


class NoteRequest(RequestModel):
    note: Note = Given
    at: Moment | None = At


class EvaluationRequest(RequestModel):
    outcome: Code = Field(description="close or replan")
    note: Note | None = None
    work_outcomes: Codes = Field(
        default_factory=list, description="into_work and/or increased_income, if found"
    )
    at: Moment | None = At


class ResourceGapRequest(RequestModel):
    gap: Note = Given
    meeting_id: UUID | None = Field(None, description="The meeting where it was found, if any.")
    at: Moment | None = At


class ClosureRequest(RequestModel):
    reason: Code = Field(description="reference.yaml `closure_reasons`.")
    follow_up_until: Day | None = None
    note: Note | None = None
    at: Moment | None = At


class ReasonRequest(RequestModel):
    reason: Note = Given
    at: Moment | None = At


class EmergencyRequest(RequestModel):
    kind: Code = Field(description="food, shelter, loan or other")
    note: Note | None = None
    at: Moment | None = At


class ShareRequest(RequestModel):
    categories: Codes
    note: Note | None = None
    at: Moment | None = At


class PlanResponse(BaseModel):
    version: int
    status: str
    goals: list[str]
    services: list[dict[str, Any]]
    monitoring_dates: list[date]
    period_from: date
    period_until: date
    drafted_at: datetime
    discussed_in: list[UUID]
    approved_in: UUID | None
    approved_at: datetime | None
    monitoring: list[dict[str, Any]]
    outcome: str | None


class AssessmentResponse(BaseModel):
    number: int
    at: datetime
    issues: list[str]
    strengths: list[str]
    notes: str | None


class CaseResponse(BaseModel):
    id: UUID
    # The person as merged now (the survivor), and the duplicate's id it was opened under.
    person_id: UUID
    recorded_under: UUID | None
    agency: str
    consultation_id: UUID
    opened_at: datetime
    status: str
    closure_reason: str | None
    follow_up_until: date | None
    assessments: int
    assessment_records: list[AssessmentResponse]
    plans: list[PlanResponse]
    resource_gaps: list[dict[str, Any]]
    follow_ups: int
    emergency_support: list[dict[str, Any]]
    allowed: list[str]

    @classmethod
    def of(cls, c: SupportCase, person: Named) -> CaseResponse:
        assert person.person_id is not None, "a case is always a person's"
        return cls(
            id=c.id,
            person_id=person.person_id,
            recorded_under=person.recorded_under,
            agency=c.agency,
            consultation_id=c.consultation_id,
            opened_at=c.opened_at,
            status="closed" if c.closed else "open",
            closure_reason=c.closure_reason,
            follow_up_until=c.follow_up_until,
            assessments=len(c.assessments),
            assessment_records=[
                AssessmentResponse(
                    number=a.number, at=a.at, issues=a.issues, strengths=a.strengths, notes=a.notes
                )
                for a in c.assessments
            ],
            plans=[
                PlanResponse(
                    version=p.version,
                    status=p.status,
                    goals=p.goals,
                    services=p.services,
                    monitoring_dates=p.monitoring_dates,
                    period_from=p.period_from,
                    period_until=p.period_until,
                    drafted_at=p.drafted_at,
                    discussed_in=p.discussed_in,
                    approved_in=p.approved_in,
                    approved_at=p.approved_at,
                    monitoring=[{"at": at, "note": note} for at, note in p.monitoring],
                    outcome=p.outcome,
                )
                for p in c.plans
            ],
            resource_gaps=[
                {"gap_id": g.gap_id, "gap": g.gap, "at": g.at, "meeting_id": g.meeting_id}
                for g in c.gaps
            ],
            follow_ups=len(c.follow_ups),
            emergency_support=[{"at": at, "kind": kind} for at, kind in c.emergencies],
            allowed=list(c.moves()),
        )


class MeetingResponse(BaseModel):
    id: UUID
    kind: str
    organiser: str
    scheduled_for: datetime
    person_id: UUID | None
    recorded_under: UUID | None
    case_ids: list[UUID]
    members: list[dict[str, Any]]
    held_at: datetime | None
    attendees: list[dict[str, str]]
    person_attended: bool
    conclusions: list[str]
    plans_discussed: list[dict[str, Any]]
    resource_gaps: list[dict[str, Any]]
    items_shared: int
    allowed: list[str]

    @classmethod
    def of(cls, m: Meeting, person: Named) -> MeetingResponse:
        return cls(
            id=m.id,
            kind=m.kind,
            organiser=m.agency,
            scheduled_for=m.scheduled_for,
            person_id=person.person_id,
            recorded_under=person.recorded_under,
            case_ids=m.case_ids,
            members=m.members,
            held_at=m.held_at,
            attendees=m.attendees,
            person_attended=m.person_attended,
            conclusions=m.conclusions,
            plans_discussed=m.plans_discussed,
            resource_gaps=m.resource_gaps,
            items_shared=len(m.shared),
            allowed=list(m.moves()),
        )


class BasisResponse(BaseModel):
    basis: str
    basis_id: str | None


class SharedItemResponse(BaseModel):
    item_id: UUID
    shared_by: str
    at: datetime
    note: str | None
    categories: dict[str, BasisResponse]

    @classmethod
    def of(cls, item: SharedItem) -> SharedItemResponse:
        return cls(
            item_id=item.item_id,
            shared_by=item.agency,
            at=item.at,
            note=item.note,
            categories={
                c: BasisResponse(basis=a.basis, basis_id=a.basis_id) for c, a in item.bases.items()
            },
        )


class ApplicationResponse(BaseModel):
    consultation_id: UUID
    agency: str
    received_at: datetime

    @classmethod
    def of(cls, a: KnownApplication) -> ApplicationResponse:
        return cls(consultation_id=a.consultation_id, agency=a.agency, received_at=a.received_at)


class PreviewBasis(BaseModel):
    """A member's view of one category of the item: the basis, or why there is none."""

    basis: str | None
    basis_id: str | None
    denied: str | None

    @classmethod
    def of(cls, decision: disclosure.Decision) -> PreviewBasis:
        if isinstance(decision, disclosure.Allow):
            return cls(basis=decision.basis, basis_id=decision.basis_id, denied=None)
        return cls(basis=None, basis_id=None, denied=decision.reason)


class MemberPreviewResponse(BaseModel):
    agency: str
    valid_from: datetime
    valid_until: datetime
    active: bool
    categories: dict[str, PreviewBasis]

    @classmethod
    def of(cls, m: MemberPreview) -> MemberPreviewResponse:
        return cls(
            agency=m.agency,
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            active=m.active,
            categories={c: PreviewBasis.of(d) for c, d in m.decisions.items()},
        )


class DeclarationResponse(BaseModel):
    id: UUID
    person_id: UUID
    recorded_under: UUID | None
    declared_by: str
    staff_id: str
    recipients: list[str]
    categories: list[str]
    reason: str
    valid_from: datetime
    valid_until: datetime
    flagged_for_review: bool

    @classmethod
    def of(cls, d: VitalInterestDeclaration, person: Named) -> DeclarationResponse:
        assert person.person_id is not None, "a declaration is always about a person"
        return cls(
            id=d.id,
            person_id=person.person_id,
            recorded_under=person.recorded_under,
            declared_by=d.agency,
            staff_id=d.staff_id,
            recipients=d.recipients,
            categories=d.categories,
            reason=d.reason,
            valid_from=d.valid_from,
            valid_until=d.valid_until,
            flagged_for_review=d.flagged_for_review,
        )


class DisclosureResponse(BaseModel):
    person_id: UUID
    agency: str
    at: datetime | None
    categories: dict[str, dict[str, str | None]]


def _json(value: Any) -> Any:
    return to_jsonable_python(value)


def case_document(case: SupportCase, person: Named, reading: Reading) -> dict[str, Any]:
    """The case as ``reading`` allows: assessments' issues each under its own category, their
    strengths and notes under consultation, emergency support under welfare_benefit."""
    document: dict[str, Any] = _json(CaseResponse.of(case, person))
    shown = reading.shown
    for record in document["assessment_records"]:
        record["issues"] = [
            i for i in record["issues"] if CATEGORY_OF.get(f"issue.{i}", CONSULTATION) in shown
        ]
        if CONSULTATION not in shown:
            record["strengths"], record["notes"] = [], None
    if WELFARE_BENEFIT not in shown:
        document["emergency_support"] = []
    document["bases"] = bases_map(shown)
    document["withheld"] = withheld_list(reading.withheld)
    return document


def meeting_document(meeting: Meeting, person: Named, reading: Reading) -> dict[str, Any]:
    """A meeting on one person as ``reading`` allows: without a basis for its plan, who met
    when, not what was concluded or discussed."""
    document: dict[str, Any] = _json(MeetingResponse.of(meeting, person))
    if PLAN not in reading.shown:
        document["conclusions"], document["plans_discussed"] = [], []
        document["resource_gaps"] = []
    document["bases"] = bases_map(reading.shown)
    document["withheld"] = withheld_list(reading.withheld)
    return document


def cases_reviewed(meeting: Meeting) -> Iterator[UUID]:
    """The cases a regular meeting is about: those scheduled, discussed and whose gaps it
    reviewed (a gap may come from any case of the municipality)."""
    yield from meeting.case_ids
    for item in (*meeting.plans_discussed, *meeting.resource_gaps):
        yield UUID(str(item["case_id"]))


@dataclass(frozen=True)
class CasesShown:
    """Of the cases a regular meeting reviews, those the reader has a basis for (by id), each
    as a read of its person, and why the others were withheld."""

    allowed: frozenset[str]
    persons: tuple[Disclosure, ...]
    withheld: dict[str, str]

    @classmethod
    def of(
        cls, readings: Mapping[UUID, CaseReading], organiser: str, view: dict[str, str]
    ) -> CasesShown:
        allowed = frozenset(str(c) for c, r in readings.items() if PLAN in r.reading.shown)
        persons = tuple(
            Disclosure(
                None,
                r.reading.shown,
                person_id=str(r.person_id),
                disclosed_by=frozenset({organiser}),
                view=view,
            )
            for c, r in readings.items()
            if str(c) in allowed
        )
        # One reason stands for every case withheld: naming each would name its person's case.
        reasons = [
            r.reading.withheld.get(PLAN, "no basis")
            for r in readings.values()
            if PLAN not in r.reading.shown
        ]
        withheld = {PLAN: reasons[0]} if reasons else {}
        return cls(allowed, persons, withheld)

    def keep(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [item for item in items if str(item["case_id"]) in self.allowed]

    def read(self, document: Any, organiser: str, view: dict[str, str]) -> Disclosure:
        return Disclosure(
            document, {}, disclosed_by=frozenset({organiser}), view=view, also=self.persons
        )


def regular_meeting_read(meeting: Meeting, readings: Mapping[UUID, CaseReading]) -> Disclosure:
    """A regular meeting as the reader may see it: each case's part (its id, the plan
    discussed, its gaps) only where the reader has a basis for that case's person, recorded as
    a read of that person; the conclusions, which may speak of any of them, only where it has
    one for every person reviewed."""
    view = {"view": "meeting", "meeting_id": str(meeting.id)}
    cases = CasesShown.of(readings, meeting.agency, view)
    document: dict[str, Any] = _json(MeetingResponse.of(meeting, Named(None, None)))
    document["case_ids"] = [c for c in document["case_ids"] if c in cases.allowed]
    document["plans_discussed"] = cases.keep(document["plans_discussed"])
    document["resource_gaps"] = cases.keep(document["resource_gaps"])
    if cases.withheld:
        document["conclusions"] = []
    document["bases"] = {}
    document["withheld"] = withheld_list(cases.withheld)
    return cases.read(document, meeting.agency, view)


def _about(person_id: UUID | None, document: Any, shown: Shown, **kept: Any) -> Disclosure:
    return Disclosure(
        document,
        shown,
        person_id=str(person_id) if person_id else None,
        about_person=True,
        **kept,
    )


def _read(
    kind: str,
    record: SupportCase | Meeting,
    person: Named,
    document: dict[str, Any],
    reading: Reading,
) -> Disclosure:
    """A case or meeting as a read of its person, as merged now: its holder's or organiser's
    record."""
    return _about(
        person.person_id,
        document,
        reading.shown,
        disclosed_by=frozenset({record.agency}),
        withheld=reading.withheld,
        view={"view": kind, f"{kind}_id": str(record.id)},
    )


def build_router(
    meetings: MeetingApplication,
    feed: ViewStore,
    disclosures: Disclosures,
) -> APIRouter:
    router = APIRouter(tags=["meeting"])
    Caller = Depends(authenticated_staff)
    Reading_ = disclosures.dependency()
    facts = FeedFacts(feed)

    def case_shown(reader: Reader, case: SupportCase) -> Disclosure:
        reading = meetings.case_reading(reader.staff, facts, case)
        if PLAN not in reading.shown:
            raise Forbidden(reading.withheld.get(PLAN, "no basis to read this case"))
        person = named(facts, case.person_id)
        return _read("case", case, person, case_document(case, person, reading), reading)

    def meeting_shown(reader: Reader, meeting: Meeting) -> Disclosure:
        if meeting.person_id is None:
            reviewed = cases_reviewed(meeting)
            readings = meetings.case_readings(reader.staff, facts, meeting.agency, reviewed)
            return regular_meeting_read(meeting, readings)
        reading = meetings.meeting_reading(reader.staff, facts, meeting)
        person = named(facts, meeting.person_id)
        return _read(
            "meeting", meeting, person, meeting_document(meeting, person, reading), reading
        )

    def case_reply(reader: Reader, case_id: UUID, status_code: int = 200) -> Response:
        case = meetings.case(case_id)
        reader.about(case.person_id)
        return reader.answer(case_shown(reader, case), status_code=status_code, command=True)

    def meeting_reply(reader: Reader, meeting_id: UUID, status_code: int = 200) -> Response:
        meeting = meetings.meeting(meeting_id)
        reader.about(meeting.person_id)
        shown = meeting_shown(reader, meeting)
        return reader.answer(shown, status_code=status_code, command=True)

    @router.post("/cases", status_code=201, response_model=CaseResponse)
    def open_case(body: OpenCaseRequest, reader: Reader = Reading_) -> Response:
        reader.about(body.person_id)
        case_id = meetings.open_case(
            reader.staff, facts, body.consultation_id, body.person_id, body.at
        )
        return case_reply(reader, case_id, 201)

    @router.get("/cases", response_model=list[CaseResponse])
    def cases(
        response: Response,
        status: Literal["open", "closed"] | None = None,
        asked: Page = Depends(page),
        reader: Reader = Reading_,
    ) -> Response:
        """The caller's agency's cases, oldest first, a page at a time; ``status`` keeps the
        open or closed ones."""
        closed = None if status is None else status == "closed"
        held = sorted(meetings.cases_held(reader.staff, closed), key=_case_order)
        rows = after_cursor(held, _case_order, asked)
        page_of = respond(rows, _case_order, asked, reader.request, response)
        return reader.answer([case_shown(reader, c) for c in page_of], headers=link_of(response))

    @router.get("/persons/{person_id}/case", response_model=CaseResponse)
    def case_of_person(person_id: UUID, reader: Reader = Reading_) -> Response:
        """The person's case (one per person, reopened rather than duplicated), or 404."""
        case = meetings.case_of_person(reader.staff, facts, person_id)
        return reader.answer(case_shown(reader, case))

    @router.get("/persons/{person_id}/applications", response_model=list[ApplicationResponse])
    def applications(person_id: UUID, reader: Reader = Reading_) -> Response:
        """The person's applications (利用申込) a case may be opened from, for the office."""
        found = meetings.applications(reader.staff, facts, person_id)
        document = [_json(ApplicationResponse.of(a)) for a in found]
        shown: Shown = {CONSULTATION: (OWN_RECORD, None)} if found else {}
        agencies = frozenset(a.agency for a in found)
        return reader.answer(_about(person_id, document, shown, disclosed_by=agencies))

    @router.get("/cases/{case_id}", response_model=CaseResponse)
    def get_case(case_id: UUID, reader: Reader = Reading_) -> Response:
        case = meetings.readable_case(reader.staff, case_id)
        reader.about(case.person_id)
        return reader.answer(case_shown(reader, case))

    @router.post("/cases/{case_id}/assessments", status_code=201, response_model=CaseResponse)
    def record_assessment(
        case_id: UUID, body: AssessmentRequest, reader: Reader = Reading_
    ) -> Response:
        meetings.record_assessment(
            reader.staff, case_id, body.issues, body.strengths, body.notes, body.at
        )
        return case_reply(reader, case_id, 201)

    @router.post("/cases/{case_id}/plans", status_code=201, response_model=CaseResponse)
    def draft_plan(case_id: UUID, body: DraftPlan, reader: Reader = Reading_) -> Response:
        meetings.draft_plan(reader.staff, case_id, body)
        return case_reply(reader, case_id, 201)

    @router.post("/cases/{case_id}/approval", response_model=CaseResponse)
    def approve_plan(case_id: UUID, body: AtRequest, reader: Reader = Reading_) -> Response:
        """支援決定: an approver of the municipality (an agency that approves plans)."""
        meetings.approve_plan(reader.staff, case_id, body.at)
        return case_reply(reader, case_id)

    @router.post("/cases/{case_id}/monitoring", status_code=201, response_model=CaseResponse)
    def record_monitoring(case_id: UUID, body: NoteRequest, reader: Reader = Reading_) -> Response:
        meetings.record_monitoring(reader.staff, case_id, body.note, body.at)
        return case_reply(reader, case_id, 201)

    @router.post("/cases/{case_id}/evaluation", response_model=CaseResponse)
    def evaluate_plan(
        case_id: UUID, body: EvaluationRequest, reader: Reader = Reading_
    ) -> Response:
        meetings.evaluate_plan(
            reader.staff, case_id, body.outcome, body.note, body.at, body.work_outcomes
        )
        return case_reply(reader, case_id)

    @router.post("/cases/{case_id}/resource-gaps", status_code=201, response_model=CaseResponse)
    def note_resource_gap(
        case_id: UUID, body: ResourceGapRequest, reader: Reader = Reading_
    ) -> Response:
        meetings.note_resource_gap(reader.staff, case_id, body.gap, body.meeting_id, body.at)
        return case_reply(reader, case_id, 201)

    @router.post("/cases/{case_id}/closure", response_model=CaseResponse)
    def close_case(case_id: UUID, body: ClosureRequest, reader: Reader = Reading_) -> Response:
        meetings.close_case(
            reader.staff, case_id, body.reason, body.follow_up_until, body.note, body.at
        )
        return case_reply(reader, case_id)

    @router.post("/cases/{case_id}/reopening", response_model=CaseResponse)
    def reopen_case(case_id: UUID, body: ReasonRequest, reader: Reader = Reading_) -> Response:
        meetings.reopen_case(reader.staff, case_id, body.reason, body.at)
        return case_reply(reader, case_id)

    @router.post("/cases/{case_id}/follow-ups", status_code=201, response_model=CaseResponse)
    def record_follow_up(case_id: UUID, body: NoteRequest, reader: Reader = Reading_) -> Response:
        meetings.record_follow_up(reader.staff, case_id, body.note, body.at)
        return case_reply(reader, case_id, 201)

    @router.post("/cases/{case_id}/emergency-support", status_code=201, response_model=CaseResponse)
    def record_emergency_support(
        case_id: UUID, body: EmergencyRequest, reader: Reader = Reading_
    ) -> Response:
        meetings.record_emergency_support(reader.staff, case_id, body.kind, body.note, body.at)
        return case_reply(reader, case_id, 201)

    @router.post("/meetings", status_code=201, response_model=MeetingResponse)
    def schedule_meeting(body: ScheduleMeeting, reader: Reader = Reading_) -> Response:
        return meeting_reply(reader, meetings.schedule_meeting(reader.staff, facts, body), 201)

    @router.get("/meetings", response_model=list[MeetingResponse])
    def organised(
        response: Response,
        asked: Page = Depends(page),
        reader: Reader = Reading_,
    ) -> Response:
        """The meetings the caller's agency organises, the latest scheduled first, a page at a
        time."""
        latest_first = sorted(
            meetings.meetings_organised(reader.staff), key=_meeting_order, reverse=True
        )
        found = after_cursor(latest_first, _meeting_order, asked, descending=True)
        shown = respond(found, _meeting_order, asked, reader.request, response)
        return reader.answer([meeting_shown(reader, m) for m in shown], headers=link_of(response))

    @router.get("/persons/{person_id}/meetings", response_model=list[MeetingResponse])
    def meetings_of_person(person_id: UUID, reader: Reader = Reading_) -> Response:
        """The 支援会議 on the person and the coordination meetings on their case the caller
        may read, in the order they were scheduled for."""
        found = meetings.meetings_of_person(reader.staff, facts, person_id)
        return reader.answer([meeting_shown(reader, m) for m in found])

    @router.get("/meetings/{meeting_id}/resource-gaps", response_model=list[dict[str, Any]])
    def resource_gaps(meeting_id: UUID, reader: Reader = Reading_) -> Response:
        """A regular meeting's gaps: those it reviewed, or before it is held, those noted since
        the last regular meeting."""
        gaps = _json(meetings.resource_gaps_for(reader.staff, meeting_id))
        organiser = meetings.meeting(meeting_id).agency
        reviewed = (UUID(g["case_id"]) for g in gaps)
        readings = meetings.case_readings(reader.staff, facts, organiser, reviewed)
        view = {"view": "resource_gaps", "meeting_id": str(meeting_id)}
        cases = CasesShown.of(readings, organiser, view)
        return reader.answer(cases.read(cases.keep(gaps), organiser, view))

    @router.get("/meetings/{meeting_id}", response_model=MeetingResponse)
    def get_meeting(meeting_id: UUID, reader: Reader = Reading_) -> Response:
        meeting = meetings.readable_meeting(reader.staff, meeting_id)
        reader.about(meeting.person_id)
        return reader.answer(meeting_shown(reader, meeting))

    @router.post("/meetings/{meeting_id}/held", response_model=MeetingResponse)
    def hold_meeting(meeting_id: UUID, body: HoldMeeting, reader: Reader = Reading_) -> Response:
        meetings.hold_meeting(reader.staff, meeting_id, body)
        return meeting_reply(reader, meeting_id)

    @router.post("/meetings/{meeting_id}/information", status_code=201)
    def share_information(
        meeting_id: UUID, body: ShareRequest, staff: Staff = Caller
    ) -> dict[str, UUID]:
        """支援会議: a member shares; tax needs every other member's consent (地方税法第22条)."""
        item_id = meetings.share_information(
            staff, facts, meeting_id, body.categories, body.note, body.at
        )
        return {"item_id": item_id, "meeting_id": meeting_id}

    @router.get(
        "/meetings/{meeting_id}/information/preview", response_model=list[MemberPreviewResponse]
    )
    def preview_share(
        meeting_id: UUID,
        categories: list[str] = Query(description="What would be shared."),
        at: Moment | None = None,
        reader: Reader = Reading_,
    ) -> Response:
        """Before sharing at a 支援会議: refused exactly as the share would be (a tax share
        without every member's consent: 403 naming the law and the members), or each other
        member with what they would see and on what basis. Nothing is shared; the preview
        names who may see what of the person, and is recorded as a read of them."""
        previews = meetings.preview_share(reader.staff, facts, meeting_id, categories, at)
        person = meetings.meeting(meeting_id).person_id
        document = [_json(MemberPreviewResponse.of(p)) for p in previews]
        return reader.answer(_about(person, document, {}, view={"view": "share_preview"}))

    @router.get("/meetings/{meeting_id}/information", response_model=list[SharedItemResponse])
    def information(
        meeting_id: UUID, at: Moment | None = None, reader: Reader = Reading_
    ) -> Response:
        """What the caller's agency may see of what was shared, each category with its basis.

        ``at`` (privacy officers, organisers, supervisors) reads as of a past instant.
        """
        person = meetings.meeting_here(reader.staff, meeting_id).person_id
        reader.about(person)
        items = meetings.information(reader.staff, facts, meeting_id, at)
        shown: Shown = {}
        for item in items:
            for category, allow in item.bases.items():
                if category not in shown or shown[category][0] == OWN_RECORD:
                    shown[category] = (allow.basis, allow.basis_id)
        document = [_json(SharedItemResponse.of(item)) for item in items]
        read = Disclosure(
            document,
            shown,
            person_id=str(person) if person else None,
            disclosed_by=frozenset(item.agency for item in items),
            view={"view": "information", "meeting_id": str(meeting_id), "at": _json(at)},
        )
        return reader.answer(read)

    @router.post("/vital-interests", status_code=201, response_model=DeclarationResponse)
    def declare_vital_interest(body: DeclareVitalInterest, reader: Reader = Reading_) -> Response:
        reader.about(body.person_id)
        declaration_id = meetings.declare_vital_interest(reader.staff, facts, body)
        declaration = meetings.declaration(declaration_id)
        person = named(facts, declaration.person_id)
        document = _json(DeclarationResponse.of(declaration, person))
        shown = _about(person.person_id, document, {}, disclosed_by=frozenset({declaration.agency}))
        return reader.answer(shown, status_code=201, command=True)

    @router.get("/persons/{person_id}/vital-interests", response_model=list[DeclarationResponse])
    def vital_interests(person_id: UUID, reader: Reader = Reading_) -> Response:
        """Every declaration on the person, each flagged for the privacy officer's review; of a
        merged person, those made under any of their records (a duplicate's id: 409 naming the
        survivor)."""
        found = meetings.vital_interests(reader.staff, facts, person_id)
        document = [_json(DeclarationResponse.of(d, named(facts, d.person_id))) for d in found]
        declared = frozenset(d.agency for d in found)
        return reader.answer(_about(person_id, document, {}, disclosed_by=declared))

    @router.get("/persons/{person_id}/disclosure", response_model=DisclosureResponse)
    def disclosure(
        person_id: UUID,
        agency: str | None = None,
        at: Moment | None = None,
        reader: Reader = Reading_,
    ) -> Response:
        """What an agency may see of the person, by what meeting knows, with each basis: no
        field of the person, but who may see which of their categories, so a read of them."""
        staff = reader.staff
        shown = meetings.visibility(staff, facts, person_id, agency, at)
        document = DisclosureResponse(
            person_id=person_id,
            agency=agency or staff.agency,
            at=at,
            categories={
                c: {"purpose": purpose, "basis": a.basis, "basis_id": a.basis_id}
                for c, (purpose, a) in shown.items()
            },
        )
        view = {"view": "disclosure_map", "agency": agency, "at": _json(at)}
        return reader.answer(_about(person_id, _json(document), {}, view=view))

    return router


def _case_order(case: SupportCase) -> Key:
    return (case.opened_at.isoformat(), str(case.id))


def _meeting_order(meeting: Meeting) -> Key:
    return (meeting.scheduled_for.isoformat(), str(meeting.id))
