"""The relay on PostgreSQL wakes on the event store's NOTIFY, not on its polling interval."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from contracts.envelope import CloudEvent
from contracts.identity import Staff
from services.intake.application import OpenConsultation
from services.platform.bus import Message, Publisher
from services.platform.settings import Settings
from services.wiring import intake_application, intake_relay, key_store

pytestmark = pytest.mark.integration

CASEWORKER = Staff("s001", "zama-jiritsu", frozenset({"caseworker"}), "142182")
# Longer than any test may take: a relay that waited it out would fail the test.
NEVER = 3600.0
# How long to wait for something that should happen at once, before calling it hung.
HUNG = 60.0


class Recording(Publisher):
    def __init__(self) -> None:
        self.opened: list[CloudEvent] = []
        self._changed = threading.Condition()

    def publish(self, messages: Sequence[Message]) -> None:
        with self._changed:
            events = (CloudEvent.from_bytes(m.value) for m in messages)
            self.opened.extend(e for e in events if e.name == "ConsultationOpened")
            self._changed.notify_all()

    def wait_for(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.opened) >= count, HUNG)


def test_the_relay_publishes_each_stored_event_without_waiting_out_its_poll(
    distributed_settings: Settings,
) -> None:
    keys = key_store(distributed_settings)
    intake = intake_application(distributed_settings, keys)
    sent = Recording()
    relay = intake_relay(distributed_settings, intake, sent)
    stop = threading.Event()
    running = threading.Thread(target=relay.run, args=(stop, NEVER))

    def open_one() -> None:
        intake.open_consultation(
            CASEWORKER, OpenConsultation(channel="phone", route_in="self", caller_kind="self")
        )

    open_one()
    running.start()
    try:
        # The first is found by the relay's first look; each one after it, opened once the one
        # before was published, only by a wake-up: the relay's next look is an hour away.
        for count in range(1, 5):
            assert sent.wait_for(count), f"consultation {count} was never published"
            open_one()
        assert sent.wait_for(5)
    finally:
        stop.set()
        running.join(HUNG)
        relay.close()
        intake.close()
        keys.close()
    assert not running.is_alive(), "the relay did not stop while waiting"
    assert len({e.subject for e in sent.opened}) == 5
