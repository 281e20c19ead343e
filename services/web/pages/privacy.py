"""個人情報保護: the privacy officer's console.

Who saw a person, when and on what basis; everything one agency saw; what a consent let out
before its withdrawal; what was purged; whether the audit chain is intact and anchored by a
signed checkpoint; the proof of one disclosure, rebuilt from the events, to print and file;
the accounting of disclosures a person asking 「誰が私の情報を見たか」 receives; and the
disclosures under a vital-interest declaration awaiting review. Everything comes from the audit
API with the officer's own token: the API decides who may ask, and its refusals are shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from contracts.reference import reference
from services.platform.pagination import MAX_LIMIT
from services.web import formatting
from services.web.client import Answer
from services.web.desk import Desk, Refused, check_csrf, desk
from services.web.pages import replay as replay_page
from services.web.pages.forms import values
from services.web.pages.persons import identity

router = APIRouter()
PAGE = 50
# The views an audit entry can name (its ``view_request``); any other reads as "other".
VIEWS = (
    "person",
    "person_summary",
    "as_of",
    "replay",
    "referral",
    "inbox",
    "outbox",
    "case",
    "meeting",
    "resource_gaps",
    "share_preview",
    "information",
    "disclosure_map",
    "consent",
    "consent_receipt",
    "consent_coverage",
    "consent_withdrawal_effect",
    "other",
)
# What the verifier can find wrong (``AnchoredVerification.findings``); any other as "other".
FINDINGS = (
    "altered",
    "deleted",
    "reordered",
    "inserted",
    "broken_link",
    "truncated",
    "rewritten",
    "unreadable_checkpoint",
    "unknown_key",
    "forged_checkpoint",
    "other",
)
DENIED = "access_denied"
VITAL_INTEREST = "vital_interest"
LABELS = {
    "q": "privacy.find_person",
    "person_id": "privacy.person_id",
    "agency": "privacy.agency",
    "since": "privacy.since",
    "until": "privacy.until",
    "consent_id": "privacy.consent_id",
    "note": "privacy.review_note",
}


@dataclass(frozen=True)
class Ground:
    """One basis an entry showed categories under: the basis, its id, and those categories."""

    basis: str
    basis_id: str | None
    categories: list[str]


@dataclass(frozen=True)
class Seen:
    """One audit entry as the console lists it."""

    entry: dict[str, Any]
    grounds: list[Ground]
    view: str

    @property
    def denied(self) -> bool:
        return bool(self.entry["kind"] == DENIED)


def in_category_order(categories: Iterable[str]) -> list[str]:
    """Categories in the reference data's order, as a person view lists them."""
    order = reference().data_categories
    return sorted(categories, key=lambda c: order.index(c) if c in order else len(order))


def grounds(bases: Mapping[str, Mapping[str, str | None]]) -> list[Ground]:
    """The categories an entry showed, grouped by the basis (and its id) that allowed them."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for category in in_category_order(bases):
        basis = bases[category]
        found.setdefault((str(basis["basis"]), basis["basis_id"]), []).append(category)
    return [Ground(basis, basis_id, shown) for (basis, basis_id), shown in found.items()]


def seen(entries: list[dict[str, Any]]) -> list[Seen]:
    found = []
    for entry in entries:
        view = (entry.get("view_request") or {}).get("view")
        found.append(Seen(entry, grounds(entry["bases"]), view if view in VIEWS else "other"))
    return found


@dataclass(frozen=True)
class Period:
    """A period typed as two dates, both inclusive, as the API's instants (JST)."""

    since: str
    until: str
    errors: dict[str, str]

    def params(self) -> dict[str, str | None]:
        if self.errors:
            return {}
        end = date.fromisoformat(self.until) + timedelta(days=1) if self.until else None
        return {
            "since": formatting.business_time(self.since),
            "until": formatting.business_time(end.isoformat()) if end else None,
        }


