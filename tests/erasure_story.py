"""A recognisable person played through intake, referral, meeting and the views, and erased.

The crypto-shredding tests (issue #20) look for this person's values in every store, before
and after their erasure: each value is found nowhere else (an unusual name, a made-up address
and number), so that finding it anywhere can only mean it was kept there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from services.scenarios import Played, Scenario, ScenarioPlayer

PERSON = {
    "family_name": "鴫原",
    "given_name": "縫之丞",
    "family_name_kana": "シギハラ",
    "given_name_kana": "ヌイノジョウ",
    "birth_date": "1953-02-17",
    "sex": "male",
    "address": "座間市緑ケ丘九丁目88番地の3 鵺荘404",
    "phone": "080-7316-2954",
}
COMPLAINT = "鵺荘の家賃を三か月滞納している"
# Each value looked for, by name: the person's and the free text the story says about them.
VALUES = {
    **{k: v for k, v in PERSON.items() if k != "sex"},
    "full_name": PERSON["family_name"] + PERSON["given_name"],
    "full_kana": PERSON["family_name_kana"] + PERSON["given_name_kana"],
    "phone_digits": "".join(c for c in PERSON["phone"] if c.isdigit()),
    "main_complaint": COMPLAINT,
    "notes": "酔って鵺の話を繰り返す",
    "strength": "鵺の絵を毎日描く",
    "goal": "鵺荘から市営住宅へ転居する",
    "conclusion": "鵺荘の大家と退去日を話し合う",
    "referral_reason": "鵺荘の契約更新不可・保証人なし",
    "monitoring": "鵺荘の退去日が七月末に決まった",
}

STORY = Scenario(
    "recognisable-person",
    PERSON,
    [
        {
            "at": "2025-04-07T10:12",
            "by": "zama-jiritsu",
            "do": "open_consultation",
            "channel": "phone",
            "route_in": "justice_system",
            "main_complaint": COMPLAINT,
            "notes": VALUES["notes"],
        },
        {"at": "2025-04-09T14:00", "by": "zama-jiritsu", "do": "register_person"},
        {"at": "2025-04-09T14:30", "by": "zama-jiritsu", "do": "receive_application"},
        {
            "at": "2025-04-09T14:31",
            "by": "zama-jiritsu",
            "do": "record_consent",
            "recipients": ["zama-jiritsu", "oneaid"],
            "categories": ["identity", "contact", "consultation", "housing"],
            "purpose": "referral",
            "until": "2026-04-08",
        },
        {
            "at": "2025-04-09T15:00",
            "by": "zama-jiritsu",
            "do": "record_assessment",
            "issues": ["economic_hardship", "unstable_housing"],
            "strengths": [VALUES["strength"]],
        },
        {
            "at": "2025-04-20T10:00",
            "by": "zama-jiritsu",
            "do": "draft_plan",
            "goal": VALUES["goal"],
            "services": [{"provider": "oneaid", "program": "housing_support", "class": "B"}],
        },
        {
            "at": "2025-04-25T10:00",
            "by": "zama-jiritsu",
            "do": "hold_meeting",
            "kind": "individual_coordination",
            "attendees": ["zama-jiritsu", "oneaid"],
            "person_attended": True,
            "conclusions": [VALUES["conclusion"]],
        },
        {"at": "2025-04-25T11:00", "by": "zama-jiritsu", "do": "approve_plan"},
        {
            "at": "2025-06-20T10:05",
            "by": "zama-jiritsu",
            "do": "send_referral",
            "to": "oneaid",
            "reason": VALUES["referral_reason"],
            "categories": ["identity", "contact", "housing"],
        },
        {"at": "2025-06-22T16:00", "by": "oneaid", "do": "accept"},
        {
            "at": "2025-07-01T10:00",
            "by": "zama-jiritsu",
            "do": "record_monitoring",
            "note": VALUES["monitoring"],
        },
    ],
    [],
)


def play(player: ScenarioPlayer) -> Played:
    played = player.play(STORY)
    assert played.skipped == [] and played.refused == [], played
    return played


def lawful_reads(get: Any, played: Played) -> dict[str, Any]:
    """What the views answer the office and the referral's receiver about the person: their
    pages, the office's consultations, a search by kana and the duplicate check. Each answer
    opens what it shows; ``get(path, agency)`` is one GET as that agency's caseworker."""
    kana = quote(PERSON["family_name_kana"])
    return {
        "page": get(f"/persons/{played.person}", "zama-jiritsu"),
        "receiver's page": get(f"/persons/{played.person}", "oneaid"),
        "consultations": get("/consultations", "zama-jiritsu"),
        "search": get(f"/persons/search?q={kana}", "zama-jiritsu"),
        "candidates": get(f"/persons/candidates?family_name_kana={kana}", "zama-jiritsu"),
    }
