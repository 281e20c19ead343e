"""Back-dating over HTTP: a step may be entered late, never dated before the step it follows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
NOW = datetime.now(UTC).replace(microsecond=0)


def at(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def created(response: Any) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def refused_before(response: Any, step_at: str, refused_at: str) -> None:
    """422 naming the field, the rule and both times."""
    assert response.status_code == 422, response.text
    [problem] = response.json()["problems"]
    assert (problem["field"], problem["rule"]) == ("at", "before_previous_step")
    assert problem["earliest"] == datetime.fromisoformat(step_at).isoformat()
    for moment in (step_at, refused_at):
        assert datetime.fromisoformat(moment).isoformat() in problem["message"]


def person_with_consent(client: TestClient, auth: Auth, valid_from: str) -> tuple[str, str]:
    person = created(client.post("/intake/persons", json={"family_name": "試験"}, headers=auth()))
    consent = created(
        client.post(
            "/intake/consents",
            json={
                "person_id": person["id"],
                "recipients": ["zama-shakyo", "zama-jiritsu"],
                "categories": ["identity", "debt"],
                "purposes": ["referral", "meeting"],
                "valid_from": valid_from,
                "valid_until": (NOW + timedelta(days=90)).isoformat(),
            },
            headers=auth(),
        )
    )
    return person["id"], consent["id"]


def test_a_referral_move_is_never_dated_before_the_send_or_the_previous_move(
    client: TestClient, auth: Auth
) -> None:
    person, consent = person_with_consent(client, auth, at(60))
    referral = created(
        client.post(
            "/referral/referrals",
            json={
                "kind": "service_request",
                "to": "zama-shakyo",
                "reason": "家計改善支援",
                "categories": ["identity", "debt"],
                "person_id": person,
                "consent_id": consent,
                "at": at(10),
            },
            headers=auth(),
        )
    )
    url = f"/referral/referrals/{referral['id']}"
    receiver = auth("zama-shakyo")
    # The case: a decline dated 30 days before the slip was sent.
    declined = client.post(
        f"{url}/decline", json={"reason": "定員", "at": at(40)}, headers=receiver
    )
    refused_before(declined, at(10), at(40))

    created(client.post(f"{url}/accept", json={"at": at(5)}, headers=receiver))
    started = client.post(f"{url}/start", json={"at": at(7)}, headers=receiver)
    refused_before(started, at(5), at(7))
    # The same instant as the step it follows is not before it.
    assert created(client.post(f"{url}/start", json={"at": at(5)}, headers=receiver))["state"] == (
        "in_progress"
    )


def test_a_consent_is_never_withdrawn_before_it_was_given(client: TestClient, auth: Auth) -> None:
    _, consent = person_with_consent(client, auth, at(2))
    url = f"/intake/consents/{consent}/withdrawals"
    refused_before(client.post(url, json={"at": at(3)}, headers=auth()), at(2), at(3))
    assert client.post(url, json={"at": at(1)}, headers=auth()).status_code == 201


def open_case(client: TestClient, auth: Auth, opened: str) -> str:
    consultation = created(
        client.post(
            "/intake/consultations",
            json={"channel": "visit", "route_in": "self", "caller_kind": "self"},
            headers=auth(),
        )
    )
    person = created(client.post("/intake/persons", json={"family_name": "試験"}, headers=auth()))
    url = f"/intake/consultations/{consultation['id']}"
    created(client.post(f"{url}/attach", json={"person_id": person["id"]}, headers=auth()))
    created(client.post(f"{url}/application", json={}, headers=auth()))
    body = {"consultation_id": consultation["id"], "person_id": person["id"], "at": opened}
    return str(created(client.post("/meeting/cases", json=body, headers=auth()))["id"])


def test_a_case_is_never_closed_before_it_was_opened_or_reopened(
    client: TestClient, auth: Auth
) -> None:
    case = open_case(client, auth, at(10))
    closure = f"/meeting/cases/{case}/closure"
    refused_before(
        client.post(closure, json={"reason": "moved_away", "at": at(12)}, headers=auth()),
        at(10),
        at(12),
    )
    created(client.post(closure, json={"reason": "moved_away", "at": at(8)}, headers=auth()))
    reopening = {"reason": "戻ってきた", "at": at(4)}
    created(client.post(f"/meeting/cases/{case}/reopening", json=reopening, headers=auth()))
    refused_before(
        client.post(closure, json={"reason": "moved_away", "at": at(6)}, headers=auth()),
        at(4),
        at(6),
    )


def test_information_is_never_shared_before_the_meeting_was_held(
    client: TestClient, auth: Auth
) -> None:
    person, _ = person_with_consent(client, auth, at(60))
    members = [
        {
            "agency": agency,
            "valid_from": at(30),
            "valid_until": (NOW + timedelta(days=30)).isoformat(),
        }
        for agency in ("zama-jiritsu", "zama-shakyo")
    ]
    meeting = created(
        client.post(
            "/meeting/meetings",
            json={
                "kind": "article9_support_meeting",
                "scheduled_for": at(5),
                "person_id": person,
                "members": members,
                "at": at(20),
            },
            headers=auth(),
        )
    )
    url = f"/meeting/meetings/{meeting['id']}"
    attendees = [{"agency": "zama-jiritsu", "role": "chair"}]
    created(client.post(f"{url}/held", json={"attendees": attendees, "at": at(5)}, headers=auth()))
    share = {"categories": ["identity"], "note": "経過", "at": at(6)}
    refused_before(client.post(f"{url}/information", json=share, headers=auth()), at(5), at(6))
    assert (
        client.post(f"{url}/information", json={**share, "at": at(5)}, headers=auth()).status_code
        == 201
    )
