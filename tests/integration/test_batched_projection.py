"""On PostgreSQL, batches (rows staged and merged by COPY) leave the views as SQLite, one event
at a time, does; and so does a catch-up that decides the views once, at its end."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from bench.load import LoadProfile, event_stream
from contracts.topics import Topics
from services.platform.bus import InProcessBus, KafkaPublisher, Message, ensure_topics
from services.platform.settings import Settings
from services.platform.sql import PostgresDatabase, SqliteDatabase
from services.projection import agency_view, feed
from services.projection.rebuild import rebuild
from services.projection.runner import Outcome
from services.projection.store import ViewStore
from services.wiring import FEEDS, feed_runner, feed_store, key_store
from tests.infrastructure import Infrastructure, fresh_database
from tests.unit.test_batches import (
    DECIDED_AT,
    caught_up,
    in_batches,
    live_views,
    messages,
    runner,
    tables,
)

pytestmark = pytest.mark.integration


def test_postgres_batches_match_sqlite_one_by_one(infrastructure: Infrastructure) -> None:
    stream = messages(3000)
    one, one_store = runner(SqliteDatabase(":memory:"))
    database = PostgresDatabase(fresh_database(infrastructure.database_url), "projection")
    many, many_store = runner(database)

    for message in stream:
        one.consume(message)
    for batch in in_batches(stream, 700):
        assert {r.outcome for r in many.consume_batch(batch)} == {Outcome.APPLIED}
    # Delivered again after a crash: nothing changes.
    assert {r.outcome for r in many.consume_batch(stream[:700])} == {Outcome.DUPLICATE}

    try:
        assert tables(many_store) == tables(one_store)
    finally:
        database.close()


def test_two_settling_at_once_on_postgres_decide_every_person_once(
    infrastructure: Infrastructure,
) -> None:
    stream = messages(3000)
    url = fresh_database(infrastructure.database_url)
    store = caught_up(stream, PostgresDatabase(url, "projection"))
    stale = store.count("view_stale")

    def settle(_: int) -> int:
        # Each replica settles with a connection of its own.
        own = ViewStore(PostgresDatabase(url, "projection"), feed.TABLES, journal=True)
        try:
            return agency_view.settle(own, DECIDED_AT, chunk=25)
        finally:
            own.database.close()

    with ThreadPoolExecutor(2) as pool:
        settled = list(pool.map(settle, range(2)))

    try:
        assert sum(settled) == stale > 0
        assert tables(store) == {**live_views(stream), "view_purge": []}
    finally:
        store.database.close()


def test_a_rebuild_from_kafka_leaves_each_view_what_decide_allows(
    distributed_settings: Settings,
) -> None:
    settings = distributed_settings
    topics = Topics(settings.topic_prefix)
    sources = FEEDS["projection"].sources
    generated = itertools.islice(event_stream(LoadProfile(seed=4), 200), 1500)
    published = [Message(topics.events(g.service), g.key, g.value) for g in generated]
    assert settings.kafka_bootstrap_servers
    ensure_topics(
        settings.kafka_bootstrap_servers,
        [topics.events(s) for s in sources],
        settings.topic_partitions,
    )
    publisher = KafkaPublisher(settings.kafka_bootstrap_servers)
    publisher.publish(published)
    publisher.close()
    store, keys = feed_store(settings, "projection"), key_store(settings)

    replayed = rebuild(
        settings,
        store,
        lambda views, dlq: feed_runner(
            settings, "projection", views, dlq, keys=keys, catching_up=True
        ),
        InProcessBus(),
        sources,
        lambda done, total: None,
        batch=400,
        settle=FEEDS["projection"].settle,
    )

    try:
        assert replayed == len(published)
        assert store.count("view_stale") == 0
        decided = tables(store)["agency_view"]
        assert decided
        # Deciding every person again, now, changes no row and purges nothing.
        with store.database.transaction() as tx:
            persons = [r["person_id"] for r in tx.fetchall("SELECT person_id FROM person_fact")]
        now = datetime.now(UTC)
        assert all(agency_view.refresh(store, p, now, "test") == [] for p in set(persons))
        assert tables(store)["agency_view"] == decided
    finally:
        store.database.close()
        keys.close()
