"""On PostgreSQL, batches (rows staged and merged by COPY) leave the views as SQLite, one event
at a time, does; and so does a catch-up, but for the purges, which it does not record again."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from bench.load import LoadProfile, event_stream
from contracts.topics import Topics
from services.feeds.rebuild import rebuild
from services.feeds.runner import Outcome
from services.platform.bus import InProcessBus, KafkaPublisher, Message, ensure_topics
from services.platform.settings import Settings
from services.platform.sql import PostgresDatabase, SqliteDatabase
from services.projection import agency_view
from services.projection.person_facts import TxReader
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


def test_a_catch_up_on_postgres_leaves_what_the_live_projector_leaves_but_the_purges(
    infrastructure: Infrastructure,
) -> None:
    stream = messages(3000)
    url = fresh_database(infrastructure.database_url)
    store = caught_up(stream, PostgresDatabase(url, "projection"))
    try:
        live = live_views(stream)
        assert tables(store) == {**live, "view_purge": []}
        assert live["view_purge"]
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
    )

    try:
        assert replayed == len(published)
        with store.database.transaction() as tx:
            persons = {r["person_id"] for r in tx.fetchall("SELECT person_id FROM category_facts")}
            reader = TxReader(tx)
            shown = [agency_view.decided_views(reader, p, DECIDED_AT) for p in sorted(persons)]
        assert sum(map(len, shown)) > len(persons)
        # What ended before the rebuild is history, recorded by the live run: the sweep finds
        # nothing of it to record again.
        assert store.count("basis_end") > 0
        assert agency_view.sweep(store, datetime.now(UTC)) == []
        assert store.count("view_purge") == 0
    finally:
        store.database.close()
        keys.close()
