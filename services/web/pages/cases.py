"""ケース (支援プラン): a person's case step by step, as seed 003 ch.2 lays it out.

アセスメント → プラン案 (made with the person) → 支援調整会議 → 支援決定 (the municipality's
approver) → モニタリング → プラン評価 (close or re-plan) → 終結 → フォローアップ; emergency
support and resource gaps at any time. Each step has a page of its own, offered only when the
API lists it among the moves the case allows now; a refusal is shown with the API's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from contracts.reference import reference
from services.web import formatting
from services.web.client import Answer
from services.web.desk import Desk, check_csrf, desk
from services.web.pages.forms import body, options, values
from services.web.pages.steps import WHEN_FIELDS, lines, refusal, when
from services.web.session import User

router = APIRouter()
SERVICE_ROWS = 3
SERVICE_PARTS = ("provider", "program", "service_class", "description")
MONITORING_FIELDS = ("monitoring_1", "monitoring_2")
EVALUATION_OUTCOMES = ("replan", "close")
WORK_OUTCOMES = ("into_work", "increased_income")
EMERGENCY_KINDS = ("food", "shelter", "loan", "other")
COORDINATION = ("individual_coordination", "regular_coordination")
APPROVE = "approve_plan"


def service_field(row: int, part: str) -> str:
    return f"service_{row}_{part}"


SERVICE_FIELDS = tuple(
    service_field(row, part) for row in range(SERVICE_ROWS) for part in SERVICE_PARTS
)
Build = Callable[[Mapping[str, Any]], dict[str, Any]]


def plain(*names: str) -> Build:
    """A step whose form fields are the API's, sent when filled in."""
    return lambda typed: body(typed, names)


def _assessment(typed: Mapping[str, Any]) -> dict[str, Any]:
    return body(typed, ("issues", "notes")) | {"strengths": lines(typed["strengths"])}


def _plan(typed: Mapping[str, Any]) -> dict[str, Any]:
    services = []
    for row in range(SERVICE_ROWS):
        line = {part: typed[service_field(row, part)] for part in SERVICE_PARTS}
        if any(line.values()):
            services.append(body(line, SERVICE_PARTS))
    return body(typed, ("period_from", "period_until")) | {
        "goals": lines(typed["goals"]),
        "services": services,
        "monitoring_dates": [typed[name] for name in MONITORING_FIELDS if typed[name]],
        "drafted_with_person": typed["drafted_with_person"] == "1",
    }


@dataclass(frozen=True)
class Step:
    """One step's form: the API path it posts to, the fields it reads, the body it makes."""

    path: str
    fields: tuple[str, ...]
    build: Build
    lists: tuple[str, ...] = ()

    def request(self, typed: Mapping[str, Any]) -> dict[str, Any]:
        return self.build(typed) | when(typed)


STEPS: dict[str, Step] = {
    "record_assessment": Step(
        "assessments", ("strengths", "notes"), _assessment, lists=("issues",)
    ),
    "draft_plan": Step(
        "plans",
        (
            "goals",
            "period_from",
            "period_until",
            "drafted_with_person",
            *SERVICE_FIELDS,
            *MONITORING_FIELDS,
        ),
        _plan,
    ),
    APPROVE: Step("approval", (), plain()),
    "record_monitoring": Step("monitoring", ("note",), plain("note")),
    "evaluate_plan": Step(
        "evaluation",
        ("outcome", "note"),
        plain("outcome", "note", "work_outcomes"),
        lists=("work_outcomes",),
    ),
    "note_resource_gap": Step("resource-gaps", ("gap", "meeting_id"), plain("gap", "meeting_id")),
    "close": Step(
        "closure",
        ("reason", "follow_up_until", "note"),
        plain("reason", "follow_up_until", "note"),
    ),
    "reopen": Step("reopening", ("reason",), plain("reason")),
    "record_follow_up": Step("follow-ups", ("note",), plain("note")),
    "record_emergency_support": Step("emergency-support", ("kind", "note"), plain("kind", "note")),
}
# The API's field names where the form names them otherwise: a service line's period falls
# within the plan's, so a problem with it is shown beside the plan period.
FORM_FIELD = {
    "at": "on",
    "monitoring_dates": MONITORING_FIELDS[0],
    **{
        f"services.{row}.{part}": service_field(row, part)
        for row in range(SERVICE_ROWS)
        for part in SERVICE_PARTS
    },
    **{f"services.{row}.period_until": "period_until" for row in range(SERVICE_ROWS)},
}
LABELS = {
    "on": "step.on",
    "time": "step.time",
    "case": "case.open_from",
    **{
        name: f"case.{name}"
        for name in (
            "issues",
            "strengths",
            "notes",
            "goals",
            "period_from",
            "period_until",
            "drafted_with_person",
            "note",
            "outcome",
            "work_outcomes",
            "gap",
            "meeting_id",
            "reason",
            "follow_up_until",
            "kind",
        )
    },
    **{name: "case.monitoring_date" for name in MONITORING_FIELDS},
    **{
        service_field(row, part): f"case.service_{part}"
        for row in range(SERVICE_ROWS)
        for part in SERVICE_PARTS
    },
}


def approves(user: User) -> bool:
    """Whether the user makes the 支援決定: an approver of an agency that approves plans."""
    agency = reference().agency(user.agency)
    return user.has_role("approver") and agency is not None and agency.approves_plans


def offered(user: User, case: dict[str, Any]) -> list[str]:
    """The steps this user is offered now: the moves the case allows, the 支援決定 only to an
    approver who may make it."""
    return [m for m in case["allowed"] if m in STEPS and (m != APPROVE or approves(user))]


