"""The desk signs staff in at a real OpenID provider (Keycloak) and works with its tokens.

The browser's part is played by two HTTP clients: the desk's TestClient, and a client for the
provider's login page (deploy/keycloak/tsunagu-realm.json's users and password).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from services.wiring import embedded_app
from tests.infrastructure import OpenIDProvider, provider_browser, submit_login

pytestmark = pytest.mark.integration

# Keycloak accepts any port after a loopback host; TestClient never listens on it.
DESK = "http://127.0.0.1:8000"


@pytest.fixture
def desk(openid_provider: OpenIDProvider, tmp_path: Path) -> Iterator[TestClient]:
    app = embedded_app(openid_provider.settings(tmp_path / "var"))
    with TestClient(app, base_url=DESK, follow_redirects=False) as client:
        yield client


def at_provider(desk: TestClient, username: str, password: str) -> str:
    """From the desk's sign-in button through the provider's login form: the callback URL."""
    start = desk.get("/auth/login")
    assert start.status_code == 302, start.text
    authorize = httpx.URL(start.headers["location"])
    assert authorize.params["code_challenge_method"] == "S256"
    assert authorize.params["redirect_uri"] == f"{DESK}/auth/callback"
    with provider_browser() as browser:
        back = submit_login(browser, browser.get(authorize), username, password)
    callback = back.headers["location"]
    assert callback.startswith(f"{DESK}/auth/callback?")
    return callback


def test_a_caseworker_signs_in_at_the_provider_and_the_desk_works_with_its_token(
    desk: TestClient, openid_provider: OpenIDProvider
) -> None:
    assert desk.get("/").status_code == 303
    signed_in = desk.get(at_provider(desk, "jiritsu-caseworker", openid_provider.password))
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/")
    home = desk.get("/")
    assert home.status_code == 200, home.text
    # The header names the staff id from the provider's claim; the worklist came from the APIs,
    # which accepted the provider's token.
    assert "（jiritsu-001）" in home.text


def test_the_development_sign_in_is_refused_where_the_provider_is_set(desk: TestClient) -> None:
    page = desk.get("/signin")
    assert 'href="/auth/login"' in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    token = csrf.group(1) if csrf else ""
    refused = desk.post(
        "/signin",
        data={"csrf_token": token, "agency": "zama-jiritsu", "role": "caseworker", "staff_id": "x"},
    )
    assert refused.status_code == 403


def test_staff_of_an_agency_outside_the_deployment_are_told_why_and_not_signed_in(
    desk: TestClient, openid_provider: OpenIDProvider
) -> None:
    refused = desk.get(at_provider(desk, "outsider", openid_provider.password))
    assert refused.status_code == 403
    assert "&#39;sagamihara-jiritsu&#39; is not a member of this deployment" in refused.text
    assert desk.get("/").status_code == 303


def test_a_callback_that_is_not_the_desks_own_sign_in_is_refused(
    desk: TestClient, openid_provider: OpenIDProvider
) -> None:
    callback = httpx.URL(at_provider(desk, "jiritsu-caseworker", openid_provider.password))
    forged = callback.copy_set_param("state", "not-the-state-this-session-sent")
    answer = desk.get(str(forged))
    assert answer.status_code == 400
    assert "State not equal in request and response" in answer.text
    assert desk.get("/").status_code == 303


def test_a_cross_site_return_is_reloaded_from_the_desk_so_its_strict_cookie_comes_along(
    desk: TestClient, openid_provider: OpenIDProvider
) -> None:
    callback = at_provider(desk, "shakyo-caseworker", openid_provider.password)
    bounce = desk.get(callback, headers={"Sec-Fetch-Site": "cross-site"})
    assert bounce.status_code == 200
    refresh = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', bounce.text)
    assert refresh is not None
    again = desk.get(
        refresh.group(1).replace("&amp;", "&"), headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert (again.status_code, again.headers["location"]) == (303, "/")
    assert "（shakyo-001）" in desk.get("/").text


def test_signing_out_ends_the_desk_session_and_the_providers(
    desk: TestClient, openid_provider: OpenIDProvider
) -> None:
    desk.get(at_provider(desk, "jiritsu-organiser", openid_provider.password))
    home = desk.get("/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert csrf is not None
    out = desk.post("/auth/logout", data={"csrf_token": csrf.group(1)})
    assert out.status_code == 302
    end = httpx.URL(out.headers["location"])
    assert str(end).startswith(f"{openid_provider.issuer}/protocol/openid-connect/logout")
    assert end.params["client_id"] == openid_provider.client_id
    assert end.params["post_logout_redirect_uri"] == f"{DESK}/signin?signed_out=1"
    assert desk.get("/").status_code == 303
