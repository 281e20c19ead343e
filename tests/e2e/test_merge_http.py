"""A merge over HTTP in embedded mode (#17): the survivor's view and 支援経過記録 show what was
recorded under the duplicate, the duplicate's id points to the survivor, and an unmerge gives
both pictures back exactly as before."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.wiring import embedded_app
from tests.e2e.answers import ok
from tests.e2e.test_desk_http import sign_in

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
HELLOWORK = "hellowork-atsugi"
COMPLAINT = "家賃が払えない"


def register(client: TestClient, auth: Auth, family_name: str) -> str:
    body = {"family_name": family_name, "sex": "female"}
    return str(ok(client.post("/intake/persons", json=body, headers=auth()), 201)["id"])


def consult(client: TestClient, auth: Auth, person: str) -> str:
    body = {
        "channel": "visit",
        "route_in": "self",
        "caller_kind": "self",
        "person_id": person,
        "main_complaint": COMPLAINT,
    }
    return str(ok(client.post("/intake/consultations", json=body, headers=auth()), 201)["id"])


def consent(client: TestClient, auth: Auth, person: str, categories: list[str]) -> str:
    now = datetime.now(UTC)
    body = {
        "person_id": person,
        "recipients": [HELLOWORK],
        "categories": categories,
        "purposes": ["support_coordination"],
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat(),
        "method": "written_application_form",
    }
    return str(ok(client.post("/intake/consents", json=body, headers=auth()), 201)["id"])


def duplicate_with_a_case(client: TestClient, auth: Auth) -> tuple[str, str, str, str, str]:
    """A survivor, and a duplicate who applied (利用申込) and has a case, with a coordination
    meeting on it in three days: (survivor, duplicate, consultation, case, meeting)."""
    survivor = register(client, auth, "試験")
    duplicate = register(client, auth, "試験ダブリ")
    consultation = consult(client, auth, duplicate)
    ok(client.post(f"/intake/consultations/{consultation}/application", json={}, headers=auth()))
    opened = {"consultation_id": consultation, "person_id": duplicate}
    case = ok(client.post("/meeting/cases", json=opened, headers=auth()), 201)["id"]
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    coordination = {"kind": "individual_coordination", "scheduled_for": soon, "case_ids": [case]}
    meeting = ok(client.post("/meeting/meetings", json=coordination, headers=auth()), 201)["id"]
    return survivor, duplicate, consultation, case, meeting


def pictures(client: TestClient, auth: Auth, person: str, at: datetime) -> dict[str, Any]:
    """Every answer about the person: the office's and Hello Work's views, and the as-of
    replay (its 支援経過記録, and what Hello Work could see then)."""
    as_of = f"/views/persons/{person}/as-of?at={quote(at.isoformat())}&agency={HELLOWORK}"
    return {
        "office": client.get(f"/views/persons/{person}", headers=auth()),
        "hellowork": client.get(f"/views/persons/{person}", headers=auth(HELLOWORK)),
        "as_of": client.get(as_of, headers=auth("zama-jiritsu", "privacy_officer")),
    }


def bodies(answers: dict[str, Any]) -> dict[str, Any]:
    return {name: ok(answer) for name, answer in answers.items()}


def categories(document: dict[str, Any]) -> dict[str, Any]:
    return {entry["category"]: entry for entry in document["categories"]}


def test_a_merge_reaches_the_views_and_an_unmerge_undoes_it(client: TestClient, auth: Auth) -> None:
    survivor = register(client, auth, "試験")
    duplicate = register(client, auth, "試験ダブリ")
    consultation = consult(client, auth, duplicate)
    given = consent(client, auth, duplicate, ["identity", "consultation"])
    at = datetime.now(UTC) + timedelta(seconds=1)
    before = {p: bodies(pictures(client, auth, p, at)) for p in (survivor, duplicate)}
    assert "consultation" not in categories(before[survivor]["office"])

    merge = {"into": survivor, "reason": "同一人物(二重登録)"}
    ok(client.post(f"/intake/persons/{duplicate}/merge", json=merge, headers=auth()))

    merged = bodies(pictures(client, auth, survivor, at))
    office = categories(merged["office"])
    [record] = office["consultation"]["records"]
    assert COMPLAINT in record["fields"].values()
    assert merged["office"]["merged_from"] == [duplicate]
    # The consent given under the duplicate's id is the same human's: Hello Work sees what it
    # covers of the merged person, on that consent, and the audit names it.
    hellowork = categories(merged["hellowork"])
    assert set(hellowork) == {"identity", "consultation"}
    assert {c["basis"]["id"] for c in hellowork.values()} == {given}
    opened = [e for e in merged["as_of"]["timeline"] if e["event"] == "ConsultationOpened"]
    assert [(e["recorded_under"], e["agency"]) for e in opened] == [(duplicate, "zama-jiritsu")]
    assert merged["as_of"]["agency_view"]["categories"]["consultation"]["basis"] == "consent"
    officer = auth("zama-jiritsu", "privacy_officer")
    entries = ok(client.get(f"/views/audit/persons/{survivor}", headers=officer))
    seen = [e for e in entries if e["viewer_agency"] == HELLOWORK]
    assert seen[-1]["bases"]["consultation"]["basis_id"] == given
    # The merged view is rebuilt from the journal to what was served.
    replay = f"/views/audit/entries/{seen[-1]['position']}/replay"
    assert ok(client.get(replay, headers=officer))["matches"] is True

    # Found by the duplicate's own name, the person is the survivor, shown once.
    asked = f"/views/persons/candidates?family_name={quote('試験ダブリ')}"
    found = ok(client.get(asked, headers=auth()))
    assert [row["person_id"] for row in found] == [survivor]
    # The duplicate's own id is no second, partial picture: it points to the survivor.
    for answer in pictures(client, auth, duplicate, at).values():
        assert answer.status_code == 409, answer.text
        assert answer.json()["survivor_id"] == survivor

    ok(client.post(f"/intake/persons/{duplicate}/unmerge", json={"reason": "別人"}, headers=auth()))
    after = {p: bodies(pictures(client, auth, p, at)) for p in (survivor, duplicate)}
    assert after == before
    assert consultation in str(after[duplicate]["office"])


def test_a_merge_reaches_the_case_history_and_an_unmerge_undoes_it(
    client: TestClient, auth: Auth
) -> None:
    survivor, duplicate, _, case, meeting_id = duplicate_with_a_case(client, auth)
    given = consent(client, auth, duplicate, ["plan"])

    def history(person: str) -> dict[str, Any]:
        return {
            "case": client.get(f"/meeting/persons/{person}/case", headers=auth()),
            "meetings": client.get(f"/meeting/persons/{person}/meetings", headers=auth()),
            "hellowork": client.get(
                f"/meeting/persons/{person}/disclosure", headers=auth(HELLOWORK)
            ),
        }

    def answered(answers: dict[str, Any]) -> dict[str, Any]:
        return {name: (a.status_code, a.json()) for name, a in answers.items()}

    before = {p: answered(history(p)) for p in (survivor, duplicate)}
    assert before[survivor]["case"][0] == 404
    assert before[survivor]["meetings"] == (200, [])
    assert before[survivor]["hellowork"][1]["categories"] == {}

    merge = {"into": survivor, "reason": "同一人物(二重登録)"}
    ok(client.post(f"/intake/persons/{duplicate}/merge", json=merge, headers=auth()))
    merged = history(survivor)
    assert ok(merged["case"])["id"] == case
    assert [m["id"] for m in ok(merged["meetings"])] == [meeting_id]
    # The consent given under the duplicate's id is the merged person's, in meeting too.
    plan = ok(merged["hellowork"])["categories"]["plan"]
    assert (plan["basis"], plan["basis_id"]) == ("consent", given)
    for answer in history(duplicate).values():
        assert answer.status_code == 409, answer.text
        assert answer.json()["survivor_id"] == survivor

    ok(client.post(f"/intake/persons/{duplicate}/unmerge", json={"reason": "別人"}, headers=auth()))
    assert {p: answered(history(p)) for p in (survivor, duplicate)} == before


def test_the_desk_takes_the_duplicates_page_to_the_survivors(
    embedded_settings: Settings, auth: Auth
) -> None:
    with TestClient(embedded_app(embedded_settings)) as desk:
        survivor = register(desk, auth, "試験")
        duplicate = register(desk, auth, "試験ダブリ")
        merge = {"into": survivor, "reason": "同一人物(二重登録)"}
        ok(desk.post(f"/intake/persons/{duplicate}/merge", json=merge, headers=auth()))
        sign_in(desk)
        moved = desk.get(f"/persons/{duplicate}", follow_redirects=False)
        assert (moved.status_code, moved.headers["location"]) == (303, f"/persons/{survivor}")
        page = desk.get(f"/persons/{survivor}")
        assert page.status_code == 200
        assert "統合先の本人の情報を表示しています" in page.text
