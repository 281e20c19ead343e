"""Meeting over HTTP in embedded mode: every scenario's meeting steps, and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from services.scenarios import Played, ScenarioPlayer
from tests.conftest import TokenFactory
from tests.scenario_checks import play_all

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def story(client: TestClient, token: TokenFactory) -> tuple[TestClient, dict[str, Played]]:
    """The five stories, played through the embedded app's HTTP routes."""
    return client, play_all(ScenarioPlayer.embedded(client, token))


def get(client: TestClient, auth: Auth, path: str, agency: str, role: str = "caseworker") -> Any:
    response = client.get(f"/meeting{path}", headers=auth(agency, role))
    assert response.status_code == 200, response.text
    return response.json()


def test_every_meeting_step_of_every_scenario_plays(
    story: tuple[TestClient, dict[str, Played]], auth: Auth
) -> None:
    client, played = story
    assert [p.skipped for p in played.values()] == [[]] * 5
    offender = get(
        client, auth, f"/cases/{played['01-released-offender-a'].cases[0]}", "zama-jiritsu"
    )
    assert (offender["status"], offender["closure_reason"]) == ("closed", "moved_away")
    [plan] = offender["plans"]
    assert (plan["status"], plan["outcome"], len(plan["monitoring"])) == ("evaluated", "replan", 1)
    assert offender["resource_gaps"][0]["gap"] == "刑余者の市外転居を受け入れる居住支援"
    assert (
        offender["follow_up_until"]
        == played["01-released-offender-a"].when("2026-04-15T00:00")[:10]
    )
    shimura = get(client, auth, f"/cases/{played['02-debt-shimura'].cases[0]}", "zama-jiritsu")
    assert shimura["closure_reason"] == "goals_achieved"
    assert [s["service_class"] for s in shimura["plans"][0]["services"]] == ["D", "A", "A"]
    meeting = get(
        client, auth, f"/meetings/{played['02-debt-shimura'].meetings[0]}", "zama-jiritsu"
    )
    assert meeting["person_attended"] and meeting["plans_discussed"][0]["plan_version"] == 1
    assert shimura["plans"][0]["approved_in"] == meeting["id"]


def test_scenario_03_members_see_all_but_tax_on_the_article9_basis(
    story: tuple[TestClient, dict[str, Played]], auth: Auth
) -> None:
    client, played = story
    tax = played["03-tax-desk-referral"]
    [meeting_id] = tax.meetings
    [(step, reason)] = tax.refused
    assert step == "share_in_meeting" and "地方税法第22条" in reason
    for member in ("seikatsuclub", "zama-shakyo"):
        [item] = get(client, auth, f"/meetings/{meeting_id}/information", member)
        assert item["categories"] == {
            c: {"basis": "article9_meeting", "basis_id": meeting_id}
            for c in ("consultation", "mental_health", "employment")
        }
    everything = [
        c
        for member in ("seikatsuclub", "zama-shakyo", "zama-shuno", "zama-jiritsu")
        for item in get(client, auth, f"/meetings/{meeting_id}/information", member)
        for c in item["categories"]
    ]
    assert "tax" not in everything
    outsider = client.get(f"/meeting/meetings/{meeting_id}/information", headers=auth("oneaid"))
    assert outsider.status_code == 403


def test_scenario_05_vital_interest_window_opens_and_closes(
    story: tuple[TestClient, dict[str, Played]], auth: Auth
) -> None:
    client, played = story
    family = played["05-family-c"]

    def kodomo_sees(on: str) -> dict[str, Any]:
        at = quote(family.when(on))
        path = f"/persons/{family.person}/disclosure?agency=zama-kodomo&at={at}"
        categories: dict[str, Any] = get(client, auth, path, "zama-jiritsu", "privacy_officer")[
            "categories"
        ]
        return categories

    [declaration] = get(
        client, auth, f"/persons/{family.person}/vital-interests", "zama-jiritsu", "privacy_officer"
    )
    assert declaration["flagged_for_review"] is True
    assert kodomo_sees("2014-07-15T12:00") == {
        "family": {
            "purpose": "support_coordination",
            "basis": "vital_interest",
            "basis_id": declaration["id"],
        }
    }
    assert kodomo_sees("2014-07-20T00:00") == {}
    assert kodomo_sees("2014-07-15T08:59") == {}
    caseworker = client.get(
        f"/meeting/persons/{family.person}/disclosure?agency=zama-kodomo", headers=auth()
    )
    assert caseworker.status_code == 403


