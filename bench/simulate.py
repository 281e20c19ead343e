"""Partitioned projection: generated lifecycles through topics of N partitions to R replicas.

``python -m bench.simulate`` (after ``source var/local/env``) makes its own database and topic
prefix on the running servers, creates the three event topics with N partitions (default 8),
starts R replicas of ``tsunagu project projection`` (default 2; one consumer group), publishes
the events of generated lifecycles as the relays would (key = the person, else the subject),
waits until the views' event journal holds every one, and reports:

- order: the journal's ``seq`` is commit order. For each person and topic, the journal must
  hold the person's events in the order the generator produced them, and each partition's
  offsets must rise with ``seq``. Across topics nothing orders a person's events (each service
  has its own topic, read independently); how often they arrive in another order is reported,
  since the projectors must take it;
- spread: events per partition (the journal's ``part``, checked against Kafka's end offsets)
  and per replica: the consumer group's assignment, read from the group coordinator once the
  group is stable and again at the end (a rebalance in between is reported), applied to the
  journal's partitions. The group's own record is used rather than a count kept inside each
  process, so the workers run unmodified.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from statistics import mean, pstdev
from typing import Any, TypeVar

import psycopg

from bench.load import Generated, LoadProfile, event_stream, lifecycles, tally
from contracts.topics import Topics
from services.platform.bus import KafkaPublisher, Message, ensure_topics
from services.platform.keys import key_encryption_key
from services.platform.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("intake", "referral", "meeting")
PUBLISH_BATCH = 2_000
T = TypeVar("T")


@dataclass(frozen=True)
class Replica:
    number: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


def _environment(settings: Settings, var_dir: Path) -> dict[str, str]:
    assert settings.database_url and settings.kafka_bootstrap_servers
    return dict(
        os.environ,
        DATABASE_URL=settings.database_url,
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        TSUNAGU_TOPIC_PREFIX=settings.topic_prefix,
        TSUNAGU_TOPIC_PARTITIONS=str(settings.topic_partitions),
        TSUNAGU_VAR_DIR=str(var_dir),
        # The deployment's, which wraps the data keys the events were sealed under: a var dir
        # of its own would make a replica a key of its own, and it could open none of them.
        TSUNAGU_KEY_ENCRYPTION_KEY=base64.b64encode(key_encryption_key(settings)).decode(),
    )


@contextmanager
def replicas(settings: Settings, count: int) -> Iterator[list[Replica]]:
    """``count`` projector processes in one consumer group, each with a var dir of its own."""
    assert settings.database_url
    database_url = settings.database_url
    started: list[Replica] = []
    try:
        for number in range(count):
            var_dir = settings.var_dir / f"replica-{number}"
            # The faust worker creates its data directory here, but not the parents.
            (var_dir / "faust").mkdir(parents=True, exist_ok=True)
            log = var_dir / "projector.log"
            with log.open("ab") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "services.cli", "project", "projection"],
                    env=_environment(settings, var_dir),
                    cwd=ROOT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            started.append(Replica(number, process, log))
            if number == 0:
                # Replicas that start together race to create the schema's tables.
                _wait(lambda: _journal_exists(database_url), 120, "the views' tables", started)
        yield started
    finally:
        for replica in started:
            replica.process.terminate()
        for replica in started:
            try:
                replica.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(timeout=10)


def group_assignment(settings: Settings) -> dict[str, set[tuple[str, int]]]:
    """The consumer group's members and the event-topic partitions each holds now."""
    from kafka.admin import KafkaAdminClient

    group = f"{settings.topic_prefix}-projection-feed"
    topics = {Topics(settings.topic_prefix).events(s) for s in SOURCES}
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        described = admin.describe_groups([group])[group]
    finally:
        admin.close()
    if described.get("group_state") != "Stable":
        return {}
    held: dict[str, set[tuple[str, int]]] = {}
    for member in described.get("members", []):
        assignment = member.get("member_assignment") or {}
        held[member["member_id"]] = {
            (entry["topic"], partition)
            for entry in assignment.get("assigned_partitions", [])
            if entry["topic"] in topics
            for partition in entry["partitions"]
        }
    return held


