"""本人検索, 本人登録 and 本人の情報: find a person, register one (duplicates shown first), see
the person as the caller's agency may, each category with its basis in words, and erase their
data (本人からの消去請求, 保存期間満了) once the user has confirmed it cannot be undone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from contracts.reference import reference
from services.platform.keys import REQUESTED_ERASURE_REASONS
from services.platform.sealing import is_erased
from services.web import formatting
from services.web.desk import Desk, Refused, check_csrf, desk
from services.web.pages.forms import body, options, values

router = APIRouter()
PAGE = 20
SEXES = ("male", "female", "other", "unknown")
PERSON_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
    "address",
    "phone",
    "local_id",
)
KANA_AND_NAME = ("family_name_kana", "given_name_kana", "family_name", "given_name")
LABELS = {name: f"person.{name}" for name in PERSON_FIELDS} | {
    "q": "person.query",
    "registered_on": "person.registered_on",
    "local_id": "person.local_id",
    "reason": "person.erase_reason",
    "confirmed": "person.erase_confirm",
}
# Who is offered the erasure: the API decides (a privacy officer over their agency only is
# refused there, with the reason).
ERASING_ROLE = "self_reliance_office"


def identity(document: dict[str, Any]) -> dict[str, Any]:
    """The identity fields a summary shows (empty when identity is withheld); an erased name
    names nobody, and the person is shown by their id instead."""
    for category in document.get("categories", []):
        if category["category"] == "identity":
            return {k: v for k, v in category["fields"].items() if not is_erased(v)}
    return {}


@router.get("/persons")
async def search(
    q: str = "",
    birth_date: str = "",
    local_id: str = "",
    consultation: str = "",
    cursor: str | None = None,
    d: Desk = Depends(desk),
) -> Response:
    typed = {"q": q.strip(), "birth_date": birth_date, "local_id": local_id.strip()}
    context: dict[str, Any] = {
        "values": typed,
        "consultation": consultation,
        "labels": LABELS,
        "results": None,
    }
    if any(typed.values()):
        answer = await d.get(
            "views", "/persons/search", **body(typed, typed), limit=PAGE, cursor=cursor
        )
        if not answer.ok:
            return d.refused_form("persons.html", answer, {}, **context)
        context["results"] = [(r, identity(r)) for r in answer.body]
        context["cursor"] = answer.next_cursor
    return d.render("persons.html", **context)


def _register_context(d: Desk, consultation: str) -> dict[str, Any]:
    return {
        "sexes": options(d.t, "sex", SEXES),
        "labels": LABELS,
        "consultation": consultation,
    }


@router.get("/persons/new")
async def new(consultation: str = "", d: Desk = Depends(desk)) -> Response:
    return d.render(
        "person_new.html", values={"sex": "unknown"}, **_register_context(d, consultation)
    )


@router.post("/persons")
async def register(form: Any = Depends(check_csrf), d: Desk = Depends(desk)) -> Response:
    typed = values(form, (*PERSON_FIELDS, "registered_on", "confirmed", "consultation"))
    context = _register_context(d, typed["consultation"])
    if typed["confirmed"] != "1":
        # Duplicates first: the worker decides before a second record of the same person exists.
        check = body(typed, (*KANA_AND_NAME, "birth_date"))
        if any(check.get(name) for name in KANA_AND_NAME):
            found = await d.get("views", "/persons/candidates", **check, limit=PAGE)
            if found.ok and found.body:
                candidates = [(c, identity(c)) for c in found.body]
                return d.render("person_new.html", values=typed, candidates=candidates, **context)
    request = body(typed, PERSON_FIELDS)
    if typed["registered_on"]:
        request["registered_at"] = formatting.business_time(typed["registered_on"])
    answer = await d.post("intake", "/persons", request)
    if not answer.ok:
        fields = {"registered_at": "registered_on"}
        return d.refused_form("person_new.html", answer, fields, values=typed, **context)
    person_id = answer.body["id"]
    if typed["consultation"]:
        await d.post(
            "intake", f"/consultations/{typed['consultation']}/attach", {"person_id": person_id}
        )
    return d.redirect(f"/persons/{person_id}", "person.saved")


async def _person_page(d: Desk, person_id: str) -> dict[str, Any]:
    """What the person page shows: the caller's view of the person, and the forms it offers."""
    person = await d.read("views", f"/persons/{person_id}")
    agency = reference().agency(d.user.agency)
    return {
        "p": person,
        "name": identity(person),
        "labels": LABELS,
        "may_erase": (agency is not None and agency.role == ERASING_ROLE)
        or d.user.has_role("privacy_officer"),
        "erasure_reasons": options(d.t, "erasure_reason", REQUESTED_ERASURE_REASONS),
    }


@router.get("/persons/{person_id}")
async def show(person_id: str, d: Desk = Depends(desk)) -> Response:
    try:
        return d.render("person.html", **await _person_page(d, person_id))
    except Refused as refused:
        survivor = refused.answer.survivor
        if survivor is None:
            raise
        # A duplicate merged into another person: their page is the survivor's, which shows
        # what was recorded under the duplicate too.
        return d.redirect(f"/persons/{survivor}", "person.merged_into")


@router.get("/persons/{person_id}/consents")
async def consents(person_id: str, cursor: str | None = None, d: Desk = Depends(desk)) -> Response:
    """The person's consents the caller may read, a page at a time: loaded into the person
    page after it shows (htmx), or a page of its own without script."""
    found = await d.get("intake", f"/persons/{person_id}/consents", limit=PAGE, cursor=cursor)
    template = "_person_consents.html" if d.request.headers.get("hx-request") else "consents.html"
    return d.render(
        template,
        person_id=person_id,
        consents=found.body if found.ok else [],
        cursor=found.next_cursor,
    )


@router.post("/persons/{person_id}/links")
async def link(
    person_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, ("local_id",))
    answer = await d.post("intake", f"/persons/{person_id}/links", body(typed, ("local_id",)))
    if answer.ok:
        return d.redirect(f"/persons/{person_id}", "person.linked")
    page = await _person_page(d, person_id)
    return d.refused_form("person.html", answer, {}, values=typed, **page)


@router.post("/persons/{person_id}/erasure")
async def erase(
    person_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    """Erase the person's data, once the user has ticked that it cannot be undone."""
    typed = values(form, ("reason",), ("confirmed",))
    if typed["confirmed"] != ["1"]:
        page = await _person_page(d, person_id)
        errors = {"confirmed": "missing_choice"}
        return d.render("person.html", 422, errors=errors, values=typed, **page)
    answer = await d.post("intake", f"/persons/{person_id}/erasure", body(typed, ("reason",)))
    if answer.ok:
        return d.redirect(f"/persons/{person_id}", "person.erased_done")
    page = await _person_page(d, person_id)
    return d.refused_form("person.html", answer, {}, values=typed, **page)
