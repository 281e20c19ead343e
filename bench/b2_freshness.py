"""B2: freshness, from a command accepted to its row in the receiving agency's view.

Tsunagu: consultations opened at a steady 300 per second over HTTP (``tsunagu serve intake``),
carried by ``tsunagu relay intake`` to Kafka and by the faust worker (``tsunagu project``) into
the views. A consultation is accepted when its 201 arrives, and visible when a query on
``projection.consultation_view`` (the agency's list behind ``GET /views/consultations``) finds
its row; one connection asks for every accepted, not yet seen id every 2 ms, so a latency is
over by at most that much plus one query. Reading the topic too, the detail file splits each
latency at the relay's record (by its timestamp: wall clock, same machine). The raw baseline,
in the same run: kafka-python produce -> consume latency alone, at the same rate, on a topic
with as many partitions.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field

import psycopg

from bench.common import OFFICE, Stack, note, percentile, show, stack, token
from bench.http_client import Outcome, paced, post
from contracts.topics import Topics
from services.platform.bus import ensure_topics
from services.platform.settings import Settings
from tests.infrastructure import Infrastructure

RATE = 300.0
POLL_SECONDS = 0.002
OPEN = {"channel": "phone", "route_in": "self", "caller_kind": "anonymous"}
SEEN = (
    "SELECT consultation_id FROM projection.consultation_view "
    "WHERE agency = %s AND consultation_id = ANY(%s)"
)
# How long the rest may take to show up once the load has stopped.
GRACE_SECONDS = 60.0


def kafka_latencies(bootstrap: str, topic: str, partitions: int, seconds: float) -> list[float]:
    """Produce -> consume seconds for each of ``RATE * seconds`` records sent at ``RATE``/s."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    ensure_topics(bootstrap, [topic], partitions)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_end(*assigned)
    for partition in assigned:
        # Resolve the end offsets now, not at the first poll, so no record is skipped.
        consumer.position(partition)
    total = int(RATE * seconds)
    latencies: list[float] = []

    def consume() -> None:
        deadline = time.perf_counter() + seconds + GRACE_SECONDS
        while len(latencies) < total and time.perf_counter() < deadline:
            for records in consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                latencies.extend(now - struct.unpack("d", r.value)[0] for r in records)

    consuming = threading.Thread(target=consume)
    consuming.start()
    # The relay's durability: every replica (here, the one) has the record before it counts.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    start = time.perf_counter()
    for number in range(total):
        time.sleep(max(0.0, start + number / RATE - time.perf_counter()))
        producer.send(topic, key=uuid.uuid4().bytes, value=struct.pack("d", time.perf_counter()))
    producer.flush()
    consuming.join()
    producer.close()
    consumer.close()
    if len(latencies) < total:
        raise RuntimeError(f"B2 baseline: {total - len(latencies)} records never arrived")
    return latencies


@dataclass
class Sightings:
    """Wall-clock times of each consultation: accepted (its 201 arrived), published (the relay's
    record, by its timestamp), visible (a query found its row)."""

    accepted: dict[str, float] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)
    visible: dict[str, float] = field(default_factory=dict)
    waiting: set[str] = field(default_factory=set)

    def ms(self, since: dict[str, float], until: dict[str, float]) -> list[float]:
        return [1000 * (until[c] - since[c]) for c in self.accepted if c in since and c in until]


async def _watch(database_url: str, seen: Sightings) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        while True:
            if seen.waiting:
                try:
                    cursor = await db.execute(SEEN, (OFFICE, list(seen.waiting)))
                except psycopg.errors.UndefinedTable:
                    # The worker creates its tables as it starts: nothing is visible yet.
                    await asyncio.sleep(0.1)
                    continue
                rows = await cursor.fetchall()
                now = time.time()
                for (consultation_id,) in rows:
                    seen.visible[consultation_id] = now
                    seen.waiting.discard(consultation_id)
            await asyncio.sleep(POLL_SECONDS)


