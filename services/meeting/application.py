"""The meeting application: support cases, meetings and vital-interest declarations.

Each command checks who may act, validates against the reference data, and saves the changed
aggregates (and their index aggregates) in one atomic write. What meeting needs to know about
intake (applications received, the consent ledger) it asks of ``IntakeFacts``, which the feed
fed from intake's events answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder
from pydantic import Field

from contracts import disclosure
from contracts.errors import Conflict, Forbidden, Invalid, NotFound
from contracts.fields import (
    Code,
    Codes,
    Day,
    Flag,
    Items,
    Line,
    ListOf,
    Moment,
    Note,
    Number,
    Reason,
    RequestModel,
)
from contracts.identity import Staff
from contracts.reference import reference
from services.meeting.meeting import (
    ARTICLE9,
    COORDINATION,
    INDIVIDUAL,
    MEETING_PURPOSE,
    REGULAR,
    Meeting,
    check_schedule,
)
from services.meeting.support_case import SupportCase
from services.meeting.vital_interest import VitalInterestDeclaration, check_declaration
from services.platform.calendar import DateAsISO, past_or_now
from services.platform.disclose import Part, Shown, decide_parts
from services.platform.eventstore import TracingApplication
from services.platform.indexes import ListIndex
from services.platform.keys import Erasure
from services.projection.person_facts import CATEGORY_OF

OFFICE_ROLE = "self_reliance_office"
# Who may look at a person's disclosure as of another agency or another instant.
OVERSIGHT_ROLES = ("privacy_officer", "meeting_organiser", "supervisor")
PLAN, CONSULTATION, WELFARE_BENEFIT = "plan", "consultation", "welfare_benefit"
# The purposes a case or meeting is read for by an agency that did not record it.
READ_PURPOSES = ("support_coordination", MEETING_PURPOSE)
A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class Applicant:
    """Who applied (利用申込) with a consultation, and the agency that received it."""

    person_id: UUID
    agency: str


@dataclass(frozen=True)
class MergedPerson:
    """A person as intake's merges (PersonsMerged) make them now: the survivor, and every
    record read as theirs, the survivor's own first."""

    survivor: UUID
    records: tuple[UUID, ...]


@dataclass(frozen=True)
class Named:
    """Whom a record kept under a person's id is about now: the merged person (the survivor,
    whom every read of them answers), and the id it was recorded under while that is a
    duplicate merged into them (else None). An unmerge names it as it was."""

    person_id: UUID | None
    recorded_under: UUID | None


class IntakeFacts(Protocol):
    def applicant(self, consultation_id: UUID) -> Applicant | None:
        """The application (利用申込) that came with this consultation, if known."""

    def knows_person(self, person_id: UUID, municipality: str) -> bool:
        """Whether intake registered the person in ``municipality``."""

    def consents_of(self, person_id: UUID) -> tuple[disclosure.Consent, ...]:
        """The consents recorded under this id (and no other)."""

    def merged(self, person_id: UUID) -> MergedPerson:
        """The person ``person_id`` is part of now, through intake's merges."""


class KnownApplications(IntakeFacts, Protocol):
    def applications_of(self, person_id: UUID) -> list[KnownApplication]:
        """The applications (利用申込) received from the person, oldest first."""

    def erasure(self, person_id: UUID) -> Erasure | None:
        """When and why intake erased the person (PersonErased), if it did."""


@dataclass(frozen=True)
class KnownApplication:
    consultation_id: UUID
    agency: str
    received_at: datetime


# Commands declared once: the bodies of meeting's routes and what the application takes.


class ServiceLine(RequestModel):
    provider: Code = Field(description="The providing agency.")
    program: Code | None = Field(default=None, description="A statutory programme, if any.")
    service_class: Code = Field(description="A–E (seed 003 ch.4).")
    period_from: Day | None = Field(default=None, description="Default: the plan's period.")
    period_until: Day | None = None
    description: Reason | None = None


class DraftPlan(RequestModel):
    goals: Items
    services: ListOf[ServiceLine] = Field(default_factory=list)
    monitoring_dates: ListOf[Day] = Field(default_factory=list)
    period_from: Day
    period_until: Day
    drafted_with_person: Flag = True
    at: Moment | None = Field(
        default=None, description="When it happened (business time); default now."
    )


class Member(RequestModel):
    """A member agency of a 支援会議 and how long its confidentiality basis lasts."""

    agency: Code
    valid_from: Moment | None = Field(default=None, description="Default: the meeting's date.")
    valid_until: Moment


