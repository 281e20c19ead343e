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


def topics_named(bootstrap: str, prefix: str) -> list[str]:
    """Every topic on the broker under ``prefix`` (``<prefix>.…``, or a faust app's
    ``<prefix>-…``), and no other prefix that merely starts the same way."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        return sorted(
            t
            for t in consumer.topics()
            if t[len(prefix) : len(prefix) + 1] in (".", "-") and t.startswith(prefix)
        )
    finally:
        consumer.close()


def every_record(bootstrap: str, topics: list[str], timeout_s: float = 60) -> list[object]:
    """Every record on ``topics`` now, from each partition's start to where it ends."""
    import time

    from kafka import TopicPartition

    ends = {TopicPartition(t, p): end for (t, p), end in end_offsets(bootstrap, topics).items()}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        consumer.assign(list(ends))
        consumer.seek_to_beginning(*ends)
        records: list[object] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f}s reading {topics}")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()