def _choices(d: Desk) -> dict[str, Any]:
    ref = reference()
    return {
        "issues": options(d.t, "issue", ref.issue_categories),
        "agencies": d.agencies(),
        "programs": options(d.t, "program", ref.programs),
        "service_classes": options(d.t, "service_class", ref.service_classes),
        "outcomes": options(d.t, "evaluation", EVALUATION_OUTCOMES),
        "work_outcomes": options(d.t, "work_outcome", WORK_OUTCOMES),
        "closure_reasons": options(d.t, "closure", ref.closure_reasons),
        "emergency_kinds": options(d.t, "emergency", EMERGENCY_KINDS),
        "service_rows": range(SERVICE_ROWS),
        "service_field": service_field,
        "monitoring_fields": MONITORING_FIELDS,
        "labels": LABELS,
    }


async def _meetings(d: Desk, case: dict[str, Any]) -> list[dict[str, Any]]:
    """The coordination meetings on the case the user may read."""
    answer = await d.get("meeting", f"/persons/{case['person_id']}/meetings")
    found = answer.body if answer.ok else []
    return [m for m in found if m["kind"] in COORDINATION and case["id"] in m["case_ids"]]


def awaits_meeting(case: dict[str, Any], meetings: list[dict[str, Any]]) -> bool:
    """A drafted plan not yet discussed, with no coordination meeting scheduled for it."""
    plan = case["plans"][-1] if case["plans"] else None
    if case["status"] != "open" or plan is None or plan["status"] != "draft":
        return False
    return not plan["discussed_in"] and all(m["held_at"] for m in meetings)


async def _case_context(d: Desk, case: dict[str, Any]) -> dict[str, Any]:
    meetings = await _meetings(d, case)
    held = [
        (m["id"], f"{d.t.code('meeting_kind', m['kind'])}（{formatting.wareki(m['held_at'])}）")
        for m in meetings
        if m["held_at"]
    ]
    return {
        "case": case,
        "meetings": meetings,
        "held_meetings": held,
        "offered": offered(d.user, case),
        "approves": approves(d.user),
        "awaits_meeting": awaits_meeting(case, meetings),
        "organises": d.user.agency == case["agency"],
        **_choices(d),
    }


@router.get("/persons/{person_id}/case")
async def of_person(person_id: str, d: Desk = Depends(desk)) -> Response:
    """The person's case, or the form to open it from one of their applications."""
    answer = await d.get("meeting", f"/persons/{person_id}/case")
    if answer.ok:
        return d.redirect(f"/cases/{answer.body['id']}")
    if answer.survivor:
        return d.redirect(f"/persons/{answer.survivor}/case", "person.merged_into")
    return d.render("case_open.html", **await _opening(d, person_id))


def erasure_of(answer: Answer) -> dict[str, Any] | None:
    """When and why the person was erased, if the answer refused for that (409, state
    ``erased``): shown as 消去済み, not as a reason in English."""
    body = answer.body if isinstance(answer.body, dict) else {}
    current = body.get("current")
    erased = isinstance(current, dict) and current.get("state") == "erased"
    return current if answer.status == 409 and erased else None


async def _opening(d: Desk, person_id: str) -> dict[str, Any]:
    """The person's applications to open a case from, each named by when it was received."""
    found = await d.get("meeting", f"/persons/{person_id}/applications")
    applications = found.body if found.ok else []
    return {
        "person_id": person_id,
        "applications": applications,
        "application_options": [
            (
                a["consultation_id"],
                f"{d.t('case.application_of')}{formatting.jst_time(a['received_at'])}",
            )
            for a in applications
        ],
        "erased": erasure_of(found),
        "cannot_open": None if found.ok else found.message,
        "labels": LABELS,
    }


@router.post("/persons/{person_id}/case")
async def open_case(
    person_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, ("case", *WHEN_FIELDS))
    request = {"consultation_id": typed["case"], "person_id": person_id} | when(typed)
    answer = await d.post("meeting", "/cases", request)
    if answer.ok:
        return d.redirect(f"/cases/{answer.body['id']}", "case.opened")
    return d.refused_form(
        "case_open.html",
        answer,
        {"consultation_id": "case", "at": "on"},
        values=typed,
        refused=refusal(answer),
        **await _opening(d, person_id),
    )


@router.get("/cases/{case_id}")
async def show(case_id: str, d: Desk = Depends(desk)) -> Response:
    case = await d.read("meeting", f"/cases/{case_id}")
    return d.render("case.html", **await _case_context(d, case))


@router.get("/cases/{case_id}/steps/{move}")
async def step_form(case_id: str, move: str, d: Desk = Depends(desk)) -> Response:
    case = await d.read("meeting", f"/cases/{case_id}")
    context = await _case_context(d, case)
    status = 200 if move in context["offered"] else 409
    return d.render("case_step.html", status, move=move, values={}, **context)


@router.post("/cases/{case_id}/steps/{move}")
async def take_step(
    case_id: str, move: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    step = STEPS.get(move)
    if step is None:
        return await step_form(case_id, move, d)
    typed = values(form, (*step.fields, *WHEN_FIELDS), step.lists)
    answer = await d.post("meeting", f"/cases/{case_id}/{step.path}", step.request(typed))
    if answer.ok:
        return d.redirect(f"/cases/{case_id}", f"case.done.{move}")
    case = await d.read("meeting", f"/cases/{case_id}")
    return d.refused_form(
        "case_step.html",
        answer,
        FORM_FIELD,
        move=move,
        values=typed,
        refused=refusal(answer),
        **await _case_context(d, case),
    )