class ScheduleMeeting(RequestModel):
    kind: Code = Field(description="reference.yaml `meeting_kinds`.")
    scheduled_for: Moment
    case_ids: ListOf[UUID] = Field(
        default_factory=list, description="The cases a coordination meeting discusses."
    )
    person_id: UUID | None = Field(default=None, description="The person of a 支援会議.")
    members: ListOf[Member] = Field(
        default_factory=list, description="A 支援会議's members and periods."
    )
    at: Moment | None = Field(
        default=None, description="When it happened (business time); default now."
    )


class Attendee(RequestModel):
    agency: Code
    role: Line = Field(min_length=1, max_length=100)


class HoldMeeting(RequestModel):
    attendees: ListOf[Attendee]
    person_attended: Flag = False
    conclusions: Items = Field(default_factory=list)
    at: Moment | None = Field(
        default=None, description="When it happened (business time); default now."
    )


class DeclareVitalInterest(RequestModel):
    person_id: UUID
    recipients: Codes
    categories: Codes
    reason: Note = Field(min_length=1)
    hours: Number = Field(description="At most 72.")
    at: Moment | None = Field(
        default=None, description="When it happened (business time); default now."
    )


@dataclass(frozen=True)
class SharedItem:
    """One item shared at a 支援会議, as the reader may see it: each category with its basis."""

    item_id: UUID
    agency: str
    at: datetime
    note: str | None
    bases: dict[str, disclosure.Allow]


@dataclass(frozen=True)
class Reading:
    """What an agency may read of a case or meeting now: each category with its basis, the
    rest with the reason."""

    shown: Shown
    withheld: dict[str, str]


@dataclass(frozen=True)
class CaseReading:
    """What an agency may read of one case's part in a regular meeting, and whose it is."""

    person_id: UUID
    reading: Reading


@dataclass(frozen=True)
class MemberPreview:
    """What one member of a 支援会議 would see of an item about to be shared, and why."""

    agency: str
    valid_from: datetime
    valid_until: datetime
    active: bool
    decisions: dict[str, disclosure.Decision]


