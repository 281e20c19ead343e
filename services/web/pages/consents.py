"""同意: record a consent, print the 同意書 and the receipt, withdraw it wholly or in part with
the effect shown before confirming."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from contracts import disclosure
from contracts.reference import reference
from services.intake.consent import METHODS
from services.web import formatting
from services.web.desk import Desk, check_csrf, desk
from services.web.pages.forms import body, options, values

router = APIRouter()
LISTS = ("recipients", "categories", "purposes")
LABELS = {
    "recipients": "consent.recipients",
    "categories": "consent.categories",
    "purposes": "consent.purposes",
    "valid_from": "consent.valid_from",
    "valid_until": "consent.valid_until",
    "method": "consent.method",
    "evidence_ref": "consent.evidence",
    "reason": "consent.reason",
}


def _choices(d: Desk) -> dict[str, Any]:
    ref = reference()
    return {
        "agencies": d.agencies(),
        "categories": options(d.t, "category", ref.data_categories),
        "purposes": options(d.t, "purpose", disclosure.PURPOSES),
        "methods": options(d.t, "method", METHODS),
        "labels": LABELS,
    }


@router.get("/persons/{person_id}/consents/new")
async def new(person_id: str, d: Desk = Depends(desk)) -> Response:
    return d.render(
        "consent_new.html",
        person_id=person_id,
        values={"method": METHODS[0], "valid_from": formatting.today().isoformat()},
        **_choices(d),
    )


@router.post("/persons/{person_id}/consents")
async def record(
    person_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, ("valid_from", "valid_until", "method", "evidence_ref"), LISTS)
    request = body(typed, (*LISTS, "method", "evidence_ref")) | {"person_id": person_id}
    for name in ("valid_from", "valid_until"):
        if typed[name]:
            request[name] = formatting.business_time(typed[name])
    answer = await d.post("intake", "/consents", request)
    if not answer.ok:
        return d.refused_form(
            "consent_new.html", answer, {}, person_id=person_id, values=typed, **_choices(d)
        )
    return d.redirect(f"/consents/{answer.body['id']}", "consent.saved")


@router.get("/consents/{consent_id}")
async def show(consent_id: str, d: Desk = Depends(desk)) -> Response:
    consent = await d.read("intake", f"/consents/{consent_id}")
    return d.render("consent.html", c=consent, **_choices(d))


@router.get("/consents/{consent_id}/form")
async def printable(consent_id: str, d: Desk = Depends(desk)) -> Response:
    """The 同意書 and its receipt, laid out for printing (A4, print CSS)."""
    consent = await d.read("intake", f"/consents/{consent_id}")
    return d.render("consent_form.html", c=consent, **_choices(d))


@router.get("/consents/{consent_id}/withdrawal")
async def withdrawal_effect(
    consent_id: str,
    recipients: list[str] = Query([]),
    categories: list[str] = Query([]),
    reason: str = "",
    d: Desk = Depends(desk),
) -> Response:
    """Before confirming: which agencies lose which categories if this withdrawal is made."""
    consent = await d.read("intake", f"/consents/{consent_id}")
    typed = {"recipients": recipients, "categories": categories, "reason": reason}
    effect = await d.read(
        "intake",
        f"/consents/{consent_id}/withdrawal-effect",
        recipients=typed["recipients"] or None,
        categories=typed["categories"] or None,
    )
    return d.render(
        "consent.html", c=consent, effect=effect, values=typed, previewing=True, **_choices(d)
    )


@router.post("/consents/{consent_id}/withdrawal")
async def withdraw(
    consent_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, ("reason",), ("recipients", "categories"))
    answer = await d.post("intake", f"/consents/{consent_id}/withdrawals", body(typed, typed))
    if answer.ok:
        return d.redirect(f"/consents/{consent_id}", "consent.withdrawn")
    consent = await d.read("intake", f"/consents/{consent_id}")
    return d.refused_form("consent.html", answer, {}, c=consent, values=typed, **_choices(d))
