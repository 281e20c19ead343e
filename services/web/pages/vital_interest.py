"""生命・身体の保護: a supervisor declares, for one person, who may see which categories and why,
for at most 72 hours. Tax is never offered (地方税法第22条 admits no such exception); should
the API refuse a declaration, its reason is shown. Every declaration awaits the privacy
officer's review, which is theirs to make elsewhere."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from contracts import disclosure
from contracts.reference import reference
from services.web.desk import Desk, check_csrf, desk
from services.web.pages.forms import body, options, values
from services.web.pages.steps import WHEN_FIELDS, refusal, when

router = APIRouter()
MAX_HOURS = 72
LISTS = ("recipients", "categories")
LABELS = {
    "recipients": "vital.recipients",
    "categories": "vital.categories",
    "reason": "vital.reason",
    "hours": "vital.hours",
    "on": "vital.from_on",
    "time": "step.time",
}


def _number(typed: str) -> float | str:
    """The API takes hours as a JSON number only; what is not one goes as typed, for the API
    to name."""
    try:
        return float(typed)
    except ValueError:
        return typed


async def _context(d: Desk, person_id: str) -> dict[str, Any]:
    ref = reference()
    declared = await d.get("meeting", f"/persons/{person_id}/vital-interests")
    return {
        "person_id": person_id,
        "agencies": d.agencies(),
        "categories": options(
            d.t, "category", [c for c in ref.data_categories if c != disclosure.TAX]
        ),
        "declarations": declared.body if declared.ok else [],
        "survivor": declared.survivor,
        "supervises": d.user.has_role("supervisor"),
        "max_hours": MAX_HOURS,
        "labels": LABELS,
    }


@router.get("/persons/{person_id}/vital-interest")
async def form(person_id: str, d: Desk = Depends(desk)) -> Response:
    context = await _context(d, person_id)
    if context["survivor"]:
        # A duplicate merged into another: a declaration is made on the person kept.
        return d.redirect(f"/persons/{context['survivor']}/vital-interest", "person.merged_into")
    return d.render("vital_interest.html", values={"hours": str(MAX_HOURS)}, **context)


@router.post("/persons/{person_id}/vital-interest")
async def declare(
    person_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, ("reason", "hours", *WHEN_FIELDS), LISTS)
    request = body(typed, (*LISTS, "reason", "hours")) | {"person_id": person_id} | when(typed)
    if "hours" in request:
        request["hours"] = _number(request["hours"])
    answer = await d.post("meeting", "/vital-interests", request)
    if answer.ok:
        return d.redirect(f"/persons/{person_id}/vital-interest", "vital.declared")
    return d.refused_form(
        "vital_interest.html",
        answer,
        {"at": "on"},
        values=typed,
        refused=refusal(answer),
        **await _context(d, person_id),
    )
