"""Erasing a person end to end, in embedded mode (#20): a recognisable person consults, is
referred under a consent, is seen by the receiver, and asks to be erased. Then every answer
and every desk page shows their values as 消去済み with the date and reason, the month's
statistics are what they were, the audit chain still verifies, the proof of a disclosure
served before says its content was erased beside the hash served and the bases, and no sealed
value in the files under var/ opens to them any more."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.cli import ERASED_SINCE, main
from services.platform.settings import Settings
from services.projection.audit import AuditLog
from services.web import formatting
from services.wiring import embedded_app
from tests.e2e.answers import ok
from tests.e2e.test_desk_http import sign_in
from tests.sealed_scan import decrypting_to, file_places

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
OFFICE, HELLOWORK = "zama-jiritsu", "hellowork-atsugi"
PERSON = {
    "family_name": "蓬莱",
    "given_name": "鶴吉",
    "family_name_kana": "ホウライ",
    "given_name_kana": "ツルキチ",
    "birth_date": "1948-03-09",
    "sex": "male",
    "address": "座間市相武台九丁目99番地 鶴亀荘",
    "phone": "046-999-0123",
}
COMPLAINT = "鶴亀荘の家賃を三か月滞納している"
SLIP_REASON = "鶴亀荘からの転居と就労の相談"
# Each of them found in no answer and no page once the person is erased.
SAID = (PERSON["family_name"], PERSON["given_name"], "鶴亀荘", PERSON["phone"], "1948")
# Each of them kept sealed in the embedded files.
SEALED = {
    **{name: PERSON[name] for name in ("family_name", "given_name", "address", "phone")},
    "main_complaint": COMPLAINT,
    "slip_reason": SLIP_REASON,
}
MONTH = "2025-11"
ERASED = {"erased": True, "reason": "subject_request"}


@pytest.fixture
def client(embedded_settings: Settings) -> Iterator[TestClient]:
    with TestClient(embedded_app(embedded_settings)) as client:
        yield client


def audit(client: TestClient) -> AuditLog:
    log: AuditLog = client.app.state.audit  # type: ignore[attr-defined]
    return log


def erased(value: Any) -> bool:
    """An erasure notice for this story's erasure (its date is the test's own today)."""
    return isinstance(value, dict) and {k: value.get(k) for k in ERASED} == ERASED


def nothing_said(text: str) -> None:
    found = [value for value in SAID if value in text]
    assert found == [], found


def story(client: TestClient, auth: Auth) -> dict[str, str]:
    """The person registered, consulting, applying, consenting to Hello Work and referred to
    it; Hello Work reads their page. The ids of each record."""
    person = ok(client.post("/intake/persons", json=PERSON, headers=auth()), 201)["id"]
    opened = {
        "channel": "visit",
        "route_in": "self",
        "caller_kind": "self",
        "person_id": person,
        "main_complaint": COMPLAINT,
        "opened_at": f"{MONTH}-05T10:00+09:00",
    }
    consultation = ok(client.post("/intake/consultations", json=opened, headers=auth()), 201)["id"]
    at = {"at": f"{MONTH}-05T11:00+09:00"}
    url = f"/intake/consultations/{consultation}"
    ok(client.post(f"{url}/triage", json={"outcome": "continue_here", **at}, headers=auth()))
    ok(client.post(f"{url}/application", json=at, headers=auth()))
    terms = {
        "person_id": person,
        "recipients": [HELLOWORK],
        "categories": ["identity", "contact", "consultation"],
        "purposes": ["support_coordination", "referral"],
        "valid_from": f"{MONTH}-05T12:00+09:00",
        "valid_until": "2027-11-05T00:00+09:00",
    }
    consent = ok(client.post("/intake/consents", json=terms, headers=auth()), 201)["id"]
    slip = {
        "kind": "service_request",
        "to": HELLOWORK,
        "reason": SLIP_REASON,
        # The reason speaks of the consultation: the receiver reads it under the consent.
        "categories": ["identity", "contact", "consultation"],
        "person_id": person,
        "consent_id": consent,
    }
    referral = ok(client.post("/referral/referrals", json=slip, headers=auth()), 201)["id"]
    seen = ok(client.get(f"/views/persons/{person}", headers=auth(HELLOWORK)))
    assert PERSON["family_name"] in str(seen)
    [entry] = [e for e in audit(client).seen_person(person) if e.viewer_agency == HELLOWORK]
    return {
        "person": person,
        "consultation": consultation,
        "consent": consent,
        "referral": referral,
        "entry": str(entry.position),
    }


def erase(client: TestClient, headers: dict[str, str], person: str, reason: str) -> Any:
    url = f"/intake/persons/{person}/erasure"
    return client.post(url, json={"reason": reason}, headers=headers)


def test_an_erased_person_reads_as_erased_everywhere_and_counts_stay(
    client: TestClient,
    auth: Auth,
    embedded_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = story(client, auth)
    person = ids["person"]
    officer = auth(OFFICE, "privacy_officer")
    figures = ok(client.get(f"/views/statistics/{MONTH}", headers=auth()))
    assert figures["figures"]["new_consultations"] == 1 and figures["figures"]["applications"] == 1
    search = f"/views/persons/search?q={PERSON['family_name_kana']}"
    assert [r["person_id"] for r in ok(client.get(search, headers=auth()))] == [person]
    keys = client.app.state.keys  # type: ignore[attr-defined]
    # Each value is kept sealed in the files under var/, and opens to itself, until erased.
    assert set(decrypting_to(file_places(embedded_settings.var_dir), keys, SEALED)) == set(SEALED)

    done = ok(erase(client, officer, person, "subject_request"), 201)
    assert done["persons"] == [person] and done["reason"] == "subject_request"
    assert decrypting_to(file_places(embedded_settings.var_dir), keys, SEALED) == {}
    # The search index dropped what it derived from them: nothing finds them any more.
    assert ok(client.get(search, headers=auth())) == []

    # Intake's own record of them, their consultation, and the slip as its receiver reads it.
    intake = ok(client.get(f"/intake/persons/{person}", headers=auth()))
    assert intake["erased"]["reason"] == "subject_request"
    assert all(erased(intake[f]) for f in ("family_name", "given_name", "address", "phone"))
    consultation = ok(client.get(f"/intake/consultations/{ids['consultation']}", headers=auth()))
    assert erased(consultation["main_complaint"])
    slip = ok(client.get(f"/referral/referrals/{ids['referral']}", headers=auth(HELLOWORK)))
    assert erased(slip["reason"])
    # The views: the office's and the receiver's pages, the worklist, the case as of today.
    page = ok(client.get(f"/views/persons/{person}", headers=auth()))
    assert page["erased"]["reason"] == "subject_request"
    [identity] = [c for c in page["categories"] if c["category"] == "identity"]
    assert erased(identity["fields"]["family_name"]) and erased(identity["fields"]["birth_date"])
    receiver = ok(client.get(f"/views/persons/{person}", headers=auth(HELLOWORK)))
    assert receiver["categories"] and receiver["erased"] == page["erased"]
    [line] = ok(client.get("/views/consultations", headers=auth()))
    assert erased(line["main_complaint"])
    as_of = ok(
        client.get(
            f"/views/persons/{person}/as-of",
            params={"at": datetime.now().astimezone().isoformat()},
            headers=officer,
        )
    )
    assert as_of["erased"] == page["erased"] and as_of["timeline"]
    answers = [intake, consultation, slip, page, receiver, line, as_of]
    nothing_said(str(answers))

    assert ok(client.get(f"/views/statistics/{MONTH}", headers=auth())) == figures
    assert ok(client.get("/views/audit/verify", headers=officer))["ok"] is True

    # What Hello Work was served before the erasure: its content is gone, what was recorded
    # of it stands.
    entry = ok(client.get(f"/views/audit/entries/{ids['entry']}", headers=officer))
    replay = ok(client.get(f"/views/audit/entries/{ids['entry']}/replay", headers=officer))
    assert replay["erased"]["reason"] == "subject_request" and erased(replay["erased"])
    assert replay["matches"] is False and replay["served_hash"] == entry["response_hash"]
    assert replay["bases"] == entry["bases"] and replay["bases_match"] is True
    assert replay["bases"]["identity"] == {"basis": "consent", "basis_id": ids["consent"]}
    # The operator's command says the same by its exit status: erased since, not tampered.
    monkeypatch.setenv("TSUNAGU_VAR_DIR", str(embedded_settings.var_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["audit", "replay", ids["entry"]]) == ERASED_SINCE
    assert json.loads(capsys.readouterr().out)["erased"]["reason"] == "subject_request"


def test_an_erasure_is_once_by_the_office_or_a_privacy_officer_for_a_known_reason(
    client: TestClient, auth: Auth
) -> None:
    person = ok(client.post("/intake/persons", json=PERSON, headers=auth()), 201)["id"]
    refused = erase(client, auth(HELLOWORK), person, "subject_request")
    assert refused.status_code == 403
    assert "self-reliance support office" in refused.json()["message"]
    # A privacy officer over their own agency only may not erase every agency's records.
    own_agency = erase(client, auth("zama-shuno", "privacy_officer"), person, "subject_request")
    assert own_agency.status_code == 403
    for body in ({"reason": "because"}, {}, {"reason": "x" * 41}):
        bad = client.post(f"/intake/persons/{person}/erasure", json=body, headers=auth())
        assert bad.status_code == 422, body
        assert [p["field"] for p in bad.json()["problems"]] == ["reason"], body

    first = ok(erase(client, auth(), person, "subject_request"), 201)
    again = erase(client, auth(OFFICE, "privacy_officer"), person, "retention")
    assert again.status_code == 409
    current = again.json()["current"]
    assert (current["state"], current["reason"]) == ("erased", "subject_request")
    assert datetime.fromisoformat(current["erased_at"]) == datetime.fromisoformat(
        first["erased_at"]
    )


@pytest.fixture
def told(client: TestClient, auth: Auth) -> dict[str, str]:
    """The story told, and the person erased at their request by the office."""
    ids = story(client, auth)
    ok(erase(client, auth(), ids["person"], "subject_request"), 201)
    return ids


def test_nothing_new_is_recorded_about_an_erased_person_in_any_service(
    client: TestClient, auth: Auth, told: dict[str, str]
) -> None:
    ids, person = told, told["person"]
    slip = {
        "kind": "service_request",
        "to": HELLOWORK,
        "reason": "再度の依頼",
        "categories": ["identity"],
        "person_id": person,
        "consent_id": ids["consent"],
    }
    opened = {"channel": "phone", "route_in": "self", "caller_kind": "self", "person_id": person}
    attempts = {
        "referral": client.post("/referral/referrals", json=slip, headers=auth()),
        "local id": client.post(
            f"/intake/persons/{person}/links", json={"local_id": "J-1"}, headers=auth()
        ),
        "consultation": client.post("/intake/consultations", json=opened, headers=auth()),
    }
    for name, answer in attempts.items():
        assert answer.status_code == 409, (name, answer.text)
        assert "erased" in answer.json()["message"], name
    # No case is offered from their application, for the same reason.
    offered = client.get(f"/meeting/persons/{person}/applications", headers=auth())
    assert offered.status_code == 409, offered.text
    assert offered.json()["current"]["reason"] == "subject_request"


def test_the_desk_shows_each_erased_value_as_erased_with_its_date_and_reason(
    client: TestClient, told: dict[str, str]
) -> None:
    ids, person = told, told["person"]
    sign_in(client, OFFICE, "privacy_officer")
    today = formatting.wareki(formatting.today())
    marker = f"消去済み（{today}・本人からの消去請求）"
    pages = {
        "person": f"/persons/{person}",
        "consultation": f"/consultations/{ids['consultation']}",
        "支援経過記録": f"/persons/{person}/replay?on={formatting.today().isoformat()}",
    }
    for name, path in pages.items():
        shows_erased(client, name, path, marker)
    person_page = client.get(f"/persons/{person}").text
    assert f"この方の情報は{today}に消去されました（本人からの消去請求）" in person_page
    assert "/consents/new" not in person_page  # nothing new is offered
    case_page = client.get(f"/persons/{person}/case").text
    assert f"この方の情報は{today}に消去されました（本人からの消去請求）" in case_page
    assert f'action="/persons/{person}/case"' not in case_page  # no case to open
    proof = client.get(f"/privacy/entries/{ids['entry']}").text
    assert "提供した内容は消去済みです" in proof and "本人からの消去請求" in proof
    served = audit(client).entry(int(ids["entry"])).response_hash
    assert served is not None and served in proof
    assert "✗" not in proof
    # The slip and its printed sheet, as the receiver reads them.
    sign_in(client, HELLOWORK)
    for name, path in (("slip", "/referrals/{}"), ("sheet", "/referrals/{}/sheet")):
        shows_erased(client, name, path.format(ids["referral"]), marker)


def shows_erased(client: TestClient, name: str, path: str, marker: str) -> None:
    page = client.get(path)
    assert page.status_code == 200, (name, page.text)
    assert marker in page.text, name
    assert "erased_at" not in page.text and "sealed:v1:" not in page.text, name
    nothing_said(page.text)