def _wait(check: Callable[[], T], timeout: float, what: str, replicas_: Sequence[Replica]) -> T:
    """``check()`` once it is truthy; a replica that stops, or the timeout, is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for replica in replicas_:
            if replica.process.poll() is not None:
                raise RuntimeError(f"replica {replica.number} stopped:\n{replica.output()}")
        found = check()
        if found:
            return found
        time.sleep(0.5)
    logs = "\n".join(r.output() for r in replicas_)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")


def _journal_exists(database_url: str) -> bool:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT to_regclass('projection.event_journal')").fetchone()
    return row is not None and row[0] is not None


def _journal_count(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT COUNT(*) FROM projection.event_journal").fetchone()
    return int(row[0]) if row else 0


def _journal(database_url: str) -> list[tuple[int, str, str, int, int]]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT seq, event_id, topic, part, kafka_offset FROM projection.event_journal "
            "ORDER BY seq"
        ).fetchall()
    return [(int(s), str(e), str(t), int(p), int(o)) for s, e, t, p, o in rows]


def _statistics(database_url: str) -> dict[tuple[str, str], Counter[str]]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT municipality, month, metric, SUM(amount) FROM projection.stat_count "
            "GROUP BY municipality, month, metric"
        ).fetchall()
    counted: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for municipality, month, metric, amount in rows:
        counted[(str(municipality), str(month))][str(metric)] = int(amount)
    return counted


def _end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        partitions = [
            TopicPartition(Topics(settings.topic_prefix).events(s), p)
            for s in SOURCES
            for p in range(settings.topic_partitions)
        ]
        ends = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}


def _spread(counts: Sequence[int]) -> dict[str, float]:
    average = mean(counts)
    return {
        "min": min(counts),
        "max": max(counts),
        "mean": round(average, 1),
        "max_over_mean": round(max(counts) / average, 3),
        "coefficient_of_variation": round(pstdev(counts) / average, 4),
    }


def publish(settings: Settings, events: Sequence[Generated]) -> None:
    """Each event on its service's topic, keyed as the relays key it, in the stream's order."""
    topics = Topics(settings.topic_prefix)
    assert settings.kafka_bootstrap_servers
    publisher = KafkaPublisher(settings.kafka_bootstrap_servers)
    try:
        for start in range(0, len(events), PUBLISH_BATCH):
            publisher.publish(
                [
                    Message(topics.events(g.service), g.key, g.value, g.headers)
                    for g in events[start : start + PUBLISH_BATCH]
                ]
            )
    finally:
        publisher.close()


def order_report(
    events: Sequence[Generated], journal: Sequence[tuple[int, str, str, int, int]]
) -> dict[str, int]:
    """Does the journal (commit order) keep each person's events in the generator's order?"""
    generated = {g.event_id: g for g in events}
    produced: dict[str, list[str]] = defaultdict(list)
    for g in events:
        if g.person is not None:
            produced[g.person].append(g.event_id)
    committed: dict[str, list[str]] = defaultdict(list)
    for _, event_id, _, _, _ in journal:
        person = generated[event_id].person
        if person is not None:
            committed[person].append(event_id)
    per_topic = 0
    across = 0
    for person, ids in produced.items():
        for service in SOURCES:
            wanted = [i for i in ids if generated[i].service == service]
            got = [i for i in committed[person] if generated[i].service == service]
            per_topic += wanted != got
        across += ids != committed[person]
    last_offset: dict[tuple[str, int], int] = {}
    offsets_out_of_order = 0
    for _, _, topic, part, offset in journal:
        offsets_out_of_order += offset < last_offset.get((topic, part), -1)
        last_offset[(topic, part)] = offset
    return {
        "persons": len(produced),
        "persons_out_of_order_within_a_topic": per_topic,
        "partition_offsets_out_of_order": offsets_out_of_order,
        "persons_reordered_across_topics": across,
    }


def run(
    settings: Settings, *, persons: int, replica_count: int, seed: int, timeout: float = 900
) -> dict[str, Any]:
    """The simulation on the servers and in the database ``settings`` name; the report."""
    assert settings.database_url and settings.kafka_bootstrap_servers
    database_url = settings.database_url
    topics = Topics(settings.topic_prefix)
    ensure_topics(
        settings.kafka_bootstrap_servers,
        [*(topics.events(s) for s in SOURCES), topics.dead_letter],
        settings.topic_partitions,
    )
    profile = LoadProfile(seed=seed, municipalities=8)
    events = list(event_stream(profile, persons, settings))
    with replicas(settings, replica_count) as running:

        def stable() -> dict[str, set[tuple[str, int]]]:
            held = group_assignment(settings)
            covered = set().union(*held.values()) if held else set()
            every = settings.topic_partitions * len(SOURCES)
            return held if len(held) == replica_count and len(covered) == every else {}

        before = _wait(stable, timeout, "a stable consumer group", running)
        started = time.monotonic()
        publish(settings, events)
        published = time.monotonic()
        _wait(
            lambda: _journal_count(database_url) >= len(events),
            timeout,
            f"{len(events)} journalled events",
            running,
        )
        finished = time.monotonic()
        after = group_assignment(settings)
    journal = _journal(database_url)
    by_partition = Counter(part for _, _, _, part, _ in journal)
    by_topic_partition = Counter((topic, part) for _, _, topic, part, _ in journal)
    owner = {tp: n for n, held in enumerate(before.values()) for tp in held}
    by_replica = Counter(owner[(topic, part)] for _, _, topic, part, _ in journal)
    return {
        "persons": persons,
        "partitions": settings.topic_partitions,
        "replicas": replica_count,
        "produced": len(events),
        "journalled": len(journal),
        "distinct_keys": len({g.key for g in events}),
        "seconds_to_publish": round(published - started, 2),
        "seconds_to_project": round(finished - started, 2),
        "events_per_second": round(len(events) / (finished - started), 1),
        "order": order_report(events, journal),
        # Counts do not depend on the order events arrive in: the views' monthly figures are
        # what the generator says its lifecycles hold, however the topics interleaved.
        "statistics_match_generator": _statistics(database_url)
        == tally((life, timedelta(0)) for life in lifecycles(profile, persons)),
        "per_partition": {
            "events": {str(p): by_partition[p] for p in range(settings.topic_partitions)},
            "spread": _spread([by_partition[p] for p in range(settings.topic_partitions)]),
            "matches_kafka_end_offsets": by_topic_partition == Counter(_end_offsets(settings)),
        },
        "per_replica": {
            "partitions_held": {
                str(n): sorted(f"{topic.rsplit('.', 2)[1]}:{p}" for topic, p in held)
                for n, held in enumerate(before.values())
            },
            "events": {str(n): by_replica[n] for n in range(replica_count)},
            "spread": _spread([by_replica[n] for n in range(replica_count)]),
            "rebalanced_during_run": sorted(map(sorted, before.values()))
            != sorted(map(sorted, after.values())),
        },
    }


def _delete_topics(settings: Settings) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        ours = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Partitioned projection simulation.")
    parser.add_argument("--persons", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seed", type=int, default=LoadProfile.seed)
    parser.add_argument("--keep", action="store_true", help="keep the database and topics")
    args = parser.parse_args(argv)
    server = Settings.from_env()
    if not server.database_url or not server.kafka_bootstrap_servers:
        sys.exit("set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (source var/local/env)")
    name = f"sim_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.database_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    settings = replace(
        server,
        database_url=f"{server.database_url.rpartition('/')[0]}/{name}",
        topic_prefix=f"sim{uuid.uuid4().hex[:10]}",
        topic_partitions=args.partitions,
        var_dir=ROOT / "var" / "simulate" / name,
    )
    try:
        report = run(settings, persons=args.persons, replica_count=args.replicas, seed=args.seed)
    finally:
        if not args.keep:
            _delete_topics(settings)
            with psycopg.connect(server.database_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