class MeetingApplication(TracingApplication):
    name = "meeting"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # The support case

    def open_case(
        self,
        staff: Staff,
        facts: IntakeFacts,
        consultation_id: UUID,
        person_id: UUID,
        at: datetime | None = None,
    ) -> UUID:
        self._require_office(staff, "open a support case")
        applicant = facts.applicant(consultation_id)
        # Another municipality's application reads as none at all: its existence is its own.
        if applicant is None or not reference().in_municipality(
            applicant.agency, staff.municipality
        ):
            raise Invalid(
                "consultation_id",
                "application_received",
                f"no application (利用申込) is known for consultation {consultation_id}",
            )
        # Of a merged person, an application made under any of their records is theirs; and
        # their one case may have been opened under any of them.
        records = facts.merged(person_id).records
        if applicant.person_id not in records:
            raise Invalid(
                "person_id", "applicant", f"the application of {consultation_id} is another's"
            )
        existing = next((c for c in map(self._case_of_record, records) if c is not None), None)
        if existing is not None:
            raise Conflict(
                f"the person already has case {existing.id}; a closed case is reopened",
                case_id=str(existing.id),
                allowed=list(existing.moves()),
            )
        case = SupportCase(
            municipality=staff.municipality,
            agency=staff.agency,
            staff_id=staff.staff_id,
            at=past_or_now("at", at),
            person_id=person_id,
            consultation_id=consultation_id,
        )
        self.save(case, self.listed(_agency_cases_key(staff.agency), case.id))
        return case.id

    def applications(
        self, staff: Staff, facts: KnownApplications, person_id: UUID
    ) -> list[KnownApplication]:
        """The person's applications a case may be opened from, for the office that opens it:
        those received in its own municipality; of a merged person, under any of their records
        (a duplicate's id: 409 naming the survivor)."""
        self._require_office(staff, "open a support case")
        # Nothing new is recorded about an erased person: say so before a case is offered.
        erased = facts.erasure(person_id)
        if erased is not None:
            raise erased.refusal()
        found = [a for r in _survivor(facts, person_id).records for a in facts.applications_of(r)]
        return sorted(
            (a for a in found if reference().in_municipality(a.agency, staff.municipality)),
            key=lambda a: (a.received_at, str(a.consultation_id)),
        )

    def case(self, case_id: UUID) -> SupportCase:
        return self.fetch(SupportCase, case_id, "case")

    def readable_case(self, staff: Staff, case_id: UUID) -> SupportCase:
        """A case, to the agency holding it, the approving municipality and privacy officers."""
        case = _here(staff, self.case(case_id), "case")
        if not _reads_case(staff, case):
            raise Forbidden(f"case {case_id} is read by the agency holding it and the approver")
        return case

    def case_of_person(self, staff: Staff, facts: IntakeFacts, person_id: UUID) -> SupportCase:
        """The person's one case (reopened, never duplicated), to whoever may read it.

        Of a merged person, the survivor's own case, else the one opened under a record merged
        into them; a duplicate's id answers with the survivor's (409), as the views do.
        """
        person = _survivor(facts, person_id)
        for case in map(self._case_of_record, person.records):
            if case is not None and case.municipality == staff.municipality:
                return self.readable_case(staff, case.id)
        raise NotFound(f"no support case for person {person_id}")

    def _case_of_record(self, person_id: UUID) -> SupportCase | None:
        """The case opened under this id, if any: one per record."""
        return self.find(SupportCase, SupportCase.create_id(person_id))

    def cases_held(self, staff: Staff, closed: bool | None = None) -> list[SupportCase]:
        """The caller's agency's cases, oldest first; ``closed`` keeps the closed (or open) ones."""
        cases = [self.case(c) for c in self._ids(_agency_cases_key(staff.agency))]
        return [c for c in cases if closed is None or c.closed == closed]

    def held_case(self, staff: Staff, case_id: UUID) -> SupportCase:
        """The case, for a step only the agency holding it takes."""
        case = _here(staff, self.case(case_id), "case")
        if case.agency != staff.agency:
            raise Forbidden(f"the steps of case {case_id} are taken by {case.agency}")
        return case

    def record_assessment(
        self,
        staff: Staff,
        case_id: UUID,
        issues: list[str],
        strengths: list[str],
        notes: str | None,
        at: datetime | None = None,
    ) -> None:
        case = self.held_case(staff, case_id)
        case.record_assessment(_who(staff), past_or_now("at", at), issues, strengths, notes)
        self.save(case)

    def draft_plan(self, staff: Staff, case_id: UUID, command: DraftPlan) -> int:
        case = self.held_case(staff, case_id)
        version = case.draft_plan(
            _who(staff),
            past_or_now("at", command.at),
            goals=[g for g in command.goals if g.strip()],
            services=[
                {
                    "provider": s.provider,
                    "program": s.program,
                    "service_class": s.service_class,
                    "period_from": s.period_from or command.period_from,
                    "period_until": s.period_until or command.period_until,
                    "description": s.description,
                }
                for s in command.services
            ],
            monitoring_dates=command.monitoring_dates,
            period_from=command.period_from,
            period_until=command.period_until,
            drafted_with_person=command.drafted_with_person,
        )
        self.save(case)
        return version

    def approve_plan(self, staff: Staff, case_id: UUID, at: datetime | None = None) -> int:
        """支援決定: always the municipality's judgement, even where the office is outsourced."""
        agency = reference().agency(staff.agency)
        granted = staff.scope("approver") is not None
        if not (granted and agency is not None and agency.approves_plans):
            raise Forbidden(
                "only an approver of an agency that approves plans makes the support decision "
                "(支援決定)",
                allowed_agencies=[
                    a.id
                    for a in reference().agencies.values()
                    if a.approves_plans and a.municipality == staff.municipality
                ],
            )
        case = _here(staff, self.case(case_id), "case")
        version = case.approve(_who(staff), past_or_now("at", at))
        self.save(case)
        return version

    def record_monitoring(
        self, staff: Staff, case_id: UUID, note: str, at: datetime | None = None
    ) -> None:
        case = self.held_case(staff, case_id)
        case.record_monitoring(_who(staff), past_or_now("at", at), note)
        self.save(case)

    def evaluate_plan(
        self,
        staff: Staff,
        case_id: UUID,
        outcome: str,
        note: str | None,
        at: datetime | None = None,
        work_outcomes: Sequence[str] = (),
    ) -> None:
        case = self.held_case(staff, case_id)
        case.evaluate(_who(staff), past_or_now("at", at), outcome, note, work_outcomes)
        self.save(case)

    def note_resource_gap(
        self,
        staff: Staff,
        case_id: UUID,
        gap: str,
        meeting_id: UUID | None,
        at: datetime | None = None,
    ) -> UUID:
        case = self.held_case(staff, case_id)
        if meeting_id is not None:
            self.meeting(meeting_id)
        gap_id = case.note_resource_gap(_who(staff), past_or_now("at", at), gap, meeting_id)
        register = self.index(_gaps_key(case.municipality)) or ListIndex(
            _gaps_key(case.municipality)
        )
        if case.id not in register.ids:
            register.add(case.id)
        self.save(case, register)
        return gap_id

    def close_case(
        self,
        staff: Staff,
        case_id: UUID,
        reason: str,
        follow_up_until: date | None,
        note: str | None,
        at: datetime | None = None,
    ) -> None:
        case = self.held_case(staff, case_id)
        case.close(_who(staff), past_or_now("at", at), reason, follow_up_until, note)
        self.save(case)

    def reopen_case(
        self, staff: Staff, case_id: UUID, reason: str, at: datetime | None = None
    ) -> None:
        case = self.held_case(staff, case_id)
        case.reopen(_who(staff), past_or_now("at", at), _required("reason", reason))
        self.save(case)

    def record_follow_up(
        self, staff: Staff, case_id: UUID, note: str, at: datetime | None = None
    ) -> None:
        case = self.held_case(staff, case_id)
        case.record_follow_up(_who(staff), past_or_now("at", at), _required("note", note))
        self.save(case)

    def record_emergency_support(
        self, staff: Staff, case_id: UUID, kind: str, note: str | None, at: datetime | None = None
    ) -> None:
        case = self.held_case(staff, case_id)
        case.record_emergency_support(_who(staff), past_or_now("at", at), kind, note)
        self.save(case)

    # Meetings

    def schedule_meeting(self, staff: Staff, facts: IntakeFacts, command: ScheduleMeeting) -> UUID:
        self._require_office(staff, "organise a meeting")
        at = past_or_now("at", command.at)
        if command.scheduled_for.tzinfo is None:
            raise Invalid("scheduled_for", "timezone_required", "scheduled_for needs a UTC offset")
        cases = [self.held_case(staff, c) for c in dict.fromkeys(command.case_ids)]
        person_id = cases[0].person_id if command.kind == INDIVIDUAL and cases else None
        if command.kind == ARTICLE9:
            person_id = command.person_id
            if person_id is not None and not facts.knows_person(person_id, staff.municipality):
                raise Invalid("person_id", "known_person", f"no person {person_id} is known")
        members = [
            {
                "agency": m.agency,
                "valid_from": m.valid_from or command.scheduled_for,
                "valid_until": m.valid_until,
            }
            for m in command.members
        ]
        check_schedule(staff.agency, command.kind, person_id, [c.id for c in cases], members)
        meeting = Meeting(
            municipality=staff.municipality,
            agency=staff.agency,
            staff_id=staff.staff_id,
            at=at,
            kind=command.kind,
            scheduled_for=command.scheduled_for,
            person_id=person_id,
            case_ids=[c.id for c in cases],
            members=members,
        )
        key = (
            _meetings_key(person_id)
            if command.kind == ARTICLE9 and person_id is not None
            else _regular_key(staff.municipality)
            if command.kind == REGULAR
            else None
        )
        changed: list[Aggregate] = [meeting, self.listed(_organised_key(staff.agency), meeting.id)]
        if key is not None:
            changed.append(self.listed(key, meeting.id))
        changed += [self.listed(_case_meetings_key(c.id), meeting.id) for c in cases]
        self.save(*changed)
        return meeting.id

    def meeting(self, meeting_id: UUID) -> Meeting:
        return self.fetch(Meeting, meeting_id, "meeting")

    def meeting_here(self, staff: Staff, meeting_id: UUID) -> Meeting:
        """The meeting, if it is of the caller's municipality; another's is not found."""
        return _here(staff, self.meeting(meeting_id), "meeting")

    def readable_meeting(self, staff: Staff, meeting_id: UUID) -> Meeting:
        """A meeting, to its organiser, its members and attendees, and privacy officers."""
        meeting = self.meeting_here(staff, meeting_id)
        if not _reads_meeting(staff, meeting):
            raise Forbidden(f"meeting {meeting_id} is read by its organiser and participants")
        return meeting

    def meetings_organised(self, staff: Staff) -> list[Meeting]:
        """The meetings the caller's agency organises, the latest scheduled first."""
        meetings = [self.meeting(m) for m in self._ids(_organised_key(staff.agency))]
        return sorted(meetings, key=lambda m: m.scheduled_for, reverse=True)

    def meetings_of_person(
        self, staff: Staff, facts: IntakeFacts, person_id: UUID
    ) -> list[Meeting]:
        """The 支援会議 on the person and the coordination meetings on their case that the
        caller may read, in the order they were scheduled for; of a merged person, those on
        every record merged into them too (a duplicate's id: 409 naming the survivor)."""
        ids = [
            meeting
            for record in _survivor(facts, person_id).records
            for key in (_meetings_key(record), _case_meetings_key(SupportCase.create_id(record)))
            for meeting in self._ids(key)
        ]
        meetings = [self.meeting(m) for m in dict.fromkeys(ids)]
        readable = [
            m for m in meetings if m.municipality == staff.municipality and _reads_meeting(staff, m)
        ]
        return sorted(readable, key=lambda m: m.scheduled_for)

    def resource_gaps_for(self, staff: Staff, meeting_id: UUID) -> list[dict[str, Any]]:
        """The gaps a regular meeting reviews: those it listed once held, or, before, those
        noted since the last regular meeting held."""
        meeting = self.readable_meeting(staff, meeting_id)
        if meeting.kind != REGULAR:
            raise NotFound(f"meeting {meeting_id} is not a regular coordination meeting")
        if meeting.held_at is not None:
            return meeting.resource_gaps
        return self._gaps_since_last_regular(meeting, datetime.now(UTC))

    def hold_meeting(self, staff: Staff, meeting_id: UUID, command: HoldMeeting) -> None:
        meeting = self.meeting_here(staff, meeting_id)
        if meeting.agency != staff.agency:
            raise Forbidden(f"meeting {meeting_id} is held by its organiser, {meeting.agency}")
        at = past_or_now("at", command.at)
        changed: list[Aggregate] = [meeting]
        discussed: list[dict[str, Any]] = []
        if meeting.held_at is None and meeting.kind in COORDINATION:
            for case_id in meeting.case_ids:
                case = self.case(case_id)
                version = case.discuss(_who(staff), at, meeting.id)
                if version is not None:
                    discussed.append({"case_id": case_id, "plan_version": version})
                    changed.append(case)
        gaps = (
            self._gaps_since_last_regular(meeting, at)
            if meeting.kind == REGULAR and meeting.held_at is None
            else []
        )
        meeting.hold(
            agency=staff.agency,
            staff_id=staff.staff_id,
            at=at,
            attendees=[{"agency": a.agency, "role": a.role} for a in command.attendees],
            person_attended=command.person_attended,
            conclusions=[c for c in command.conclusions if c.strip()],
            plans_discussed=discussed,
            resource_gaps=gaps,
        )
        self.save(*changed)

    def share_information(
        self,
        staff: Staff,
        facts: IntakeFacts,
        meeting_id: UUID,
        categories: list[str],
        note: str | None,
        at: datetime | None = None,
    ) -> UUID:
        meeting = self.meeting_here(staff, meeting_id)
        item_id = uuid4()
        consents = self._bases(staff, facts, meeting.person_id)[1] if meeting.person_id else ()
        meeting.share(
            agency=staff.agency,
            staff_id=staff.staff_id,
            at=past_or_now("at", at),
            item_id=item_id,
            categories=categories,
            note=note,
            consents=consents,
        )
        self.save(meeting)
        return item_id

    def preview_share(
        self,
        staff: Staff,
        facts: IntakeFacts,
        meeting_id: UUID,
        categories: list[str],
        at: datetime | None = None,
    ) -> list[MemberPreview]:
        """Before sharing: refused as the share would be (tax without every member's consent:
        地方税法第22条), or each other member with what they would see and on what basis."""
        meeting = self.meeting_here(staff, meeting_id)
        moment = past_or_now("at", at)
        _, consents, declarations = (
            self._bases(staff, facts, meeting.person_id) if meeting.person_id else ([], (), ())
        )
        shared = meeting.check_share(staff.agency, moment, categories, consents)
        record = _item_record(meeting, staff.agency, shared, consents, declarations)
        return [
            MemberPreview(
                agency=m.agency,
                valid_from=m.valid_from,
                valid_until=m.valid_until,
                active=m.active(moment),
                decisions={
                    c: disclosure.decide(
                        disclosure.Viewer(m.agency, ""), record, c, MEETING_PURPOSE, moment
                    )
                    for c in shared
                },
            )
            for m in meeting.memberships()
            if m.agency != staff.agency
        ]

    def information(
        self, staff: Staff, facts: IntakeFacts, meeting_id: UUID, at: datetime | None = None
    ) -> list[SharedItem]:
        """What was shared at a 支援会議, as far as ``decide`` lets the caller's agency see it.

        An item is shown whole or not at all: its note speaks of all its categories at once.
        """
        meeting = self.meeting_here(staff, meeting_id)
        if meeting.kind != ARTICLE9 or meeting.person_id is None:
            raise NotFound(f"meeting {meeting_id} is not a 支援会議; nothing is shared there")
        if not meeting.is_member(staff.agency):
            raise Forbidden(f"what is shared at 支援会議 {meeting_id} is for its members")
        moment = self._as_of(staff, at)
        _, consents, declarations = self._bases(staff, facts, meeting.person_id)
        viewer = disclosure.Viewer(staff.agency, staff.staff_id)
        visible = []
        for item in meeting.shared:
            record = _item_record(
                meeting, item["agency"], item["categories"], consents, declarations
            )
            decisions = {
                c: disclosure.decide(viewer, record, c, MEETING_PURPOSE, moment)
                for c in item["categories"]
            }
            bases = {c: d for c, d in decisions.items() if isinstance(d, disclosure.Allow)}
            if len(bases) == len(decisions):
                visible.append(
                    SharedItem(item["item_id"], item["agency"], item["at"], item["note"], bases)
                )
        return visible

    # Vital interest (生命・身体の保護)

    def declare_vital_interest(
        self, staff: Staff, facts: IntakeFacts, command: DeclareVitalInterest
    ) -> UUID:
        if staff.scope("supervisor") is None:
            raise Forbidden(
                "only a supervisor of an agency the reference data names for the role declares "
                f"a vital-interest emergency; {staff.agency!r} is not one",
                agency=staff.agency,
            )
        if not facts.knows_person(command.person_id, staff.municipality):
            raise Invalid("person_id", "known_person", f"no person {command.person_id} is known")
        window = check_declaration(
            command.recipients,
            command.categories,
            command.reason,
            command.hours,
            staff.municipality,
        )
        start = past_or_now("at", command.at)
        declaration = VitalInterestDeclaration(
            municipality=staff.municipality,
            agency=staff.agency,
            staff_id=staff.staff_id,
            at=start,
            person_id=command.person_id,
            recipients=list(dict.fromkeys(command.recipients)),
            categories=list(dict.fromkeys(command.categories)),
            reason=command.reason,
            valid_from=start,
            valid_until=start + window,
        )
        self.save(declaration, self.listed(_declarations_key(command.person_id), declaration.id))
        return declaration.id

    def declaration(self, declaration_id: UUID) -> VitalInterestDeclaration:
        return self.fetch(VitalInterestDeclaration, declaration_id, "declaration")

    def vital_interests(
        self, staff: Staff, facts: IntakeFacts, person_id: UUID
    ) -> list[VitalInterestDeclaration]:
        """The person's declarations in the caller's municipality, to its supervisors and
        privacy officers; one whose role reaches its own agency only reads those its agency
        made or received. Of a merged person, those made under any of their records, oldest
        first (a duplicate's id: 409 naming the survivor)."""
        if not (staff.has_role("supervisor") or staff.has_role("privacy_officer")):
            raise Forbidden("declarations are read by supervisors and privacy officers")
        wide = staff.oversees_municipality("supervisor", "privacy_officer")
        records = _survivor(facts, person_id).records
        found = [d for r in records for d in self._declaration_aggregates(r)]
        return [
            d
            for d in sorted(found, key=lambda d: d.created_on)
            if d.municipality == staff.municipality
            and (wide or staff.agency == d.agency or staff.agency in d.recipients)
        ]

    # Disclosure as meeting knows it

    def visibility(
        self,
        staff: Staff,
        facts: IntakeFacts,
        person_id: UUID,
        agency: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, tuple[str, disclosure.Allow]]:
        """What ``agency`` may see of the person at ``at``, by category: (purpose, basis).

        Built from what meeting knows: what agencies shared at 支援会議, the members of those
        meetings, the consent ledger replica and vital-interest declarations; of a merged
        person, under every record merged into them (a duplicate's id: 409 naming the
        survivor).
        """
        _survivor(facts, person_id)
        viewer_agency = agency or staff.agency
        if viewer_agency != staff.agency and not staff.oversees_municipality(*OVERSIGHT_ROLES):
            raise Forbidden(
                "another agency's view is read by privacy officers, organisers and supervisors "
                "whose role reaches the whole municipality (reference data)"
            )
        if not reference().in_municipality(viewer_agency, staff.municipality):
            raise Invalid("agency", "reference_code", f"unknown agency {viewer_agency!r}")
        moment = self._as_of(staff, at)
        meetings, consents, declarations = self._bases(staff, facts, person_id)
        recorded_by: dict[str, frozenset[str]] = {}
        for meeting in meetings:
            for item in meeting.shared:
                for category in item["categories"]:
                    recorded_by[category] = recorded_by.get(category, frozenset()) | {
                        item["agency"]
                    }
        record = disclosure.PersonRecord(
            person_id=str(person_id),
            recorded_by=recorded_by,
            consents=consents,
            memberships=tuple(m for meeting in meetings for m in meeting.memberships()),
            vital_interests=declarations,
        )
        viewer = disclosure.Viewer(viewer_agency, staff.staff_id)
        shown: dict[str, tuple[str, disclosure.Allow]] = {}
        for purpose in disclosure.PURPOSES:
            for category, allow in disclosure.visible_categories(
                viewer, record, purpose, moment
            ).items():
                shown.setdefault(category, (purpose, allow))
        return shown

    def case_reading(self, staff: Staff, facts: IntakeFacts, case: SupportCase) -> Reading:
        """What ``staff``'s agency may read of the case now: all of it, its own record, to the
        agency holding it; to any other (the approving municipality, a privacy officer), each
        category ``decide`` allows on what meeting knows of the person (consents, 支援会議
        memberships, vital-interest declarations)."""
        parts = [Part(c, frozenset({case.agency}), {}) for c in case_categories(case)]
        return self._decided(staff, facts, case.person_id, parts)

    def meeting_reading(self, staff: Staff, facts: IntakeFacts, meeting: Meeting) -> Reading:
        """What ``staff``'s agency may read of a meeting on one person (``plan``): the
        organiser's own record; to a member or attendee, on a basis for that person."""
        assert meeting.person_id is not None, "a regular meeting is read case by case"
        parts = [Part(PLAN, frozenset({meeting.agency}), {})]
        return self._decided(staff, facts, meeting.person_id, parts)

    def case_readings(
        self, staff: Staff, facts: IntakeFacts, organiser: str, case_ids: Iterable[UUID]
    ) -> dict[UUID, CaseReading]:
        """What ``staff``'s agency may read of each case's part in a regular meeting (the plan
        it discussed, the gaps it reviewed: ``plan``), decided on that case's person: a regular
        meeting reviews several persons, and taking part in it is no basis for any of them."""
        readings = {}
        for case_id in dict.fromkeys(case_ids):
            case = self.case(case_id)
            parts = [Part(PLAN, frozenset({organiser, case.agency}), {})]
            reading = self._decided(staff, facts, case.person_id, parts)
            readings[case_id] = CaseReading(case.person_id, reading)
        return readings

    def _decided(
        self, staff: Staff, facts: IntakeFacts, person_id: UUID, parts: list[Part]
    ) -> Reading:
        meetings, consents, declarations = self._bases(staff, facts, person_id)
        record = disclosure.PersonRecord(
            person_id=str(person_id),
            recorded_by={},
            consents=consents,
            memberships=tuple(m for meeting in meetings for m in meeting.memberships()),
            vital_interests=declarations,
        )
        viewer = disclosure.Viewer(staff.agency, staff.staff_id)
        decided = decide_parts(viewer, record, parts, READ_PURPOSES, datetime.now(UTC))
        return Reading(decided.shown, decided.withheld)

    def _bases(
        self, staff: Staff, facts: IntakeFacts, person_id: UUID
    ) -> tuple[list[Meeting], tuple[disclosure.Consent, ...], tuple[disclosure.VitalInterest, ...]]:
        """The 支援会議, consents and declarations ``decide`` weighs for the person: of a merged
        person, those recorded under every record merged together, each consent read as
        ``person_id``'s. A consent given under a duplicate's id was given by this same human
        (``services.projection.merges.United`` gives the reasoning): it answers only for its
        own scope, and an unmerge ends that at once."""
        records = facts.merged(person_id).records
        consents = tuple(
            replace(c, person_id=str(person_id)) for r in records for c in facts.consents_of(r)
        )
        return (
            [m for r in records for m in self._article9_meetings(staff, r)],
            consents,
            tuple(d for r in records for d in self._declarations_of(r)),
        )

    def _article9_meetings(self, staff: Staff, person_id: UUID) -> list[Meeting]:
        meetings = (self.meeting(m) for m in self._ids(_meetings_key(person_id)))
        return [m for m in meetings if m.municipality == staff.municipality]

    # Plumbing

    def _as_of(self, staff: Staff, at: datetime | None) -> datetime:
        """Now, or a past instant for those who oversee (a replay as of a meeting's date)."""
        if at is None:
            return datetime.now(UTC)
        if not _oversees(staff):
            raise Forbidden("reading as of another instant is for privacy officers and organisers")
        if at.tzinfo is None:
            raise Invalid("at", "timezone_required", "at needs a UTC offset")
        return at

    def _gaps_since_last_regular(self, meeting: Meeting, at: datetime) -> list[dict[str, Any]]:
        """Resource gaps noted since the last regular meeting held, up to ``at``."""
        previous = [
            m.held_at
            for m in (self.meeting(i) for i in self._ids(_regular_key(meeting.municipality)))
            if m.held_at is not None and m.id != meeting.id and m.held_at <= at
        ]
        since = max(previous, default=datetime.min.replace(tzinfo=UTC))
        return [
            {"case_id": case.id, "gap_id": g.gap_id, "gap": g.gap, "at": g.at}
            for case in (self.case(c) for c in self._ids(_gaps_key(meeting.municipality)))
            for g in case.gaps
            if since < g.at <= at
        ]

    def _declaration_aggregates(self, person_id: UUID) -> list[VitalInterestDeclaration]:
        return [self.declaration(d) for d in self._ids(_declarations_key(person_id))]

    def _declarations_of(self, person_id: UUID) -> tuple[disclosure.VitalInterest, ...]:
        return tuple(d.as_policy() for d in self._declaration_aggregates(person_id))

    def _require_office(self, staff: Staff, action: str) -> None:
        agency = reference().agency(staff.agency)
        if agency is None or agency.role != OFFICE_ROLE:
            raise Forbidden(
                f"only a self-reliance support office may {action}",
                allowed_agencies=list(
                    reference().agencies_with_role(OFFICE_ROLE, staff.municipality)
                ),
            )

    def _ids(self, key: str) -> list[UUID]:
        index = self.index(key)
        return list(index.ids) if index else []


