"""The stories' meeting steps, played through the meeting service's HTTP API.

The stories never open a case: the first step that needs one opens it from the story's latest
consultation. An assessment presupposes the application (利用申込, seed 003 ch.2 ③), so where a
story leaves the application out, it is received first — the only step played that the story
does not write down, besides a plan placeholder where a story approves a plan it never drafted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.scenarios import Played, Scenario, ScenarioPlayer, step, step_time

# The stories give no plan period or membership period; these are the stand-ins.
PLAN_PERIOD = timedelta(days=182)
MEMBERSHIP_PERIOD = timedelta(days=365)
UNWRITTEN_PLAN = "（ストーリーに記載のないプラン案）"
TAX_LAW = "地方税法第22条"


def _day(played: Played, value: Any) -> str:
    """A story's calendar date as played (shifted)."""
    return (step_time(f"{value}T00:00") + played.shift).date().isoformat()


def _case(player: ScenarioPlayer, entry: dict[str, Any], played: Played) -> str:
    """The story's case, opened from its latest consultation's application on first use."""
    if played.cases:
        return played.cases[-1]
    consultation_id, at = played.consultations[-1], played.when(entry["at"])
    consultation = player.call("intake", "GET", f"/consultations/{consultation_id}", entry)
    if consultation["person_id"] is None:
        body = {"person_id": played.person, "at": at}
        player.call("intake", "POST", f"/consultations/{consultation_id}/attach", entry, body)
    if consultation["application_at"] is None:
        path = f"/consultations/{consultation_id}/application"
        player.call("intake", "POST", path, entry, {"at": at})
    body = {"consultation_id": consultation_id, "person_id": played.person, "at": at}
    played.cases.append(str(player.call("meeting", "POST", "/cases", entry, body)["id"]))
    return played.cases[-1]


def _on_case(
    player: ScenarioPlayer,
    entry: dict[str, Any],
    played: Played,
    action: str,
    body: dict[str, Any],
    role: str = "caseworker",
) -> dict[str, Any]:
    case_id = _case(player, entry, played)
    body = {**body, "at": played.when(entry["at"])}
    reply: dict[str, Any] = player.call(
        "meeting", "POST", f"/cases/{case_id}/{action}", entry, body, role
    )
    return reply


def _draft(player: ScenarioPlayer, entry: dict[str, Any], played: Played, goals: list[str]) -> None:
    start = step_time(entry["at"]) + played.shift
    body = {
        "goals": goals,
        "services": [
            {
                "provider": s["provider"],
                "program": s.get("program"),
                "service_class": s["class"],
            }
            for s in entry.get("services", [])
        ],
        "period_from": start.date().isoformat(),
        "period_until": (start + PLAN_PERIOD).date().isoformat(),
    }
    _on_case(player, entry, played, "plans", body)


@step("record_assessment")
def record_assessment(
    player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played
) -> None:
    body = {"issues": entry["issues"], "strengths": [str(s) for s in entry.get("strengths", [])]}
    _on_case(player, entry, played, "assessments", body)


@step("draft_plan")
def draft_plan(player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played) -> None:
    _draft(player, entry, played, [entry["goal"]])


def _schedule(
    player: ScenarioPlayer, scenario: Scenario, entry: dict[str, Any], played: Played
) -> dict[str, Any]:
    """A meeting for the next time the story holds one of this kind (or this step's time)."""
    kind = entry["kind"]
    following = scenario.steps[scenario.steps.index(entry) :]
    held = next(s for s in following if s["do"] == "hold_meeting" and s["kind"] == kind)
    body: dict[str, Any] = {"kind": kind, "scheduled_for": played.when(held["at"])}
    if kind == "article9_support_meeting":
        until = (step_time(held["at"]) + played.shift + MEMBERSHIP_PERIOD).isoformat()
        body["person_id"] = played.person
        body["members"] = [{"agency": a, "valid_until": until} for a in entry["members"]]
    else:
        body["case_ids"] = [_case(player, entry, played)]
    body["at"] = played.when(entry["at"])
    meeting: dict[str, Any] = player.call("meeting", "POST", "/meetings", entry, body)
    played.meetings.append(str(meeting["id"]))
    return meeting


