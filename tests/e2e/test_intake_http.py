"""Intake over HTTP in embedded mode: every scenario's intake steps, and bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.scenarios import ScenarioPlayer
from tests.conftest import TokenFactory
from tests.scenario_checks import check_intake_expectations, play_all

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]


def test_every_intake_step_of_every_scenario_works_over_http(
    client: TestClient, token: TokenFactory
) -> None:
    played = play_all(ScenarioPlayer.embedded(client, token))
    check_intake_expectations(client, token, "/intake", played)
    views = client.get("/views/consultations", headers={"Authorization": f"Bearer {token()}"})
    assert len(views.json()) == sum(len(p.consultations) for p in played.values())


def person(client: TestClient, auth: Auth, **fields: object) -> str:
    response = client.post(
        "/intake/persons", json={"family_name": "志村", **fields}, headers=auth()
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def consent_body(person_id: str, **terms: object) -> dict[str, object]:
    now = datetime.now(UTC)
    body: dict[str, object] = {
        "person_id": person_id,
        "recipients": ["zama-shakyo"],
        "categories": ["identity"],
        "purposes": ["support_coordination"],
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=365)).isoformat(),
    }
    body.update(terms)
    return body


@pytest.mark.parametrize(
    ("terms", "field", "allowed_example"),
    [
        ({"recipients": ["acme-npo"]}, "recipients", "zama-shakyo"),
        ({"categories": ["blood_type"]}, "categories", "tax"),
        ({"purposes": ["marketing"]}, "purposes", "referral"),
    ],
)
def test_unknown_codes_are_422_naming_the_value_and_the_allowed_ones(
    client: TestClient, auth: Auth, terms: dict[str, object], field: str, allowed_example: str
) -> None:
    response = client.post(
        "/intake/consents", json=consent_body(person(client, auth), **terms), headers=auth()
    )
    assert response.status_code == 422
    [problem] = response.json()["problems"]
    assert problem["field"] == field
    assert str(next(iter(terms.values()))[0]) in problem["message"]  # type: ignore[index]
    assert allowed_example in problem["allowed"]


def test_unknown_route_is_422_with_allowed_routes(client: TestClient, auth: Auth) -> None:
    response = client.post(
        "/intake/consultations",
        json={"channel": "phone", "route_in": "carrier_pigeon", "caller_kind": "self"},
        headers=auth(),
    )
    assert response.status_code == 422
    assert "tax_desk" in response.json()["problems"][0]["allowed"]


def test_backwards_period_and_unknown_person_are_422(client: TestClient, auth: Auth) -> None:
    now = datetime.now(UTC)
    backwards = consent_body(
        person(client, auth), valid_until=(now - timedelta(days=2)).isoformat()
    )
    response = client.post("/intake/consents", json=backwards, headers=auth())
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "valid_until"
    ghost = consent_body("00000000-0000-0000-0000-000000000001")
    response = client.post("/intake/consents", json=ghost, headers=auth())
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "person_id"


def test_withdrawing_twice_is_409_and_the_receipt_shows_the_withdrawal(
    client: TestClient, auth: Auth
) -> None:
    created = client.post(
        "/intake/consents", json=consent_body(person(client, auth)), headers=auth()
    ).json()
    url = f"/intake/consents/{created['id']}/withdrawals"
    assert client.post(url, json={"reason": "本人の申し出"}, headers=auth()).status_code == 201
    again = client.post(url, json={}, headers=auth())
    assert again.status_code == 409
    assert "already withdrawn" in again.json()["message"]
    receipt = client.get(f"/intake/consents/{created['id']}/receipt", headers=auth()).json()
    assert receipt["consentReceiptID"] == created["id"]
    assert receipt["withdrawals"][0]["recipients"] == "all"


def test_requests_over_one_mebibyte_are_413_even_without_content_length(
    client: TestClient, auth: Auth
) -> None:
    def chunks() -> object:
        for _ in range(17):
            yield b"x" * 65536

    response = client.post("/intake/persons", content=chunks(), headers=auth())  # type: ignore[arg-type]
    assert response.status_code == 413


def test_names_round_trip_exactly_over_http(client: TestClient, auth: Auth) -> None:
    names = {"family_name": "髙﨑", "given_name": "𠮷 Ünïcødé 🌸", "given_name_kana": "ヨシ"}
    created = client.post("/intake/persons", json=names, headers=auth()).json()
    again = client.get(f"/intake/persons/{created['id']}", headers=auth()).json()
    assert {k: again[k] for k in names} == names


def test_person_data_is_for_the_registering_agency_or_a_consented_one(
    client: TestClient, auth: Auth
) -> None:
    person_id = person(client, auth, phone="046-000-0000")
    assert (
        client.get(f"/intake/persons/{person_id}", headers=auth("zama-shakyo")).status_code == 403
    )
    client.post("/intake/consents", json=consent_body(person_id), headers=auth())
    seen = client.get(f"/intake/persons/{person_id}", headers=auth("zama-shakyo"))
    assert seen.status_code == 200


def test_connecting_elsewhere_needs_a_target_and_a_follow_up(
    client: TestClient, auth: Auth
) -> None:
    opened = client.post(
        "/intake/consultations",
        json={"channel": "visit", "route_in": "self", "caller_kind": "self"},
        headers=auth(),
    ).json()
    url = f"/intake/consultations/{opened['id']}/triage"
    missing = client.post(
        url, json={"outcome": "connect_elsewhere", "target_system": "生活保護"}, headers=auth()
    )
    assert missing.status_code == 422
    assert missing.json()["problems"][0]["field"] == "follow_up_on"
    done = client.post(
        url,
        json={
            "outcome": "connect_elsewhere",
            "target_system": "生活保護",
            "follow_up_on": "2026-12-01",
        },
        headers=auth(),
    )
    assert done.status_code == 200 and done.json()["triage"] == "connect_elsewhere"
    application = client.post(
        f"/intake/consultations/{opened['id']}/application", json={}, headers=auth()
    )
    assert application.status_code == 409  # no person attached yet


def test_a_persons_consents_are_listed_to_those_who_may_read_them(
    client: TestClient, auth: Auth
) -> None:
    person_id = person(client, auth)
    for recipients in (["zama-shakyo"], ["oneaid"]):
        recorded = client.post(
            "/intake/consents",
            json=consent_body(person_id, recipients=recipients),
            headers=auth(),
        )
        assert recorded.status_code == 201, recorded.text
    listed = client.get(f"/intake/persons/{person_id}/consents", headers=auth())
    assert [c["recipients"] for c in listed.json()] == [["zama-shakyo"], ["oneaid"]]
    # A recipient sees its own consent only (its identity basis is that consent).
    shakyo = client.get(f"/intake/persons/{person_id}/consents", headers=auth("zama-shakyo"))
    assert [c["recipients"] for c in shakyo.json()] == [["zama-shakyo"]]
    half = client.get(
        f"/intake/persons/{person_id}/consents", params={"recipient": "oneaid"}, headers=auth()
    )
    assert half.status_code == 422
    assert half.json()["problems"][0]["field"] == "category"


def test_coverage_and_withdrawal_effect_answer_before_the_user_commits(
    client: TestClient, auth: Auth
) -> None:
    person_id = person(client, auth)
    consent = client.post(
        "/intake/consents",
        json=consent_body(
            person_id,
            recipients=["zama-shakyo", "oneaid"],
            categories=["identity", "tax"],
            purposes=["referral"],
        ),
        headers=auth(),
    ).json()
    path = f"/intake/consents/{consent['id']}"
    coverage = client.get(
        f"{path}/coverage", params={"recipient": "oneaid", "purpose": "referral"}, headers=auth()
    ).json()
    assert coverage["covered"] == ["identity", "tax"]
    assert "health" in coverage["not_covered"]
    effect = client.get(
        f"{path}/withdrawal-effect", params={"categories": ["tax"]}, headers=auth()
    ).json()
    assert effect == {
        "losses": [
            {"agency": "zama-shakyo", "categories": ["tax"]},
            {"agency": "oneaid", "categories": ["tax"]},
        ]
    }
    # A preview changes nothing: the consent still covers tax.
    again = client.get(
        f"{path}/coverage", params={"recipient": "oneaid", "purpose": "referral"}, headers=auth()
    ).json()
    assert again["covered"] == ["identity", "tax"]
    stranger = client.get(
        f"{path}/coverage",
        params={"recipient": "oneaid", "purpose": "referral"},
        headers=auth("zama-suido"),
    )
    assert stranger.status_code == 403
