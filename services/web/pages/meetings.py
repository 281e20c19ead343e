"""会議: 支援調整会議 (individual and regular) and 支援会議 (法第9条), scheduled, held, and at a
支援会議 information shared after a preview of who will see it and on what basis.

A tax share the law forbids is refused at the preview, with 地方税法第22条 and the members no
consent covers, exactly as the API would refuse the share itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from contracts.reference import reference
from services.platform.pagination import MAX_LIMIT
from services.web import formatting
from services.web.client import Answer
from services.web.desk import Desk, check_csrf, desk
from services.web.pages.forms import body, options, values
from services.web.pages.steps import WHEN_FIELDS, lines, refusal, when

router = APIRouter()
PAGE = 20
INDIVIDUAL, REGULAR, ARTICLE9 = (
    "individual_coordination",
    "regular_coordination",
    "article9_support_meeting",
)
MEMBER_ROWS = 6
MEMBERSHIP_DAYS = 365
SCHEDULE_FIELDS = ("kind", "case", "person", "scheduled_on", "scheduled_time")
HOLD_FIELDS = ("person_attended", "conclusions")
SHARE_FIELDS = ("note",)
LABELS = {
    "on": "step.on",
    "time": "step.time",
    "scheduled_on": "meeting.scheduled_on",
    "scheduled_time": "meeting.scheduled_time",
    "cases": "meeting.cases",
    "members": "meeting.members",
    "attendees": "meeting.attendees",
    "person_attended": "meeting.person_attended",
    "conclusions": "meeting.conclusions",
    "categories": "meeting.share_categories",
    "note": "meeting.share_note",
}


def member_field(row: int, part: str) -> str:
    return f"member_{row}_{part}"


MEMBER_FIELDS = tuple(
    member_field(row, part) for row in range(MEMBER_ROWS) for part in ("agency", "from", "until")
)
FORM_FIELD = {
    "at": "on",
    "scheduled_for": "scheduled_on",
    "case_ids": "cases",
    **{f"members.{row}.agency": member_field(row, "agency") for row in range(MEMBER_ROWS)},
    **{f"members.{row}.valid_until": member_field(row, "until") for row in range(MEMBER_ROWS)},
    **{f"attendees.{row}.agency": "attendees" for row in range(len(reference().agencies))},
}
LABELS |= {
    member_field(row, part): f"meeting.member_{part}"
    for row in range(MEMBER_ROWS)
    for part in ("agency", "from", "until")
}


def organises(d: Desk) -> bool:
    """Whether the user's agency may organise meetings (a self-reliance support office)."""
    agency = reference().agency(d.user.agency)
    return agency is not None and agency.role == "self_reliance_office"


@router.get("/meetings")
async def organised(cursor: str | None = None, d: Desk = Depends(desk)) -> Response:
    listed = await d.get("meeting", "/meetings", limit=PAGE, cursor=cursor)
    return d.render(
        "meetings.html",
        meetings=listed.body if listed.ok else [],
        organises=organises(d),
        person_id=None,
        cursor=listed.next_cursor,
    )


@router.get("/persons/{person_id}/meetings")
async def of_person(person_id: str, d: Desk = Depends(desk)) -> Response:
    listed = await d.read("meeting", f"/persons/{person_id}/meetings")
    return d.render("meetings.html", meetings=listed, organises=organises(d), person_id=person_id)


async def _schedule_context(d: Desk, kind: str) -> dict[str, Any]:
    cases: list[tuple[str, str]] = []
    if kind == REGULAR:
        # A regular meeting reviews the open cases: the most a page holds, in one list.
        found = await d.get("meeting", "/cases", status="open", limit=MAX_LIMIT)
        cases = [(c["id"], _case_label(d, c)) for c in (found.body if found.ok else [])]
    return {
        "kind": kind,
        "cases": cases,
        "agencies": d.agencies(),
        "member_rows": range(MEMBER_ROWS),
        "member_field": member_field,
        "labels": LABELS,
    }


