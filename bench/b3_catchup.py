"""B3: the views catching up over a backlog of a million events.

The backlog is generated lifecycles (``bench.load.event_stream``: every integration event kind, in
the mix Zama's figures give), made by the relays' own functions and published to the three event
topics (8 partitions) as the relays publish them: keyed, with their headers, and each personal
field sealed under its subject's data key, kept in the benchmark's key store (its database's
``keys`` schema), where the views open them. Then:

- baseline: a plain kafka-python consumer in this process reads every message of the three
  topics from the beginning (assign, seek, poll until the end offsets) and does nothing more;
- Tsunagu: ``REPLICAS`` processes (one per core), each running ``rebuild.catch_up`` (the loop
  of ``tsunagu views rebuild``) over its share of the partitions into one empty projection
  schema: partition k of every topic goes to replica k mod ``REPLICAS``, as faust's assignor
  gives co-partitioned topics to one worker, so each person's events stay with one replica.
  Up to ``rebuild.BATCH`` messages at a time go to ``FeedRunner.consume_batch``, which is
  what the faust agent calls for each batch it takes: every projector of the views feed, and one
  PostgreSQL transaction per batch with its rows, its feed positions and its journal entries.
  The runner is a rebuild's: it records no purge again. No view is decided: views are decided
  when they are read.

B3.events_per_s is the backlog over Tsunagu's wall time (from the replicas' common start to the
last one's end); B3.ratio is that over the baseline's rate.

Beside it, what crypto-shredding costs an event, measured in this process on the same key store
over a sample of other persons' lifecycles (new subjects, as the backlog's were): sealing its
personal fields at the source (the subjects' data keys made as they first occur), and opening
every sealed field of it as a consumer would, a batch's keys looked up at once
(``bench.sealing_cost``). The views open only what they index (a registration's names): the
opening figure bounds what they pay.

The detail also keeps the floor, measured the same way by the same replicas: each message
read, its CloudEvent and data validated, and kept in a journal table by COPY, one transaction per
batch (``JournalOnly``), with no view at all. It is what any durable projection pays in this
stack before it does its own work: what B3 costs above it is the lawful views'. (A ceiling, the
same projectors over dicts with no database, was measured until the views became one record per
person and category, decided when read; the last figure is in the README.)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Literal, NamedTuple

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.common import backend_cpu_seconds, checkpoint, machine_cpu_seconds, note, show, stack
from bench.load import NEW_PER_YEAR, LoadProfile, Relaying, event_stream, lifecycles, render_events
from bench.sealing_cost import Cost, TimedSealer, opening
from contracts.envelope import CloudEvent
from contracts.events import IntegrationEvent, parse
from contracts.topics import Topics
from services.feeds.rebuild import BATCH, catch_up
from services.feeds.runner import FeedRunner
from services.platform.bus import KafkaPublisher, Message, ensure_topics
from services.platform.settings import Settings
from services.wiring import FEEDS, feed_runner, feed_store, key_store
from tests.infrastructure import Infrastructure

EVENTS, TINY_EVENTS = 1_000_000, 1_000
# Lifecycles of other persons, whose events' sealing and opening are timed.
SAMPLE, TINY_SAMPLE = 1_000, 30
SOURCES = FEEDS["projection"].sources
# The load generator's own default: 900 municipalities, a million new consultations a year.
PROFILE = LoadProfile(municipalities=900, scale=1_000_000 / (900 * NEW_PER_YEAR))
# About ten events a lifecycle: enough lifecycles that the backlog is cut from a full stream.
EVENTS_PER_PERSON = 9
REPLICAS = os.cpu_count() or 1
# What a replica feeds: the views (Tsunagu), or the floor (see above).
Feeding = Literal["views", "floor"]


def publish(settings: Settings, count: int) -> dict[str, int]:
    """``count`` events of the stream on their topics; how many of each service."""
    assert settings.kafka_bootstrap_servers
    topics = Topics(settings.topic_prefix)
    ensure_topics(
        settings.kafka_bootstrap_servers,
        [topics.events(s) for s in SOURCES],
        settings.topic_partitions,
    )
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        # One request in flight keeps each partition in the stream's order; big batches and a
        # little linger make a million sends take seconds, not minutes.
        max_in_flight_requests_per_connection=1,
        linger_ms=20,
        batch_size=1 << 20,
    )
    per_service = dict.fromkeys(SOURCES, 0)
    persons = math.ceil(count / EVENTS_PER_PERSON)
    try:
        stream = event_stream(PROFILE, persons, settings, workers=2)
        for generated in itertools.islice(stream, count):
            producer.send(
                topics.events(generated.service),
                key=generated.key.encode(),
                value=generated.value,
                headers=list(generated.headers),
            )
            per_service[generated.service] += 1
        producer.flush()
    finally:
        producer.close()
    return per_service


def consume_raw(settings: Settings) -> int:
    """Every message of the feed's topics, read and dropped: the baseline."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    try:
        topics = [Topics(settings.topic_prefix).events(s) for s in SOURCES]
        partitions = [
            TopicPartition(topic, part)
            for topic in topics
            for part in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        read = 0
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=500, max_records=2000).values():
                read += sum(1 for record in records if record.value)
        return read
    finally:
        consumer.close()


