from __future__ import annotations

from collections.abc import Sequence

import pytest

from contracts.envelope import CloudEvent
from contracts.identity import Staff
from services.feeds.runner import FeedRunner
from services.feeds.store import ViewStore
from services.intake.application import IntakeApplication, OpenConsultation
from services.intake.integration import to_cloudevent
from services.platform.bus import InProcessBus, Message, Publisher
from services.platform.relay import Relay, RelayPosition
from services.platform.sql import SqliteDatabase
from services.projection.projectors import CONSULTATION_VIEW, consultations

pytestmark = pytest.mark.unit

CASEWORKER = Staff("s001", "zama-jiritsu", frozenset({"caseworker"}), "142182")


class Recording(Publisher):
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def publish(self, messages: Sequence[Message]) -> None:
        self.sent.extend(messages)


class CrashAfterPublish(Publisher):
    """Publishes, then dies before the relay can record its position."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner

    def publish(self, messages: Sequence[Message]) -> None:
        self.inner.publish(messages)
        raise SystemExit("killed between publish and position")


def open_some(intake: IntakeApplication, count: int) -> None:
    for _ in range(count):
        intake.open_consultation(
            CASEWORKER, OpenConsultation(channel="phone", route_in="self", caller_kind="self")
        )


def relay_for(intake: IntakeApplication, publisher: Publisher, position: RelayPosition) -> Relay:
    return Relay(
        recorder=intake.recorder,
        mapper=intake.tracing_mapper,
        translate=to_cloudevent,
        topic="t.intake.events",
        publisher=publisher,
        position=position,
        batch_size=4,
    )


def test_relay_publishes_in_order_keyed_by_subject_and_remembers_its_position() -> None:
    intake = IntakeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    position = RelayPosition(SqliteDatabase(":memory:"), "intake")
    open_some(intake, 10)
    sent = Recording()
    relay = relay_for(intake, sent, position)
    assert relay.drain() == 10
    assert relay.drain() == 0
    assert position.get() == 10
    events = [CloudEvent.from_bytes(m.value) for m in sent.sent]
    assert [m.key for m in sent.sent] == [e.partitionkey for e in events]
    assert [e.name for e in events] == ["ConsultationOpened"] * 10
    assert len({e.id for e in events}) == 10


def test_a_crash_after_publishing_republishes_the_same_ids_and_the_view_counts_once() -> None:
    intake = IntakeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    position = RelayPosition(SqliteDatabase(":memory:"), "intake")
    bus = InProcessBus()
    store = ViewStore(SqliteDatabase(":memory:"), CONSULTATION_VIEW)
    bus.subscribe("t.intake.events", FeedRunner(store, [consultations], bus, "dlq").consume)
    recording = Recording()
    bus.subscribe("t.intake.events", recording.sent.append)
    open_some(intake, 6)
    with pytest.raises(SystemExit):
        relay_for(intake, CrashAfterPublish(bus), position).pump()
    assert position.get() == 0  # the crash came before the position moved
    relay_for(intake, bus, position).drain()
    ids = [CloudEvent.from_bytes(m.value).id for m in recording.sent]
    assert len(ids) == 10  # 4 published before the crash, then all 6 again
    assert len(set(ids)) == 6
    assert store.count("consultation_view") == 6
    assert store.count("processed_event") == 6
