"""Intake on PostgreSQL and Kafka: the scenarios' steps, and their events on the topic."""

from __future__ import annotations

from collections import Counter

import pytest

from contracts.envelope import CloudEvent
from contracts.events import CATALOGUE, parse
from contracts.topics import Topics
from services.platform.bus import KafkaPublisher, ensure_topics
from services.platform.settings import Settings
from services.scenarios import ScenarioPlayer
from services.wiring import intake_app, intake_relay
from tests.conftest import TokenFactory
from tests.integration.conftest import Cleanup
from tests.integration.kafka_tools import read_topic
from tests.scenario_checks import check_intake_expectations, play_all

pytestmark = pytest.mark.integration


def test_scenario_intake_steps_publish_schema_valid_events_keyed_by_person(
    distributed_settings: Settings, token: TokenFactory, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    bootstrap = settings.kafka_bootstrap_servers or ""
    topic = Topics(settings.topic_prefix).events("intake")
    ensure_topics(bootstrap, [topic], settings.topic_partitions)
    app = intake_app(settings)
    client = cleanup.client(app)

    played = play_all(ScenarioPlayer({"intake": (client, "")}, token))
    check_intake_expectations(client, token, "", played)
    publisher = KafkaPublisher(bootstrap)
    published = cleanup.relay(intake_relay(settings, app.state.application, publisher)).drain()
    publisher.close()

    records = read_topic(bootstrap, topic, expect=1)
    records = read_topic(bootstrap, topic, expect=len(records) + 10_000, timeout_s=8)
    events = [(r, CloudEvent.from_bytes(r.value)) for r in records]  # type: ignore[attr-defined]
    names = Counter(event.name for _, event in events)
    assert names["ConsultationOpened"] == 6
    assert names["PersonRegistered"] == 5
    assert names["ConsentRecorded"] == 5
    assert names["ConsultationAttached"] == 5
    assert names["ApplicationReceived"] == 2
    assert names["PersonLinked"] == 1
    assert names["ConsultationTriaged"] == 1
    assert published > len(events)  # index aggregates are stored but never published
    persons = {p.person for p in played.values()}
    for record, event in events:
        data = parse(event)
        assert type(data) is CATALOGUE[(event.name, event.eventversion)]
        assert event.municipality == "142182"
        assert record.key.decode() == event.partitionkey  # type: ignore[attr-defined]
        if event.personid is not None:
            assert event.partitionkey == event.personid
            assert event.personid in persons
        else:
            assert event.name == "ConsultationOpened" and event.partitionkey == event.subject
    # One person's events share a key, hence a partition, hence their order.
    tax_person = played["03-tax-desk-referral"].person
    partitions = {r.partition for r, e in events if e.personid == tax_person}  # type: ignore[attr-defined]
    assert len(partitions) == 1
