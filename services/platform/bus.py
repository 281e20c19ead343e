"""The bus between services: Kafka in distributed mode, an in-process one when embedded.

Both carry the same ``Message`` (topic, key, CloudEvent bytes, headers), so producers and
consumers do not know which one they are on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Message:
    topic: str
    key: str
    value: bytes
    headers: Headers = ()
    # Where the message was read from, when it came from Kafka.
    partition: int | None = None
    offset: int | None = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8")
        return None


Handler = Callable[[Message], object]


class Publisher:
    """Publishes messages in order; returns only once every one is durably accepted."""

    def publish(self, messages: Sequence[Message]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; nothing to release by default."""


@dataclass
class InProcessBus(Publisher):
    """Delivers each message synchronously to the handlers subscribed to its topic."""

    handlers: dict[str, list[Handler]] = field(default_factory=lambda: defaultdict(list))

    def subscribe(self, topic: str, handler: Handler) -> None:
        self.handlers[topic].append(handler)

    def publish(self, messages: Sequence[Message]) -> None:
        for message in messages:
            for handler in self.handlers.get(message.topic, ()):
                handler(message)


# How long a client tries to reach a broker, and a publish to be acknowledged, before it fails
# (kafka-python's defaults are 30 s and 2 minutes): a process whose broker is away says so, waits
# and tries again (services.platform.lifecycle), and a stop is not held up by a lost cause.
BOOTSTRAP_TIMEOUT_MS = 5_000
DELIVERY_TIMEOUT_MS = 15_000


class KafkaPublisher(Publisher):
    """A producer that is made again after a failed publish: kafka-python's may never find its
    way back after a broker restart (its metadata left naming no broker to ask), a new one
    bootstraps afresh. The broker must answer when it is made. Threads may share it."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._lock = threading.Lock()
        self._producer: Any = self._connect()

    def _connect(self) -> Any:
        from kafka import KafkaProducer

        # acks=all with one request in flight keeps a person's events in order through retries.
        return KafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            acks="all",
            retries=10,
            max_in_flight_requests_per_connection=1,
            linger_ms=2,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            max_block_ms=DELIVERY_TIMEOUT_MS,
            request_timeout_ms=DELIVERY_TIMEOUT_MS - 1_000,
            delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
        )

    def publish(self, messages: Sequence[Message]) -> None:
        from kafka.errors import KafkaError

        with self._lock:
            producer = self._producer = self._producer or self._connect()
        try:
            futures = [
                producer.send(
                    m.topic, key=m.key.encode("utf-8"), value=m.value, headers=list(m.headers)
                )
                for m in messages
            ]
            producer.flush(timeout=DELIVERY_TIMEOUT_MS / 1000)
            for future in futures:
                future.get(timeout=DELIVERY_TIMEOUT_MS / 1000)
        except KafkaError:
            # Whatever it had not delivered is published again by the caller's retry.
            with self._lock:
                if self._producer is producer:
                    self._producer = None
                    producer.close(timeout=0)
            raise

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    partitions: int,
    configs: dict[str, str] | None = None,
) -> None:
    """Create the topics if missing, with ``configs`` (e.g. retention); an existing topic is
    left as it is."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS
    )
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                name=t, num_partitions=partitions, replication_factor=1, topic_configs=configs or {}
            )
            for t in topics
            if t not in existing
        ]
        if missing:
            # Another process may create one between our look and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()
