"""Fixtures shared by the integration tests on PostgreSQL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from contracts.reference import reference
from contracts.topics import Topics
from services.feeds.store import ViewStore
from services.meeting.feed import FeedFacts
from services.platform.bus import ensure_topics
from services.platform.relay import Relay
from services.platform.settings import Settings
from services.platform.sql import PostgresDatabase
from services.projection.audit import AuditLog
from services.scenarios import Client
from services.wiring import COMMAND_SERVICES, feed_store, projection_app, service_app, view_store
from tests.infrastructure import Process, wait_for
from tests.integration.feeds import AfterTheFeed
from tests.integration.kafka_tools import end_offsets

Connection = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def log(distributed_settings: Settings) -> Iterator[AuditLog]:
    assert distributed_settings.database_url
    database = PostgresDatabase(distributed_settings.database_url, "projection")
    yield AuditLog(database)
    database.close()


@pytest.fixture
def raw(distributed_settings: Settings) -> Iterator[Connection]:
    """A direct connection, as someone with write access to the database would have."""
    assert distributed_settings.database_url
    with psycopg.connect(
        distributed_settings.database_url,
        autocommit=True,
        row_factory=dict_row,
        options="-c search_path=projection",
    ) as connection:
        yield connection


class Cleanup:
    """What a test opens on PostgreSQL, closed at its end whatever happens. Pools left open
    keep their connections for the rest of the run: the suite once met "too many clients"."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack

    def client(self, app: FastAPI) -> TestClient:
        """A client of ``app``, entered so that the app's shutdown closes its pools."""
        return self._stack.enter_context(TestClient(app))

    def store(self, store: ViewStore) -> ViewStore:
        self._stack.callback(store.database.close)
        return store

    def relay(self, relay: Relay) -> Relay:
        self._stack.callback(relay.close)
        return relay


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    with contextlib.ExitStack() as stack:
        yield Cleanup(stack)


Spawn = Callable[[list[str], Settings], Process]


def intake_and_views(
    settings: Settings, spawn: Spawn, cleanup: Cleanup
) -> tuple[Process, TestClient, TestClient]:
    """Intake relayed onto Kafka and the views fed from it: the feed's process, intake's client
    and the views' client. The feed reads all three services' topics, so all three exist."""
    topics = Topics(settings.topic_prefix)
    ensure_topics(
        settings.kafka_bootstrap_servers or "",
        [topics.events(s) for s in ("intake", "referral", "meeting")],
        settings.topic_partitions,
    )
    spawn(["relay", "intake"], settings)
    feed = spawn(["project", "projection"], settings)
    intake = cleanup.client(service_app(settings, "intake"))
    return feed, intake, cleanup.client(projection_app(settings))


# Every story is played in Zama.
ZAMA = reference().agencies["zama-jiritsu"].municipality


@dataclass
class Platform:
    """Intake, referral, meeting and views as separate services, joined only by Kafka."""

    settings: Settings
    services: dict[str, tuple[Client, str]]
    views: TestClient
    settle: Callable[[], None]
    # Each service's relay process, for a test that stops one.
    relays: dict[str, Process]


@pytest.fixture
def platform(distributed_settings: Settings, spawn: Spawn, cleanup: Cleanup) -> Iterator[Platform]:
    settings = distributed_settings
    relays = {service: spawn(["relay", service], settings) for service in COMMAND_SERVICES}
    projection = spawn(["project", "projection"], settings)
    referral_feed = spawn(["project", "referral"], settings)
    meeting_feed = spawn(["project", "meeting"], settings)
    referral_replica = cleanup.store(feed_store(settings, "referral"))
    meeting_facts = FeedFacts(cleanup.store(feed_store(settings, "meeting")))
    views = cleanup.store(view_store(settings))
    topics = [Topics(settings.topic_prefix).events(s) for s in ("intake", "referral", "meeting")]

    def consent_known(url: str, body: Any) -> bool:
        if url != "/referrals" or not body.get("consent_id"):
            return True
        with referral_replica.database.transaction() as tx:
            found = tx.fetchone(
                "SELECT 1 AS found FROM consent WHERE consent_id = ?", (body["consent_id"],)
            )
        return found is not None

    def applicant_known(url: str, body: Any) -> bool:
        if url == "/cases":
            return meeting_facts.applicant(UUID(body["consultation_id"])) is not None
        about_person = url == "/vital-interests" or (
            url == "/meetings" and body.get("kind") == "article9_support_meeting"
        )
        if about_person:
            return meeting_facts.knows_person(UUID(body["person_id"]), ZAMA)
        return True

    def caught_up() -> bool:
        stored = views.positions()
        ends = end_offsets(str(settings.kafka_bootstrap_servers), topics)
        return all(stored.get(part, 0) >= end for part, end in ends.items())

    def settle() -> None:
        # The relays may still be publishing the last commands: caught up twice, 1 s apart.
        for _ in range(2):
            time.sleep(1)
            wait_for(caught_up, 120, lambda: f"the views to catch up\n{projection.output()}")

    referral = AfterTheFeed(
        cleanup.client(service_app(settings, "referral")), consent_known, referral_feed
    )
    meeting = AfterTheFeed(
        cleanup.client(service_app(settings, "meeting")), applicant_known, meeting_feed
    )
    services: dict[str, tuple[Client, str]] = {
        "intake": (cleanup.client(service_app(settings, "intake")), ""),
        "referral": (referral, ""),
        "meeting": (meeting, ""),
    }
    views_client = cleanup.client(service_app(settings, "projection"))
    yield Platform(settings, services, views_client, settle, relays)
