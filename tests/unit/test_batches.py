"""Many events in one transaction leave the views exactly as one event at a time does."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.load import LoadProfile, event_stream
from contracts.envelope import CloudEvent
from contracts.events import IntegrationEvent
from services.feeds.changes import Change, Projector, ViewState
from services.feeds.runner import FeedRunner, Outcome
from services.feeds.store import ViewStore, schema
from services.platform.blind_index import BlindIndex
from services.platform.bus import InProcessBus, Message
from services.platform.keys import KeyStore
from services.platform.sql import Database, SqliteDatabase
from services.projection import feed, statistics
from services.projection.person_facts import reads
from services.projection.person_search import PersonIndex
from services.projection.projectors import consultations

pytestmark = pytest.mark.unit

# The instant every agency's view is decided at, so that both ways decide alike.
DECIDED_AT = datetime(2024, 12, 20, tzinfo=UTC)


def messages(count: int, persons: int = 300) -> list[Message]:
    """Generated lifecycles as their topics would deliver them, every event kind among them."""
    stream = itertools.islice(event_stream(LoadProfile(seed=4), persons), count)
    return [
        Message(f"t.{g.service}.events", g.key, g.value, (), 0, offset)
        for offset, g in enumerate(stream)
    ]


def projectors(*, postponed: bool = False) -> tuple[Projector, ...]:
    """The feed's projectors, deciding views at ``DECIDED_AT``; ``postponed``: a catch-up's,
    which record no purge."""
    return (
        consultations,
        statistics.count,
        *feed.person_projectors(lambda: DECIDED_AT, postponed=postponed),
    )


def runner(database: Database, *, postponed: bool = False) -> tuple[FeedRunner, ViewStore]:
    store = ViewStore(database, feed.TABLES, journal=True)
    # The person tables' reads, as the feed's runner makes them: a batch reads them up front.
    made = FeedRunner(store, projectors(postponed=postponed), InProcessBus(), "dlq", reads)
    return made, store


def tables(store: ViewStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the feed keeps (and its journal), in a fixed order."""
    declared = [t.name for t in map(schema, feed.TABLES) if t is not None]
    names = [*declared, "processed_event", "event_journal", "feed_position"]
    with store.database.transaction() as tx:
        return {
            name: sorted(
                (
                    tuple(str(v) for v in row.values())
                    for row in tx.fetchall(f"SELECT * FROM {name}")
                ),
            )
            for name in names
        }


def in_batches(items: Sequence[Message], size: int) -> Iterator[Sequence[Message]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def test_a_batch_leaves_the_views_as_one_event_at_a_time_does() -> None:
    stream = messages(3000)
    kinds = {CloudEvent.from_bytes(m.value).type for m in stream}
    assert {
        "jp.tsunagu.ConsentWithdrawn",
        "jp.tsunagu.ConsultationAttached",
        "jp.tsunagu.VitalInterestDeclared",
    } <= kinds
    one, one_store = runner(SqliteDatabase(":memory:"))
    many, many_store = runner(SqliteDatabase(":memory:"))

    for message in stream:
        assert one.consume(message).outcome is Outcome.APPLIED
    for batch in in_batches(stream, 700):
        assert {r.outcome for r in many.consume_batch(batch)} == {Outcome.APPLIED}

    assert tables(many_store) == tables(one_store)
    assert one_store.count("category_facts") > 0 and one_store.count("view_purge") > 0


def test_an_event_delivered_twice_in_a_batch_or_across_batches_is_applied_once() -> None:
    first, second = messages(2)
    many, store = runner(SqliteDatabase(":memory:"))

    outcomes = [r.outcome for r in many.consume_batch([first, first, second])]
    again = [r.outcome for r in many.consume_batch([second])]

    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE, Outcome.APPLIED]
    assert again == [Outcome.DUPLICATE]
    assert store.count("processed_event") == store.count("event_journal") == 2


def test_the_position_moves_past_the_whole_batch_dead_letters_included() -> None:
    good = messages(3)
    broken = Message("t.intake.events", "k", b"{broken", (), 1, 41)
    many, store = runner(SqliteDatabase(":memory:"))

    results = many.consume_batch([*good, broken])

    assert [r.outcome for r in results][-1] is Outcome.DEAD_LETTERED
    expected = {(m.topic, 0): 0 for m in good}
    for message in good:
        expected[message.topic, 0] = max(expected[message.topic, 0], (message.offset or 0) + 1)
    assert store.positions() == {**expected, ("t.intake.events", 1): 42}


def test_a_batch_that_fails_leaves_nothing_behind() -> None:
    stream = messages(50)
    store = ViewStore(SqliteDatabase(":memory:"), feed.TABLES, journal=True)

    def failing_at_the_last(
        view: ViewState, event: CloudEvent, data: IntegrationEvent
    ) -> list[Change]:
        if event.id == CloudEvent.from_bytes(stream[-1].value).id:
            raise RuntimeError("the database went away")
        return []

    index = PersonIndex(KeyStore(SqliteDatabase(":memory:"), bytes(32)), BlindIndex(bytes(32)))
    failing = FeedRunner(
        store, (*feed.projectors(index), failing_at_the_last), InProcessBus(), "dlq"
    )
    with pytest.raises(RuntimeError):
        failing.consume_batch(stream)

    assert all(rows == [] for rows in tables(store).values())


def caught_up(stream: Sequence[Message], database: Database) -> ViewStore:
    """The stream applied by a catch-up's runner in batches."""
    caught, store = runner(database, postponed=True)
    for batch in in_batches(stream, 700):
        assert {r.outcome for r in caught.consume_batch(batch)} == {Outcome.APPLIED}
    return store


def live_views(stream: Sequence[Message]) -> dict[str, list[tuple[Any, ...]]]:
    """Every table as the live projector, one event at a time, leaves it."""
    one, store = runner(SqliteDatabase(":memory:"))
    for message in stream:
        one.consume(message)
    return tables(store)


def test_a_catch_up_leaves_what_the_live_projector_leaves_but_the_purges() -> None:
    stream = messages(3000)
    live, caught = live_views(stream), tables(caught_up(stream, SqliteDatabase(":memory:")))
    assert caught == {**live, "view_purge": []}
    # The purges the live run recorded are history: a catch-up from nothing makes none again.
    assert live["view_purge"] and live["basis_end"]
