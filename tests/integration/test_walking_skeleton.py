"""A consultation travels HTTP -> PostgreSQL event store -> relay -> Kafka -> faust -> view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.envelope import CloudEvent
from contracts.events import ConsultationOpened, parse
from contracts.topics import Topics
from services.feeds.runner import REASON_HEADER
from services.platform.settings import Settings
from services.wiring import intake_app, projection_app, view_store
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Cleanup
from tests.integration.kafka_tools import end_offsets, produce_raw, read_topic

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
Auth = Callable[..., dict[str, str]]
OPEN = {"channel": "phone", "route_in": "public_relations_bulletin", "caller_kind": "anonymous"}


def view_rows(views: TestClient, auth: Auth) -> list[dict[str, Any]]:
    response = views.get("/consultations", headers=auth())
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_an_opened_consultation_reaches_the_agency_view_over_kafka(
    distributed_settings: Settings, spawn: Spawn, auth: Auth, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    relay = spawn(["relay", "intake"], settings)
    projector = spawn(["project"], settings)
    intake = cleanup.client(intake_app(settings))
    views = cleanup.client(projection_app(settings))

    opened = intake.post("/consultations", json={**OPEN, "notes": "髙橋さん 🙏"}, headers=auth())
    assert opened.status_code == 201, opened.text
    consultation_id = opened.json()["id"]

    # Both outputs as they are at the timeout: a stalled relay and a stalled feed look alike.
    wait_for(
        lambda: len(view_rows(views, auth)) == 1,
        90,
        lambda: f"the view\nfeed:\n{projector.output()}\nrelay:\n{relay.output()}",
    )
    [row] = view_rows(views, auth)
    assert row["consultation_id"] == consultation_id
    assert row["notes"] == "髙橋さん 🙏"
    assert row["route_in"] == "public_relations_bulletin"
    # The tax desk has no consultation of its own: its view stays empty.
    assert view_rows(views, lambda: auth("zama-shuno")) == []

    [record] = read_topic(
        settings.kafka_bootstrap_servers or "",
        Topics(settings.topic_prefix).events("intake"),
        expect=1,
    )
    event = CloudEvent.from_bytes(record.value)  # type: ignore[attr-defined]
    assert record.key == consultation_id.encode()  # type: ignore[attr-defined]
    assert event.municipality == "142182"
    assert isinstance(parse(event), ConsultationOpened)
    headers = dict(record.headers)  # type: ignore[attr-defined]
    assert headers["ce_id"].decode() == event.id
    assert headers["traceparent"].decode() == event.traceparent


def test_kill_9_of_the_relay_mid_batch_loses_and_doubles_nothing(
    distributed_settings: Settings, spawn: Spawn, auth: Auth, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    relay = spawn(["relay", "intake"], settings)
    projector = spawn(["project"], settings)
    intake = cleanup.client(intake_app(settings))
    store = cleanup.store(view_store(settings))

    for number in range(500):
        assert intake.post("/consultations", json=OPEN, headers=auth()).status_code == 201
        if number == 150:
            wait_for(lambda: store.count("consultation_view") > 0, 90, projector.output)
        if number == 200:
            relay.kill9()
            relayed_before_kill = store.count("processed_event")
        if number == 350:
            relay = spawn(["relay", "intake"], settings)

    assert 0 < relayed_before_kill < 500
    wait_for(
        lambda: store.count("consultation_view") >= 500, 120, lambda: f"500 rows\n{relay.output()}"
    )
    assert store.count("consultation_view") == 500
    assert store.count("processed_event") == 500
    bootstrap, topic = (
        settings.kafka_bootstrap_servers or "",
        Topics(settings.topic_prefix).events("intake"),
    )
    # A batch published but not yet recorded when the relay was killed is published again on
    # restart (the views count it once): read the whole topic, not its first 500 records.
    records = read_topic(bootstrap, topic, sum(end_offsets(bootstrap, [topic]).values()))
    ids = [CloudEvent.from_bytes(r.value).id for r in records]  # type: ignore[attr-defined]
    assert len(set(ids)) == 500


def test_a_malformed_message_is_dead_lettered_and_the_projector_keeps_going(
    distributed_settings: Settings, spawn: Spawn, auth: Auth, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    bootstrap, topics = settings.kafka_bootstrap_servers or "", Topics(settings.topic_prefix)
    relay = spawn(["relay", "intake"], settings)
    projector = spawn(["project"], settings)
    produce_raw(bootstrap, topics.events("intake"), b"poison", b'{"specversion": "1.0", "oops": 1')
    intake = cleanup.client(intake_app(settings))
    views = cleanup.client(projection_app(settings))
    assert intake.post("/consultations", json=OPEN, headers=auth()).status_code == 201

    # Both outputs as they are at the timeout: a stalled relay and a stalled feed look alike.
    wait_for(
        lambda: len(view_rows(views, auth)) == 1,
        90,
        lambda: f"the view\nfeed:\n{projector.output()}\nrelay:\n{relay.output()}",
    )
    [letter] = read_topic(bootstrap, topics.dead_letter, expect=1, timeout_s=60)
    assert letter.value == b'{"specversion": "1.0", "oops": 1'  # type: ignore[attr-defined]
    reason = dict(letter.headers)[REASON_HEADER].decode()  # type: ignore[attr-defined]
    assert "not a CloudEvent" in reason
