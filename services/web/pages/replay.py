"""振り返り: what the meeting knew of a person's case on a past date, written as a 支援経過記録
(national form 【3】: date, who, what was done or agreed), not as an event log.

The date picker asks the views API's replay (``/persons/{id}/as-of``): by default only what had
been recorded by then; switched, also what was entered later with an earlier date (a contact
written up afterwards), each such entry marked with when it was recorded. A second view shows
what one agency was able to see on that date, category by category, with the basis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from services.web import formatting, presenting
from services.web.catalogue import Translator
from services.web.desk import Desk, desk
from services.web.pages.forms import options

router = APIRouter()
REPLAY_ROLES = ("meeting_organiser", "privacy_officer")
MODES = ("recorded", "later")
# "What the meeting knew on T": the whole of that day, unless a time is given.
END_OF_DAY = "23:59"
# Fields that identify or route rather than say what happened.
UNSAID = frozenset(
    {
        "consent_id",
        "gap_id",
        "case_ids",
        "named_on_slip",
        "provisional",
        "state",
        "plans_discussed",
        "members",
        "at",
        "basis",
        "basis_id",
        "declaration_id",
        "withdrawal_id",
        "evidence_ref",
        "given_by",
        "representative_relationship",
        "rerouted_from",
        "rerouted_to",
        "survivor_id",
        "consultation_opened_at",
        "drafted_with_person",
        "monitoring_dates",
    }
)
# Codes whose kind depends on the event that carries them.
EVENT_CODES = {
    ("CaseClosed", "reason"): "closure",
    ("PlanEvaluated", "outcome"): "evaluation",
    ("PlanEvaluated", "work_outcomes"): "work_outcome",
    ("MeetingScheduled", "kind"): "meeting_kind",
    ("MeetingHeld", "kind"): "meeting_kind",
    ("ReferralSent", "kind"): "kind",
    ("EmergencySupportRecorded", "kind"): "emergency",
    ("ReferralDeclineFollowedUp", "action"): "follow_up",
    ("ConsultationTriaged", "outcome"): "outcome",
}
VERSION = re.compile(r"/plan:(\d+)\.")


@dataclass
class Entry:
    """One line of the 支援経過記録: one event, whatever categories its facts fall under."""

    at: str
    recorded_at: str
    event: str
    agency: str
    categories: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    subjects: set[str] = field(default_factory=set)


def entries(timeline: list[dict[str, Any]]) -> list[Entry]:
    """The timeline's rows, one entry per event (its categories' facts merged), in order."""
    found: dict[str, Entry] = {}
    for row in timeline:
        entry = found.setdefault(
            row["event_id"], Entry(row["at"], row["recorded_at"], row["event"], row["agency"])
        )
        if row["category"] and row["category"] not in entry.categories:
            entry.categories.append(row["category"])
        for key, value in row["summary"].items():
            subject, _, name = key.rpartition(".")
            known = entry.fields.setdefault(name, value)
            if isinstance(known, list) and isinstance(value, list) and known is not value:
                # An assessment's issues come split by the category each falls under.
                entry.fields[name] = known + [v for v in value if v not in known]
            if subject:
                entry.subjects.add(subject.split("/")[0])
            version = VERSION.search(key)
            if version:
                entry.version = int(version.group(1))
    return list(found.values())


def _plain(name: str, value: Any) -> Any:
    """A value as ``presenting.show`` reads it: lists of records reduced to what they say."""
    if name == "attendees":
        return [a["agency"] for a in value]
    if name == "resource_gaps":
        return [g["gap"] for g in value]
    return value


def details(t: Translator, entry: Entry) -> list[tuple[str, str]]:
    """What the entry says, as (label, words), the fields that only identify left out."""
    said = []
    for name, value in entry.fields.items():
        if name in UNSAID or value in (None, "", []):
            continue
        kind = EVENT_CODES.get((entry.event, name))
        if name == "services":
            words = "、".join(_service(t, s) for s in value)
        elif kind:
            items = value if isinstance(value, list) else [value]
            words = "、".join(t.code(kind, str(v)) for v in items)
        else:
            words = presenting.show(t, name, _plain(name, value))
        said.append((t(f"field.{name}"), words))
    return said


def _service(t: Translator, service: dict[str, Any]) -> str:
    program = f"・{t.code('program', service['program'])}" if service.get("program") else ""
    kind = t.code("service_class", service["service_class"])
    return f"{t.code('agency', service['provider'])}{program}（{kind}）"


@dataclass(frozen=True)
class Situation:
    """Where the case stood at the date, read from the entries (never from today's state)."""

    plan: str
    referrals: list[str]
    meetings: list[str]
    case: str


def situation(t: Translator, found: list[Entry]) -> Situation:
    plan = t("replay.no_plan")
    case = t("replay.no_case")
    referrals: dict[str, str] = {}
    meetings: dict[str, str] = {}
    for entry in found:
        version = t("case.version").replace("{n}", str(entry.version))
        if entry.event == "PlanDrafted":
            plan = f"{version}：{t('plan_status.draft')}"
        elif entry.event == "PlanApproved":
            plan = f"{version}：{t('plan_status.approved')}"
        elif entry.event == "PlanEvaluated":
            outcome = t.code("evaluation", str(entry.fields.get("outcome")))
            plan = f"{version}：{t('plan_status.evaluated')}（{outcome}）"
        elif entry.event in ("CaseOpened", "CaseReopened"):
            case = t("case.status_open")
        elif entry.event == "CaseClosed":
            case = f"{t('case.status_closed')}（{t.code('closure', str(entry.fields['reason']))}）"
        for subject in entry.subjects:
            if subject.startswith("referral:"):
                referrals[subject] = f"{formatting.wareki(entry.at)}：{t('event.' + entry.event)}"
            if subject.startswith("meeting:"):
                kind = entry.fields.get("kind")
                label = t.code("meeting_kind", str(kind)) if kind else t("record.meeting")
                meetings[subject] = (
                    f"{label}：{formatting.wareki(entry.at)} {t('event.' + entry.event)}"
                )
    return Situation(plan, list(referrals.values()), list(meetings.values()), case)


def _instant(on: str, time: str) -> str | None:
    return formatting.business_time(on, time or END_OF_DAY)


@router.get("/persons/{person_id}/replay")
async def replay(
    person_id: str,
    on: str = "",
    time: str = "",
    mode: str = "recorded",
    agency: str = "",
    d: Desk = Depends(desk),
) -> Response:
    mode = mode if mode in MODES else "recorded"
    typed = {"on": on, "time": time, "mode": mode, "agency": agency}
    context: dict[str, Any] = {
        "person_id": person_id,
        "values": typed,
        "modes": options(d.t, "replay.mode", MODES),
        "agencies": d.agencies(),
        "may_replay": any(d.user.has_role(r) for r in REPLAY_ROLES),
        "document": None,
    }
    at = _instant(on, time)
    if at is None or not context["may_replay"]:
        return d.render("replay.html", **context)
    document = await d.read(
        "views",
        f"/persons/{person_id}/as-of",
        at=at,
        back_entered="true" if mode == "later" else "false",
        agency=agency or None,
    )
    found = entries(document["timeline"])
    as_of = datetime.fromisoformat(at)
    context |= {
        "document": document,
        "as_of": at,
        "lines": [
            (e, details(d.t, e), datetime.fromisoformat(e.recorded_at) > as_of) for e in found
        ],
        "situation": situation(d.t, found),
        "agency_view": _agency_view(d.t, document.get("agency_view")),
    }
    return d.render("replay.html", **context)


def _agency_view(t: Translator, view: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the agency could see, by category: the basis, and the facts the user may see now."""
    if view is None:
        return None
    categories = []
    for category, seen in view["categories"].items():
        facts = None
        if seen["fields"] is not None:
            facts = [
                (t(f"field.{name}"), presenting.show(t, name, _plain(name, value)))
                for name, value in {
                    key.rpartition(".")[2]: value for key, value in seen["fields"].items()
                }.items()
                if name not in UNSAID and value not in (None, "", [])
            ]
        categories.append((category, seen["basis"], seen["basis_id"], facts))
    return {"agency": view["agency"], "categories": categories}
