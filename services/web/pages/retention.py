"""保存期間: whose records the retention sweep erases within 90 days, and an extension of one
person's retention with the reason it is recorded with.

For the self-reliance support office and the municipality's privacy officers; the intake API
decides who may, and its refusals are shown.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from contracts.reference import reference
from services.web.desk import Desk, Refused, check_csrf, desk
from services.web.pages.forms import body, values
from services.web.session import User

router = APIRouter()
PAGE = 50
FIELDS = ("until", "reason")
LABELS = {"until": "retention.until", "reason": "retention.reason"}
OFFICE_ROLE = "self_reliance_office"


def keeps_records(user: User) -> bool:
    """Whether the menu offers 保存期間: to the office and to privacy officers (the intake API
    decides; a privacy officer over their own agency only is shown its refusal)."""
    return user.has_role("privacy_officer") or user.agency in reference().agencies_with_role(
        OFFICE_ROLE
    )


@router.get("/retention")
async def due(cursor: str | None = None, d: Desk = Depends(desk)) -> Response:
    answer = await d.get("intake", "/retention/due", limit=PAGE, cursor=cursor)
    if not answer.ok:
        raise Refused(answer)
    return d.render("retention.html", rows=answer.body, cursor=answer.next_cursor)


async def _held(d: Desk, person_id: str) -> dict[str, Any]:
    retention = await d.read("intake", f"/persons/{person_id}/retention")
    return {"person_id": person_id, "retention": retention, "labels": LABELS}


@router.get("/retention/{person_id}")
async def form(person_id: str, d: Desk = Depends(desk)) -> Response:
    return d.render("retention_extend.html", **await _held(d, person_id))


@router.post("/retention/{person_id}")
async def extend(
    person_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, FIELDS)
    answer = await d.post(
        "intake", f"/persons/{person_id}/retention-extension", body(typed, FIELDS)
    )
    if answer.ok:
        return d.redirect("/retention", "retention.extended")
    return d.refused_form(
        "retention_extend.html", answer, {}, values=typed, **await _held(d, person_id)
    )