def _survivor(facts: IntakeFacts, person_id: UUID) -> MergedPerson:
    """The merged person ``person_id`` is the survivor of; 409 naming the survivor for a
    duplicate, which has no case history of its own while merged."""
    person = facts.merged(person_id)
    if person.survivor != person_id:
        raise Conflict(
            f"person {person_id} is merged into {person.survivor}: read that person",
            survivor_id=str(person.survivor),
        )
    return person


def named(facts: IntakeFacts, recorded: UUID | None) -> Named:
    """How an answer names the person a record was kept under (``Named``)."""
    person = facts.merged(recorded).survivor if recorded is not None else None
    return Named(person, recorded if person != recorded else None)


def _who(staff: Staff) -> tuple[str, str]:
    return staff.agency, staff.staff_id


def _item_record(
    meeting: Meeting,
    sharer: str,
    categories: list[str],
    consents: tuple[disclosure.Consent, ...],
    declarations: tuple[disclosure.VitalInterest, ...],
) -> disclosure.PersonRecord:
    """One shared item as the policy reads it: recorded by its sharer, under this meeting."""
    return disclosure.PersonRecord(
        person_id=str(meeting.person_id),
        recorded_by={c: frozenset({sharer}) for c in categories},
        consents=consents,
        memberships=meeting.memberships(),
        vital_interests=declarations,
    )


