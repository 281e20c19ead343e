"""Group commit on real PostgreSQL: saves that wait together commit together, and fail alone."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from services.platform.eventstore import TracingApplication, eventstore_env
from services.platform.group_commit import GroupCommitRecorder
from services.platform.indexes import ListIndex
from services.platform.settings import Settings

pytestmark = pytest.mark.integration

WAITING = 8


class Saves(TracingApplication):
    name = "saves"


@pytest.fixture
def saves(distributed_settings: Settings) -> Iterator[Saves]:
    application = Saves(env=eventstore_env(distributed_settings, "saves"))
    assert isinstance(application.recorder, GroupCommitRecorder)
    yield application
    application.close()


@pytest.fixture
def hold_first(monkeypatch: pytest.MonkeyPatch, saves: Saves) -> Callable[[], list[int]]:
    """From its call on, the first transaction waits until ``WAITING`` saves queue behind it;
    it returns the size of each transaction, as they are written."""
    recorder = saves.recorder
    assert isinstance(recorder, GroupCommitRecorder)
    insert = GroupCommitRecorder._insert_group

    def arm() -> list[int]:
        sizes: list[int] = []

        def held_insert(
            self: GroupCommitRecorder, events: Sequence[StoredEvent], **kwargs: Any
        ) -> Any:
            if not sizes:
                for _ in range(6000):  # a minute at most, should a save never arrive
                    if len(recorder._waiting) >= WAITING:
                        break
                    time.sleep(0.01)
            sizes.append(len(events))
            return insert(self, events, **kwargs)

        monkeypatch.setattr(GroupCommitRecorder, "_insert_group", held_insert)
        return sizes

    return arm


def in_threads(calls: Sequence[Callable[[], object]]) -> list[object]:
    """Each call in a thread of its own, all at once; what each returned or raised."""
    outcomes: list[object] = [None] * len(calls)

    def run(number: int) -> None:
        try:
            outcomes[number] = calls[number]()
        except Exception as error:
            outcomes[number] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_saves_waiting_behind_a_transaction_share_the_next_one(
    saves: Saves, hold_first: Callable[[], list[int]]
) -> None:
    indexes = [ListIndex(f"key-{n}") for n in range(WAITING + 1)]
    transactions = hold_first()

    outcomes = in_threads([partial(saves.save, index) for index in indexes])

    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert transactions == [1, WAITING]
    stored = saves.recorder.select_notifications(start=None, limit=100)
    assert len(stored) == WAITING + 1
    assert [n.id for n in stored] == sorted({n.id for n in stored})
    assert all(saves.find(ListIndex, index.id) is not None for index in indexes)


def test_a_conflicting_save_fails_alone(saves: Saves, hold_first: Callable[[], list[int]]) -> None:
    contested = ListIndex("contested")
    saves.save(contested)
    first, second = saves.fetch(ListIndex, contested.id, "index"), saves.index("contested")
    assert second is not None
    first.add(uuid.uuid4())
    second.add(uuid.uuid4())
    others = [ListIndex(f"other-{n}") for n in range(WAITING - 1)]
    calls: list[Callable[[], object]] = [partial(saves.save, first), partial(saves.save, second)]
    calls += [partial(saves.save, index) for index in others]

    hold_first()
    outcomes = in_threads(calls)

    conflicts = [o for o in outcomes if isinstance(o, IntegrityError)]
    assert len(conflicts) == 1
    assert not [o for o in outcomes if isinstance(o, Exception) and o not in conflicts]
    assert len(saves.fetch(ListIndex, contested.id, "index").ids) == 1
    assert all(saves.find(ListIndex, index.id) is not None for index in others)


def test_processes_starting_together_all_build_their_event_store(
    distributed_settings: Settings,
) -> None:
    """``serve --workers N`` starts N processes at once, each creating (or replacing) the same
    tables and functions: PostgreSQL answered one "tuple concurrently updated", killing it."""
    env = eventstore_env(distributed_settings, "together")
    Saves(env=env).close()  # the tables exist, as ``serve`` makes sure before its workers
    for _ in range(5):
        start = threading.Barrier(WAITING)
        failures: list[Exception] = []
        builders = [
            threading.Thread(target=_build, args=(env, start, failures)) for _ in range(WAITING)
        ]
        for builder in builders:
            builder.start()
        for builder in builders:
            builder.join()
        assert failures == []


def _build(env: dict[str, str], start: threading.Barrier, failures: list[Exception]) -> None:
    start.wait()
    try:
        Saves(env=env).close()
    except Exception as error:
        failures.append(error)
