"""How much of its topics a feed has yet to apply: Kafka's end offsets against its positions.

What acts on a feed's answer, and cannot be undone, asks first. The retention sweep erases for
good whoever intake's retention feed finds due; a case reopened in meeting while that feed is
stopped or behind would otherwise still be read as closed, and its person erased.
"""

from __future__ import annotations

from collections.abc import Sequence

from kafka import KafkaConsumer, TopicPartition

from services.feeds.store import ViewStore


def unread(bootstrap_servers: str, store: ViewStore, topics: Sequence[str]) -> int:
    """The messages of ``topics`` published by now that the feed kept in ``store`` has not
    applied (nor quarantined)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(topic, part)
            for topic in topics
            for part in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(partitions) if partitions else {}
    finally:
        consumer.close()
    applied = store.positions()
    return sum(
        max(0, end - applied.get((part.topic, part.partition), 0)) for part, end in ends.items()
    )
