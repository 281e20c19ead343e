"""Reading topics back in tests, with plain kafka-python."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer


def read_topic(bootstrap: str, topic: str, expect: int, timeout_s: float = 30) -> list[object]:
    """Every record on ``topic`` from the start, once at least ``expect`` have arrived."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=2000,
    )
    records: list[object] = []
    try:
        import time

        deadline = time.monotonic() + timeout_s
        while len(records) < expect and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def produce_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, key=key, value=value).get(timeout=30)
    producer.close()


def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """The next offset of every partition of ``topics``: where a caught-up consumer stands."""
    from kafka import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        partitions = [
            TopicPartition(topic, part)
            for topic in topics
            for part in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        return {
            (tp.topic, tp.partition): offset
            for tp, offset in consumer.end_offsets(partitions).items()
        }
    finally:
        consumer.close()
