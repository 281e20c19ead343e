"""Referrals over HTTP in embedded mode: the stories' referrals, and the error contract."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.scenarios import ScenarioPlayer
from services.wiring import embedded_app
from tests.conftest import TokenFactory
from tests.scenario_checks import play_all

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]


def get(client: TestClient, auth: Auth, path: str, agency: str) -> Any:
    response = client.get(f"/referral{path}", headers=auth(agency))
    assert response.status_code == 200, response.text
    return response.json()


def test_the_stories_referrals_close_their_loops(
    client: TestClient, token: TokenFactory, auth: Auth
) -> None:
    played = play_all(ScenarioPlayer.embedded(client, token))

    # Scenario 03: the tax desk learns its slip was accepted and completed — and nothing more.
    [sent] = get(client, auth, "/referrals/outbox", "zama-shuno")
    assert [h["state"] for h in sent["history"]] == ["sent", "accepted", "completed"]
    assert not {"reason", "categories", "outcome", "provisional_identity"} & set(sent)
    slip = get(client, auth, f"/referrals/{sent['id']}", "zama-jiritsu")
    assert slip["categories"] == ["identity", "contact", "tax"]
    assert slip["basis"] == "consent"
    assert slip["basis_id"] == played["03-tax-desk-referral"].consents[0]

    # Scenario 01: OneAid declined; the resource gap note closed the loop, nothing is overdue.
    [declined] = [
        r
        for r in get(client, auth, "/referrals/outbox", "zama-jiritsu")
        if r["receiver"] == "oneaid"
    ]
    assert declined["state"] == "declined" and declined["needs_action"] is False

    # Scenario 02: OneAid's slip for a person not yet registered, under a verbal consent.
    [provisional] = get(client, auth, "/referrals/outbox", "oneaid")
    assert provisional["state"] == "accepted"
    assert get(client, auth, f"/referrals/{provisional['id']}", "zama-jiritsu")["basis"] == (
        "verbal_consent"
    )

    # Scenario 05: the volunteer's concern shares contact only.
    [concern] = get(client, auth, "/referrals/outbox", "minsei")
    assert concern["kind"] == "concern_from_community"


def registered_with_consent(
    client: TestClient, auth: Auth, recipients: list[str]
) -> tuple[str, str]:
    person = client.post("/intake/persons", json={"family_name": "試験"}, headers=auth()).json()
    now = datetime.now(UTC)
    consent = client.post(
        "/intake/consents",
        json={
            "person_id": person["id"],
            "recipients": recipients,
            "categories": ["identity", "contact", "debt"],
            "purposes": ["referral"],
            "valid_from": (now - timedelta(hours=1)).isoformat(),
            "valid_until": (now + timedelta(days=90)).isoformat(),
        },
        headers=auth(),
    ).json()
    return person["id"], consent["id"]


def send(client: TestClient, auth: Auth, person: str, consent: str, **fields: Any) -> Any:
    body = {
        "kind": "service_request",
        "to": "zama-shakyo",
        "reason": "家計改善支援",
        "categories": ["identity", "debt"],
        "person_id": person,
        "consent_id": consent,
        **fields,
    }
    return client.post("/referral/referrals", json=body, headers=auth())


def test_a_slip_beyond_the_consent_is_403_naming_category_and_recipient(
    client: TestClient, auth: Auth
) -> None:
    person, consent = registered_with_consent(client, auth, ["zama-shakyo"])
    response = send(client, auth, person, consent, categories=["identity", "mental_health"])
    assert response.status_code == 403
    body = response.json()
    assert body["missing_categories"] == ["mental_health"] and body["recipient"] == "zama-shakyo"
    withdrawn = client.post(f"/intake/consents/{consent}/withdrawals", json={}, headers=auth())
    assert withdrawn.status_code == 201
    assert send(client, auth, person, consent).status_code == 403  # nothing after withdrawal


def test_illegal_moves_are_409_with_the_state_and_allowed_moves(
    client: TestClient, auth: Auth
) -> None:
    person, consent = registered_with_consent(client, auth, ["zama-shakyo"])
    referral = send(client, auth, person, consent).json()
    url = f"/referral/referrals/{referral['id']}"
    complete = client.post(f"{url}/complete", json={"outcome": "x"}, headers=auth("zama-shakyo"))
    assert complete.status_code == 409
    assert complete.json()["state"] == "sent"
    assert complete.json()["allowed_moves"] == [
        "withdraw",
        "acknowledge",
        "accept",
        "decline",
        "reroute",
    ]
    wrong_side = client.post(f"{url}/accept", json={}, headers=auth())
    assert wrong_side.status_code == 403
    stranger = client.get(url, headers=auth("zama-shuno"))
    assert stranger.status_code == 403
    assert client.post(f"{url}/decline", json={}, headers=auth("zama-shakyo")).status_code == 422
    accepted = client.post(f"{url}/accept", json={}, headers=auth("zama-shakyo"))
    assert accepted.json()["state"] == "accepted"
    inbox = get(client, auth, "/referrals/inbox?state=accepted", "zama-shakyo")
    assert [r["id"] for r in inbox] == [referral["id"]]
    assert inbox[0]["acknowledgement_overdue"] is False


def test_self_and_unknown_receivers_are_422_naming_the_field_to(
    client: TestClient, auth: Auth
) -> None:
    person, consent = registered_with_consent(client, auth, ["zama-shakyo"])
    sent = send(client, auth, person, consent).json()
    rerouted = client.post(
        f"/referral/referrals/{sent['id']}/reroute",
        json={"to": "acme", "reason": "窓口違い"},
        headers=auth("zama-shakyo"),
    )
    for to, rule in (("zama-jiritsu", "not_self"), ("acme", "reference_code")):
        response = send(client, auth, person, consent, to=to)
        assert response.status_code == 422
        assert response.json()["problems"][0] == {
            **response.json()["problems"][0],
            "field": "to",
            "rule": rule,
        }
    assert rerouted.status_code == 422
    assert rerouted.json()["problems"][0]["field"] == "to"


def test_a_retried_post_with_the_idempotency_key_returns_the_same_referral(
    client: TestClient, auth: Auth
) -> None:
    person, consent = registered_with_consent(client, auth, ["zama-shakyo"])
    body = {
        "kind": "service_request",
        "to": "zama-shakyo",
        "reason": "家計改善支援",
        "categories": ["identity"],
        "person_id": person,
        "consent_id": consent,
    }
    headers = {**auth(), "Idempotency-Key": "slip-0001"}
    first = client.post("/referral/referrals", json=body, headers=headers)
    again = client.post("/referral/referrals", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert len(get(client, auth, "/referrals/inbox", "zama-shakyo")) == 1


def test_an_unfollowed_decline_needs_action_in_the_senders_view(
    embedded_settings: Settings, auth: Auth
) -> None:
    from dataclasses import replace

    client = TestClient(embedded_app(replace(embedded_settings, decline_follow_up_days=0)))
    person, consent = registered_with_consent(client, auth, ["zama-shakyo"])
    sent_at = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    referral = send(client, auth, person, consent, at=sent_at).json()
    url = f"/referral/referrals/{referral['id']}"
    declined_at = (datetime.now(UTC) - timedelta(minutes=20)).isoformat()
    declined = client.post(
        f"{url}/decline",
        json={"reason": "定員超過", "at": declined_at},
        headers=auth("zama-shakyo"),
    )
    assert declined.status_code == 200, declined.text
    [row] = get(client, auth, "/referrals/outbox", "zama-jiritsu")
    assert row["needs_action"] is True
    followed = client.post(
        f"{url}/follow-up",
        json={
            "action": "return_to_sender",
            "note": "本人と再面談",
            "follow_up_on": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        },
        headers=auth(),
    )
    assert followed.status_code == 200
    assert get(client, auth, "/referrals/outbox", "zama-jiritsu")[0]["needs_action"] is False
