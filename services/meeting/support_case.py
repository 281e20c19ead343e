"""Support case (支援プラン): one person's way from assessment to closure, seed 003 ch.2 ⑤–⑬.

アセスメント (assessment, may deepen over time) → プラン案 (draft plan, made with the person) →
支援調整会議 (a coordination meeting discusses it) → 支援決定 (the municipality approves) →
モニタリング → プラン評価 (evaluation: close or re-plan; a re-plan is a new plan version and the
old ones stay) → 終結 (closure) → フォローアップ. 緊急的な支援 (emergency support) may be recorded
at any point. A step out of order is refused with the moves the case allows now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from contracts.errors import Conflict, Invalid, not_before
from contracts.reference import reference
from services.platform.acts import Act, Founding

EVALUATION_OUTCOMES = ("close", "replan")
# What an evaluation may find about work, for the monthly report's "into work or more income".
WORK_OUTCOMES = ("into_work", "increased_income")
# 緊急的な支援 the seeds name: food (food bank), shelter (一時生活支援), loans (貸付).
EMERGENCY_KINDS = ("food", "shelter", "loan", "other")
MOVES = (
    "record_assessment",
    "draft_plan",
    "approve_plan",
    "record_monitoring",
    "evaluate_plan",
    "note_resource_gap",
    "record_emergency_support",
    "close",
    "reopen",
    "record_follow_up",
)
_CASES = uuid5(NAMESPACE_URL, "urn:tsunagu:meeting:case")


@dataclass
class Plan:
    version: int
    goals: list[str]
    services: list[dict[str, Any]]
    monitoring_dates: list[date]
    period_from: date
    period_until: date
    drafted_at: datetime
    discussed_in: list[UUID] = field(default_factory=list)
    approved_in: UUID | None = None
    approved_at: datetime | None = None
    monitoring: list[tuple[datetime, str]] = field(default_factory=list)
    outcome: str | None = None

    @property
    def status(self) -> str:
        if self.approved_in is None:
            return "draft"
        return "approved" if self.outcome is None else "evaluated"


@dataclass(frozen=True)
class Assessment:
    number: int
    at: datetime
    issues: list[str]
    strengths: list[str]
    notes: str | None


@dataclass(frozen=True)
class Gap:
    gap_id: UUID
    gap: str
    at: datetime
    meeting_id: UUID | None


class SupportCase(Aggregate):
    """A person has one case, reopened rather than duplicated, so its id follows the person."""

    class Opened(Founding):
        at: datetime
        person_id: UUID
        consultation_id: UUID

    class Step(Act):
        """Every step after the opening names the person, whose case it is."""

        person_id: UUID

    class AssessmentRecorded(Step):
        number: int
        issues: list[str]
        strengths: list[str]
        notes: str | None

    class PlanDrafted(Step):
        version: int
        goals: list[str]
        services: list[dict[str, Any]]
        monitoring_dates: list[date]
        period_from: date
        period_until: date
        drafted_with_person: bool

    class PlanDiscussed(Step):
        version: int
        meeting_id: UUID

    class PlanApproved(Step):
        version: int
        meeting_id: UUID

    class MonitoringRecorded(Step):
        version: int
        note: str

    class PlanEvaluated(Step):
        version: int
        outcome: str
        note: str | None
        work_outcomes: list[str]

    class ResourceGapNoted(Step):
        gap_id: UUID
        gap: str
        meeting_id: UUID | None

    class Closed(Step):
        reason: str
        follow_up_until: date | None
        note: str | None

    class Reopened(Step):
        reason: str

    class FollowUpRecorded(Step):
        note: str

    class EmergencySupportRecorded(Step):
        kind: str
        note: str | None

    @staticmethod
    def create_id(person_id: UUID) -> UUID:
        return uuid5(_CASES, str(person_id))

    @event(Opened)
    def __init__(
        self,
        *,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        consultation_id: UUID,
    ) -> None:
        self.municipality = municipality
        self.agency = agency
        self.opened_at = at
        # The (re)opening a closure follows.
        self.open_since = at
        self.person_id = person_id
        self.consultation_id = consultation_id
        self.closed = False
        self.closure_reason: str | None = None
        self.follow_up_until: date | None = None
        self.assessments: list[Assessment] = []
        self.plans: list[Plan] = []
        self.gaps: list[Gap] = []
        self.follow_ups: list[datetime] = []
        self.emergencies: list[tuple[datetime, str]] = []

    # What may happen next

    @property
    def plan(self) -> Plan | None:
        """The current plan version; earlier versions stay in ``plans``."""
        return self.plans[-1] if self.plans else None

    def moves(self) -> tuple[str, ...]:
        """The steps the case allows now, named as the API names them."""
        return tuple(move for move in MOVES if self._obstacle(move) is None)

    def _obstacle(self, move: str) -> str | None:
        """Why ``move`` cannot be taken now, or None when it can."""
        plan = self.plan
        if move == "record_emergency_support":
            return None
        if move == "reopen":
            return None if self.closed else "the case is open"
        if move == "record_follow_up":
            return None if self.closed else "follow-up comes after the closure"
        if self.closed:
            return f"the case is closed ({self.closure_reason})"
        if move == "draft_plan":
            if not self.assessments:
                return "record an assessment first"
            if plan is not None and plan.status == "approved":
                return (
                    f"plan version {plan.version} is in delivery; a re-plan follows an "
                    "evaluation with outcome replan"
                )
            if plan is not None and plan.outcome == "close":
                return "the evaluation decided to close the case"
        elif move == "approve_plan":
            if plan is None:
                return "no plan has been drafted"
            if plan.status != "draft":
                return f"plan version {plan.version} is already approved"
            if not plan.discussed_in:
                return (
                    f"plan version {plan.version} has not been discussed at a held "
                    "coordination meeting (支援調整会議)"
                )
        elif move in ("record_monitoring", "evaluate_plan"):
            if plan is None or plan.status == "draft":
                return "there is no approved plan (支援決定) to work on"
            if plan.status == "evaluated":
                return f"plan version {plan.version} has already been evaluated"
        return None

    def _require(self, move: str) -> None:
        obstacle = self._obstacle(move)
        if obstacle is not None:
            raise Conflict(
                f"cannot {move.replace('_', ' ')}: {obstacle}", allowed=list(self.moves())
            )

    def _step(self, staff: tuple[str, str], at: datetime) -> dict[str, Any]:
        agency, staff_id = staff
        return {
            "municipality": self.municipality,
            "agency": agency,
            "staff_id": staff_id,
            "at": at,
            "person_id": self.person_id,
        }

    # Commands. ``staff`` is (agency, staff id) of whoever takes the step.

    def record_assessment(
        self,
        staff: tuple[str, str],
        at: datetime,
        issues: list[str],
        strengths: list[str],
        notes: str | None,
    ) -> None:
        self._require("record_assessment")
        allowed = reference().issue_categories
        if not issues:
            raise Invalid("issues", "not_empty", "an assessment names at least one issue", allowed)
        for issue in issues:
            if issue not in allowed:
                raise Invalid("issues", "reference_code", f"unknown issue {issue!r}", allowed)
        self._assess(
            **self._step(staff, at),
            number=len(self.assessments) + 1,
            issues=list(dict.fromkeys(issues)),
            strengths=strengths,
            notes=notes,
        )

    @event(AssessmentRecorded)
    def _assess(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        number: int,
        issues: list[str],
        strengths: list[str],
        notes: str | None,
    ) -> None:
        self.assessments.append(Assessment(number, at, issues, strengths, notes))

    def draft_plan(
        self,
        staff: tuple[str, str],
        at: datetime,
        *,
        goals: list[str],
        services: list[dict[str, Any]],
        monitoring_dates: list[date],
        period_from: date,
        period_until: date,
        drafted_with_person: bool,
    ) -> int:
        self._require("draft_plan")
        check_plan(goals, services, monitoring_dates, period_from, period_until)
        version = len(self.plans) + 1
        self._draft(
            **self._step(staff, at),
            version=version,
            goals=goals,
            services=services,
            monitoring_dates=sorted(monitoring_dates),
            period_from=period_from,
            period_until=period_until,
            drafted_with_person=drafted_with_person,
        )
        return version

    @event(PlanDrafted)
    def _draft(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        version: int,
        goals: list[str],
        services: list[dict[str, Any]],
        monitoring_dates: list[date],
        period_from: date,
        period_until: date,
        drafted_with_person: bool,
    ) -> None:
        self.plans.append(
            Plan(version, goals, services, monitoring_dates, period_from, period_until, at)
        )

    def discuss(self, staff: tuple[str, str], at: datetime, meeting_id: UUID) -> int | None:
        """A held coordination meeting discussed the case: its draft plan, if there is one."""
        plan = self.plan
        if self.closed or plan is None or plan.status != "draft":
            return None
        self._discussed(**self._step(staff, at), version=plan.version, meeting_id=meeting_id)
        return plan.version

    @event(PlanDiscussed)
    def _discussed(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        version: int,
        meeting_id: UUID,
    ) -> None:
        assert self.plan is not None
        self.plan.discussed_in.append(meeting_id)

    def approve(self, staff: tuple[str, str], at: datetime) -> int:
        self._require("approve_plan")
        plan = self.plan
        assert plan is not None
        self._approve(
            **self._step(staff, at), version=plan.version, meeting_id=plan.discussed_in[-1]
        )
        return plan.version

    @event(PlanApproved)
    def _approve(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        version: int,
        meeting_id: UUID,
    ) -> None:
        assert self.plan is not None
        self.plan.approved_in, self.plan.approved_at = meeting_id, at

    def record_monitoring(self, staff: tuple[str, str], at: datetime, note: str) -> None:
        self._require("record_monitoring")
        assert self.plan is not None
        self._monitor(**self._step(staff, at), version=self.plan.version, note=note)

    @event(MonitoringRecorded)
    def _monitor(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        version: int,
        note: str,
    ) -> None:
        assert self.plan is not None
        self.plan.monitoring.append((at, note))

    def evaluate(
        self,
        staff: tuple[str, str],
        at: datetime,
        outcome: str,
        note: str | None,
        work_outcomes: Sequence[str] = (),
    ) -> None:
        if outcome not in EVALUATION_OUTCOMES:
            raise Invalid(
                "outcome", "reference_code", f"unknown outcome {outcome!r}", EVALUATION_OUTCOMES
            )
        for found in work_outcomes:
            if found not in WORK_OUTCOMES:
                raise Invalid(
                    "work_outcomes",
                    "reference_code",
                    f"unknown work outcome {found!r}",
                    WORK_OUTCOMES,
                )
        self._require("evaluate_plan")
        assert self.plan is not None
        self._evaluate(
            **self._step(staff, at),
            version=self.plan.version,
            outcome=outcome,
            note=note,
            work_outcomes=list(dict.fromkeys(work_outcomes)),
        )

    @event(PlanEvaluated)
    def _evaluate(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        version: int,
        outcome: str,
        note: str | None,
        work_outcomes: list[str],
    ) -> None:
        assert self.plan is not None
        self.plan.outcome = outcome

    def note_resource_gap(
        self, staff: tuple[str, str], at: datetime, gap: str, meeting_id: UUID | None
    ) -> UUID:
        self._require("note_resource_gap")
        gap_id = uuid4()
        self._note_gap(**self._step(staff, at), gap_id=gap_id, gap=gap, meeting_id=meeting_id)
        return gap_id

    @event(ResourceGapNoted)
    def _note_gap(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        gap_id: UUID,
        gap: str,
        meeting_id: UUID | None,
    ) -> None:
        self.gaps.append(Gap(gap_id, gap, at, meeting_id))

    def close(
        self,
        staff: tuple[str, str],
        at: datetime,
        reason: str,
        follow_up_until: date | None,
        note: str | None,
    ) -> None:
        self._require("close")
        not_before("at", at, "the case was (re)opened", self.open_since)
        allowed = reference().closure_reasons
        if reason not in allowed:
            raise Invalid("reason", "reference_code", f"unknown closure reason {reason!r}", allowed)
        if follow_up_until is not None and follow_up_until < at.date():
            raise Invalid(
                "follow_up_until", "not_before_closure", "follow-up cannot end before the closure"
            )
        self._close(
            **self._step(staff, at), reason=reason, follow_up_until=follow_up_until, note=note
        )

    @event(Closed)
    def _close(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        reason: str,
        follow_up_until: date | None,
        note: str | None,
    ) -> None:
        self.closed, self.closure_reason, self.follow_up_until = True, reason, follow_up_until

    def reopen(self, staff: tuple[str, str], at: datetime, reason: str) -> None:
        self._require("reopen")
        self._reopen(**self._step(staff, at), reason=reason)

    @event(Reopened)
    def _reopen(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        reason: str,
    ) -> None:
        self.closed, self.closure_reason, self.follow_up_until = False, None, None
        self.open_since = at

    def record_follow_up(self, staff: tuple[str, str], at: datetime, note: str) -> None:
        self._require("record_follow_up")
        self._follow_up(**self._step(staff, at), note=note)

    @event(FollowUpRecorded)
    def _follow_up(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        note: str,
    ) -> None:
        self.follow_ups.append(at)

    def record_emergency_support(
        self, staff: tuple[str, str], at: datetime, kind: str, note: str | None
    ) -> None:
        if kind not in EMERGENCY_KINDS:
            raise Invalid("kind", "reference_code", f"unknown kind {kind!r}", EMERGENCY_KINDS)
        self._emergency(**self._step(staff, at), kind=kind, note=note)

    @event(EmergencySupportRecorded)
    def _emergency(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        kind: str,
        note: str | None,
    ) -> None:
        self.emergencies.append((at, kind))


def check_plan(
    goals: list[str],
    services: list[dict[str, Any]],
    monitoring_dates: list[date],
    period_from: date,
    period_until: date,
) -> None:
    """A plan's content against the reference data; the error names the field and what's allowed."""
    ref = reference()
    if period_until <= period_from:
        raise Invalid(
            "period_until", "after_period_from", "the plan period must end after it starts"
        )
    if not [g for g in goals if g.strip()]:
        raise Invalid("goals", "not_empty", "a plan has at least one goal")
    for number, service in enumerate(services):
        where = f"services.{number}"
        if service["provider"] not in ref.agencies:
            raise Invalid(
                f"{where}.provider",
                "reference_code",
                f"unknown agency {service['provider']!r}",
                tuple(ref.agencies),
            )
        program = service.get("program")
        if program is not None and program not in ref.programs:
            raise Invalid(
                f"{where}.program", "reference_code", f"unknown programme {program!r}", ref.programs
            )
        if service["service_class"] not in ref.service_classes:
            raise Invalid(
                f"{where}.service_class",
                "reference_code",
                f"unknown class {service['service_class']!r}",
                ref.service_classes,
            )
        if not period_from <= service["period_from"] < service["period_until"] <= period_until:
            raise Invalid(
                f"{where}.period_until",
                "within_plan_period",
                "a service's period starts before it ends, within the plan period",
            )
    for moment in monitoring_dates:
        if not period_from <= moment <= period_until:
            raise Invalid(
                "monitoring_dates", "within_plan_period", f"{moment} is outside the plan period"
            )