def test_the_support_decision_is_the_approvers_and_only_once(
    story: tuple[TestClient, dict[str, Played]], auth: Auth
) -> None:
    client, played = story
    case_id = played["05-family-c"].cases[0]
    url = f"/meeting/cases/{case_id}/approval"
    assert client.post(url, json={}, headers=auth("zama-jiritsu")).status_code == 403
    assert client.post(url, json={}, headers=auth("zama-shakyo", "approver")).status_code == 403
    again = client.post(url, json={}, headers=auth("zama-jiritsu", "approver"))
    assert again.status_code == 409 and "already approved" in again.json()["message"]
    assert "evaluate_plan" in again.json()["allowed"]
    closed = played["01-released-offender-a"].cases[0]
    twice = client.post(
        f"/meeting/cases/{closed}/closure", json={"reason": "moved_away"}, headers=auth()
    )
    assert twice.status_code == 409 and "reopen" in twice.json()["allowed"]
    assert client.get(f"/meeting/cases/{case_id}").status_code == 401


def test_bad_input_is_422_naming_the_field(
    story: tuple[TestClient, dict[str, Played]], auth: Auth
) -> None:
    client, played = story
    tax = played["03-tax-desk-referral"]
    reversed_plan = client.post(
        f"/meeting/cases/{tax.cases[0]}/plans",
        json={"goals": ["分納"], "period_from": "2025-10-01", "period_until": "2025-09-01"},
        headers=auth(),
    )
    assert reversed_plan.status_code == 422
    assert reversed_plan.json()["problems"][0]["field"] == "period_until"
    meeting = client.post(
        "/meeting/meetings",
        json={
            "kind": "individual_coordination",
            "scheduled_for": "2025-09-20T10:00:00+09:00",
            "case_ids": [tax.cases[0]],
        },
        headers=auth(),
    ).json()
    unknown = client.post(
        f"/meeting/meetings/{meeting['id']}/held",
        json={"attendees": [{"agency": "acme-npo", "role": "member"}]},
        headers=auth(),
    )
    assert unknown.status_code == 422
    assert unknown.json()["problems"][0]["field"] == "attendees.0.agency"
    too_long = client.post(
        "/meeting/vital-interests",
        json={
            "person_id": tax.person,
            "recipients": ["zama-kodomo"],
            "categories": ["family"],
            "reason": "緊急",
            "hours": 96,
        },
        headers=auth("zama-jiritsu", "supervisor"),
    )
    assert too_long.status_code == 422 and too_long.json()["problems"][0]["field"] == "hours"
    extra = client.post(
        f"/meeting/cases/{tax.cases[0]}/assessments",
        json={"issues": ["debt"], "mood": "bad"},
        headers=auth(),
    )
    assert extra.status_code == 422


def test_a_case_needs_an_application(client: TestClient, auth: Auth) -> None:
    opened = client.post(
        "/intake/consultations",
        json={"channel": "visit", "route_in": "self", "caller_kind": "self"},
        headers=auth(),
    ).json()
    person = client.post("/intake/persons", json={"family_name": "試験"}, headers=auth()).json()
    body = {"consultation_id": opened["id"], "person_id": person["id"]}
    missing = client.post("/meeting/cases", json=body, headers=auth())
    assert missing.status_code == 422
    assert missing.json()["problems"][0]["field"] == "consultation_id"
    url = f"/intake/consultations/{opened['id']}"
    client.post(f"{url}/attach", json={"person_id": person["id"]}, headers=auth())
    client.post(f"{url}/application", json={}, headers=auth())
    created = client.post("/meeting/cases", json=body, headers=auth())
    assert created.status_code == 201, created.text
    assert created.json()["allowed"][0] == "record_assessment"