class JournalOnly:
    """The floor: every message validated and journalled, one COPY and commit per batch."""

    TABLE = "floor_journal"

    def __init__(self, database_url: str) -> None:
        self._connection = psycopg.connect(database_url)

    @classmethod
    def create(cls, database_url: str) -> None:
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(
                f"CREATE TABLE {cls.TABLE} (seq BIGSERIAL PRIMARY KEY, "
                "event_id TEXT NOT NULL UNIQUE, partition_key TEXT NOT NULL, body TEXT NOT NULL)"
            )

    def consume_batch(self, messages: Sequence[Message]) -> list[str]:
        journalled = self.journal(messages)
        self._connection.commit()
        return [event.id for event, _ in journalled]

    def journal(self, messages: Sequence[Message]) -> list[tuple[CloudEvent, IntegrationEvent]]:
        """Each message validated and journalled, in the open transaction; the events."""
        events = []
        for message in messages:
            event = CloudEvent.from_bytes(message.value)
            events.append((event, parse(event)))
        columns = "event_id, partition_key, body"
        with (
            self._connection.cursor() as cursor,
            cursor.copy(f"COPY {self.TABLE} ({columns}) FROM STDIN") as copy,
        ):
            for (event, _), message in zip(events, messages, strict=True):
                copy.write_row((event.id, event.partitionkey, message.value.decode("utf-8")))
        return events

    def close(self) -> None:
        self._connection.close()

    @classmethod
    def drop(cls, database_url: str) -> None:
        """Gone, with its pages written out, before the views' run: it pays for none of it."""
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(f"DROP TABLE {cls.TABLE}")
        checkpoint(database_url)


class Finished(NamedTuple):
    """What a replica returns."""

    events: int  # applied
    at: float  # when it finished, epoch seconds
    cpu: float  # its own CPU seconds
    postgres: dict[int, float]  # CPU seconds of each server process of the database by then


def replica(settings: Settings, number: int, start_at: float, feeding: Feeding) -> Finished:
    """One replica's share of the backlog, from ``start_at`` (epoch seconds) on (its own server
    process among those it reports)."""
    assert settings.kafka_bootstrap_servers and settings.database_url
    with contextlib.ExitStack() as resources:
        keys = key_store(settings)
        resources.callback(keys.close)
        runner: JournalOnly | FeedRunner
        if feeding == "floor":
            journal = runner = JournalOnly(settings.database_url)
            resources.callback(journal.close)
        else:
            store = feed_store(settings, "projection")
            resources.callback(store.database.close)
            dead_letters = KafkaPublisher(settings.kafka_bootstrap_servers)
            resources.callback(dead_letters.close)
            runner = feed_runner(
                settings, "projection", store, dead_letters, keys=keys, catching_up=True
            )
        topics = [Topics(settings.topic_prefix).events(s) for s in SOURCES]
        time.sleep(max(0.0, start_at - time.time()))
        own = time.process_time()
        applied = catch_up(
            settings,
            runner,
            topics,
            _progress if feeding == "views" else _quiet,
            share=(number, REPLICAS),
            every=100_000,
        )
        finished = time.time()
        own = time.process_time() - own
        postgres = backend_cpu_seconds(settings.database_url)
    return Finished(applied, finished, own, postgres)


def replicated(
    settings: Settings, *, tiny: bool, feeding: Feeding = "views"
) -> tuple[float, list[Finished], float]:
    """``REPLICAS`` processes catching up side by side: their wall seconds, what each returned,
    and the share of the machine's CPU that was busy meanwhile."""
    # Spawned processes take a while to import; all start applying at the same instant.
    start_at = time.time() + (5 if tiny else 15)
    busy, total = machine_cpu_seconds()
    with ProcessPoolExecutor(REPLICAS, mp_context=get_context("spawn")) as pool:
        done = list(
            pool.map(
                replica,
                [settings] * REPLICAS,
                range(REPLICAS),
                [start_at] * REPLICAS,
                [feeding] * REPLICAS,
            )
        )
    busy, total = machine_cpu_seconds()[0] - busy, machine_cpu_seconds()[1] - total
    seconds = max(replica.at for replica in done) - start_at
    return seconds, done, busy / total if total else 0.0


def _quiet(done: int, total: int) -> None:
    """The bounds' progress goes unprinted."""


def _progress(done: int, total: int) -> None:
    if done:
        print(f"  projected {done:,}/{total:,}", flush=True)


