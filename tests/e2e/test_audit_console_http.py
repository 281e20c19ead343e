"""What the privacy officer's console asks of the audit API, over HTTP on the embedded platform:
who saw a person filtered by agency and period a page at a time, one agency's reads paged, one
entry as the chain holds it, and a consent's revocation impact (the disclosures made under it
before its withdrawal, what was purged, and the slips and 支援会議 shares that left under it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.projection.audit import RECORD_VIEWED, AuditEntry, AuditLog
from services.wiring import embedded_app
from tests.e2e.answers import ok

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
OFFICE = "zama-jiritsu"


@pytest.fixture
def client(embedded_settings: Settings) -> Iterator[TestClient]:
    with TestClient(embedded_app(embedded_settings)) as client:
        yield client


def officer(auth: Auth) -> dict[str, str]:
    return auth(OFFICE, "privacy_officer")


def disclose(client: TestClient, agency: str, person: str, hours: int) -> None:
    log: AuditLog = client.app.state.audit  # type: ignore[attr-defined]
    log.append(
        AuditEntry(
            kind=RECORD_VIEWED,
            viewer_staff_id="s007",
            viewer_agency=agency,
            viewer_roles=("caseworker",),
            recorded_at=T0 + timedelta(hours=hours),
            person_id=person,
            shown={"identity": ("consent", "c1")},
            response_hash="b" * 64,
        )
    )


def pages(client: TestClient, auth: Auth, url: str, **params: Any) -> list[list[int]]:
    """Every page of an audit list, following its Link rel="next" to the end."""
    found: list[list[int]] = []
    response = client.get(url, params=params, headers=officer(auth))
    while True:
        found.append([entry["position"] for entry in ok(response)])
        following = response.links.get("next")
        if following is None:
            return found
        response = client.get(following["url"], headers=officer(auth))


def test_who_saw_a_person_is_filtered_by_agency_and_period_and_paged(
    client: TestClient, auth: Auth
) -> None:
    for agency, hours in [
        ("zama-shakyo", 0),
        ("hellowork-atsugi", 1),
        ("zama-shakyo", 2),
        ("zama-shakyo", 30),
    ]:
        disclose(client, agency, "p1", hours)
    disclose(client, "zama-shakyo", "p2", 3)
    url = "/views/audit/persons/p1"

    assert pages(client, auth, url, limit=2) == [[1, 2], [3, 4]]
    assert pages(client, auth, url, agency="zama-shakyo", limit=1) == [[1], [3], [4]]
    day = {"since": "2025-04-01T00:00:00+09:00", "until": "2025-04-02T00:00:00+09:00"}
    assert pages(client, auth, url, agency="zama-shakyo", **day) == [[1, 3]]
    assert pages(client, auth, url, agency="oneaid") == [[]]


def test_one_agencys_reads_come_a_page_at_a_time(client: TestClient, auth: Auth) -> None:
    for hours in range(3):
        disclose(client, "zama-shakyo", f"p{hours}", hours)
    disclose(client, "oneaid", "p9", 4)
    assert pages(client, auth, "/views/audit/agencies/zama-shakyo", limit=2) == [[1, 2], [3]]


def test_a_cursor_the_list_did_not_give_is_refused_naming_it(
    client: TestClient, auth: Auth
) -> None:
    for cursor in ("WyJ4Il0", "not base64!"):
        refused = client.get(
            "/views/audit/persons/p1", params={"cursor": cursor}, headers=officer(auth)
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["problems"][0]["field"] == "cursor"


def test_one_entry_is_read_as_the_chain_holds_it(client: TestClient, auth: Auth) -> None:
    disclose(client, "zama-shakyo", "p1", 0)
    entry = ok(client.get("/views/audit/entries/1", headers=officer(auth)))
    assert (entry["position"], entry["viewer_agency"], entry["person_id"]) == (
        1,
        "zama-shakyo",
        "p1",
    )
    assert entry["bases"] == {"identity": {"basis": "consent", "basis_id": "c1"}}
    assert entry["previous_hash"] == "0" * 64 and len(entry["entry_hash"]) == 64
    assert client.get("/views/audit/entries/9", headers=officer(auth)).status_code == 404
    assert client.get("/views/audit/entries/1", headers=auth()).status_code == 403


def soon(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def register(client: TestClient, auth: Auth) -> str:
    body = {"family_name": "撤回", "given_name": "花子", "sex": "female"}
    return str(ok(client.post("/intake/persons", json=body, headers=auth()), 201)["id"])


def consent(client: TestClient, auth: Auth, person: str, recipient: str, **scope: Any) -> str:
    body = {
        "person_id": person,
        "recipients": [recipient],
        "categories": ["identity", "contact", "debt"],
        "purposes": ["support_coordination"],
        "valid_from": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
        "valid_until": soon(90),
        "method": "written_application_form",
        **scope,
    }
    return str(ok(client.post("/intake/consents", json=body, headers=auth()), 201)["id"])


def read_person(client: TestClient, auth: Auth, person: str, agency: str) -> int:
    """The agency reads the person's view: the position of the entry that recorded it."""
    ok(client.get(f"/views/persons/{person}", headers=auth(agency)))
    url = f"/views/audit/persons/{person}"
    [*_, last] = pages(client, auth, url, agency=agency, limit=200)[-1]
    return last


