"""A poison event is quarantined and its batch carries on; transient failures are waited out;
the dead letters can be listed, shown and replayed (embedded mode here)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
import tenacity

from contracts.envelope import CloudEvent
from contracts.events import IntegrationEvent
from contracts.topics import Topics
from services.cli import main
from services.feeds import quarantine, worker
from services.feeds.changes import Change, ViewState
from services.feeds.deadletters import FILE, FileDeadLetters
from services.feeds.quarantine import apply_or_quarantine
from services.feeds.runner import REASON_HEADER
from services.platform import lifecycle
from services.platform.bus import Message
from services.platform.keys import KeyRotated
from services.platform.settings import Settings
from services.projection.projectors import consultations
from services.wiring import FEEDS, embedded_app
from tests.unit.test_contracts import opened_event
from tests.unit.test_projection import consultation_feed

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "_backoff", tenacity.wait_none)


class Failing:
    """The consultations projector, failing on the poisoned event: with ``errors`` in turn,
    then with ``always`` if set."""

    def __init__(
        self, poisoned: str, errors: list[Exception], always: Exception | None = None
    ) -> None:
        self.poisoned, self.errors, self.always, self.tries = poisoned, errors, always, 0

    def __call__(
        self, state: ViewState, event: CloudEvent, data: IntegrationEvent
    ) -> Sequence[Change]:
        if event.id == self.poisoned:
            self.tries += 1
            if self.errors:
                raise self.errors.pop(0)
            if self.always is not None:
                raise self.always
        return consultations(state, event, data)


@pytest.fixture
def batch() -> list[Message]:
    return [
        Message("t.intake.events", "k", opened_event().to_bytes(), (), 0, offset)
        for offset in range(3)
    ]


def test_a_poison_event_is_quarantined_after_its_attempts_alone_and_the_batch_carries_on(
    batch: list[Message],
) -> None:
    poisoned = CloudEvent.from_bytes(batch[1].value).id
    projector = Failing(poisoned, [], psycopg.errors.DataError("cannot contain NUL (0x00) bytes"))
    runner, store, dead = consultation_feed(projector)

    apply_or_quarantine(runner, batch)

    assert store.count("consultation_view") == 2
    # Once in the whole batch, then ATTEMPTS times alone.
    assert projector.tries == 1 + quarantine.ATTEMPTS
    [letter] = dead
    assert letter.value == batch[1].value
    assert letter.header(REASON_HEADER) == "DataError: cannot contain NUL (0x00) bytes"
    # Past all three: a restart does not meet the poison again.
    assert store.positions() == {("t.intake.events", 0): 3}
    # Not recorded as processed: a replay after a fix applies it.
    assert store.count("processed_event") == 2
    projector.always = None
    apply_or_quarantine(runner, [batch[1]])
    assert store.count("consultation_view") == 3


def test_a_transient_failure_is_waited_out_and_nothing_is_quarantined(
    batch: list[Message],
) -> None:
    poisoned = CloudEvent.from_bytes(batch[0].value).id
    away: list[Exception] = [psycopg.OperationalError("server closed") for _ in range(5)]
    projector = Failing(poisoned, away)
    runner, store, dead = consultation_feed(projector)

    apply_or_quarantine(runner, batch)

    assert store.count("consultation_view") == 3
    assert dead == []
    # The whole batch, again and again: never split, since nothing was the event's own fault.
    assert projector.tries == 5 + 1


def test_a_feed_whose_key_was_rotated_under_it_stops_and_quarantines_nothing(
    batch: list[Message],
) -> None:
    poisoned = CloudEvent.from_bytes(batch[1].value).id
    projector = Failing(poisoned, [], KeyRotated())
    runner, store, dead = consultation_feed(projector)

    with pytest.raises(KeyRotated):
        apply_or_quarantine(runner, batch)

    # Every event would fail the same way: none is the event's fault, none goes, and the feed
    # stops before it (the one ahead of it applied alone on the way).
    assert dead == []
    assert store.positions() == {("t.intake.events", 0): 1}


def test_the_feed_worker_stops_its_process_when_the_key_was_rotated_under_it(
    batch: list[Message], monkeypatch: pytest.MonkeyPatch
) -> None:
    poisoned = CloudEvent.from_bytes(batch[0].value).id
    runner, _, dead = consultation_feed(Failing(poisoned, [], KeyRotated()))
    signalled: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: signalled.append((pid, sig)))

    with pytest.raises(KeyRotated):
        asyncio.run(worker.consume_until_done(runner, batch))

    assert signalled == [(os.getpid(), signal.SIGTERM)]
    assert dead == []


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TSUNAGU_VAR_DIR", str(tmp_path / "var"))
    yield Settings(var_dir=tmp_path / "var")


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_embedded_dead_letters_are_kept_listed_shown_and_replayed(
    embedded: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = embedded_app(embedded)
    intake = Topics(embedded.topic_prefix).events("intake")
    app.state.bus.publish([Message(intake, "k", b'{"specversion": "1.0", "oops": 1')])
    kept = list(FileDeadLetters(embedded.var_dir / FILE).letters())
    # Every feed of intake's topic could not read it: one letter each.
    readers = sum("intake" in feed.sources for feed in FEEDS.values())
    assert readers >= 3 and len(kept) == readers
    assert {letter.topic for letter in kept} == {intake}

    assert main(["deadletter", "list"]) == 0
    listed = lines(capsys)
    assert [letter["name"] for letter in listed] == [str(n) for n in range(1, readers + 1)]
    assert all(letter["reason"] and letter["type"] is None for letter in listed)

    assert main(["deadletter", "show", "2"]) == 0
    [shown] = lines(capsys)
    assert shown["topic"] == intake and shown["key"] == "k"

    assert main(["deadletter", "replay", "2"]) == 0
    assert lines(capsys) == [{"replayed": "2", "topic": intake}]
    # Still unreadable: each feed of the topic quarantines it again.
    assert len(list(FileDeadLetters(embedded.var_dir / FILE).letters())) == 2 * readers
    assert main(["deadletter", "show", "99"]) == 1
