"""The dead letters: the messages a feed could not read or apply, kept with the reason, for an
operator to read (``tsunagu deadletter list|show``) and apply again after a fix (``replay``).

Distributed: the dead-letter topic, each letter named ``<partition>-<offset>``. Embedded: the
in-process bus keeps nothing, so the letters published on it are appended to
``<var>/dead-letters.jsonl``, each named by its line number.

A replay sends the original message to the feeds of its topic again. Its event id was never
recorded as processed where it failed (``FeedRunner.quarantine``), so that feed applies it;
the feeds that had applied it drop it as a repeat. One that fails again is quarantined again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contracts.envelope import CloudEvent, EnvelopeError
from contracts.topics import Topics
from services.feeds.runner import ORIGIN_HEADER, REASON_HEADER
from services.platform.bus import Headers, Message, Publisher
from services.platform.private_files import private_file
from services.platform.settings import Settings

FILE = "dead-letters.jsonl"
READ_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class DeadLetter:
    name: str
    topic: str
    key: str
    reason: str
    value: bytes
    headers: Headers

    @classmethod
    def of(cls, name: str, message: Message) -> DeadLetter:
        """The letter a dead-letter ``message`` carries: the original with its reason."""
        return cls(
            name,
            message.header(ORIGIN_HEADER) or "",
            message.key,
            message.header(REASON_HEADER) or "",
            message.value,
            tuple(h for h in message.headers if h[0] not in (REASON_HEADER, ORIGIN_HEADER)),
        )

    def original(self) -> Message:
        return Message(self.topic, self.key, self.value, self.headers)

    def summary(self) -> dict[str, Any]:
        """What it is, without the event's data (the person's details stay in the letter)."""
        try:
            event = CloudEvent.from_bytes(self.value)
            kind: dict[str, Any] = {"id": event.id, "type": event.type, "time": event.time}
        except EnvelopeError:
            kind = {"id": None, "type": None, "time": None}
        return {
            "name": self.name,
            "topic": self.topic,
            "key": self.key,
            "reason": self.reason,
        } | kind

    def shown(self) -> dict[str, Any]:
        """The whole letter: the summary and the message as it was."""
        try:
            value: Any = json.loads(self.value)
        except ValueError:
            value = base64.b64encode(self.value).decode()
        headers = {k: v.decode("utf-8", errors="replace") for k, v in self.headers}
        return self.summary() | {"headers": headers, "value": value}


class DeadLetters(Protocol):
    def letters(self) -> Iterator[DeadLetter]:
        """Every letter, oldest first (per partition, on Kafka)."""
        ...


@dataclass
class FileDeadLetters(Publisher):
    """Embedded mode: a publisher for the dead-letter topic that appends to a JSON-lines file."""

    path: Path

    def publish(self, messages: Sequence[Message]) -> None:
        with private_file(self.path).open("a", encoding="utf-8") as file:
            for message in messages:
                record = {
                    "key": message.key,
                    "value": base64.b64encode(message.value).decode(),
                    "headers": [[k, base64.b64encode(v).decode()] for k, v in message.headers],
                }
                file.write(json.dumps(record) + "\n")

    def deliver(self, message: Message) -> None:
        """The in-process bus's handler for the dead-letter topic."""
        self.publish([message])

    def letters(self) -> Iterator[DeadLetter]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                record = json.loads(line)
                headers = tuple((k, base64.b64decode(v)) for k, v in record["headers"])
                message = Message("", record["key"], base64.b64decode(record["value"]), headers)
                yield DeadLetter.of(str(number), message)


@dataclass
class KafkaDeadLetters:
    """Distributed mode: the dead-letter topic, read from its start to its end."""

    bootstrap_servers: str
    topic: str

    def letters(self) -> Iterator[DeadLetter]:
        from kafka import KafkaConsumer, TopicPartition

        from services.feeds.rebuild import _message

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, group_id=None
        )
        try:
            partitions = [
                TopicPartition(self.topic, p)
                for p in sorted(consumer.partitions_for_topic(self.topic) or ())
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end = consumer.end_offsets(partitions)
            letters: list[DeadLetter] = []
            for batch in _until(consumer, end):
                letters += [
                    DeadLetter.of(f"{r.partition}-{r.offset}", _message(r))
                    for r in batch
                    if r.offset < end[TopicPartition(r.topic, r.partition)]
                ]
        finally:
            consumer.close()
        yield from letters


def _until(consumer: Any, end: dict[Any, int]) -> Iterator[list[Any]]:
    import time

    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    while any(consumer.position(tp) < offset for tp, offset in end.items()):
        if time.monotonic() > deadline:
            raise TimeoutError("the dead-letter topic was not read to its end in time")
        yield from consumer.poll(timeout_ms=500).values()


def dead_letters(settings: Settings) -> DeadLetters:
    if settings.distributed and settings.kafka_bootstrap_servers:
        return KafkaDeadLetters(
            settings.kafka_bootstrap_servers, Topics(settings.topic_prefix).dead_letter
        )
    return FileDeadLetters(settings.var_dir / FILE)


def find(store: DeadLetters, name: str) -> DeadLetter | None:
    return next((letter for letter in store.letters() if letter.name == name), None)
