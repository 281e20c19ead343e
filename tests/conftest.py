from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.platform.auth import mint_token
from services.platform.settings import Settings
from tests.infrastructure import (
    ROOT,
    Infrastructure,
    OpenIDProvider,
    Process,
    fresh_database,
    provide,
    provide_keycloak,
)

JWT_SECRET = "test-secret-" + "x" * 40

TokenFactory = Callable[..., str]


@pytest.fixture
def token() -> TokenFactory:
    def make(agency: str = "zama-jiritsu", role: str = "caseworker", **claims: object) -> str:
        return mint_token(
            JWT_SECRET,
            staff_id=str(claims.pop("staff_id", "s001")),
            agency=agency,
            roles=[role],
            **claims,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def auth(token: TokenFactory) -> Callable[..., dict[str, str]]:
    def headers(agency: str = "zama-jiritsu", role: str = "caseworker") -> dict[str, str]:
        return {"Authorization": f"Bearer {token(agency, role)}"}

    return headers


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", jwt_secret=JWT_SECRET)


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide() as servers:
        yield servers


@pytest.fixture(scope="session")
def openid_provider() -> Iterator[OpenIDProvider]:
    """The real OpenID provider (Keycloak, ~30 s to start): only tests that ask for it pay."""
    with provide_keycloak() as provider:
        yield provider


@pytest.fixture
def distributed_settings(infrastructure: Infrastructure, tmp_path: Path) -> Settings:
    """Settings for one test: its own database and its own topic prefix on the shared servers."""
    return Settings(
        var_dir=tmp_path / "var",
        database_url=fresh_database(infrastructure.database_url),
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        topic_partitions=2,
        jwt_secret=JWT_SECRET,
        relay_poll_seconds=0.02,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TSUNAGU_VAR_DIR=str(settings.var_dir),
        TSUNAGU_TOPIC_PREFIX=settings.topic_prefix,
        TSUNAGU_TOPIC_PARTITIONS=str(settings.topic_partitions),
        TSUNAGU_JWT_SECRET=JWT_SECRET,
        TSUNAGU_RELAY_POLL_SECONDS=str(settings.relay_poll_seconds),
    )
    # Exactly the servers ``settings`` names: an embedded command run from a shell that sourced
    # the servers' env must not go distributed.
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers),
    ):
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """One ``tsunagu`` command run to its end, with ``settings`` in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[list[str], Settings], Process]]:
    """Start ``tsunagu`` commands as child processes; all are stopped after the test."""
    started: list[Process] = []

    def start(args: list[str], settings: Settings) -> Process:
        log = tmp_path / f"{args[0]}-{len(started)}.log"
        process = Process(args, settings_env(settings), log).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