def period(since: str, until: str) -> Period:
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for name, value in (("since", since), ("until", until)):
        if value:
            try:
                days[name] = date.fromisoformat(value)
            except ValueError:
                errors[name] = "date_parsing"
    if not errors and len(days) == 2 and days["until"] < days["since"]:
        errors["until"] = "not_before_since"
    return Period(since, until, errors)


async def _all(d: Desk, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of an audit list, followed to its end (a printed accounting is whole)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = await d.get("views", path, limit=MAX_LIMIT, cursor=cursor, **params)
        if not answer.ok:
            raise Refused(answer)
        found += answer.body
        cursor = answer.next_cursor
        if cursor is None:
            return found


async def _listing(
    d: Desk, path: str, cursor: str | None, asked: Period, **params: Any
) -> dict[str, Any]:
    """One page of an audit list, and the cursor of the next."""
    answer = await d.get("views", path, limit=PAGE, cursor=cursor, **asked.params(), **params)
    if not answer.ok:
        raise Refused(answer)
    return {"seen": seen(answer.body), "cursor": answer.next_cursor}


@router.get("/privacy")
async def console(q: str = "", d: Desk = Depends(desk)) -> Response:
    context: dict[str, Any] = {
        "values": {"q": q},
        "agencies": d.agencies(),
        "labels": LABELS,
        "results": None,
    }
    pending = await d.get("views", "/audit/vital-interest/pending")
    if pending.status == 403:
        # The audit API refuses this user: nothing here would answer them.
        return d.render("privacy.html", status=403, refused=True, **context)
    context["pending"] = len(pending.body) if pending.ok else None
    if q.strip():
        answer = await d.get("views", "/persons/search", q=q.strip(), limit=PAGE)
        if not answer.ok:
            return d.refused_form("privacy.html", answer, {}, **context)
        context["results"] = [(r, identity(r)) for r in answer.body]
    return d.render("privacy.html", **context)


@router.get("/privacy/person")
async def person_by_id(person_id: str = "", d: Desk = Depends(desk)) -> Response:
    """The console's "by id" form: to the person's record, or the form again if empty."""
    if not person_id.strip():
        return d.redirect("/privacy")
    return d.redirect(f"/privacy/persons/{person_id.strip()}")


@router.get("/privacy/persons/{person_id}")
async def who_saw(
    person_id: str,
    agency: str = "",
    since: str = "",
    until: str = "",
    cursor: str | None = None,
    d: Desk = Depends(desk),
) -> Response:
    """本人の情報を見た記録: every read of the person, each category with its basis."""
    asked = period(since, until)
    context: dict[str, Any] = {
        "person_id": person_id,
        "values": {"agency": agency, "since": since, "until": until},
        "errors": asked.errors,
        "labels": LABELS,
        "agencies": d.agencies(),
        "seen": [],
        "cursor": None,
    }
    if not asked.errors:
        path = f"/audit/persons/{person_id}"
        context |= await _listing(d, path, cursor, asked, agency=agency or None)
    return d.render("privacy_person.html", status=422 if asked.errors else 200, **context)


@router.get("/privacy/agency")
async def agency_saw(
    agency: str = "",
    since: str = "",
    until: str = "",
    cursor: str | None = None,
    d: Desk = Depends(desk),
) -> Response:
    """Everything one agency's staff saw (and were refused), person by person."""
    asked = period(since, until)
    errors = dict(asked.errors)
    if not agency:
        errors["agency"] = "missing_choice"
    context: dict[str, Any] = {
        "values": {"agency": agency, "since": since, "until": until},
        "errors": errors,
        "labels": LABELS,
        "agencies": d.agencies(),
        "seen": None,
        "cursor": None,
    }
    if not errors:
        context |= await _listing(d, f"/audit/agencies/{agency}", cursor, asked)
    status = 422 if errors and (agency or since or until) else 200
    return d.render("privacy_agency.html", status=status, **context)


@router.get("/privacy/consent")
async def revocation_impact(consent_id: str = "", d: Desk = Depends(desk)) -> Response:
    """What a consent let out before its withdrawal, and what its withdrawal could not undo."""
    if not consent_id.strip():
        return d.render("privacy_consent.html", impact=None, labels=LABELS, values={})
    impact = await d.read("views", f"/audit/consents/{consent_id.strip()}/impact")
    impact["categories"] = in_category_order(impact["categories"])
    for purge in impact["purged"]:
        purge["categories"] = in_category_order(purge["categories"])
    return d.render(
        "privacy_consent.html",
        impact=impact,
        before=seen(impact["disclosed_before"]),
        after=seen(impact["disclosed_after"]),
        labels=LABELS,
        values={"consent_id": consent_id},
    )


@router.get("/privacy/persons/{person_id}/purges")
async def purges(person_id: str, d: Desk = Depends(desk)) -> Response:
    """消去の記録 (ViewPurged): categories taken out of an agency's view when their basis ended."""
    found = await d.read("views", f"/audit/persons/{person_id}/purges")
    ended = {p["purge_id"]: grounds(p["categories"]) for p in found}
    return d.render("privacy_purges.html", person_id=person_id, purges=found, ended=ended)


@router.get("/privacy/chain")
async def chain(d: Desk = Depends(desk)) -> Response:
    """The chain checked link by link and against its signed checkpoints."""
    verified = await d.read("views", "/audit/verify")
    return d.render("privacy_chain.html", v=verified, findings=FINDINGS)


@router.post("/privacy/checkpoints")
async def sign_checkpoint(_: Any = Depends(check_csrf), d: Desk = Depends(desk)) -> Response:
    answer = await d.post("views", "/audit/checkpoints")
    if not answer.ok:
        raise Refused(answer)
    return d.redirect("/privacy/chain", "privacy.checkpoint_signed")


@router.get("/privacy/entries/{position}")
async def proof(position: int, d: Desk = Depends(desk)) -> Response:
    """開示の証明: the entry, the body rebuilt from the events and its hash against the one
    served, and each category's basis as recorded and as rebuilt. Prints on one A4 page."""
    entry = await d.read("views", f"/audit/entries/{position}")
    replayed = await d.get("views", f"/audit/entries/{position}/replay")
    if not replayed.ok and replayed.status != 409:
        raise Refused(replayed)
    replay = replayed.body if replayed.ok else None
    [shown] = seen([entry])
    document = replay.get("document") if replay else None
    rebuilt = replay["bases"] if replay else {}
    return d.render(
        "privacy_proof.html",
        e=entry,
        shown=shown,
        replay=replay,
        bases=compared(entry["bases"], rebuilt),
        document=document,
        # The rebuilt document is shown only whole, where the officer's agency may see now
        # every category it showed; else the API says which it may not.
        withheld_now=(replay or {}).get("document_withheld") or [],
        person_shaped=isinstance((document or {}).get("categories"), list),
        lines=_record_sheet(d, document),
        issued_at=datetime.now(formatting.JST),
    )


Basis = Mapping[str, str | None]


def compared(
    recorded: Mapping[str, Basis], rebuilt: Mapping[str, Basis]
) -> list[tuple[list[str], Basis | None, Basis | None]]:
    """Each category's basis as the entry recorded it and as the replay rebuilt it, the
    categories that share both in one row (most disclosures have a single basis)."""
    rows: dict[str, tuple[list[str], Basis | None, Basis | None]] = {}
    for category in in_category_order({**rebuilt, **recorded}):
        pair = (recorded.get(category), rebuilt.get(category))
        row = rows.setdefault(json.dumps(pair, sort_keys=True), ([], *pair))
        row[0].append(category)
    return list(rows.values())


def _record_sheet(d: Desk, document: dict[str, Any] | None) -> list[Any] | None:
    """An as-of answer's timeline read as the replay screen reads it (支援経過記録)."""
    if document is None or not isinstance(document.get("timeline"), list):
        return None
    return [(e, replay_page.details(d.t, e)) for e in replay_page.entries(document["timeline"])]


@router.get("/privacy/persons/{person_id}/accounting")
async def accounting(
    person_id: str, since: str = "", until: str = "", d: Desk = Depends(desk)
) -> Response:
    """開示等の記録: every disclosure of the person (date, recipient, what, why), whole, to print
    and hand to the person; HIPAA §164.528's accounting is the model."""
    asked = period(since, until)
    if asked.errors:
        return d.render(
            "privacy_accounting.html",
            status=422,
            person_id=person_id,
            values={"since": since, "until": until},
            errors=asked.errors,
            labels=LABELS,
            rows=[],
            name={},
        )
    entries = await _all(d, f"/audit/persons/{person_id}", **asked.params())
    rows = [s for s in seen(entries) if not s.denied and s.grounds]
    person = await d.get("views", f"/persons/{person_id}")
    return d.render(
        "privacy_accounting.html",
        person_id=person_id,
        values={"since": since, "until": until},
        labels=LABELS,
        rows=rows,
        name=identity(person.body) if person.ok else {},
        issued_on=formatting.today(),
    )


def declarations_of(entries: list[Seen]) -> dict[str, list[Seen]]:
    """The pending entries by the declaration whose basis they showed categories under."""
    found: dict[str, list[Seen]] = {}
    for s in entries:
        for ground in s.grounds:
            if ground.basis == VITAL_INTEREST and ground.basis_id:
                found.setdefault(ground.basis_id, []).append(s)
    return found


async def _pending(d: Desk) -> dict[str, list[Seen]]:
    return declarations_of(seen(await d.read("views", "/audit/vital-interest/pending")))


async def _declaration(d: Desk, declaration_id: str, entries: list[Seen]) -> dict[str, Any] | None:
    """The declaration itself, as the meeting service keeps it (reason, window, recipients)."""
    person = entries[0].entry["person_id"] if entries else None
    if person is None:
        return None
    answer = await d.get("meeting", f"/persons/{person}/vital-interests")
    if answer.survivor:
        # Read under a duplicate merged since: the survivor's list holds it.
        answer = await d.get("meeting", f"/persons/{answer.survivor}/vital-interests")
    found = [x for x in answer.body if x["id"] == declaration_id] if answer.ok else []
    return found[0] if found else None


@router.get("/privacy/vital-interest")
async def vital_interest(d: Desk = Depends(desk)) -> Response:
    """Declarations whose disclosures await the privacy officer's review."""
    pending = await _pending(d)
    groups = [
        (declaration_id, entries, await _declaration(d, declaration_id, entries))
        for declaration_id, entries in pending.items()
    ]
    return d.render("privacy_vital.html", groups=groups)


async def _review_page(d: Desk, declaration_id: str, status: int = 200, **context: Any) -> Response:
    entries = (await _pending(d)).get(declaration_id, [])
    return d.render(
        "privacy_review.html",
        status=status,
        declaration_id=declaration_id,
        entries=entries,
        declaration=await _declaration(d, declaration_id, entries),
        labels=LABELS,
        **context,
    )


@router.get("/privacy/vital-interest/{declaration_id}")
async def review_form(declaration_id: str, d: Desk = Depends(desk)) -> Response:
    return await _review_page(d, declaration_id)


@router.post("/privacy/vital-interest/{declaration_id}")
async def review(
    declaration_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    """Each disclosure shown on the form (and only those: one made since was not seen) reviewed
    with the same note; one another officer reviewed meanwhile is left as it is."""
    typed = values(form, ("note",), ("position",))
    for position in (p for p in typed["position"] if p.isascii() and p.isdigit()):
        answer: Answer = await d.post(
            "views", f"/audit/vital-interest/{position}/review", {"note": typed["note"]}
        )
        if answer.status == 422:
            return await _review_page(
                d,
                declaration_id,
                status=422,
                values=typed,
                errors={name: rule for name, rule in answer.problems().items()},
            )
        if not answer.ok and answer.status != 409:
            raise Refused(answer)
    return d.redirect("/privacy/vital-interest", "privacy.reviewed")
