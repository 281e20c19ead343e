"""相談受付 and 振り分け: open a consultation (anonymous and unclear ones too), then triage it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from contracts.reference import reference
from services.web import formatting
from services.web.desk import Desk, check_csrf, desk
from services.web.pages.forms import body, options, values

router = APIRouter()
OPEN_FIELDS = ("channel", "route_in", "caller_kind", "main_complaint", "notes")
TRIAGE_FIELDS = ("outcome", "target_agency", "target_system", "follow_up_on", "note")
OUTCOMES = ("continue_here", "connect_elsewhere", "information_only")
LABELS = {
    "channel": "consultation.channel",
    "route_in": "consultation.route_in",
    "caller_kind": "consultation.caller_kind",
    "main_complaint": "consultation.main_complaint",
    "notes": "consultation.notes",
    "opened_on": "consultation.opened_at",
    "opened_time": "consultation.opened_time",
    "outcome": "triage.outcome",
    "target_agency": "triage.target_agency",
    "target_system": "triage.target_system",
    "follow_up_on": "triage.follow_up_on",
    "note": "triage.note",
    "person_id": "consultation.attach_person",
    "application_on": "consultation.application_on",
}


def _choices(d: Desk) -> dict[str, Any]:
    ref = reference()
    return {
        "channels": options(d.t, "channel", ref.channels),
        "routes_in": options(d.t, "route_in", ref.routes_in),
        "caller_kinds": options(d.t, "caller_kind", ref.caller_kinds),
        "outcomes": options(d.t, "outcome", OUTCOMES),
        "agencies": d.agencies(),
        "labels": LABELS,
    }


@router.get("/consultations/new")
async def new(d: Desk = Depends(desk)) -> Response:
    return d.render("consultation_new.html", values={"caller_kind": "self"}, **_choices(d))


@router.post("/consultations")
async def open_consultation(form: Any = Depends(check_csrf), d: Desk = Depends(desk)) -> Response:
    typed = values(form, (*OPEN_FIELDS, "opened_on", "opened_time"))
    request = body(typed, OPEN_FIELDS)
    opened_at = formatting.business_time(typed["opened_on"], typed["opened_time"])
    if opened_at:
        request["opened_at"] = opened_at
    answer = await d.post("intake", "/consultations", request)
    if not answer.ok:
        return d.refused_form(
            "consultation_new.html",
            answer,
            {"opened_at": "opened_on"},
            values=typed,
            **_choices(d),
        )
    return d.redirect(f"/consultations/{answer.body['id']}", "consultation.saved")


@router.get("/consultations/{consultation_id}")
async def show(consultation_id: str, d: Desk = Depends(desk)) -> Response:
    consultation = await d.read("intake", f"/consultations/{consultation_id}")
    return d.render("consultation.html", c=consultation, **_choices(d))


async def _command(
    d: Desk,
    consultation_id: str,
    path: str,
    request: dict[str, Any],
    typed: dict[str, Any],
    notice: str,
) -> Response:
    answer = await d.post("intake", f"/consultations/{consultation_id}/{path}", request)
    if answer.ok:
        return d.redirect(f"/consultations/{consultation_id}", notice)
    consultation = await d.read("intake", f"/consultations/{consultation_id}")
    return d.refused_form(
        "consultation.html",
        answer,
        {"at": "follow_up_on"},
        c=consultation,
        values=typed,
        **_choices(d),
    )


@router.post("/consultations/{consultation_id}/triage")
async def triage(
    consultation_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, TRIAGE_FIELDS)
    return await _command(
        d, consultation_id, "triage", body(typed, TRIAGE_FIELDS), typed, "consultation.saved"
    )


@router.post("/consultations/{consultation_id}/attach")
async def attach(
    consultation_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, ("person_id",))
    return await _command(
        d, consultation_id, "attach", body(typed, ("person_id",)), typed, "consultation.saved"
    )


@router.post("/consultations/{consultation_id}/application")
async def application(
    consultation_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, ("application_on",))
    day = formatting.business_time(typed["application_on"])
    return await _command(
        d,
        consultation_id,
        "application",
        {"at": day} if day else {},
        typed,
        "consultation.application_received",
    )
