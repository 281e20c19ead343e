"""The stories' referral steps, played through the referral service's HTTP API."""

from __future__ import annotations

from typing import Any

from services.scenarios import Played, Scenario, ScenarioPlayer, step

# The stories name these moves by their receivers' words.
MOVES = {
    "acknowledge": "acknowledge",
    "accept": "accept",
    "decline": "decline",
    "complete": "complete",
    "complete_referral_loop": "complete",
    "withdraw": "withdraw",
}


@step("send_referral")
def send_referral(
    player: ScenarioPlayer, scenario: Scenario, entry: dict[str, Any], played: Played
) -> None:
    body: dict[str, Any] = {
        "kind": entry.get("kind", "service_request"),
        "to": entry["to"],
        "reason": entry.get("reason") or "支援プランに基づく紹介",
        "categories": entry["categories"],
        "at": played.when(entry["at"]),
    }
    if played.persons and played.consents:
        body["person_id"], body["consent_id"] = played.person, played.consents[-1]
    elif entry.get("basis") == "consent_verbal_recorded_by_sender":
        # Not yet registered: the sender's witnessed verbal consent covers this slip only.
        person = scenario.person or {}
        body["provisional_identity"] = {
            k: str(v) for k, v in person.items() if k in ("family_name", "given_name")
        }
        body["verbal_consent_witness"] = f"{entry['by']} staff"
    else:
        # A neighbour's or volunteer's concern: contact and reason, nothing more.
        body["provisional_identity"] = {"contact": "as given by the sender"}
    played.referrals.append(str(player.call("referral", "POST", "/referrals", entry, body)["id"]))


def _received_by(player: ScenarioPlayer, entry: dict[str, Any], played: Played) -> str:
    """The latest referral of the story that the acting agency received."""
    for referral_id in reversed(played.referrals):
        status, reply = player.attempt("referral", "GET", f"/referrals/{referral_id}", entry)
        if status == 200 and reply["receiver"] == entry["by"]:
            return referral_id
    raise RuntimeError(f"{entry['do']}: {entry['by']} received no referral in this story")


def _move(
    player: ScenarioPlayer, scenario: Scenario, entry: dict[str, Any], played: Played
) -> None:
    referral_id = _received_by(player, entry, played)
    body = {"reason": entry.get("reason"), "at": played.when(entry["at"])}
    if MOVES[entry["do"]] == "complete":
        body["outcome"] = entry.get("outcome") or entry.get("note") or "completed"
    player.call("referral", "POST", f"/referrals/{referral_id}/{MOVES[entry['do']]}", entry, body)
    following = scenario.steps[scenario.steps.index(entry) + 1 :]
    if entry["do"] == "decline" and following and following[0]["do"] == "note_resource_gap":
        # The story notes the gap for the regular meeting; that also closes the decline's loop.
        gap = following[0]
        player.call(
            "referral",
            "POST",
            f"/referrals/{referral_id}/follow-up",
            gap,
            {"action": "resource_gap", "note": gap["gap"]},
        )


for name in MOVES:
    step(name)(_move)
