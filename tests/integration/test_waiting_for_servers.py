"""The relay and the feeds wait for a broker that is away, at start or when stopped by SIGTERM,
and lose and double nothing; SIGTERM stops them by themselves. On a broker of the tests' own,
stopped and started with deploy/local's scripts (the shared one serves other tests)."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contracts.envelope import CloudEvent
from contracts.topics import Topics
from services.platform.bus import KafkaPublisher
from services.platform.settings import Settings
from services.wiring import close_app, declare_topics, intake_relay, service_app, view_store
from tests.conftest import JWT_SECRET
from tests.infrastructure import Infrastructure, Process, fresh_database, wait_for
from tests.integration.kafka_tools import read_topic
from tests.integration.own_servers import OwnServers, own_servers

pytestmark = [pytest.mark.integration, pytest.mark.faults]

Spawn = Callable[[list[str], Settings], Process]
Auth = Callable[..., dict[str, str]]
OPEN = {"channel": "visit", "route_in": "self", "caller_kind": "self"}
# Far longer than a stop takes: a process still running then was never going to stop.
HUNG = 120.0


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServers]:
    with own_servers(tmp_path_factory.mktemp("servers")) as servers:
        servers.start("kafka")
        yield servers


@pytest.fixture
def settings(own: OwnServers, infrastructure: Infrastructure, tmp_path: Path) -> Settings:
    """The shared PostgreSQL, and the broker of this module's own (started if a test left it
    stopped)."""
    return Settings(
        var_dir=tmp_path / "var",
        database_url=fresh_database(infrastructure.database_url),
        kafka_bootstrap_servers=own.start("kafka"),
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        topic_partitions=2,
        jwt_secret=JWT_SECRET,
        relay_poll_seconds=0.02,
    )


def open_consultations(settings: Settings, auth: Auth, count: int) -> list[str]:
    ids = []
    # Entered, so that the app's shutdown closes its connections.
    with TestClient(service_app(settings, "intake")) as intake:
        for _ in range(count):
            opened = intake.post("/consultations", json=OPEN, headers=auth())
            assert opened.status_code == 201, opened.text
            ids.append(opened.json()["id"])
    return ids


def waiting_for(server: str, process: Process) -> None:
    wait_for(lambda: f"waiting for {server}" in process.output(), HUNG, process.output)
    assert process.popen is not None and process.popen.poll() is None, process.output()


def terminate(process: Process) -> int:
    """SIGTERM, then the exit code the process chose (a negative one: killed by a signal)."""
    assert process.popen is not None
    started = time.monotonic()
    process.popen.send_signal(signal.SIGTERM)
    try:
        code = process.popen.wait(timeout=HUNG)
    except subprocess.TimeoutExpired as hung:
        raise AssertionError(f"running {HUNG:.0f}s after SIGTERM\n{process.output()}") from hung
    print(f"{process.args}: exit {code} {time.monotonic() - started:.1f}s after SIGTERM")
    return code


def test_a_relay_started_while_kafka_is_down_waits_and_then_publishes(
    own: OwnServers, settings: Settings, spawn: Spawn, auth: Auth
) -> None:
    opened = open_consultations(settings, auth, 5)
    bootstrap = settings.kafka_bootstrap_servers
    assert bootstrap

    own.stop("kafka")
    relay = spawn(["relay", "intake"], settings)
    waiting_for("Kafka", relay)
    assert own.start("kafka") == bootstrap

    topic = Topics(settings.topic_prefix).events("intake")
    records = read_topic(bootstrap, topic, expect=len(opened), timeout_s=HUNG)
    subjects = [str(CloudEvent.from_bytes(r.value).subject) for r in records]  # type: ignore[attr-defined]
    assert sorted(subjects) == sorted(opened)


def test_a_relay_started_while_postgresql_is_down_waits_and_then_publishes(
    own: OwnServers, settings: Settings, spawn: Spawn, auth: Auth
) -> None:
    settings = replace(settings, database_url=fresh_database(own.start("postgres")))
    opened = open_consultations(settings, auth, 3)

    own.stop("postgres")
    relay = spawn(["relay", "intake"], settings)
    waiting_for("PostgreSQL", relay)
    own.start("postgres")

    assert settings.kafka_bootstrap_servers
    topic = Topics(settings.topic_prefix).events("intake")
    records = read_topic(settings.kafka_bootstrap_servers, topic, expect=3, timeout_s=HUNG)
    assert len(records) == len(opened)


def test_a_feed_started_while_kafka_is_down_waits_and_then_projects(
    own: OwnServers, settings: Settings, spawn: Spawn, auth: Auth
) -> None:
    opened = open_consultations(settings, auth, 5)
    declare_topics(settings)
    intake = service_app(settings, "intake")
    assert settings.kafka_bootstrap_servers
    publisher = KafkaPublisher(settings.kafka_bootstrap_servers)
    relaying = intake_relay(settings, intake.state.application, publisher)
    assert relaying.drain() == len(opened)
    publisher.close()
    relaying.close()
    close_app(intake)

    own.stop("kafka")
    feed = spawn(["project", "projection"], settings)
    waiting_for("Kafka", feed)
    own.start("kafka")

    store = view_store(settings)
    wait_for(lambda: store.count("consultation_view") == len(opened), HUNG, feed.output)
    store.database.close()


def test_sigterm_under_load_stops_relay_and_feed_by_themselves_and_loses_nothing(
    settings: Settings, spawn: Spawn, auth: Auth
) -> None:
    store = view_store(settings)
    relay, feed = spawn(["relay", "intake"], settings), spawn(["project", "projection"], settings)
    open_consultations(settings, auth, 20)
    wait_for(lambda: store.count("consultation_view") > 0, HUNG, feed.output)

    # Commands keep coming while they stop: both are in the middle of their work.
    open_consultations(settings, auth, 20)
    assert terminate(relay) == 0, relay.output()
    assert terminate(feed) == 0, feed.output()
    open_consultations(settings, auth, 20)

    spawn(["relay", "intake"], settings)
    feed = spawn(["project", "projection"], settings)
    wait_for(lambda: store.count("consultation_view") >= 60, HUNG, feed.output)
    assert store.count("consultation_view") == 60
    assert store.count("processed_event") == 60
    store.database.close()


def test_sigterm_while_kafka_is_down_stops_them_and_the_batch_is_done_after_restart(
    own: OwnServers, settings: Settings, spawn: Spawn, auth: Auth
) -> None:
    store = view_store(settings)
    relay, feed = spawn(["relay", "intake"], settings), spawn(["project", "projection"], settings)
    open_consultations(settings, auth, 1)
    wait_for(lambda: store.count("consultation_view") == 1, HUNG, feed.output)

    own.stop("kafka")
    # The relay is now stuck publishing this one: the broker cannot acknowledge it.
    open_consultations(settings, auth, 1)
    wait_for(lambda: "waiting for PostgreSQL and Kafka" in relay.output(), HUNG, relay.output)
    assert terminate(relay) == 0, relay.output()
    assert terminate(feed) == 0, feed.output()

    own.start("kafka")
    spawn(["relay", "intake"], settings)
    feed = spawn(["project", "projection"], settings)
    wait_for(lambda: store.count("consultation_view") == 2, HUNG, feed.output)
    assert store.count("processed_event") == 2
    store.database.close()