def crypto_cost(settings: Settings, persons: int) -> tuple[Cost, Cost, float]:
    """Per event of other persons' lifecycles like the backlog's: sealing its personal fields at
    the source (each new subject's data key made), opening them all, ``BATCH`` events' at a
    time, and how many data keys it made."""
    keys = key_store(settings)
    try:
        sealer = TimedSealer(keys)
        relaying = Relaying(sealer)
        sample = LoadProfile(PROFILE.seed + 1, PROFILE.municipalities, PROFILE.scale)
        lives = lifecycles(sample, persons)
        events = [g for life in lives for g in render_events(life, sample.seed, relaying)]
        documents = [json.loads(g.value)["data"] for g in events]
        opened = opening(keys, documents, BATCH)
        return sealer.per(len(events)), opened, len(sealer.subjects) / len(events)
    finally:
        keys.close()


def _timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


def run(servers: Infrastructure, *, tiny: bool) -> dict[str, float]:
    count = TINY_EVENTS if tiny else EVENTS
    with stack(servers, "b3") as running:
        settings = Settings(
            var_dir=running.workdir / "var",
            database_url=running.database_url,
            kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
            topic_prefix=running.topic_prefix,
            topic_partitions=running.partitions,
        )
        started = time.perf_counter()
        per_service = publish(settings, count)
        print(f"  published {count:,} events in {time.perf_counter() - started:.0f}s", flush=True)

        read, raw_seconds = _timed(lambda: consume_raw(settings))
        assert read == count, f"the baseline read {read} of {count} messages"

        assert settings.database_url
        JournalOnly.create(settings.database_url)
        floor_seconds, floored, _ = replicated(settings, tiny=tiny, feeding="floor")
        assert sum(replica.events for replica in floored) == count
        JournalOnly.drop(settings.database_url)

        # The schema is made once here: replicas making it at once would race on its DDL.
        feed_store(settings, "projection").database.close()
        seconds, done, busy = replicated(settings, tiny=tiny)
        applied = sum(replica.events for replica in done)
        views = feed_store(settings, "projection")
        journalled = views.count("event_journal")
        views.database.close()
        sealing, opened, keys_made = crypto_cost(settings, TINY_SAMPLE if tiny else SAMPLE)
    assert applied == journalled == count, f"{applied} applied, {journalled} journalled of {count}"

    raw_rate, rate = count / raw_seconds, count / seconds
    note(
        "B3",
        events=count,
        per_service=per_service,
        replicas=REPLICAS,
        seconds=round(seconds, 1),
        baseline_seconds=round(raw_seconds, 2),
        per_replica=_per_replica(done),
        postgres_cpu_us_per_event=_server_cpu_us(done, count),
        machine_busy_share=round(busy, 3),
        floor={
            "what": "read, validate and journal each message (JournalOnly), same replicas",
            "events_per_s": round(count / floor_seconds),
            "ratio": round(count / floor_seconds / raw_rate, 3),
            "views_over_floor": round(floor_seconds / seconds, 3),
            "per_replica": _per_replica(floored),
            "postgres_cpu_us_per_event": _server_cpu_us(floored, count),
        },
        batch=f"{BATCH:,} messages at most per transaction",
        crypto_per_event={
            "what": "measured in this process over other persons' lifecycles, same key store",
            "sealing_at_the_source": sealing.facts(),
            "data_keys_made": round(keys_made, 3),
            "opening_every_sealed_field": opened.facts(),
        },
    )
    print(
        f"  floor (validate and journal only): {count / floor_seconds:,.0f} events/s, "
        f"ratio {count / floor_seconds / raw_rate:.3f}; the views run at "
        f"{floor_seconds / seconds:.3f} × the floor",
        flush=True,
    )
    events_per_s = show(
        "B3.events_per_s", rate, "events/s", baseline=raw_rate, of="kafka-python, read only"
    )
    show("B3.sealing_us_per_event", sealing.cpu_us, "µs CPU")
    show("B3.opening_us_per_event", opened.cpu_us, "µs CPU")
    replica_us = sum(r.cpu for r in done) / count * 1e6
    print(
        f"  crypto-shredding, an event: sealed at the source {sealing.cpu_us:.0f} µs CPU "
        f"({keys_made:.2f} data keys made); every sealed field opened {opened.cpu_us:.0f} µs "
        f"CPU, {opened.cpu_us / replica_us:.1%} of the {replica_us:.0f} µs CPU the replicas "
        "spent on it",
        flush=True,
    )
    return {
        "B3.events_per_s": events_per_s,
        "B3.ratio": rate / raw_rate,
        "B3.sealing_us_per_event": sealing.cpu_us,
        "B3.opening_us_per_event": opened.cpu_us,
    }


def _per_replica(done: list[Finished]) -> list[dict[str, float]]:
    return [
        {
            "events": replica.events,
            "cpu_us_per_event": round(replica.cpu / replica.events * 1e6, 1),
        }
        for replica in done
    ]


def _server_cpu_us(done: list[Finished], count: int) -> float:
    """PostgreSQL's CPU per event: each server process a replica saw, at its last look."""
    server_cpu: dict[int, float] = {}
    for replica in done:
        for pid, used in replica.postgres.items():
            server_cpu[pid] = max(server_cpu.get(pid, 0.0), used)
    return round(sum(server_cpu.values()) / count * 1e6, 1)
