"""Issue 15, on the embedded platform: every read of a person's data, by any service, is decided
category by category, answers with the allowed categories only, and is recorded (refusals too);
oversight roles reach as far as the reference data grants them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.scenarios import Played, ScenarioPlayer
from tests.conftest import TokenFactory
from tests.e2e.answers import ok
from tests.scenario_checks import play_all

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
OFFICE = "zama-jiritsu"


def audited(client: TestClient, auth: Auth, person: str, **match: object) -> list[dict[str, Any]]:
    """The chain's entries about ``person`` (asked of the municipality's privacy officer),
    those whose fields equal ``match``."""
    entries = ok(
        client.get(f"/views/audit/persons/{person}", headers=auth(OFFICE, "privacy_officer"))
    )
    return [e for e in entries if all(e.get(k) == v for k, v in match.items())]


def registered(client: TestClient, auth: Auth, **extra: object) -> str:
    body = {
        "family_name": "志村",
        "given_name": "健",
        "family_name_kana": "シムラ",
        "given_name_kana": "ケン",
        "birth_date": "1975-05-05",
        "address": "座間市入谷西1-1",
        "phone": "046-000-0000",
        **extra,
    }
    person: str = ok(client.post("/intake/persons", json=body, headers=auth()), 201)["id"]
    return person


def consented(
    client: TestClient, auth: Auth, person: str, recipients: list[str], categories: list[str]
) -> str:
    now = datetime.now(UTC)
    body = {
        "person_id": person,
        "recipients": recipients,
        "categories": categories,
        "purposes": ["support_coordination", "referral"],
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=90)).isoformat(),
    }
    consent: str = ok(client.post("/intake/consents", json=body, headers=auth()), 201)["id"]
    return consent


def test_intake_shows_a_person_category_by_category_and_records_the_read(
    client: TestClient, auth: Auth
) -> None:
    person = registered(client, auth)
    consent = consented(client, auth, person, ["zama-shakyo"], ["identity"])
    shown = ok(client.get(f"/intake/persons/{person}", headers=auth("zama-shakyo")))
    # A consent covering identity alone shows names, kana, birth date and sex: not contact.
    assert (shown["family_name"], shown["birth_date"], shown["sex"]) == (
        "志村",
        "1975-05-05",
        "unknown",
    )
    assert shown["address"] is None and shown["phone"] is None
    assert shown["bases"] == {"identity": {"basis": "consent", "basis_id": consent}}
    assert [w["category"] for w in shown["withheld"]] == ["contact"]
    [entry] = audited(client, auth, person, viewer_agency="zama-shakyo")
    assert entry["kind"] == "record_viewed"
    assert entry["bases"] == {"identity": {"basis": "consent", "basis_id": consent}}
    assert entry["disclosed_by"] == [OFFICE]
    assert "contact" in (entry["reason"] or "")  # what was withheld, and why


def test_another_agencys_local_id_is_shown_only_under_an_identity_basis(
    client: TestClient, auth: Auth
) -> None:
    person = registered(client, auth, local_id="J-1")
    consented(client, auth, person, ["zama-shakyo", "oneaid"], ["identity"])
    ok(
        client.post(
            f"/intake/persons/{person}/links", json={"local_id": "S-1"}, headers=auth("zama-shakyo")
        )
    )
    # The office's names are its own record; shakyo's local id is shakyo's, not the office's.
    office = ok(client.get(f"/intake/persons/{person}", headers=auth()))
    assert office["local_ids"] == {OFFICE: "J-1"} and office["family_name"] == "志村"
    # An agency with an identity basis for the person sees every agency's id.
    oneaid = ok(client.get(f"/intake/persons/{person}", headers=auth("oneaid")))
    assert oneaid["local_ids"] == {OFFICE: "J-1", "zama-shakyo": "S-1"}


def test_a_refused_read_is_recorded_with_the_person_and_the_reason(
    client: TestClient, auth: Auth
) -> None:
    person = registered(client, auth)
    refused = client.get(f"/intake/persons/{person}", headers=auth("zama-kokuho"))
    assert refused.status_code == 403
    [entry] = audited(client, auth, person, viewer_agency="zama-kokuho")
    assert entry["kind"] == "access_denied" and entry["categories"] == []
    assert entry["reason"] == refused.json()["message"]


def test_a_persons_consents_and_a_consent_receipt_are_reads_of_the_person(
    client: TestClient, auth: Auth
) -> None:
    person = registered(client, auth)
    consent = consented(client, auth, person, ["zama-shakyo"], ["identity", "housing"])
    ok(client.get(f"/intake/persons/{person}/consents", headers=auth()))
    ok(client.get(f"/intake/consents/{consent}", headers=auth("zama-shakyo")))
    ok(client.get(f"/intake/consents/{consent}/receipt", headers=auth("zama-shakyo")))
    views = [e["view_request"]["view"] for e in audited(client, auth, person)]
    assert views == ["consent", "consent", "consent_receipt"]
    # Recording it was the office's own record: its answer is no disclosure.
    assert [e["viewer_agency"] for e in audited(client, auth, person)] == [
        OFFICE,
        "zama-shakyo",
        "zama-shakyo",
    ]


def sent_slip(client: TestClient, auth: Auth) -> tuple[str, str, str]:
    person = registered(client, auth)
    consent = consented(client, auth, person, ["zama-shakyo"], ["identity", "housing"])
    slip = {
        "kind": "service_request",
        "to": "zama-shakyo",
        "reason": "家賃滞納で退去の恐れ",
        "categories": ["identity", "housing"],
        "person_id": person,
        "consent_id": consent,
    }
    referral: str = ok(client.post("/referral/referrals", json=slip, headers=auth()), 201)["id"]
    return person, consent, referral


def test_a_slip_read_by_its_receiver_is_recorded_and_its_content_follows_the_consent(
    client: TestClient, auth: Auth
) -> None:
    person, consent, referral = sent_slip(client, auth)
    read = ok(client.get(f"/referral/referrals/{referral}", headers=auth("zama-shakyo")))
    assert read["reason"] == "家賃滞納で退去の恐れ"
    assert read["bases"]["housing"] == {"basis": "consent", "basis_id": consent}
    [inbox] = ok(client.get("/referral/referrals/inbox", headers=auth("zama-shakyo")))
    assert inbox["reason"] == read["reason"]
    entries = audited(client, auth, person, viewer_agency="zama-shakyo")
    assert [e["view_request"]["view"] for e in entries] == ["referral", "referral"]
    assert entries[0]["bases"]["housing"] == {"basis": "consent", "basis_id": consent}
    assert entries[0]["disclosed_by"] == [OFFICE, "zama-shakyo"]
    # Sending it was the office's own record, so its answer is not recorded.
    assert audited(client, auth, person, viewer_agency=OFFICE) == []

    ok(client.post(f"/intake/consents/{consent}/withdrawals", json={}, headers=auth()), 201)
    after = ok(client.get(f"/referral/referrals/{referral}", headers=auth("zama-shakyo")))
    assert after["reason"] is None and after["state"] == "sent"
    assert {w["category"] for w in after["withheld"]} == {"identity", "housing"}


@pytest.fixture
def stories(client: TestClient, token: TokenFactory) -> dict[str, Played]:
    return play_all(ScenarioPlayer.embedded(client, token))


def test_what_a_support_meeting_shares_and_who_may_see_what_are_recorded_reads(
    client: TestClient, auth: Auth, stories: dict[str, Played]
) -> None:
    tax = stories["03-tax-desk-referral"]
    meeting = tax.meetings[0]
    items = ok(client.get(f"/meeting/meetings/{meeting}/information", headers=auth("seikatsuclub")))
    assert items
    [read] = audited(
        client,
        auth,
        tax.person,
        viewer_agency="seikatsuclub",
        view_request={"view": "information", "meeting_id": meeting, "at": None},
    )
    assert read["bases"] and all(b["basis"] == "article9_meeting" for b in read["bases"].values())
    ok(client.get(f"/meeting/persons/{tax.person}/disclosure", headers=auth()))
    [mapped] = [
        e
        for e in audited(client, auth, tax.person, viewer_agency=OFFICE)
        if (e["view_request"] or {}).get("view") == "disclosure_map"
    ]
    assert mapped["categories"] == [] and mapped["kind"] == "record_viewed"


def test_an_agencys_privacy_officer_audits_only_what_its_agency_received_or_made(
    client: TestClient, auth: Auth
) -> None:
    person = registered(client, auth)
    consented(client, auth, person, ["zama-shakyo", "oneaid"], ["identity"])
    ok(client.get(f"/intake/persons/{person}", headers=auth("zama-shakyo")))
    ok(client.get(f"/intake/persons/{person}", headers=auth("oneaid")))
    npo = auth("oneaid", "privacy_officer")
    seen = ok(client.get(f"/views/audit/persons/{person}", headers=npo))
    assert {e["viewer_agency"] for e in seen} == {"oneaid"}
    [shakyo] = audited(client, auth, person, viewer_agency="zama-shakyo")
    assert client.get(f"/views/audit/entries/{shakyo['position']}", headers=npo).status_code == 404
    replayed = client.get(f"/views/audit/entries/{shakyo['position']}/replay", headers=npo)
    assert replayed.status_code == 404
    assert ok(client.get("/views/audit/agencies/zama-shakyo", headers=npo)) == []
    for refused in ("/views/audit/verify", f"/views/audit/consents/{shakyo['position']}/impact"):
        answer = client.get(refused, headers=npo)
        assert answer.status_code == 403 and "own agency" in answer.json()["message"]


def test_a_replayed_document_is_shown_only_while_the_officers_agency_may_see_it(
    client: TestClient, auth: Auth
) -> None:
    person = registered(client, auth)
    consent = consented(client, auth, person, ["zama-shakyo"], ["identity"])
    ok(client.get(f"/views/persons/{person}", headers=auth("zama-shakyo")))
    [entry] = [
        e
        for e in audited(client, auth, person, viewer_agency="zama-shakyo")
        if e["state_position"] is not None
    ]
    own = auth("zama-shakyo", "privacy_officer")
    shown = ok(client.get(f"/views/audit/entries/{entry['position']}/replay", headers=own))
    assert shown["matches"] and shown["document"]["categories"][0]["category"] == "identity"
    [replay_read] = [
        e
        for e in audited(client, auth, person, viewer_agency="zama-shakyo")
        if (e["view_request"] or {}).get("view") == "replay"
    ]
    assert replay_read["bases"] == {"identity": {"basis": "consent", "basis_id": consent}}

    ok(client.post(f"/intake/consents/{consent}/withdrawals", json={}, headers=auth()), 201)
    withheld = ok(client.get(f"/views/audit/entries/{entry['position']}/replay", headers=own))
    assert withheld["matches"] and withheld["document"] is None
    assert [w["category"] for w in withheld["document_withheld"]] == ["identity"]


def test_an_own_agency_organiser_replays_only_its_own_agencys_view(
    client: TestClient, auth: Auth
) -> None:
    person = registered(client, auth)
    at = datetime.now(UTC).isoformat().replace("+", "%2B")
    path = f"/views/persons/{person}/as-of?at={at}&agency={OFFICE}"
    refused = client.get(path, headers=auth("oneaid", "meeting_organiser"))
    assert refused.status_code == 403
    [entry] = audited(client, auth, person, viewer_agency="oneaid")
    assert entry["kind"] == "access_denied"
    assert client.get(path, headers=auth(OFFICE, "meeting_organiser")).status_code == 200


def test_only_agencies_the_reference_names_declare_a_vital_interest(
    client: TestClient, auth: Auth, token: TokenFactory
) -> None:
    person = registered(client, auth)
    opened = {"channel": "visit", "route_in": "self", "caller_kind": "self", "person_id": person}
    consultation = ok(client.post("/intake/consultations", json=opened, headers=auth()), 201)
    ok(
        client.post(
            f"/intake/consultations/{consultation['id']}/application", json={}, headers=auth()
        )
    )
    body = {
        "person_id": person,
        "recipients": ["zama-kodomo"],
        "categories": ["family"],
        "reason": "子どもの保護が必要",
        "hours": 24,
    }
    npo = {"Authorization": f"Bearer {token('oneaid', 'supervisor')}"}
    refused = client.post("/meeting/vital-interests", json=body, headers=npo)
    assert refused.status_code == 403 and "supervisor" in refused.json()["message"]
    kodomo = auth("zama-kodomo", "supervisor")
    ok(client.post("/meeting/vital-interests", json=body, headers=kodomo), 201)