def support_meeting_share(client: TestClient, auth: Auth, person: str) -> tuple[str, str]:
    """A 支援会議 with the office and shakyo as members, at which the office shares tax and
    consultation: shakyo sees tax under its consent (tax needs one) and consultation under
    its consent too, consent coming before membership."""
    start = datetime.now(UTC) - timedelta(hours=2)
    members = [OFFICE, "zama-shakyo"]
    body = {
        "kind": "article9_support_meeting",
        "scheduled_for": start.isoformat(),
        "person_id": person,
        "members": [
            {"agency": a, "valid_from": start.isoformat(), "valid_until": soon(30)} for a in members
        ],
        "at": start.isoformat(),
    }
    meeting = ok(client.post("/meeting/meetings", json=body, headers=auth()), 201)["id"]
    held = {
        "attendees": [{"agency": a, "role": "member"} for a in members],
        "at": (start + timedelta(hours=1)).isoformat(),
    }
    ok(client.post(f"/meeting/meetings/{meeting}/held", json=held, headers=auth()))
    share = {"categories": ["tax", "consultation"], "note": "滞納の状況"}
    item = ok(
        client.post(f"/meeting/meetings/{meeting}/information", json=share, headers=auth()), 201
    )
    return str(meeting), str(item["item_id"])


def test_a_consents_revocation_impact_lists_what_left_under_it_before_the_withdrawal(
    client: TestClient, auth: Auth
) -> None:
    person = register(client, auth)
    withdrawn = consent(
        client,
        auth,
        person,
        "zama-shakyo",
        categories=["identity", "contact", "debt", "tax", "consultation"],
        purposes=["support_coordination", "referral", "meeting"],
    )
    other = consent(client, auth, person, "hellowork-atsugi")
    first = read_person(client, auth, person, "zama-shakyo")
    under_other = read_person(client, auth, person, "hellowork-atsugi")
    second = read_person(client, auth, person, "zama-shakyo")
    slip = {
        "kind": "service_request",
        "to": "zama-shakyo",
        "reason": "家計改善支援",
        "categories": ["identity", "debt"],
        "person_id": person,
        "consent_id": withdrawn,
    }
    referral = ok(client.post("/referral/referrals", json=slip, headers=auth()), 201)["id"]
    meeting, item = support_meeting_share(client, auth, person)
    ok(client.post(f"/intake/consents/{withdrawn}/withdrawals", json={}, headers=auth()), 201)
    read_person(client, auth, person, "zama-shakyo")

    impact = ok(client.get(f"/views/audit/consents/{withdrawn}/impact", headers=officer(auth)))
    assert (impact["consent_id"], impact["person_id"]) == (withdrawn, person)
    assert impact["recipients"] == ["zama-shakyo"]
    [withdrawal] = impact["withdrawals"]
    assert withdrawal["recipients"] is None and withdrawal["categories"] is None
    assert [e["position"] for e in impact["disclosed_before"]] == [first, second]
    assert all(e["viewer_agency"] == "zama-shakyo" for e in impact["disclosed_before"])
    assert under_other not in [e["position"] for e in impact["disclosed_before"]]
    assert impact["disclosed_after"] == []
    [purge] = impact["purged"]
    assert purge["agency"] == "zama-shakyo"
    assert set(purge["categories"]) <= {"identity", "contact", "debt", "tax", "consultation"}
    assert purge["at"] >= withdrawal["at"]
    [sent] = impact["slips"]
    assert (sent["referral_id"], sent["sender"], sent["receiver"]) == (
        referral,
        OFFICE,
        "zama-shakyo",
    )
    assert sent["categories"] == ["identity", "debt"]
    [shared] = impact["shares"]
    assert (shared["meeting_id"], shared["item_id"], shared["shared_by"]) == (meeting, item, OFFICE)
    assert shared["received"] == {"zama-shakyo": ["tax", "consultation"]}

    untouched = ok(client.get(f"/views/audit/consents/{other}/impact", headers=officer(auth)))
    assert untouched["withdrawals"] == [] and untouched["purged"] == []
    assert [e["position"] for e in untouched["disclosed_before"]] == [under_other]
    assert untouched["slips"] == [] and untouched["shares"] == []


def test_the_impact_of_an_unknown_consent_is_404_and_only_privacy_officers_ask(
    client: TestClient, auth: Auth
) -> None:
    unknown = client.get(
        "/views/audit/consents/00000000-0000-0000-0000-000000000000/impact",
        headers=officer(auth),
    )
    assert unknown.status_code == 404
    person = register(client, auth)
    asked = consent(client, auth, person, "zama-shakyo")
    refused = client.get(f"/views/audit/consents/{asked}/impact", headers=auth())
    assert refused.status_code == 403 and "privacy_officer" in refused.json()["message"]