def _case_label(d: Desk, case: dict[str, Any]) -> str:
    state = d.t("case.no_plan")
    if case["plans"]:
        plan = case["plans"][-1]
        version = d.t("case.version").replace("{n}", str(plan["version"]))
        state = f"{version}：{d.t.code('plan_status', plan['status'])}"
    opened = f"{d.t('case.opened_at')} {formatting.wareki(case['opened_at'])}"
    return f"{opened}・{state}（{d.t('person.id')} {case['person_id'][:8]}）"


@router.get("/meetings/new")
async def new(
    kind: str = REGULAR, case: str = "", person: str = "", d: Desk = Depends(desk)
) -> Response:
    kind = kind if kind in (INDIVIDUAL, REGULAR, ARTICLE9) else REGULAR
    typed: dict[str, Any] = {"kind": kind, "case": case, "person": person}
    if kind == ARTICLE9:
        until = (formatting.today() + timedelta(days=MEMBERSHIP_DAYS)).isoformat()
        typed |= {member_field(row, "until"): until for row in range(MEMBER_ROWS)}
        typed[member_field(0, "agency")] = d.user.agency
    return d.render("meeting_new.html", values=typed, **await _schedule_context(d, kind))


def _schedule_body(typed: dict[str, Any]) -> dict[str, Any]:
    kind = typed["kind"]
    request: dict[str, Any] = {
        "kind": kind,
        "scheduled_for": formatting.business_time(typed["scheduled_on"], typed["scheduled_time"]),
    } | when(typed)
    if kind == INDIVIDUAL:
        request["case_ids"] = [typed["case"]]
    elif kind == REGULAR:
        request["case_ids"] = typed["cases"]
    else:
        request["person_id"] = typed["person"]
        request["members"] = [
            {
                "agency": typed[member_field(row, "agency")],
                "valid_from": formatting.business_time(typed[member_field(row, "from")]),
                "valid_until": formatting.business_time(typed[member_field(row, "until")]),
            }
            for row in range(MEMBER_ROWS)
            if typed[member_field(row, "agency")]
        ]
    return request


@router.post("/meetings")
async def schedule(form: Any = Depends(check_csrf), d: Desk = Depends(desk)) -> Response:
    typed = values(form, (*SCHEDULE_FIELDS, *MEMBER_FIELDS, *WHEN_FIELDS), ("cases",))
    answer = await d.post("meeting", "/meetings", _schedule_body(typed))
    if answer.ok:
        return d.redirect(f"/meetings/{answer.body['id']}", "meeting.scheduled_notice")
    return d.refused_form(
        "meeting_new.html",
        answer,
        FORM_FIELD,
        values=typed,
        refused=refusal(answer),
        **await _schedule_context(d, typed["kind"]),
    )


async def _meeting_context(d: Desk, meeting_id: str) -> dict[str, Any]:
    meeting = await d.read("meeting", f"/meetings/{meeting_id}")
    items: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    if meeting["kind"] == ARTICLE9:
        shared = await d.get("meeting", f"/meetings/{meeting_id}/information")
        items = shared.body if shared.ok else []
    if meeting["kind"] == REGULAR:
        found = await d.get("meeting", f"/meetings/{meeting_id}/resource-gaps")
        gaps = found.body if found.ok else []
    member = any(m["agency"] == d.user.agency for m in meeting["members"])
    return {
        "m": meeting,
        "items": items,
        "gaps": gaps,
        "may_hold": "hold" in meeting["allowed"] and meeting["organiser"] == d.user.agency,
        "may_share": "share_information" in meeting["allowed"] and member,
        "person_attends": bool(
            reference().meeting_kinds[meeting["kind"]].get("person_attends", False)
        ),
        "labels": LABELS,
    }


@router.get("/meetings/{meeting_id}")
async def show(meeting_id: str, d: Desk = Depends(desk)) -> Response:
    return d.render("meeting.html", **await _meeting_context(d, meeting_id))


