"""Drop a feed's tables and rebuild them from the topics, from the first message on.

The feed's worker may keep running: what it delivers again is dropped by event id. The purge
records (view_purge) are history, not a view, and are kept; the audit log is not a feed table
and is never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from psycopg.errors import DeadlockDetected, SerializationFailure

from contracts.topics import Topics
from services.feeds.quarantine import apply_or_quarantine
from services.feeds.runner import FeedRunner
from services.feeds.store import ViewStore
from services.platform.bus import Message, Publisher
from services.platform.collector import freeze_long_lived
from services.platform.settings import Settings

log = logging.getLogger(__name__)

KEEP = ("view_purge",)
# Messages per transaction. A batch's fixed cost (stage tables, the journal's lock, the lookups
# of the rows it touches) is shared by more events. Measured on one replica's first 400,000
# events of B3's stream, with the collector paused per batch, when each batch still decided its
# persons' views: 10,000 took 446 us of wall time an event, 25,000 382, 50,000 353. A batch of
# 50,000 holds about 0.7 GB while it is applied.
BATCH = 50_000
Progress = Callable[[int, int], None]
# What decides, once a catch-up is done, what its projectors postponed; how many it decided.


class BatchConsumer(Protocol):
    """What a catch-up feeds: the projection runner (the benchmark feeds a leaner one too)."""

    def consume_batch(self, messages: Sequence[Message]) -> Sequence[object]: ...


def _message(record: Any) -> Message:
    key = record.key.decode("utf-8") if record.key else ""
    headers = tuple((k, bytes(v or b"")) for k, v in record.headers)
    return Message(record.topic, key, record.value, headers, record.partition, record.offset)


class Quarantining:
    """A runner whose poison events are quarantined (``services.feeds.quarantine``):
    a rebuild that meets one again goes on past it."""

    def __init__(self, runner: FeedRunner) -> None:
        self._runner = runner

    def consume_batch(self, messages: Sequence[Message]) -> Sequence[object]:
        apply_or_quarantine(self._runner, messages)
        return ()


def rebuild(
    settings: Settings,
    store: ViewStore,
    runner_for: Callable[[ViewStore, Publisher], FeedRunner],
    dead_letters: Publisher,
    sources: tuple[str, ...],
    progress: Progress,
    every: int = 1000,
    batch: int = BATCH,
) -> int:
    """The number of messages replayed; ``progress(done, total)`` is called as it goes.
    Up to ``batch`` messages are applied in one transaction."""
    assert settings.kafka_bootstrap_servers, "a rebuild reads the topics: KAFKA_BOOTSTRAP_SERVERS"
    store.reset(keep=KEEP)
    runner = Quarantining(runner_for(store, dead_letters))
    topics = [Topics(settings.topic_prefix).events(s) for s in sources]
    return catch_up(settings, runner, topics, progress, every=every, batch=batch)


def catch_up(
    settings: Settings,
    runner: BatchConsumer,
    topics: list[str],
    progress: Progress,
    *,
    share: tuple[int, int] = (0, 1),
    every: int = 1000,
    batch: int = BATCH,
) -> int:
    """Feed every message of ``topics`` from the beginning to ``runner``, ``batch`` messages at
    most in a transaction; the number of messages fed.

    ``share`` = (k, n): only partitions whose number is k modulo n, of every topic, as the k-th
    of n replicas holds them: a person's events, keyed alike on every topic, stay with one.
    """
    freeze_long_lived()
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
    )
    try:
        mine, replicas = share
        partitions = [
            TopicPartition(topic, part)
            for topic in topics
            for part in sorted(consumer.partitions_for_topic(topic) or ())
            if part % replicas == mine
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        total, done = sum(end.values()), 0
        progress(done, total)
        reported = 0
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            messages: list[Message] = []
            while len(messages) < batch and any(
                consumer.position(tp) < end[tp] for tp in partitions
            ):
                polled = consumer.poll(timeout_ms=500, max_records=batch - len(messages))
                messages += [_message(r) for records in polled.values() for r in records]
            while messages:
                try:
                    runner.consume_batch(messages)
                    break
                except (DeadlockDetected, SerializationFailure) as error:
                    # Another replica's batch held rows this one needed (a referral identified
                    # on another person's partition, a meeting about several persons) and the
                    # server broke the deadlock: nothing of the batch was applied, so again.
                    log.warning("batch rolled back; applying it again", extra={"error": str(error)})
            done += len(messages)
            if done - reported >= every:
                progress(done, total)
                reported = done
        progress(done, total)
        return done
    finally:
        consumer.close()