def case_categories(case: SupportCase) -> list[str]:
    """The data categories a case's record holds: its plan, what each assessment found (each
    issue under its own category, CATEGORY_OF), its emergency support."""
    found = [PLAN]
    for assessment in case.assessments:
        if assessment.strengths or assessment.notes:
            found.append(CONSULTATION)
        found += [CATEGORY_OF.get(f"issue.{issue}", CONSULTATION) for issue in assessment.issues]
    if case.emergencies:
        found.append(WELFARE_BENEFIT)
    return list(dict.fromkeys(found))


def _here(staff: Staff, found: A, kind: str) -> A:
    """``found``, if it belongs to the caller's municipality: another's is not found."""
    if getattr(found, "municipality", None) != staff.municipality:
        raise NotFound(f"no {kind} {found.id} in {staff.municipality}")
    return found


def _reads_case(staff: Staff, case: SupportCase) -> bool:
    agency = reference().agency(staff.agency)
    return (
        case.agency == staff.agency
        or (agency is not None and agency.approves_plans)
        or staff.oversees_municipality("privacy_officer")
    )


def _reads_meeting(staff: Staff, meeting: Meeting) -> bool:
    return (
        meeting.agency == staff.agency
        or meeting.is_member(staff.agency)
        or any(a["agency"] == staff.agency for a in meeting.attendees)
        or staff.oversees_municipality("privacy_officer")
    )


def _oversees(staff: Staff) -> bool:
    return any(staff.has_role(role) for role in OVERSIGHT_ROLES)


def _required(field: str, text: str) -> str:
    if not text.strip():
        raise Invalid(field, "not_empty", f"{field} cannot be blank")
    return text


def _gaps_key(municipality: str) -> str:
    return f"meeting:resource_gaps:{municipality}"


def _regular_key(municipality: str) -> str:
    return f"meeting:regular:{municipality}"


def _meetings_key(person_id: UUID) -> str:
    return f"meeting:article9:{person_id}"


def _declarations_key(person_id: UUID) -> str:
    return f"meeting:vital_interest:{person_id}"


def _agency_cases_key(agency: str) -> str:
    return f"meeting:cases:{agency}"


def _organised_key(agency: str) -> str:
    return f"meeting:organised:{agency}"


def _case_meetings_key(case_id: UUID) -> str:
    return f"meeting:case_meetings:{case_id}"