def _attendee_options(d: Desk, meeting: dict[str, Any]) -> list[tuple[str, str]]:
    """Who may attend: a 支援会議's members (bound by confidentiality), else any agency."""
    if meeting["kind"] == ARTICLE9:
        return options(d.t, "agency", [m["agency"] for m in meeting["members"]])
    return d.agencies()


@router.get("/meetings/{meeting_id}/hold")
async def hold_form(meeting_id: str, d: Desk = Depends(desk)) -> Response:
    context = await _meeting_context(d, meeting_id)
    typed = {"attendees": [context["m"]["organiser"]]}
    return d.render(
        "meeting_hold.html",
        values=typed,
        attendee_options=_attendee_options(d, context["m"]),
        **context,
    )


@router.post("/meetings/{meeting_id}/hold")
async def hold(
    meeting_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = values(form, (*HOLD_FIELDS, *WHEN_FIELDS), ("attendees",))
    context = await _meeting_context(d, meeting_id)
    organiser = context["m"]["organiser"]
    request = {
        "attendees": [
            {"agency": a, "role": "organiser" if a == organiser else "member"}
            for a in typed["attendees"]
        ],
        "person_attended": typed["person_attended"] == "1",
        "conclusions": lines(typed["conclusions"]),
    } | when(typed)
    answer = await d.post("meeting", f"/meetings/{meeting_id}/held", request)
    if answer.ok:
        return d.redirect(f"/meetings/{meeting_id}", "meeting.held_notice")
    return d.refused_form(
        "meeting_hold.html",
        answer,
        FORM_FIELD,
        values=typed,
        refused=refusal(answer),
        attendee_options=_attendee_options(d, context["m"]),
        **context,
    )


def _share_choices(d: Desk) -> dict[str, Any]:
    return {"categories": options(d.t, "category", reference().data_categories)}


def _share_typed(form: Any) -> dict[str, Any]:
    return values(form, (*SHARE_FIELDS, *WHEN_FIELDS), ("categories",))


@router.get("/meetings/{meeting_id}/share")
async def share_form(meeting_id: str, d: Desk = Depends(desk)) -> Response:
    context = await _meeting_context(d, meeting_id)
    return d.render("meeting_share.html", values={}, **_share_choices(d), **context)


@router.post("/meetings/{meeting_id}/share/edit")
async def share_edit(
    meeting_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    """Back from the preview to the form, as it was filled in."""
    context = await _meeting_context(d, meeting_id)
    return d.render("meeting_share.html", values=_share_typed(form), **_share_choices(d), **context)


@router.post("/meetings/{meeting_id}/share/preview")
async def share_preview(
    meeting_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    """Who would see the item, and on what basis, before anything is shared."""
    typed = _share_typed(form)
    query = {"categories": typed["categories"]} | when(typed)
    answer = await d.get("meeting", f"/meetings/{meeting_id}/information/preview", **query)
    if not answer.ok:
        return await _share_refused(d, meeting_id, answer, typed)
    context = await _meeting_context(d, meeting_id)
    return d.render("meeting_share_preview.html", values=typed, preview=answer.body, **context)


@router.post("/meetings/{meeting_id}/share")
async def share(
    meeting_id: str, form: Any = Depends(check_csrf), d: Desk = Depends(desk)
) -> Response:
    typed = _share_typed(form)
    request = body(typed, ("categories", "note")) | when(typed)
    answer = await d.post("meeting", f"/meetings/{meeting_id}/information", request)
    if answer.ok:
        return d.redirect(f"/meetings/{meeting_id}", "meeting.shared_notice")
    return await _share_refused(d, meeting_id, answer, typed)


async def _share_refused(
    d: Desk, meeting_id: str, answer: Answer, typed: dict[str, Any]
) -> Response:
    """The share form again, with the refusal (a tax share: the law and the members)."""
    return d.refused_form(
        "meeting_share.html",
        answer,
        FORM_FIELD,
        values=typed,
        refused=refusal(answer),
        **_share_choices(d),
        **await _meeting_context(d, meeting_id),
    )
