from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from contracts.errors import Forbidden, Unauthenticated
from contracts.identity import Staff
from services.cli import main
from services.platform.auth import TokenVerifier, authenticated_staff, dev_secret, mint_token
from services.platform.settings import Settings
from services.wiring import embedded_app
from tests.conftest import JWT_SECRET, TokenFactory

pytestmark = pytest.mark.unit


@pytest.fixture
def client(embedded_settings: Settings) -> TestClient:
    return TestClient(embedded_app(embedded_settings))


def test_health_is_the_only_open_route(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/views/consultations").status_code == 401
    assert client.post("/intake/consultations", json={}).status_code == 401
    assert (
        client.get("/intake/consultations/00000000-0000-0000-0000-000000000000").status_code == 401
    )


def test_every_api_route_requires_a_token(client: TestClient) -> None:
    """Guards future routes too: anything but /health, /docs and the schema answers 401."""
    open_paths = {"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
    for route in client.app.routes:  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if path in open_paths or not path:
            continue
        methods: set[str] = set(getattr(route, "methods", None) or ())
        for method in methods - {"HEAD", "OPTIONS"}:
            url = path.replace("{consultation_id}", "00000000-0000-0000-0000-000000000000")
            assert client.request(method, url, json={}).status_code == 401, (method, path)


@pytest.mark.parametrize(
    ("make_header", "message"),
    [
        (lambda t: {}, "bearer token is required"),
        (lambda t: {"Authorization": "Basic abc"}, "bearer token is required"),
        (lambda t: {"Authorization": f"Bearer {t(now=time.time() - 9 * 3600)}"}, "expired"),
        (
            lambda t: {
                "Authorization": "Bearer "
                + mint_token(
                    "another-secret-" + "y" * 40,
                    staff_id="s",
                    agency="zama-jiritsu",
                    roles=["caseworker"],
                )
            },
            "invalid token",
        ),
        (lambda t: {"Authorization": "Bearer not.a.jwt"}, "invalid token"),
    ],
)
def test_missing_expired_or_forged_tokens_get_401(
    client: TestClient,
    token: TokenFactory,
    make_header: Callable[[TokenFactory], dict[str, str]],
    message: str,
) -> None:
    def with_agency(**claims: object) -> str:
        return token("zama-jiritsu", **claims)

    response = client.get("/views/consultations", headers=make_header(with_agency))
    assert response.status_code == 401
    assert message in response.json()["message"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_valid_token_for_the_wrong_agency_gets_403(client: TestClient, token: TokenFactory) -> None:
    headers = {"Authorization": f"Bearer {token('zama-shuno')}"}
    response = client.post(
        "/intake/consultations",
        json={"channel": "visit", "route_in": "self", "caller_kind": "self"},
        headers=headers,
    )
    assert response.status_code == 403
    assert "refer the person" in response.json()["message"]
    other_view = client.get("/views/consultations?agency=zama-jiritsu", headers=headers)
    assert other_view.status_code == 403


def test_unknown_agency_municipality_or_role_gets_403(client: TestClient) -> None:
    for claims in (
        {"agency": "acme-corp", "roles": ["caseworker"]},
        {"agency": "zama-jiritsu", "roles": ["caseworker"], "municipality": "131016"},
        {"agency": "zama-jiritsu", "roles": ["emperor"]},
    ):
        raw = mint_token(JWT_SECRET, staff_id="s", **claims)  # type: ignore[arg-type]
        response = client.get("/views/consultations", headers={"Authorization": f"Bearer {raw}"})
        assert response.status_code == 403, claims


@pytest.mark.parametrize(
    ("agency", "role"),
    [
        ("zama-suido", "meeting_organiser"),  # the water bureau runs no case meetings
        ("minsei", "supervisor"),  # a volunteer declaring a vital interest
        ("seikatsuclub", "supervisor"),
        ("zama-shakyo", "approver"),  # only the municipality approves plans
        ("minsei", "privacy_officer"),
        ("ebina-nozei", "meeting_organiser"),
    ],
)
def test_an_oversight_role_the_agency_may_not_hold_is_refused_naming_both(
    client: TestClient, agency: str, role: str
) -> None:
    raw = mint_token(JWT_SECRET, staff_id="s", agency=agency, roles=["caseworker", role])
    response = client.get("/views/consultations", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403
    body = response.json()
    assert role in body["message"] and agency in body["message"]
    assert (body["role"], body["agency"]) == (role, agency)


@pytest.mark.parametrize(
    ("agency", "role"),
    [
        ("zama-jiritsu", "privacy_officer"),
        ("oneaid", "privacy_officer"),  # over its own agency only
        ("zama-kodomo", "supervisor"),
        ("ebina-jiritsu", "approver"),
    ],
)
def test_an_oversight_role_the_reference_grants_is_accepted(
    client: TestClient, agency: str, role: str
) -> None:
    raw = mint_token(JWT_SECRET, staff_id="s", agency=agency, roles=[role])
    response = client.get("/views/consultations", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200, response.text


def test_a_token_names_the_agencys_own_municipality_unless_told(tmp_path: Path) -> None:
    verifier = TokenVerifier(Settings(var_dir=tmp_path, jwt_secret=JWT_SECRET))
    ebina = verifier.verify(mint_token(JWT_SECRET, staff_id="s", agency="ebina-jiritsu", roles=[]))
    assert ebina.municipality == "142158"
    stated = mint_token(
        JWT_SECRET, staff_id="s", agency="ebina-jiritsu", roles=[], municipality="142182"
    )
    with pytest.raises(Forbidden, match="does not belong to municipality 142182"):
        verifier.verify(stated)


def test_the_token_command_takes_a_municipality(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSUNAGU_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("TSUNAGU_VAR_DIR", str(tmp_path))
    argv = ["token", "--agency", "ebina-jiritsu", "--staff", "e001", "--municipality", "142158"]
    assert main(argv) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert (claims["agency"], claims["municipality"]) == ("ebina-jiritsu", "142158")


def test_dev_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = dev_secret(tmp_path)
    assert dev_secret(tmp_path) == first
    assert (tmp_path / "dev-jwt-secret").stat().st_mode & 0o077 == 0


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    server.shutdown()


def test_production_tokens_are_rs256_verified_against_a_jwks_url(
    tmp_path: Path, jwks_server: tuple[str, rsa.RSAPrivateKey]
) -> None:
    url, key = jwks_server
    settings = Settings(var_dir=tmp_path, jwks_url=url)
    client = TestClient(embedded_app(settings))
    now = int(time.time())
    claims = {
        "sub": "s9",
        "agency": "zama-jiritsu",
        "roles": ["caseworker"],
        "municipality": "142182",
        "iat": now,
        "exp": now + 600,
        "iss": "tsunagu",
        "aud": "tsunagu",
    }
    signed = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    ok = client.get("/views/consultations", headers={"Authorization": f"Bearer {signed}"})
    assert ok.status_code == 200
    # An HS256 token made with a guessed secret must not pass a JWKS deployment.
    forged = jwt.encode(claims, "guess", algorithm="HS256")
    denied = client.get("/views/consultations", headers={"Authorization": f"Bearer {forged}"})
    assert denied.status_code == 401


def test_a_verified_token_is_not_checked_again_until_it_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [time.time()]
    verifier = TokenVerifier(Settings(var_dir=tmp_path, jwt_secret=JWT_SECRET), lambda: now[0])
    token = mint_token(JWT_SECRET, staff_id="s1", agency="zama-jiritsu", roles=["caseworker"])
    first = verifier.verify(token)
    decoded: list[str] = []
    monkeypatch.setattr(jwt, "decode", lambda *args, **kwargs: decoded.append("again"))
    assert verifier.verify(token) == first
    assert decoded == []
    # Past its expiry the kept verification is worthless, whatever the signature says.
    now[0] += 8 * 3600 + 1
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token)


def test_provider_tokens_name_the_staff_by_staff_id_else_by_subject(
    tmp_path: Path, jwks_server: tuple[str, rsa.RSAPrivateKey]
) -> None:
    url, key = jwks_server
    issuer = "http://127.0.0.1:8080/realms/tsunagu"
    verifier = TokenVerifier(Settings(var_dir=tmp_path, jwks_url=url, jwt_issuer=issuer))
    now = int(time.time())
    claims = {
        "sub": "3f1c9a2e-provider-uuid",
        "agency": "zama-shakyo",
        "roles": ["caseworker"],
        "municipality": "142182",
        "iat": now,
        "exp": now + 600,
        "iss": issuer,
        "aud": "tsunagu",
    }

    def sign(**extra: object) -> str:
        return jwt.encode({**claims, **extra}, key, algorithm="RS256", headers={"kid": "k1"})

    assert verifier.verify(sign(staff_id="shakyo-001")).staff_id == "shakyo-001"
    assert verifier.verify(sign()).staff_id == "3f1c9a2e-provider-uuid"
    for bad in ("", 42):
        with pytest.raises(Unauthenticated, match="staff_id"):
            verifier.verify(sign(staff_id=bad))
    # The issuer is the provider's realm URL: a token of another realm on it does not pass.
    with pytest.raises(Unauthenticated, match="invalid token"):
        verifier.verify(sign(iss="http://127.0.0.1:8080/realms/master"))


@pytest.mark.parametrize("signer", ["provider", "shared secret"])
def test_a_providers_token_seen_first_is_verified_off_the_event_loop(
    tmp_path: Path, jwks_server: tuple[str, rsa.RSAPrivateKey], signer: str
) -> None:
    """Verifying it may fetch the provider's key set, which must not hold up the loop every
    other request waits on; once verified, and any token signed with the shared secret, it is
    checked on the loop, with no hop to a worker thread."""
    url, key = jwks_server
    issuer = "http://127.0.0.1:8080/realms/tsunagu"
    now = int(time.time())
    if signer == "provider":
        settings = Settings(var_dir=tmp_path, jwks_url=url, jwt_issuer=issuer)
        token = jwt.encode(
            {"sub": "s", "agency": "zama-shakyo", "roles": ["caseworker"]}
            | {"municipality": "142182", "iat": now, "exp": now + 600}
            | {"iss": issuer, "aud": "tsunagu"},
            key,
            algorithm="RS256",
            headers={"kid": "k1"},
        )
    else:
        settings = Settings(var_dir=tmp_path, jwt_secret=JWT_SECRET)
        token = mint_token(JWT_SECRET, staff_id="s", agency="zama-shakyo", roles=["caseworker"])
    app = FastAPI()
    verifier = app.state.token_verifier = TokenVerifier(settings)
    on_the_loop: list[bool] = []
    verify = verifier.verify

    def recorded(token: str) -> Staff:
        on_the_loop.append(_on_a_running_loop())
        return verify(token)

    verifier.verify = recorded  # type: ignore[method-assign]

    @app.get("/who")
    def who(staff: Staff = Depends(authenticated_staff)) -> str:
        return staff.staff_id

    with TestClient(app) as client:
        for _ in range(2):
            answer = client.get("/who", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
    assert on_the_loop == ([False, True] if signer == "provider" else [True, True])


def _on_a_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
