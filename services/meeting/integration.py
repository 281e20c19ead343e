"""Meeting's domain events as integration events (what other services may rely on).

A plan's discussion at a meeting is published inside MeetingHeld (``plans_discussed``), not on
its own; index aggregates are meeting's own lookups and are not published.
"""

from __future__ import annotations

from contracts import events as ev
from services.meeting.meeting import Meeting
from services.meeting.support_case import SupportCase
from services.meeting.vital_interest import VitalInterestDeclaration
from services.platform.publishing import Published, translation
from services.platform.relay import translator

SOURCE = "/tsunagu/meeting"
CASE, MEETING = "case_id", "meeting_id"
VERSION = {"plan_version": "version"}

PUBLISHED = (
    Published(SupportCase.Opened, ev.CaseOpened, CASE),
    Published(
        SupportCase.AssessmentRecorded,
        ev.AssessmentRecorded,
        CASE,
        {"assessment_number": "number"},
    ),
    Published(SupportCase.PlanDrafted, ev.PlanDrafted, CASE, VERSION),
    Published(SupportCase.PlanApproved, ev.PlanApproved, CASE, VERSION),
    Published(SupportCase.MonitoringRecorded, ev.MonitoringRecorded, CASE, VERSION),
    Published(SupportCase.PlanEvaluated, ev.PlanEvaluated, CASE, VERSION),
    Published(SupportCase.ResourceGapNoted, ev.ResourceGapNoted, CASE),
    Published(SupportCase.Closed, ev.CaseClosed, CASE),
    Published(SupportCase.Reopened, ev.CaseReopened, CASE),
    Published(SupportCase.FollowUpRecorded, ev.FollowUpRecorded, CASE),
    Published(SupportCase.EmergencySupportRecorded, ev.EmergencySupportRecorded, CASE),
    Published(Meeting.Scheduled, ev.MeetingScheduled, MEETING),
    Published(Meeting.Held, ev.MeetingHeld, MEETING),
    Published(Meeting.InformationShared, ev.InformationShared, MEETING),
    # Every declaration is reviewed afterwards: the flag is the contract's, not a choice.
    Published(
        VitalInterestDeclaration.Declared,
        ev.VitalInterestDeclared,
        "declaration_id",
        {"flagged_for_review": lambda e: True},
    ),
)

to_cloudevent = translator(translation(PUBLISHED), SOURCE)
