"""What opens PostgreSQL connections closes them: an app built, used and shut down, or a relay
closed, leaves none behind. Pools left open kept theirs for the life of the test run, until the
suite met PostgreSQL's ``too many clients``."""

from __future__ import annotations

import threading
from urllib.parse import urlparse

import psycopg
import pytest
from fastapi.testclient import TestClient

from services.platform.bus import InProcessBus
from services.platform.settings import Settings
from services.wiring import COMMAND_SERVICES, close_app, relay, service_app
from tests.conftest import TokenFactory
from tests.infrastructure import wait_for

pytestmark = pytest.mark.integration

# Each service's routes that use every pool it opens: its event store, its feed's store and
# its disclosure outbox (the reads), or the views' store and audit chain.
USED: dict[str, list[tuple[str, str, dict[str, str] | None]]] = {
    "intake": [("post", "/persons", {"family_name": "佐藤"}), ("get", "/persons/{id}", None)],
    "referral": [("get", "/referrals/inbox", None)],
    "meeting": [("get", "/cases", None)],
    "projection": [("get", "/consultations", None), ("get", "/persons/{id}", None)],
}


def connections(settings: Settings, listening: bool = False) -> int:
    """Sessions open on the test's own database, but the one asking; or those of them waiting
    for notifications."""
    assert settings.database_url
    name = urlparse(settings.database_url).path.lstrip("/")
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    if listening:
        query += " AND query LIKE 'LISTEN %%'"
    with psycopg.connect(settings.database_url, autocommit=True) as probe:
        row = probe.execute(query, (name,)).fetchone()
    assert row is not None
    return int(row[0])


def none_left(settings: Settings) -> None:
    # A closed connection's backend leaves pg_stat_activity a moment after the client hangs up.
    wait_for(lambda: connections(settings) == 0, 30, "every connection to close")


@pytest.mark.parametrize("service", [*COMMAND_SERVICES, "projection"])
def test_a_service_app_shut_down_leaves_no_connection_open(
    distributed_settings: Settings, token: TokenFactory, service: str
) -> None:
    settings = distributed_settings
    headers = {"Authorization": f"Bearer {token()}"}
    person = "00000000-0000-4000-8000-000000000001"
    with TestClient(service_app(settings, service)) as client:
        for method, path, body in USED[service]:
            answer = client.request(method, path.format(id=person), json=body, headers=headers)
            assert answer.status_code < 500, answer.text
            if answer.status_code == 201:
                person = answer.json()["id"]
        assert connections(settings) > 0
    none_left(settings)


@pytest.mark.parametrize("service", list(COMMAND_SERVICES))
def test_a_service_app_built_and_closed_unserved_leaves_no_connection_open(
    distributed_settings: Settings, service: str
) -> None:
    """As ``tsunagu serve --workers`` does before its workers start."""
    app = service_app(distributed_settings, service)
    assert connections(distributed_settings) > 0
    close_app(app)
    none_left(distributed_settings)


def test_a_relay_closed_leaves_no_connection_open(distributed_settings: Settings) -> None:
    settings = distributed_settings
    app = service_app(settings, "intake")
    relaying = relay(settings, "intake", app.state.application, InProcessBus())
    stop = threading.Event()
    running = threading.Thread(target=relaying.run, args=(stop, 0.05))
    running.start()
    # Caught up, it waits for new events on a connection of its own.
    wait_for(
        lambda: connections(settings, listening=True) > 0, 30, "the relay to listen for new events"
    )
    stop.set()
    running.join()
    relaying.close()
    close_app(app)
    none_left(settings)
