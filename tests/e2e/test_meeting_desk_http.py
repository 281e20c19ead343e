"""The meeting APIs the case and meeting screens need, over HTTP in embedded mode: a person's
case, applications and meetings, an agency's cases and meetings, what a case's assessments
said, a regular meeting's resource gaps, and a 支援会議 share previewed before it is made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.e2e.answers import ok
from tests.e2e.test_desk_http import sign_in

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
OFFICE = "zama-jiritsu"


@dataclass(frozen=True)
class Applicant:
    person: str
    consultation: str


def applicant(client: TestClient, auth: Auth, family_name: str = "試験") -> Applicant:
    """A person registered by the office, with a consultation whose application was received."""
    person = ok(
        client.post("/intake/persons", json={"family_name": family_name}, headers=auth()), 201
    )["id"]
    body = {"channel": "visit", "route_in": "self", "caller_kind": "self"}
    consultation = ok(client.post("/intake/consultations", json=body, headers=auth()), 201)["id"]
    attach = {"person_id": person}
    ok(client.post(f"/intake/consultations/{consultation}/attach", json=attach, headers=auth()))
    ok(client.post(f"/intake/consultations/{consultation}/application", json={}, headers=auth()))
    return Applicant(person, consultation)


def open_case(client: TestClient, auth: Auth, who: Applicant) -> dict[str, Any]:
    body = {"consultation_id": who.consultation, "person_id": who.person}
    case: dict[str, Any] = ok(client.post("/meeting/cases", json=body, headers=auth()), 201)
    return case


def soon(days: int = 1) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_a_persons_case_is_found_by_the_person_and_opened_from_a_listed_application(
    client: TestClient, auth: Auth
) -> None:
    who = applicant(client, auth)
    missing = client.get(f"/meeting/persons/{who.person}/case", headers=auth())
    assert missing.status_code == 404
    [application] = ok(client.get(f"/meeting/persons/{who.person}/applications", headers=auth()))
    assert (application["consultation_id"], application["agency"]) == (who.consultation, OFFICE)
    outsider = client.get(f"/meeting/persons/{who.person}/applications", headers=auth("oneaid"))
    assert outsider.status_code == 403
    case = open_case(client, auth, who)
    found = ok(client.get(f"/meeting/persons/{who.person}/case", headers=auth()))
    assert found["id"] == case["id"] and found["allowed"] == case["allowed"]
    assert "record_assessment" in found["allowed"] and "approve_plan" not in found["allowed"]
    # An NPO that neither holds the case nor approves plans does not read it.
    npo = client.get(f"/meeting/persons/{who.person}/case", headers=auth("oneaid"))
    assert npo.status_code == 403


def test_a_case_keeps_what_each_assessment_found(client: TestClient, auth: Auth) -> None:
    case = open_case(client, auth, applicant(client, auth))
    body = {"issues": ["debt", "illness"], "strengths": ["毎日歩く"], "notes": "初回面談"}
    ok(client.post(f"/meeting/cases/{case['id']}/assessments", json=body, headers=auth()), 201)
    again = {"issues": ["debt"], "strengths": []}
    after = ok(
        client.post(f"/meeting/cases/{case['id']}/assessments", json=again, headers=auth()), 201
    )
    first, second = after["assessment_records"]
    assert (first["number"], first["issues"], first["strengths"], first["notes"]) == (
        1,
        ["debt", "illness"],
        ["毎日歩く"],
        "初回面談",
    )
    assert (second["number"], second["issues"], second["notes"]) == (2, ["debt"], None)
    assert after["assessments"] == 2


def test_an_agency_lists_its_cases_open_or_closed(client: TestClient, auth: Auth) -> None:
    kept = open_case(client, auth, applicant(client, auth, "継続"))
    ended = open_case(client, auth, applicant(client, auth, "終結"))
    closure = {"reason": "contact_lost"}
    ok(client.post(f"/meeting/cases/{ended['id']}/closure", json=closure, headers=auth()))
    listed = [c["id"] for c in ok(client.get("/meeting/cases", headers=auth()))]
    assert listed == [kept["id"], ended["id"]]
    opened = ok(client.get("/meeting/cases?status=open", headers=auth()))
    assert [c["id"] for c in opened] == [kept["id"]]
    closed = ok(client.get("/meeting/cases?status=closed", headers=auth()))
    assert [(c["id"], c["closure_reason"]) for c in closed] == [(ended["id"], "contact_lost")]
    assert ok(client.get("/meeting/cases", headers=auth("oneaid"))) == []
    wrong = client.get("/meeting/cases?status=pending", headers=auth())
    assert wrong.status_code == 422 and wrong.json()["problems"][0]["field"] == "status"


def schedule(client: TestClient, auth: Auth, body: dict[str, Any]) -> dict[str, Any]:
    meeting: dict[str, Any] = ok(client.post("/meeting/meetings", json=body, headers=auth()), 201)
    return meeting


def article9(
    client: TestClient, auth: Auth, person: str, members: list[str], days: int = 365
) -> dict[str, Any]:
    """A 支援会議 on the person held an hour ago, its members in from two hours ago."""
    start = datetime.now(UTC) - timedelta(hours=2)
    body = {
        "kind": "article9_support_meeting",
        "scheduled_for": start.isoformat(),
        "person_id": person,
        "members": [
            {"agency": a, "valid_from": start.isoformat(), "valid_until": soon(days)}
            for a in members
        ],
        "at": start.isoformat(),
    }
    meeting = schedule(client, auth, body)
    held = {
        "attendees": [{"agency": a, "role": "member"} for a in members],
        "at": (start + timedelta(hours=1)).isoformat(),
    }
    ok(client.post(f"/meeting/meetings/{meeting['id']}/held", json=held, headers=auth()))
    return meeting


def test_a_persons_meetings_and_an_agencys_meetings_are_listed(
    client: TestClient, auth: Auth
) -> None:
    who = applicant(client, auth)
    case = open_case(client, auth, who)
    individual = schedule(
        client,
        auth,
        {"kind": "individual_coordination", "scheduled_for": soon(3), "case_ids": [case["id"]]},
    )
    regular = schedule(
        client,
        auth,
        {"kind": "regular_coordination", "scheduled_for": soon(9), "case_ids": [case["id"]]},
    )
    support = article9(client, auth, who.person, [OFFICE, "zama-shakyo"])
    someone_else = applicant(client, auth, "別人")
    schedule(
        client,
        auth,
        {
            "kind": "individual_coordination",
            "scheduled_for": soon(2),
            "case_ids": [open_case(client, auth, someone_else)["id"]],
        },
    )
    mine = ok(client.get(f"/meeting/persons/{who.person}/meetings", headers=auth()))
    assert [m["id"] for m in mine] == [support["id"], individual["id"], regular["id"]]
    # A member of the 支援会議 sees that meeting, not the office's coordination meetings.
    shakyo = ok(client.get(f"/meeting/persons/{who.person}/meetings", headers=auth("zama-shakyo")))
    assert [m["id"] for m in shakyo] == [support["id"]]
    organised = ok(client.get("/meeting/meetings", headers=auth()))
    assert [m["scheduled_for"] for m in organised] == sorted(
        (m["scheduled_for"] for m in organised), reverse=True
    )
    assert {individual["id"], regular["id"], support["id"]} <= {m["id"] for m in organised}
    assert len(organised) == 4
    assert ok(client.get("/meeting/meetings", headers=auth("zama-shakyo"))) == []


def test_a_regular_meeting_lists_the_gaps_noted_since_the_last_one(
    client: TestClient, auth: Auth
) -> None:
    case = open_case(client, auth, applicant(client, auth))
    gap_url = f"/meeting/cases/{case['id']}/resource-gaps"
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    ok(client.post(gap_url, json={"gap": "夜間の居場所", "at": an_hour_ago}, headers=auth()), 201)
    first = schedule(
        client,
        auth,
        {"kind": "regular_coordination", "scheduled_for": soon(0), "at": an_hour_ago},
    )
    pending = ok(client.get(f"/meeting/meetings/{first['id']}/resource-gaps", headers=auth()))
    assert [g["gap"] for g in pending] == ["夜間の居場所"]
    held = {"attendees": [{"agency": OFFICE, "role": "organiser"}]}
    ok(client.post(f"/meeting/meetings/{first['id']}/held", json=held, headers=auth()))
    ok(client.post(gap_url, json={"gap": "市外の保証人支援"}, headers=auth()), 201)
    second = schedule(client, auth, {"kind": "regular_coordination", "scheduled_for": soon(90)})
    since = ok(client.get(f"/meeting/meetings/{second['id']}/resource-gaps", headers=auth()))
    assert [g["gap"] for g in since] == ["市外の保証人支援"]
    reviewed = ok(client.get(f"/meeting/meetings/{first['id']}/resource-gaps", headers=auth()))
    assert [g["gap"] for g in reviewed] == ["夜間の居場所"]
    individual = schedule(
        client,
        auth,
        {"kind": "individual_coordination", "scheduled_for": soon(), "case_ids": [case["id"]]},
    )
    not_regular = client.get(f"/meeting/meetings/{individual['id']}/resource-gaps", headers=auth())
    assert not_regular.status_code == 404


def tax_consent(client: TestClient, auth: Auth, person: str, recipients: list[str]) -> str:
    body = {
        "person_id": person,
        "recipients": recipients,
        "categories": ["tax"],
        "purposes": ["meeting"],
        "valid_from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "valid_until": soon(30),
        "method": "written_application_form",
    }
    return str(ok(client.post("/intake/consents", json=body, headers=auth()), 201)["id"])


def test_a_share_is_previewed_with_each_members_basis_and_nothing_is_shared(
    client: TestClient, auth: Auth
) -> None:
    who = applicant(client, auth)
    members = [OFFICE, "zama-shakyo", "seikatsuclub", "zama-shuno"]
    meeting = article9(client, auth, who.person, members)
    url = f"/meeting/meetings/{meeting['id']}/information/preview"
    preview = ok(client.get(f"{url}?categories=consultation&categories=employment", headers=auth()))
    assert [m["agency"] for m in preview] == ["zama-shakyo", "seikatsuclub", "zama-shuno"]
    for member in preview:
        assert member["active"] is True
        assert member["categories"] == {
            c: {"basis": "article9_meeting", "basis_id": meeting["id"], "denied": None}
            for c in ("consultation", "employment")
        }
    still = ok(client.get(f"/meeting/meetings/{meeting['id']}", headers=auth()))
    assert still["items_shared"] == 0
    outsider = client.get(f"{url}?categories=consultation", headers=auth("oneaid"))
    assert outsider.status_code == 403
    unknown = client.get(f"{url}?categories=gossip", headers=auth())
    assert unknown.status_code == 422 and unknown.json()["problems"][0]["field"] == "categories"


def test_a_tax_share_preview_is_refused_naming_the_law_and_the_members_without_consent(
    client: TestClient, auth: Auth
) -> None:
    who = applicant(client, auth)
    meeting = article9(client, auth, who.person, [OFFICE, "zama-shakyo", "zama-shuno"])
    url = f"/meeting/meetings/{meeting['id']}/information/preview?categories=tax"
    refused = client.get(url, headers=auth("zama-shuno"))
    assert refused.status_code == 403
    assert refused.json()["law"] == "地方税法第22条"
    assert refused.json()["members_without_consent"] == [OFFICE, "zama-shakyo"]
    tax_consent(client, auth, who.person, [OFFICE, "zama-shakyo"])
    preview = ok(client.get(url, headers=auth("zama-shuno")))
    consent_bases = {m["agency"]: m["categories"]["tax"]["basis"] for m in preview}
    assert consent_bases == {OFFICE: "consent", "zama-shakyo": "consent"}


def test_a_member_whose_membership_has_ended_would_not_see_the_item(
    client: TestClient, auth: Auth
) -> None:
    who = applicant(client, auth)
    start = datetime.now(UTC) - timedelta(hours=3)
    body = {
        "kind": "article9_support_meeting",
        "scheduled_for": start.isoformat(),
        "person_id": who.person,
        "members": [
            {"agency": OFFICE, "valid_until": soon(30)},
            {"agency": "zama-shakyo", "valid_until": (start + timedelta(hours=1)).isoformat()},
        ],
        "at": start.isoformat(),
    }
    meeting = schedule(client, auth, body)
    held = {"attendees": [{"agency": OFFICE, "role": "organiser"}], "at": start.isoformat()}
    ok(client.post(f"/meeting/meetings/{meeting['id']}/held", json=held, headers=auth()))
    url = f"/meeting/meetings/{meeting['id']}/information/preview"
    [shakyo] = ok(client.get(url, params={"categories": "consultation"}, headers=auth()))
    assert (shakyo["agency"], shakyo["active"]) == ("zama-shakyo", False)
    assert shakyo["categories"]["consultation"]["basis"] is None
    assert "no Article 9 meeting membership" in shakyo["categories"]["consultation"]["denied"]
    tomorrow = soon(1)
    future = client.get(url, params={"categories": "consultation", "at": tomorrow}, headers=auth())
    assert future.status_code == 422 and future.json()["problems"][0]["field"] == "at"


def test_the_case_list_pages_by_link_with_nothing_lost_or_repeated(
    client: TestClient, auth: Auth
) -> None:
    opened = {open_case(client, auth, applicant(client, auth, name))["id"] for name in "甲乙丙"}
    first = client.get("/meeting/cases", params={"limit": 2}, headers=auth())
    assert len(first.json()) == 2 and "next" in first.links
    rest = client.get(first.links["next"]["url"], headers=auth())
    assert "next" not in rest.links
    listed = [c["id"] for c in first.json() + rest.json()]
    assert len(listed) == len(set(listed)) and set(listed) == opened


def test_the_meeting_list_pages_latest_first_by_link(client: TestClient, auth: Auth) -> None:
    case = open_case(client, auth, applicant(client, auth))
    scheduled = [
        schedule(
            client,
            auth,
            {"kind": "regular_coordination", "scheduled_for": soon(d), "case_ids": [case["id"]]},
        )["id"]
        for d in (3, 9, 6)
    ]
    first = client.get("/meeting/meetings", params={"limit": 2}, headers=auth())
    rest = client.get(first.links["next"]["url"], headers=auth())
    assert "next" not in rest.links
    listed = [m["id"] for m in first.json() + rest.json()]
    assert listed == [scheduled[1], scheduled[2], scheduled[0]]


def test_a_regular_meeting_shows_a_participant_only_the_cases_it_has_a_basis_for(
    client: TestClient, auth: Auth
) -> None:
    """Issue 15: taking part in a regular meeting is no basis for every person it reviews."""
    shown, other = applicant(client, auth, "開示"), applicant(client, auth, "非開示")
    shown_case, other_case = open_case(client, auth, shown), open_case(client, auth, other)
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for case, gap in ((shown_case, "夜間の居場所"), (other_case, "保証人")):
        body = {"gap": gap, "at": an_hour_ago}
        ok(
            client.post(f"/meeting/cases/{case['id']}/resource-gaps", json=body, headers=auth()),
            201,
        )
    consent = {
        "person_id": shown.person,
        "recipients": ["oneaid"],
        "categories": ["plan"],
        "purposes": ["support_coordination"],
        "valid_from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "valid_until": soon(30),
    }
    ok(client.post("/intake/consents", json=consent, headers=auth()), 201)
    regular = schedule(
        client,
        auth,
        {
            "kind": "regular_coordination",
            "scheduled_for": soon(0),
            "case_ids": [shown_case["id"], other_case["id"]],
        },
    )
    held = {
        "attendees": [{"agency": OFFICE, "role": "organiser"}, {"agency": "oneaid", "role": "npo"}],
        "conclusions": ["二人とも次回まで継続"],
    }
    ok(client.post(f"/meeting/meetings/{regular['id']}/held", json=held, headers=auth()))

    organised = ok(client.get(f"/meeting/meetings/{regular['id']}", headers=auth()))
    assert set(organised["case_ids"]) == {shown_case["id"], other_case["id"]}
    assert organised["conclusions"] == ["二人とも次回まで継続"]
    seen = ok(client.get(f"/meeting/meetings/{regular['id']}", headers=auth("oneaid")))
    assert seen["case_ids"] == [shown_case["id"]]
    assert [g["gap"] for g in seen["resource_gaps"]] == ["夜間の居場所"]
    assert {p["case_id"] for p in seen["plans_discussed"]} <= {shown_case["id"]}
    assert seen["conclusions"] == [] and [w["category"] for w in seen["withheld"]] == ["plan"]
    gaps_url = f"/meeting/meetings/{regular['id']}/resource-gaps"
    assert [g["gap"] for g in ok(client.get(gaps_url, headers=auth()))] == [
        "夜間の居場所",
        "保証人",
    ]
    assert [g["gap"] for g in ok(client.get(gaps_url, headers=auth("oneaid")))] == ["夜間の居場所"]

    def entries(person: str) -> list[dict[str, Any]]:
        found = client.get(
            f"/views/audit/persons/{person}", headers=auth(OFFICE, "privacy_officer")
        )
        listed: list[dict[str, Any]] = ok(found)
        return [
            e
            for e in listed
            if e["viewer_agency"] == "oneaid"
            and e["view_request"].get("meeting_id") == regular["id"]
        ]

    # The desk says a part was left out, rather than showing an empty record as complete.
    sign_in(client, "oneaid")
    page = client.get(f"/meetings/{regular['id']}")
    assert page.status_code == 200 and "開示の根拠がない方に関する部分" in page.text
    assert "保証人" not in page.text and "夜間の居場所" in page.text

    read, gaps_read, *desk_reads = entries(shown.person)
    assert read["kind"] == "record_viewed" and read["bases"]["plan"]["basis"] == "consent"
    assert gaps_read["view_request"]["view"] == "resource_gaps"
    # The page's own calls are reads of that person too, and of nobody else.
    assert [e["view_request"]["view"] for e in desk_reads] == ["meeting", "resource_gaps"]
    assert entries(other.person) == []


def test_a_support_meeting_is_about_a_person_registered_in_the_organisers_municipality(
    client: TestClient, auth: Auth
) -> None:
    """Issue 16 and 15: a 支援会議 about nobody, or about a neighbour's resident, is refused."""
    who = applicant(client, auth)

    def article9(person: str, agency: str) -> Any:
        body = {
            "kind": "article9_support_meeting",
            "scheduled_for": soon(7),
            "person_id": person,
            "members": [{"agency": agency, "valid_until": soon(60)}],
        }
        return client.post("/meeting/meetings", json=body, headers=auth(agency))

    for person, agency in ((str(uuid4()), OFFICE), (who.person, "ebina-jiritsu")):
        refused = article9(person, agency)
        assert refused.status_code == 422, refused.text
        assert refused.json()["problems"][0]["field"] == "person_id"
    assert article9(who.person, OFFICE).status_code == 201