def _follow(
    bootstrap: str, topic: str, seen: Sightings, ready: threading.Event, stop: threading.Event
) -> None:
    """Note when each consultation's event was published, reading the topic from its end."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        # The relay creates the topic as it starts.
        while not (numbers := consumer.partitions_for_topic(topic)) and not stop.wait(0.1):
            pass
        partitions = [TopicPartition(topic, p) for p in numbers or ()]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for partition in partitions:
            consumer.position(partition)
        ready.set()
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                for record in records:
                    subject = json.loads(record.value)["subject"]
                    seen.published[subject] = record.timestamp / 1000
    finally:
        consumer.close()


async def _freshness(
    port: int, database_url: str, rate: float, seconds: float, seen: Sightings
) -> Outcome:
    loop = asyncio.get_running_loop()

    def accepted(body: bytes, _: float) -> None:
        consultation_id = json.loads(body)["id"]
        seen.accepted[consultation_id] = time.time()
        seen.waiting.add(consultation_id)

    watching = asyncio.create_task(_watch(database_url, seen))
    try:
        request = post("/consultations", OPEN, token())
        outcome = await paced(port, request, rate=rate, seconds=seconds, accepted=accepted)
        deadline = loop.time() + GRACE_SECONDS
        while seen.waiting and loop.time() < deadline and not watching.done():
            await asyncio.sleep(0.05)
    finally:
        watching.cancel()
    if watching.done() and not watching.cancelled() and watching.exception():
        raise RuntimeError("B2: watching the view failed") from watching.exception()
    failures = outcome.failures(201)
    if failures or seen.waiting:
        missing = len(seen.waiting)
        raise RuntimeError(f"B2: replies other than 201 {failures}; never visible {missing}")
    return outcome


def freshness(running: Stack, port: int, rate: float, seconds: float) -> tuple[Sightings, Outcome]:
    """Consultations opened at ``rate``/s for ``seconds``, followed to the view."""
    seen = Sightings()
    ready, stop = threading.Event(), threading.Event()
    topic = Topics(running.topic_prefix).events("intake")
    bootstrap = running.servers.kafka_bootstrap_servers
    following = threading.Thread(target=_follow, args=(bootstrap, topic, seen, ready, stop))
    following.start()
    try:
        ready.wait(GRACE_SECONDS)
        outcome = asyncio.run(_freshness(port, running.database_url, rate, seconds, seen))
    finally:
        stop.set()
        following.join()
    return seen, outcome


def run(servers: Infrastructure, *, tiny: bool) -> dict[str, float]:
    seconds = 2.0 if tiny else 30.0
    with stack(servers, "b2") as running:
        raw = kafka_latencies(
            servers.kafka_bootstrap_servers,
            f"{running.topic_prefix}.raw",
            running.partitions,
            seconds,
        )
        _, port = running.serve("intake")
        running.start("relay", "intake")
        running.start("project", "projection")
        # Until the worker has its partitions and has caught up, latencies measure its start.
        freshness(running, port, rate=10, seconds=2)
        seen, outcome = freshness(running, port, RATE, seconds)
    raw_ms = [1000 * s for s in raw]
    ms = seen.ms(seen.accepted, seen.visible)
    of = f"Kafka produce -> consume, {RATE:.0f}/s"
    p50 = show("B2.p50_ms", percentile(ms, 0.5), "ms", baseline=percentile(raw_ms, 0.5), of=of)
    p99 = show("B2.p99_ms", percentile(ms, 0.99), "ms", baseline=percentile(raw_ms, 0.99), of=of)
    http_ms = [1000 * s for s in outcome.latencies]
    # Where the time goes: the relay's share, then Kafka's and the worker's.
    stages = {
        "accepted_to_published": seen.ms(seen.accepted, seen.published),
        "published_to_visible": seen.ms(seen.published, seen.visible),
    }
    note(
        "B2",
        **{
            f"{stage}_p{share}_ms": percentile(times, share / 100)
            for stage, times in stages.items()
            for share in (50, 99)
        },
    )
    note(
        "B2",
        rate_per_s=RATE,
        seconds=seconds,
        commands=len(ms),
        max_ms=max(ms),
        http_reply_p50_ms=percentile(http_ms, 0.5),
        http_reply_p99_ms=percentile(http_ms, 0.99),
        view_poll_ms=1000 * POLL_SECONDS,
        relay_poll_ms=1000 * Settings.from_env(running.env()).relay_poll_seconds,
        partitions=running.partitions,
    )
    return {"B2.p50_ms": p50, "B2.p99_ms": p99}