def _latest(
    player: ScenarioPlayer, entry: dict[str, Any], played: Played, kind: str
) -> dict[str, Any] | None:
    for meeting_id in reversed(played.meetings):
        meeting: dict[str, Any] = player.call("meeting", "GET", f"/meetings/{meeting_id}", entry)
        if meeting["kind"] == kind:
            return meeting
    return None


@step("schedule_meeting")
def schedule_meeting(
    player: ScenarioPlayer, scenario: Scenario, entry: dict[str, Any], played: Played
) -> None:
    _schedule(player, scenario, entry, played)


@step("hold_meeting")
def hold_meeting(
    player: ScenarioPlayer, scenario: Scenario, entry: dict[str, Any], played: Played
) -> None:
    kind = entry["kind"]
    if kind != "article9_support_meeting":
        case_id = _case(player, entry, played)
        case = player.call("meeting", "GET", f"/cases/{case_id}", entry)
        if not case["plans"]:
            _draft(player, entry, played, [UNWRITTEN_PLAN])
    meeting = _latest(player, entry, played, kind)
    if meeting is None or meeting["held_at"] is not None:
        # Most stories record the meeting only once it was held.
        meeting = _schedule(player, scenario, entry, played)
    agencies = entry.get("attendees") or [m["agency"] for m in meeting["members"]]
    body = {
        "attendees": [
            {"agency": a, "role": "organiser" if a == entry["by"] else "member"} for a in agencies
        ],
        "person_attended": bool(entry.get("person_attended", False)),
        "conclusions": entry.get("conclusions", []),
        "at": played.when(entry["at"]),
    }
    player.call("meeting", "POST", f"/meetings/{meeting['id']}/held", entry, body)


@step("share_in_meeting")
def share_in_meeting(
    player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played
) -> None:
    """A refusal to share tax without consent (地方税法第22条) is the lawful outcome, kept."""
    meeting = _latest(player, entry, played, "article9_support_meeting")
    if meeting is None:
        raise RuntimeError("share_in_meeting: the story has no 支援会議")
    body = {
        "categories": entry["categories"],
        "note": entry.get("note"),
        "at": played.when(entry["at"]),
    }
    path = f"/meetings/{meeting['id']}/information"
    status, reply = player.attempt("meeting", "POST", path, entry, body)
    if status == 403 and "tax" in entry["categories"] and TAX_LAW in reply.get("message", ""):
        played.refused.append((entry["do"], reply["message"]))
    elif status != 201:
        raise RuntimeError(f"share_in_meeting failed: {status} {reply}")


@step("approve_plan")
def approve_plan(
    player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played
) -> None:
    _on_case(player, entry, played, "approval", {}, role="approver")


@step("record_monitoring")
def record_monitoring(
    player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played
) -> None:
    _on_case(player, entry, played, "monitoring", {"note": entry["note"]})


@step("evaluate_plan")
def evaluate_plan(
    player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played
) -> None:
    body = {"outcome": entry["outcome"], "note": entry.get("note")}
    _on_case(player, entry, played, "evaluation", body)


@step("note_resource_gap")
def note_resource_gap(
    player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played
) -> None:
    _on_case(player, entry, played, "resource-gaps", {"gap": entry["gap"]})


@step("close_case")
def close_case(player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played) -> None:
    body: dict[str, Any] = {"reason": entry["reason"], "note": entry.get("note")}
    if "follow_up_until" in entry:
        body["follow_up_until"] = _day(played, entry["follow_up_until"])
    _on_case(player, entry, played, "closure", body)


@step("record_follow_up")
def record_follow_up(
    player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played
) -> None:
    _on_case(player, entry, played, "follow-ups", {"note": entry["note"]})


@step("declare_vital_interest")
def declare_vital_interest(
    player: ScenarioPlayer, _: Scenario, entry: dict[str, Any], played: Played
) -> None:
    body = {
        "person_id": played.person,
        "recipients": entry["recipients"],
        "categories": entry["categories"],
        "reason": entry["reason"],
        "hours": entry["hours"],
        "at": played.when(entry["at"]),
    }
    player.call("meeting", "POST", "/vital-interests", entry, body, role="supervisor")
