"""A real OpenID provider's access tokens at a real Tsunagu: Keycloak with the test realm.

Staff sign in at Keycloak as the desk does (authorization code with PKCE); the platform verifies
the tokens against the provider's keys and reads who the caller is from the provider's claims.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from services.platform.auth import TokenVerifier
from services.wiring import embedded_app
from tests.infrastructure import OpenIDProvider

pytestmark = pytest.mark.integration

CONSULTATION = {"channel": "visit", "route_in": "self", "caller_kind": "self"}


@pytest.fixture
def client(openid_provider: OpenIDProvider, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(embedded_app(openid_provider.settings(tmp_path / "var"))) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def access_token(provider: OpenIDProvider, username: str) -> str:
    return str(provider.sign_in(username)["access_token"])


def test_a_caseworkers_provider_token_opens_a_consultation(
    client: TestClient, openid_provider: OpenIDProvider
) -> None:
    token = access_token(openid_provider, "jiritsu-caseworker")
    opened = client.post("/intake/consultations", json=CONSULTATION, headers=bearer(token))
    assert opened.status_code == 201, opened.text
    assert (opened.json()["agency"], opened.json()["municipality"]) == ("zama-jiritsu", "142182")


def test_staff_agency_and_roles_are_the_providers_claims(
    client: TestClient, openid_provider: OpenIDProvider, tmp_path: Path
) -> None:
    verifier = TokenVerifier(openid_provider.settings(tmp_path))
    organiser = verifier.verify(access_token(openid_provider, "jiritsu-organiser"))
    assert (organiser.staff_id, organiser.agency, organiser.municipality) == (
        "jiritsu-002",
        "zama-jiritsu",
        "142182",
    )
    assert organiser.roles == {"caseworker", "meeting_organiser"}

    # The tax desk may not open a consultation: only the office does (its agency, from the token).
    tax_desk = access_token(openid_provider, "shuno-caseworker")
    refused = client.post("/intake/consultations", json=CONSULTATION, headers=bearer(tax_desk))
    assert refused.status_code == 403, refused.text

    # A caseworker is not a privacy officer; the refusal is audited under the provider's staff id.
    caseworker = access_token(openid_provider, "jiritsu-caseworker")
    denied = client.get("/views/audit/persons/p-oidc", headers=bearer(caseworker))
    assert denied.status_code == 403
    assert "privacy_officer" in denied.json()["message"]
    officer = access_token(openid_provider, "jiritsu-privacy")
    seen = client.get("/views/audit/persons/p-oidc", headers=bearer(officer))
    assert seen.status_code == 200, seen.text
    [entry] = seen.json()
    assert (entry["viewer_staff_id"], entry["viewer_agency"], entry["viewer_roles"]) == (
        "jiritsu-001",
        "zama-jiritsu",
        ["caseworker"],
    )


def test_a_user_of_an_agency_outside_the_deployment_is_refused_with_the_reason(
    client: TestClient, openid_provider: OpenIDProvider
) -> None:
    token = access_token(openid_provider, "outsider")
    refused = client.get("/views/consultations", headers=bearer(token))
    assert refused.status_code == 403
    assert "'sagamihara-jiritsu' is not a member of this deployment" in refused.json()["message"]


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _with_claims(token: str, **changes: object) -> str:
    header, _, signature = token.split(".")
    payload = json.dumps({**_claims(token), **changes}).encode()
    return ".".join([header, base64.urlsafe_b64encode(payload).rstrip(b"=").decode(), signature])


def test_a_tampered_or_misdirected_provider_token_is_401(
    client: TestClient, openid_provider: OpenIDProvider
) -> None:
    tokens = openid_provider.sign_in("shakyo-caseworker")
    access = tokens["access_token"]
    assert client.get("/views/consultations", headers=bearer(access)).status_code == 200

    promoted = _with_claims(access, agency="zama-jiritsu", roles=["privacy_officer"])
    tampered = client.get("/views/consultations", headers=bearer(promoted))
    assert tampered.status_code == 401
    assert "invalid token" in tampered.json()["message"]

    # The ID token is signed by the same provider but meant for the desk, not for the APIs.
    assert _claims(tokens["id_token"])["aud"] == "tsunagu-web"
    misdirected = client.get("/views/consultations", headers=bearer(tokens["id_token"]))
    assert misdirected.status_code == 401
