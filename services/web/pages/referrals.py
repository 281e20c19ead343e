"""つなぐ: the inbox and outbox, a slip with the moves the API allows now, and its print."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from contracts.reference import reference
from services.referral.referral import KINDS
from services.web import formatting
from services.web.desk import Desk, check_csrf, desk
from services.web.pages.forms import body, options, values

router = APIRouter()
PAGE = 20
# Moves that need words from the user: a reason (the API refuses them without one) or an outcome.
NEEDS_REASON = frozenset({"decline", "withdraw", "hold", "fail", "reroute"})
NEEDS_OUTCOME = frozenset({"complete"})
FOLLOW_UPS = ("return_to_sender", "resource_gap")
LABELS = {
    "reason": "referral.move_reason",
    "outcome": "referral.outcome",
    "to": "referral.to",
    "action": "referral.moves",
    "note": "referral.move_reason",
}


@router.get("/referrals/inbox")
async def inbox(cursor: str | None = None, d: Desk = Depends(desk)) -> Response:
    answer = await d.get("views", "/inbox", limit=PAGE, cursor=cursor)
    return _box(d, answer.body if answer.ok else [], "in", answer.next_cursor)


@router.get("/referrals/outbox")
async def outbox(cursor: str | None = None, d: Desk = Depends(desk)) -> Response:
    answer = await d.get("views", "/outbox", limit=PAGE, cursor=cursor)
    return _box(d, answer.body if answer.ok else [], "out", answer.next_cursor)


def _box(d: Desk, rows: list[dict[str, Any]], direction: str, cursor: str | None) -> Response:
    return d.render("referral_box.html", rows=rows, direction=direction, cursor=cursor)


def _slip_context(d: Desk, slip: dict[str, Any]) -> dict[str, Any]:
    receiving = slip.get("receiver") == d.user.agency
    return {
        "r": slip,
        "receiving": receiving,
        "moves": slip.get("allowed_moves", []),
        "needs_reason": NEEDS_REASON,
        "needs_outcome": NEEDS_OUTCOME,
        "follow_ups": options(d.t, "follow_up", FOLLOW_UPS),
        "agencies": d.agencies(),
        "labels": LABELS,
    }


SEND_FIELDS = ("kind", "to", "reason", "consent_id", "person_id", "verbal_consent_witness")
PROVISIONAL = ("family_name", "given_name", "family_name_kana", "given_name_kana", "phone")
SEND_LABELS = (
    LABELS
    | {
        "kind": "referral.kind",
        "categories": "referral.categories",
        "consent_id": "referral.consent",
        "verbal_consent_witness": "referral.witness",
    }
    | {name: f"person.{name}" for name in PROVISIONAL}
)


async def _send_context(d: Desk, person_id: str) -> dict[str, Any]:
    consents: list[dict[str, Any]] = []
    if person_id:
        found = await d.get("intake", f"/persons/{person_id}/consents")
        consents = found.body if found.ok else []
    return {
        "person_id": person_id,
        "consents": consents,
        "kinds": options(d.t, "kind", KINDS),
        "agencies": d.agencies(),
        "categories": options(d.t, "category", reference().data_categories),
        "labels": SEND_LABELS,
    }


@router.get("/referrals/new")
async def new(person_id: str = "", d: Desk = Depends(desk)) -> Response:
    context = await _send_context(d, person_id)
    chosen = {"consent_id": context["consents"][0]["id"]} if context["consents"] else {}
    return d.render("referral_new.html", values={"person_id": person_id, **chosen}, **context)


@router.get("/referrals/coverage")
async def coverage(
    consent_id: str = "",
    to: str = "",
    categories: list[str] = Query([]),
    d: Desk = Depends(desk),
) -> Response:
    """htmx: what the chosen consent lets the chosen receiver be sent, before sending."""
    found = None
    if consent_id and to:
        answer = await d.get(
            "intake", f"/consents/{consent_id}/coverage", recipient=to, purpose="referral"
        )
        found = answer.body if answer.ok else None
    return d.render(
        "_coverage.html",
        coverage=found,
        categories=options(d.t, "category", reference().data_categories),
        values={"categories": categories},
    )


@router.post("/referrals")
async def send(form: Any = Depends(check_csrf), d: Desk = Depends(desk)) -> Response:
    typed = values(form, (*SEND_FIELDS, *PROVISIONAL, "sent_on", "sent_time"), ("categories",))
    request = body(typed, (*SEND_FIELDS, "categories"))
    sent_at = formatting.business_time(typed["sent_on"], typed["sent_time"])
    if sent_at:
        request["at"] = sent_at
    if not typed["person_id"]:
        request["provisional_identity"] = body(typed, PROVISIONAL)
    answer = await d.post("referral", "/referrals", request)
    if not answer.ok:
        context = await _send_context(d, typed["person_id"])
        return d.refused_form(
            "referral_new.html",
            answer,
            {f"provisional_identity.{name}": name for name in PROVISIONAL} | {"at": "sent_on"},
            values=typed,
            **context,
        )
    return d.redirect(f"/referrals/{answer.body['id']}", "referral.sent")


@router.get("/referrals/{referral_id}")
async def show(referral_id: str, d: Desk = Depends(desk)) -> Response:
    slip = await d.read("referral", f"/referrals/{referral_id}")
    return d.render("referral.html", **_slip_context(d, slip))


@router.get("/referrals/{referral_id}/sheet")
async def sheet(referral_id: str, d: Desk = Depends(desk)) -> Response:
    """The つなぐシート laid out for printing (A4, print CSS), as the API shows it to the caller."""
    slip = await d.read("referral", f"/referrals/{referral_id}")
    return d.render("referral_sheet.html", **_slip_context(d, slip))


@router.post("/referrals/{referral_id}/move/{move}")
async def move(
    referral_id: str, move: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, ("reason", "outcome", "to", "action", "note"))
    if move == "reroute":
        path, request = "reroute", body(typed, ("to", "reason"))
    elif move == "follow-up":
        path, request = "follow-up", body(typed, ("action", "note"))
    else:
        path, request = move, body(typed, ("reason", "outcome"))
    answer = await d.post("referral", f"/referrals/{referral_id}/{path}", request)
    if answer.ok:
        target = answer.body.get("id", referral_id) if move == "reroute" else referral_id
        return d.redirect(f"/referrals/{target}", "referral.done")
    slip = await d.read("referral", f"/referrals/{referral_id}")
    context = _slip_context(d, slip)
    return d.refused_form("referral.html", answer, {}, values=typed, failed_move=move, **context)
