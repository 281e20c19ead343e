"""Meeting's domain events as integration events (what other services may rely on).

A plan's discussion at a meeting is published inside MeetingHeld (``plans_discussed``), not on
its own; index aggregates are meeting's own lookups and are not published.
"""

from __future__ import annotations

from typing import Any, Protocol, cast
from uuid import UUID

from contracts import events as ev
from services.meeting.meeting import Meeting
from services.meeting.support_case import SupportCase
from services.meeting.vital_interest import VitalInterestDeclaration
from services.platform.relay import translator

SOURCE = "/tsunagu/meeting"


def _act(e: Any) -> dict[str, Any]:
    return {"agency": e.agency, "staff_id": e.staff_id, "at": e.at}


def _case(e: Any) -> dict[str, Any]:
    return {**_act(e), "case_id": e.originator_id, "person_id": e.person_id}


def _translate(e: object) -> tuple[ev.MeetingEvent, str, UUID | None] | None:
    data: ev.MeetingEvent
    match e:
        case SupportCase.Opened():
            data = ev.CaseOpened(**_case(e), consultation_id=e.consultation_id)
        case SupportCase.AssessmentRecorded():
            data = ev.AssessmentRecorded(
                **_case(e),
                assessment_number=e.number,
                issues=e.issues,
                strengths=e.strengths,
                notes=e.notes,
            )
        case SupportCase.PlanDrafted():
            data = ev.PlanDrafted(
                **_case(e),
                plan_version=e.version,
                goals=e.goals,
                services=[ev.PlanService(**s) for s in e.services],
                monitoring_dates=e.monitoring_dates,
                period_from=e.period_from,
                period_until=e.period_until,
                drafted_with_person=e.drafted_with_person,
            )
        case SupportCase.PlanApproved():
            data = ev.PlanApproved(**_case(e), plan_version=e.version, meeting_id=e.meeting_id)
        case SupportCase.MonitoringRecorded():
            data = ev.MonitoringRecorded(**_case(e), plan_version=e.version, note=e.note)
        case SupportCase.PlanEvaluated():
            data = ev.PlanEvaluated(
                **_case(e),
                plan_version=e.version,
                outcome=e.outcome,
                note=e.note,
                work_outcomes=e.work_outcomes,
            )
        case SupportCase.ResourceGapNoted():
            data = ev.ResourceGapNoted(
                **_case(e), gap_id=e.gap_id, gap=e.gap, meeting_id=e.meeting_id
            )
        case SupportCase.Closed():
            data = ev.CaseClosed(
                **_case(e), reason=e.reason, follow_up_until=e.follow_up_until, note=e.note
            )
        case SupportCase.Reopened():
            data = ev.CaseReopened(**_case(e), reason=e.reason)
        case SupportCase.FollowUpRecorded():
            data = ev.FollowUpRecorded(**_case(e), note=e.note)
        case SupportCase.EmergencySupportRecorded():
            data = ev.EmergencySupportRecorded(**_case(e), kind=e.kind, note=e.note)
        case Meeting.Scheduled():
            data = ev.MeetingScheduled(
                **_act(e),
                meeting_id=e.originator_id,
                kind=e.kind,
                person_id=e.person_id,
                scheduled_for=e.scheduled_for,
                case_ids=e.case_ids,
                members=[ev.Membership(**m) for m in e.members],
            )
        case Meeting.Held():
            data = ev.MeetingHeld(
                **_act(e),
                meeting_id=e.originator_id,
                kind=e.kind,
                person_id=e.person_id,
                attendees=[ev.Attendee(**a) for a in e.attendees],
                person_attended=e.person_attended,
                conclusions=e.conclusions,
                plans_discussed=[ev.DiscussedPlan(**p) for p in e.plans_discussed],
                resource_gaps=[ev.ResourceGap(**g) for g in e.resource_gaps],
            )
        case Meeting.InformationShared():
            data = ev.InformationShared(
                **_act(e),
                meeting_id=e.originator_id,
                item_id=e.item_id,
                person_id=e.person_id,
                categories=e.categories,
                note=e.note,
            )
        case VitalInterestDeclaration.Declared():
            data = ev.VitalInterestDeclared(
                **_act(e),
                declaration_id=e.originator_id,
                person_id=e.person_id,
                recipients=e.recipients,
                categories=e.categories,
                reason=e.reason,
                valid_from=e.valid_from,
                valid_until=e.valid_until,
                flagged_for_review=True,
            )
        case _:
            return None
    keyed = cast(_Keyed, e)
    return data, keyed.municipality, keyed.person_id


class _Keyed(Protocol):
    """What every meeting domain event carries: the municipality and the person (the key)."""

    municipality: str
    person_id: UUID | None


to_cloudevent = translator(_translate, SOURCE)
