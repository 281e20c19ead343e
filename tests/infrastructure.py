"""The real PostgreSQL and Kafka the integration tests talk to, and processes run against them.

Where they come from, in order: ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` when set;
testcontainers when a Docker engine answers; else ``deploy/local/`` starts them on this
machine (and stops them afterwards, if it was this run that started them, deleting Kafka's
and PostgreSQL's data: test servers hold nothing worth keeping).

The OpenID provider (Keycloak with the test realm) the same way, only for tests that ask for it:
``KEYCLOAK_URL`` when set, else ``deploy/local/keycloak.sh``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from services.platform.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# deploy/local's state directory: the same variable and default as its scripts.
LOCAL_DIR = Path(os.environ.get("TSUNAGU_LOCAL_DIR", ROOT / "var" / "local"))


@dataclass(frozen=True)
class Infrastructure:
    database_url: str
    kafka_bootstrap_servers: str
    origin: str


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


@contextlib.contextmanager
def provide() -> Iterator[Infrastructure]:
    url, bootstrap = os.environ.get("DATABASE_URL"), os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if url and bootstrap:
        yield Infrastructure(url, bootstrap, "environment")
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with (
            PostgresContainer("postgres:16-alpine", driver=None) as postgres,
            KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft() as kafka,
        ):
            yield Infrastructure(
                postgres.get_connection_url(), kafka.get_bootstrap_server(), "testcontainers"
            )
    else:
        running = (
            subprocess.run(
                ["bash", str(ROOT / "deploy/local/kafka.sh"), "status"], capture_output=True
            ).returncode
            == 0
        )
        subprocess.run(["bash", str(ROOT / "deploy/local/up.sh")], check=True)
        try:
            env = _read_env_file(LOCAL_DIR / "env")
            yield Infrastructure(
                env["DATABASE_URL"], env["KAFKA_BOOTSTRAP_SERVERS"], "deploy/local"
            )
        finally:
            if not running and not os.environ.get("TSUNAGU_KEEP_SERVERS"):
                for server in ("kafka", "postgres"):
                    subprocess.run(["bash", str(ROOT / f"deploy/local/{server}.sh"), "wipe"])
                subprocess.run(["bash", str(ROOT / "deploy/local/down.sh")], check=False)


@dataclass(frozen=True)
class OpenIDProvider:
    """The local Keycloak, its realm deploy/keycloak/tsunagu-realm.json and the desk's client."""

    url: str
    realm: str = "tsunagu"
    client_id: str = "tsunagu-web"
    client_secret: str = "tsunagu-web-secret"
    # Every test user's password (the realm file's description says so).
    password: str = "tsunagu"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{self.realm}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    def settings(self, var_dir: Path) -> Settings:
        """A platform that verifies this provider's tokens, and a desk that signs in with it."""
        return Settings(
            var_dir=var_dir,
            jwks_url=self.jwks_url,
            jwt_issuer=self.issuer,
            oidc_issuer=self.issuer,
            oidc_client_id=self.client_id,
            oidc_client_secret=self.client_secret,
        )

    def sign_in(self, username: str) -> dict[str, Any]:
        """The token response for a test user, by the desk's flow: authorization code with
        PKCE, the login form posted as a browser would."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        # Keycloak lets any port follow a loopback host; nothing needs to listen there.
        redirect_uri = "http://127.0.0.1:9/auth/callback"
        endpoint = f"{self.issuer}/protocol/openid-connect"
        with provider_browser() as browser:
            page = browser.get(
                f"{endpoint}/auth",
                params={
                    "client_id": self.client_id,
                    "response_type": "code",
                    "scope": "openid",
                    "redirect_uri": redirect_uri,
                    "code_challenge": challenge.rstrip(b"=").decode(),
                    "code_challenge_method": "S256",
                },
            )
            back = submit_login(browser, page, username, self.password)
            code = httpx.URL(back.headers["location"]).params["code"]
            answer = browser.post(
                f"{endpoint}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": verifier,
                },
                auth=(self.client_id, self.client_secret),
            )
        answer.raise_for_status()
        tokens: dict[str, Any] = answer.json()
        return tokens


def provider_browser() -> httpx.Client:
    """A client that keeps the provider's cookies from page to page; redirects are not followed."""
    browser = httpx.Client(follow_redirects=False, timeout=30)

    def as_browsers_do(_: httpx.Response) -> None:
        # Keycloak marks its login cookies Secure and fails its login form without them;
        # browsers send Secure cookies to http://127.0.0.1, httpx would not.
        for cookie in browser.cookies.jar:
            cookie.secure = False

    browser.event_hooks["response"] = [as_browsers_do]
    return browser


def submit_login(
    browser: httpx.Client, page: httpx.Response, username: str, password: str
) -> httpx.Response:
    """Fills in the provider's login page; its answer is the redirect back to the client."""
    form = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
    assert form, f"no login form in the provider's answer ({page.status_code}): {page.text[:500]}"
    answer = browser.post(
        html.unescape(form.group(1)), data={"username": username, "password": password}
    )
    assert answer.status_code == 302, f"login as {username} refused: {answer.text[:500]}"
    return answer


@contextlib.contextmanager
def provide_keycloak() -> Iterator[OpenIDProvider]:
    """``KEYCLOAK_URL`` when set; else deploy/local/keycloak.sh, stopped at the end if this run
    started it (unless ``TSUNAGU_KEEP_SERVERS``)."""
    url = os.environ.get("KEYCLOAK_URL")
    if url:
        yield OpenIDProvider(url.rstrip("/"))
        return
    script = str(ROOT / "deploy/local/keycloak.sh")
    running = subprocess.run(["bash", script, "status"], capture_output=True).returncode == 0
    started = subprocess.run(["bash", script, "start"], check=True, stdout=subprocess.PIPE)
    key, _, value = started.stdout.decode().strip().partition("=")
    assert key == "KEYCLOAK_URL", started.stdout
    try:
        yield OpenIDProvider(value)
    finally:
        if not running and not os.environ.get("TSUNAGU_KEEP_SERVERS"):
            subprocess.run(["bash", script, "stop"], check=False)


def fresh_database(server_url: str) -> str:
    """A new, empty database on the same server, so each test starts from nothing."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def free_port() -> int:
    """A TCP port on the loopback nobody listens on now (the OS's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(
    check: Callable[[], bool], timeout: float, what: str | Callable[[], str], every: float = 0.1
) -> None:
    """Until ``check`` holds; ``what`` may be a function, to describe the state at the timeout
    (a child's output so far) rather than at the start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    said = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {said}")


class Process:
    """A ``tsunagu`` command in a child process, with its output kept for failure reports."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]
