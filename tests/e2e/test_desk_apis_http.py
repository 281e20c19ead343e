"""The APIs behind the caseworker's desk, over HTTP in embedded mode: paginated lists, the
consultation worklist, person search and duplicate candidates, the person view's shape, and the
moves a referral offers."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

from services.feeds.store import journal_position
from services.platform.pagination import decode_cursor
from services.projection.audit import RECORD_VIEWED, AuditEntry, AuditLog
from services.projection.person_documents import standing_view_shape_1
from services.projection.person_facts import TxReader
from tests.e2e.answers import ok

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
OFFICE, SHUNO, HELLOWORK = "zama-jiritsu", "zama-shuno", "hellowork-atsugi"
NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


def register(client: TestClient, auth: Auth, agency: str = OFFICE, **fields: Any) -> str:
    body = {"family_name": "試験", "given_name": "花子", "sex": "female", **fields}
    return str(ok(client.post("/intake/persons", json=body, headers=auth(agency)), 201)["id"])


def consent(
    client: TestClient,
    auth: Auth,
    person: str,
    recipients: list[str],
    categories: list[str],
    valid_until: str | None = None,
    agency: str = OFFICE,
) -> str:
    now = datetime.now(UTC)
    body = {
        "person_id": person,
        "recipients": recipients,
        "categories": categories,
        "purposes": ["support_coordination", "referral"],
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": valid_until or (now + timedelta(days=30)).isoformat(),
        "method": "written_application_form",
    }
    return str(ok(client.post("/intake/consents", json=body, headers=auth(agency)), 201)["id"])


def referral(client: TestClient, auth: Auth, person: str, consent_id: str, to: str) -> str:
    body = {
        "kind": "service_request",
        "to": to,
        "reason": "就労支援の依頼",
        "categories": ["identity", "contact"],
        "person_id": person,
        "consent_id": consent_id,
    }
    return str(ok(client.post("/referral/referrals", json=body, headers=auth()), 201)["id"])


def open_consultation(client: TestClient, auth: Auth, **fields: Any) -> str:
    body = {"channel": "phone", "route_in": "self", "caller_kind": "anonymous", **fields}
    return str(ok(client.post("/intake/consultations", json=body, headers=auth()), 201)["id"])


def walk(client: TestClient, url: str, headers: dict[str, str]) -> list[list[Any]]:
    """Every page of a list, following its Link headers from ``url`` on."""
    pages: list[list[Any]] = []
    while True:
        response = client.get(url, headers=headers)
        pages.append(ok(response))
        link = response.headers.get("link")
        if link is None:
            return pages
        match = NEXT.match(link)
        assert match, link
        url = match.group(1)


# --- pagination -------------------------------------------------------------------------------


def lists(client: TestClient, auth: Auth) -> dict[str, tuple[str, str, str]]:
    """Five rows in each list the desk pages through: (url, agency, id field)."""
    people = [
        register(client, auth, family_name_kana="シケン", given_name_kana=f"ハナコ{i}")
        for i in range(5)
    ]
    consents = [consent(client, auth, people[0], [HELLOWORK], ["identity"]) for _ in range(5)]
    for person in people:
        open_consultation(client, auth, person_id=person)
        referral(
            client,
            auth,
            person,
            consent(client, auth, person, [HELLOWORK], ["identity", "contact"]),
            HELLOWORK,
        )
    candidates = "family_name_kana=しけん&given_name_kana=はなこ0"
    for _ in range(4):
        register(client, auth, family_name_kana="シケン", given_name_kana="ハナコ0")
    assert consents
    return {
        "views consultations": ("/views/consultations", OFFICE, "consultation_id"),
        "views inbox": ("/views/inbox", HELLOWORK, "referral_id"),
        "views outbox": ("/views/outbox", OFFICE, "referral_id"),
        "referral inbox": ("/referral/referrals/inbox", HELLOWORK, "id"),
        "referral outbox": ("/referral/referrals/outbox", OFFICE, "id"),
        "person search": ("/views/persons/search?q=しけん", OFFICE, "person_id"),
        "candidates": (f"/views/persons/candidates?{candidates}", OFFICE, "person_id"),
        "consents in force": (
            f"/intake/persons/{people[0]}/consents?recipient={HELLOWORK}&category=identity"
            "&purpose=referral",
            OFFICE,
            "id",
        ),
    }


def with_params(url: str, params: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{params}"


def test_every_desk_list_pages_by_link_in_order_with_nothing_lost_or_repeated(
    client: TestClient, auth: Auth
) -> None:
    for name, (url, agency, ident) in lists(client, auth).items():
        whole = ok(client.get(with_params(url, "limit=200"), headers=auth(agency)))
        assert len(whole) >= 5, name
        pages = walk(client, with_params(url, "limit=2"), auth(agency))
        assert [len(p) for p in pages[:-1]] == [2] * (len(pages) - 1), name
        assert 1 <= len(pages[-1]) <= 2, name
        assert [row[ident] for p in pages for row in p] == [row[ident] for row in whole], name
        default = client.get(url, headers=auth(agency))
        assert "link" not in default.headers, name  # fewer than 50: one page


def test_a_link_keeps_the_query_and_names_the_next_cursor(client: TestClient, auth: Auth) -> None:
    for _ in range(3):
        open_consultation(client, auth)
    response = client.get("/views/consultations?limit=2&opened_since=2000-01-01", headers=auth())
    match = NEXT.match(response.headers["link"])
    assert match
    assert match.group(1).startswith("/views/consultations?limit=2&opened_since=2000-01-01&cursor=")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=%21%21not-base64", "cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b'{"a": 1}').decode(), "cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b'["a", "b", "c"]').decode(), "cursor"),
    ],
)
def test_a_bad_limit_or_cursor_is_422_naming_it(
    client: TestClient, auth: Auth, params: str, field: str
) -> None:
    open_consultation(client, auth)
    person = register(client, auth)
    slip_consent = consent(client, auth, person, [HELLOWORK], ["identity", "contact"])
    referral(client, auth, person, slip_consent, HELLOWORK)
    for url in (
        "/views/consultations",
        "/views/inbox",
        "/referral/referrals/outbox",
        "/views/persons/search?q=x",
    ):
        response = client.get(with_params(url, params), headers=auth())
        assert response.status_code == 422, (url, params, response.text)
        assert [p["field"] for p in response.json()["problems"]] == [field], (url, params)


# --- the consultation worklist ----------------------------------------------------------------


def test_the_consultation_list_shows_triage_person_and_application(
    client: TestClient, auth: Auth
) -> None:
    person = register(client, auth)
    consultation = open_consultation(
        client, auth, opened_at="2025-01-05T09:30+09:00", main_complaint="家賃が払えない"
    )
    triage = {
        "outcome": "connect_elsewhere",
        "target_agency": "zama-seikatsushien",
        "follow_up_on": "2025-01-12",
    }
    ok(client.post(f"/intake/consultations/{consultation}/triage", json=triage, headers=auth()))
    ok(
        client.post(
            f"/intake/consultations/{consultation}/attach",
            json={"person_id": person},
            headers=auth(),
        )
    )
    ok(client.post(f"/intake/consultations/{consultation}/application", json={}, headers=auth()))
    [line] = ok(client.get("/views/consultations", headers=auth()))
    assert line["opened_at"] == "2025-01-05T09:30:00+09:00"
    assert line["person_id"] == person and line["main_complaint"] == "家賃が払えない"
    assert line["triage"]["outcome"] == "connect_elsewhere"
    assert line["triage"]["target_agency"] == "zama-seikatsushien"
    assert line["triage"]["follow_up_on"] == "2025-01-12"
    assert line["triage"]["at"].endswith("+09:00")
    assert line["application_received"] is True and line["application_at"].endswith("+09:00")


def test_the_worklist_filters_follow_ups_due_and_recent_openings(
    client: TestClient, auth: Auth
) -> None:
    due = open_consultation(client, auth, opened_at="2025-03-01T10:00+09:00")
    later = open_consultation(client, auth, opened_at="2025-03-02T10:00+09:00")
    here = open_consultation(client, auth, opened_at="2025-03-03T10:00+09:00")
    for consultation, follow_up in ((due, "2025-03-10"), (later, "2025-03-20")):
        triage = {
            "outcome": "connect_elsewhere",
            "target_system": "生活保護",
            "follow_up_on": follow_up,
        }
        ok(client.post(f"/intake/consultations/{consultation}/triage", json=triage, headers=auth()))
    ok(
        client.post(
            f"/intake/consultations/{here}/triage",
            json={"outcome": "continue_here"},
            headers=auth(),
        )
    )

    def ids(query: str) -> list[str]:
        rows = ok(client.get(f"/views/consultations?{query}", headers=auth()))
        return [row["consultation_id"] for row in rows]

    assert ids("follow_up_due_by=2025-03-10") == [due]
    assert ids("follow_up_due_by=2025-03-20") == [due, later]
    # A day in JST: opened at 10:00 on 3 March in Japan is 01:00 UTC the same day.
    assert ids("opened_since=2025-03-02") == [later, here]
    assert ids("opened_since=2025-03-03") == [here]
    bad = client.get("/views/consultations?follow_up_due_by=soon", headers=auth())
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "follow_up_due_by"


# --- person search ----------------------------------------------------------------------------


def audit(client: TestClient) -> AuditLog:
    log: AuditLog = client.app.state.audit  # type: ignore[attr-defined]
    return log


def test_search_folds_kana_width_spaces_and_variant_kanji(client: TestClient, auth: Auth) -> None:
    takahashi = register(
        client,
        auth,
        family_name="髙橋",
        given_name="花子",
        family_name_kana="たかはし",
        given_name_kana="はなこ",
        birth_date="1960-04-01",
    )
    saito = register(client, auth, family_name="齋藤", given_name="一郎")
    other = register(client, auth, family_name="高梨", given_name="花子")

    def found(query: str) -> list[str]:
        rows = ok(client.get(f"/views/persons/search?{query}", headers=auth()))
        return [row["person_id"] for row in rows]

    assert found("q=ﾀｶﾊｼ ﾊﾅｺ") == [takahashi]  # half-width katakana, a space
    assert found("q=タカハシ") == [takahashi]
    assert found("q=高橋") == [takahashi]  # the registry's 髙
    assert found("q=斉藤") == found("q=斎藤") == [saito]
    assert found("q=高") == [other, takahashi]  # kana order; no kana sorts first
    assert found("birth_date=1960-04-01") == [takahashi]
    assert found("q=たかはし&birth_date=1961-04-01") == []
    # The next page's cursor names the last person, never their name.
    response = client.get("/views/persons/search?q=高&limit=1", headers=auth())
    match = NEXT.match(response.headers["link"])
    assert match
    cursor = parse_qs(urlparse(match.group(1)).query)["cursor"][0]
    assert decode_cursor(cursor) == (other,)
    [row] = ok(client.get("/views/persons/search?q=たかはし", headers=auth()))
    [identity] = row["categories"]
    assert identity["category"] == "identity" and identity["basis"]["kind"] == "own_record"
    assert identity["fields"]["family_name"] == "髙橋"
    assert identity["fields"]["birth_date"] == "1960-04-01"


def test_search_shows_only_persons_the_caller_may_identify_and_audits_each(
    client: TestClient, auth: Auth
) -> None:
    shared = register(client, auth, family_name="共有")
    hidden = register(client, auth, family_name="共有")
    consent_id = consent(client, auth, shared, [HELLOWORK], ["identity"])
    rows = ok(client.get("/views/persons/search?q=共有", headers=auth(HELLOWORK)))
    assert [row["person_id"] for row in rows] == [shared]
    assert rows[0]["categories"][0]["basis"] == {
        "kind": "consent",
        "id": consent_id,
        "ends_at": rows[0]["categories"][0]["basis"]["ends_at"],
    }
    assert hidden not in str(rows)
    [entry] = audit(client).seen_person(shared)
    assert entry.viewer_agency == HELLOWORK
    assert entry.view_request == {"view": "person_summary", "asked": "search"}
    assert entry.bases == {"identity": {"basis": "consent", "basis_id": consent_id}}
    assert audit(client).seen_person(hidden) == []
    officer = auth(OFFICE, "privacy_officer")
    replay = ok(client.get(f"/views/audit/entries/{entry.position}/replay", headers=officer))
    assert replay["matches"] is True and replay["bases_match"] is True


def test_search_by_local_id_reads_only_the_callers_own_ids(client: TestClient, auth: Auth) -> None:
    person = register(client, auth, SHUNO, local_id="T-777")
    consent(client, auth, person, [OFFICE], ["identity"], agency=SHUNO)  # the office may see
    assert ok(client.get("/views/persons/search?local_id=T-777", headers=auth(SHUNO)))
    assert ok(client.get("/views/persons/search?local_id=T-777", headers=auth(OFFICE))) == []


@pytest.mark.parametrize("query", ["", "q=", "q=%20%E3%80%80"])
def test_a_search_with_nothing_to_look_for_is_422(
    client: TestClient, auth: Auth, query: str
) -> None:
    response = client.get(f"/views/persons/search?{query}", headers=auth())
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "q"


# --- duplicate candidates before registering ----------------------------------------------------


def test_candidates_before_registering_show_what_the_office_may_see(
    client: TestClient, auth: Auth
) -> None:
    own = register(
        client, auth, family_name_kana="ヤマダ", given_name_kana="タロウ", birth_date="1970-01-02"
    )
    elsewhere = register(
        client,
        auth,
        SHUNO,
        family_name_kana="ﾔﾏﾀﾞ",
        given_name_kana="ﾀﾛｳ",
        birth_date="1970-01-02",
    )
    register(
        client, auth, family_name_kana="ヤマダ", given_name_kana="タロウ", birth_date="1980-01-02"
    )
    query = "family_name_kana=やまだ&given_name_kana=たろう&birth_date=1970-01-02"
    rows = ok(client.get(f"/views/persons/candidates?{query}", headers=auth()))
    by_id = {row["person_id"]: row for row in rows}
    assert set(by_id) == {own, elsewhere}
    assert by_id[own]["categories"][0]["fields"]["family_name_kana"] == "ヤマダ"
    assert by_id[elsewhere]["categories"] == []
    [withheld] = by_id[elsewhere]["withheld"]
    assert withheld["category"] == "identity" and "no basis" in withheld["reason"]
    assert [e.view_request for e in audit(client).seen_person(own)] == [
        {"view": "person_summary", "asked": "candidates"}
    ]
    assert audit(client).seen_person(elsewhere) == []  # nothing shown, nothing to record


def test_candidates_are_for_the_support_office_and_need_a_name(
    client: TestClient, auth: Auth
) -> None:
    query = "family_name_kana=やまだ&given_name_kana=たろう"
    assert client.get(f"/views/persons/candidates?{query}", headers=auth(SHUNO)).status_code == 403
    response = client.get("/views/persons/candidates?birth_date=1970-01-02", headers=auth())
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "family_name_kana"


# --- the person view --------------------------------------------------------------------------


def test_an_unknown_person_is_404(client: TestClient, auth: Auth) -> None:
    response = client.get("/views/persons/00000000-0000-0000-0000-000000000000", headers=auth())
    assert response.status_code == 404


def test_the_person_view_groups_readable_fields_by_category_at_jst(
    client: TestClient, auth: Auth
) -> None:
    person = register(client, auth, birth_date="1958-12-31", address="座間市緑ケ丘1-1-1")
    consultation = open_consultation(client, auth, person_id=person, main_complaint="借金の相談")
    ok(
        client.post(
            f"/intake/consultations/{consultation}/triage",
            json={"outcome": "continue_here"},
            headers=auth(),
        )
    )
    application = {"at": "2025-06-01T10:00:00Z"}
    url = f"/intake/consultations/{consultation}/application"
    ok(client.post(url, json=application, headers=auth()))
    consent_id = consent(
        client, auth, person, [HELLOWORK], ["identity", "contact"], "2027-12-31T00:00+09:00"
    )
    view = ok(client.get(f"/views/persons/{person}", headers=auth(HELLOWORK)))
    assert [c["category"] for c in view["categories"]] == ["identity", "contact"]
    identity, contact = view["categories"]
    assert identity["basis"] == {
        "kind": "consent",
        "id": consent_id,
        "ends_at": "2027-12-31T00:00:00+09:00",
    }
    assert identity["fields"]["family_name"] == "試験"
    assert identity["fields"]["birth_date"] == "1958-12-31"
    assert contact["fields"]["address"] == "座間市緑ケ丘1-1-1"
    # The office's own consultation is withheld from Hello Work, named with the reason only.
    [withheld] = view["withheld"]
    assert withheld["category"] == "consultation" and "no basis" in withheld["reason"]
    assert "借金" not in str(view)

    own = ok(client.get(f"/views/persons/{person}", headers=auth()))
    consultation_seen = next(c for c in own["categories"] if c["category"] == "consultation")
    [record] = consultation_seen["records"]
    assert record["record"] == "consultation" and record["id"] == consultation
    assert record["fields"]["main_complaint"] == "借金の相談"
    assert record["fields"]["triage_outcome"] == "continue_here"
    assert record["fields"]["application_received_at"] == "2025-06-01T19:00:00+09:00"
    assert all(":" not in name for c in own["categories"] for name in c["fields"])
    instants = re.findall(r"\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d)", str(own))
    assert instants and all(re.fullmatch(r".{19}\+09:00", t) for t in instants), instants

    officer = auth(OFFICE, "privacy_officer")
    for entry in audit(client).seen_person(person):
        assert entry.view_request == {"view": "person", "shape": 2}
        replay = ok(client.get(f"/views/audit/entries/{entry.position}/replay", headers=officer))
        assert replay["matches"] is True


# --- the moves a referral offers --------------------------------------------------------------


def test_each_side_is_offered_exactly_the_moves_the_api_allows(
    client: TestClient, auth: Auth
) -> None:
    person = register(client, auth)
    slip = referral(
        client,
        auth,
        person,
        consent(client, auth, person, [HELLOWORK], ["identity", "contact"]),
        HELLOWORK,
    )

    def moves(agency: str) -> list[str]:
        one = ok(client.get(f"/referral/referrals/{slip}", headers=auth(agency)))["allowed_moves"]
        box = "inbox" if agency == HELLOWORK else "outbox"
        [line] = ok(client.get(f"/referral/referrals/{box}", headers=auth(agency)))
        assert line["allowed_moves"] == one
        return list(one)

    assert moves(HELLOWORK) == ["acknowledge", "accept", "decline", "reroute"]
    [line] = ok(client.get("/views/inbox", headers=auth(HELLOWORK)))
    assert line["sent_at"].endswith("+09:00") and line["changed_at"].endswith("+09:00")
    assert moves(OFFICE) == ["withdraw", "reroute"]
    declined = client.post(
        f"/referral/referrals/{slip}/decline", json={"reason": "定員超過"}, headers=auth(HELLOWORK)
    )
    assert ok(declined)["allowed_moves"] == ["reroute"]
    assert moves(OFFICE) == ["reroute", "follow-up"]
    # A move not offered is one the API refuses.
    refused = client.post(f"/referral/referrals/{slip}/accept", json={}, headers=auth(HELLOWORK))
    assert refused.status_code == 409
    follow_up = {"action": "resource_gap", "note": "市内に受け皿がない"}
    ok(client.post(f"/referral/referrals/{slip}/follow-up", json=follow_up, headers=auth()))
    assert moves(OFFICE) == ["reroute"]
    assert ok(client.get("/referral/referrals/outbox", headers=auth(SHUNO))) == []


def test_an_entry_served_in_the_old_shape_still_replays(client: TestClient, auth: Auth) -> None:
    person = register(client, auth)
    consent(client, auth, person, [HELLOWORK], ["identity"])
    views, now = client.app.state.views, datetime.now(UTC)  # type: ignore[attr-defined]
    with views.database.transaction() as tx:
        position = journal_position(tx)
        served = standing_view_shape_1(TxReader(tx), HELLOWORK, person, now)
    # What was served is what the answer opened: its sealed values in clear.
    served = served.opened(client.app.state.view_disclosures.opener)  # type: ignore[attr-defined]
    entry = audit(client).append(
        AuditEntry(
            kind=RECORD_VIEWED,
            viewer_staff_id="s001",
            viewer_agency=HELLOWORK,
            viewer_roles=("caseworker",),
            recorded_at=now,
            person_id=person,
            shown=served.shown,
            view_request={"view": "person"},
            state_position=position,
            response_hash=hashlib.sha256(served.body()).hexdigest(),
        )
    )
    officer = auth(OFFICE, "privacy_officer")
    replay = ok(client.get(f"/views/audit/entries/{entry.position}/replay", headers=officer))
    assert replay["matches"] is True and "identity" in replay["document"]["categories"]


def test_the_views_boxes_filter_by_state_for_the_worklist(client: TestClient, auth: Auth) -> None:
    person = register(client, auth)
    consent_id = consent(client, auth, person, ["zama-shakyo", "oneaid"], ["identity", "contact"])
    accepted = referral(client, auth, person, consent_id, "zama-shakyo")
    waiting = referral(client, auth, person, consent_id, "oneaid")
    ok(client.post(f"/referral/referrals/{accepted}/accept", json={}, headers=auth("zama-shakyo")))
    sent = ok(client.get("/views/outbox", params={"state": "sent"}, headers=auth()))
    assert [r["referral_id"] for r in sent] == [waiting]
    taken = ok(
        client.get("/views/inbox", params={"state": "accepted"}, headers=auth("zama-shakyo"))
    )
    assert [r["referral_id"] for r in taken] == [accepted]
    every = ok(client.get("/views/outbox", headers=auth()))
    assert {r["referral_id"] for r in every} == {accepted, waiting}
