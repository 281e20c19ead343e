"""The desk's protections over HTTP: sign-in, CSRF, the idle timeout, headers, no CDN."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.wiring import embedded_app

pytestmark = pytest.mark.e2e
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def desk(embedded_settings: Settings) -> Iterator[TestClient]:
    with TestClient(embedded_app(embedded_settings)) as client:
        yield client


def csrf_of(client: TestClient, path: str) -> str:
    found = CSRF.search(client.get(path).text)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def dev_sign_in(
    client: TestClient, agency: str = "zama-jiritsu", role: str = "caseworker"
) -> httpx.Response:
    """The development sign-in form, filled in and sent."""
    token = csrf_of(client, "/signin")
    return client.post(
        "/signin",
        data={"csrf_token": token, "agency": agency, "role": role, "staff_id": "s001"},
        follow_redirects=False,
    )


def sign_in(client: TestClient, agency: str = "zama-jiritsu", role: str = "caseworker") -> None:
    answer = dev_sign_in(client, agency, role)
    assert (answer.status_code, answer.headers["location"]) == (303, "/")


def test_a_page_without_a_session_sends_the_user_to_sign_in(desk: TestClient) -> None:
    answer = desk.get("/consultations/new", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/signin")


def test_the_session_cookie_is_httponly_and_samesite_strict(desk: TestClient) -> None:
    desk.get("/signin")
    token = csrf_of(desk, "/signin")
    answer = desk.post(
        "/signin",
        data={"csrf_token": token, "agency": "zama-jiritsu", "role": "caseworker", "staff_id": "a"},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_a_form_without_this_sessions_csrf_token_is_refused_and_does_nothing(
    desk: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    sign_in(desk)
    body = {"channel": "phone", "route_in": "self", "caller_kind": "anonymous"}
    refused = desk.post("/consultations", data=body | {"csrf_token": "forged"})
    assert refused.status_code == 403
    assert "画面の有効期限が切れました" in refused.text
    missing = desk.post("/consultations", data=body)
    assert missing.status_code == 403
    accepted = desk.post(
        "/consultations",
        data=body | {"csrf_token": csrf_of(desk, "/consultations/new")},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    # Only the one with the token was recorded.
    recorded = desk.get("/views/consultations", headers=auth()).json()
    assert [c["caller_kind"] for c in recorded] == ["anonymous"]


def test_a_session_idle_longer_than_the_timeout_ends(
    desk: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(desk)
    assert desk.get("/", follow_redirects=False).status_code == 200
    idle = desk.app.state.settings.web_idle_minutes * 60  # type: ignore[attr-defined]
    later = time.time() + idle + 1
    monkeypatch.setattr("services.web.session.time.time", lambda: later)
    answer = desk.get("/", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/signin?expired=1")
    # The session is gone, not merely refused once.
    monkeypatch.undo()
    assert desk.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_the_development_sign_in_is_refused_where_an_identity_provider_is_set(
    embedded_settings: Settings,
) -> None:
    with_provider = replace(embedded_settings, jwks_url="http://127.0.0.1:9/certs")
    with TestClient(embedded_app(with_provider)) as client:
        page = client.get("/signin").text
        assert 'action="/signin"' not in page
        assert dev_sign_in(client).status_code == 403
        assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_pages_forbid_inline_script_and_other_origins(desk: TestClient) -> None:
    answer = desk.get("/signin")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert "<script>" not in answer.text
    assert not re.search(r'(src|href)="(https?:)?//', answer.text)


def test_api_docs_are_served_from_our_own_files(desk: TestClient) -> None:
    docs = desk.get("/docs").text
    assert not re.search(r'(src|href)="(https?:)?//', docs)
    assert desk.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_signing_out_ends_the_session(desk: TestClient) -> None:
    sign_in(desk)
    token = csrf_of(desk, "/")
    desk.post("/signout", data={"csrf_token": token})
    assert desk.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_a_forbidden_api_answer_is_a_page_with_its_reason(desk: TestClient) -> None:
    sign_in(desk, agency="zama-suido")
    answer = desk.get("/consultations/00000000-0000-4000-8000-000000000000")
    assert answer.status_code in (403, 404)
    assert "操作できませんでした" in answer.text


def test_the_development_sign_in_refuses_a_role_the_agency_may_not_hold(desk: TestClient) -> None:
    """An NPO's staff cannot sign in as the municipality's approver: the services would refuse
    every call, so the form says so beside the role instead of a forbidden page later."""
    answer = dev_sign_in(desk, "oneaid", "approver")
    assert answer.status_code == 422
    assert "この機関ではこの役割を選べません" in answer.text
    assert desk.get("/", follow_redirects=False).headers["location"] == "/signin"
    sign_in(desk, "oneaid", "privacy_officer")


def test_a_control_character_typed_into_a_form_is_named_beside_its_field(
    desk: TestClient,
) -> None:
    """Issue 16's field rules reach the desk in Japanese, not as the generic message."""
    sign_in(desk)
    answer = desk.post(
        "/consultations",
        data={
            "csrf_token": csrf_of(desk, "/consultations/new"),
            "channel": "visit",
            "route_in": "self",
            "caller_kind": "self",
            "main_complaint": "家賃\x07",
        },
    )
    assert answer.status_code == 422
    assert "制御文字や文字の向きを変える文字は使えません。" in answer.text
