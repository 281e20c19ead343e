"""Drop a feed's tables and rebuild them from the topics, from the first message on.

The feed's worker may keep running: what it delivers again is dropped by event id. The purge
records (view_purge) are history, not a view, and are kept; the audit log is not a feed table
and is never touched.
"""

from __future__ import annotations

from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition

from contracts.topics import Topics
from services.platform.bus import Message, Publisher
from services.platform.settings import Settings
from services.projection.runner import ProjectionRunner
from services.projection.store import ViewStore

KEEP = ("view_purge",)
Progress = Callable[[int, int], None]


def rebuild(
    settings: Settings,
    store: ViewStore,
    runner_for: Callable[[ViewStore, Publisher], ProjectionRunner],
    dead_letters: Publisher,
    sources: tuple[str, ...],
    progress: Progress,
    every: int = 1000,
) -> int:
    """The number of messages replayed; ``progress(done, total)`` is called as it goes."""
    assert settings.kafka_bootstrap_servers, "a rebuild reads the topics: KAFKA_BOOTSTRAP_SERVERS"
    store.reset(keep=KEEP)
    runner = runner_for(store, dead_letters)
    topics = [Topics(settings.topic_prefix).events(s) for s in sources]
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
    )
    try:
        partitions = [
            TopicPartition(topic, part)
            for topic in topics
            for part in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        total, done = sum(end.values()), 0
        progress(done, total)
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    key = record.key.decode("utf-8") if record.key else ""
                    headers = tuple((k, bytes(v or b"")) for k, v in record.headers)
                    runner.consume(
                        Message(
                            record.topic,
                            key,
                            record.value,
                            headers,
                            record.partition,
                            record.offset,
                        )
                    )
                    done += 1
                    if done % every == 0:
                        progress(done, total)
        progress(done, total)
        return done
    finally:
        consumer.close()
