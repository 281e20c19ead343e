"""The feed runner: messages in, views changed once each, or messages dead-lettered.

The embedded in-process bus hands every message to ``consume``; the faust agent and a rebuild
hand batches to ``consume_batch``, applied in one transaction. A message that cannot be read
(not a CloudEvent, unknown type or version, data off-schema) goes to the dead-letter topic with
the reason and processing goes on; it is never silently dropped.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import cast

from opentelemetry.trace import Span, SpanKind

from contracts.envelope import CloudEvent, EnvelopeError
from contracts.events import IntegrationEvent, InvalidEventData, UnknownEvent, parse
from services.feeds.changes import Change, Prepares, Projector, ViewState
from services.feeds.store import Applying, Journalled, Position, ViewStore
from services.platform.bus import Message, Publisher
from services.platform.collector import paused
from services.platform.tracing import context_from, tracer

log = logging.getLogger(__name__)

REASON_HEADER = "dlq-reason"
ORIGIN_HEADER = "dlq-original-topic"


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reason: str | None = None


# What the projectors will read rows by for an event: per column, the value (a person's id).
Reads = Callable[[IntegrationEvent], Mapping[str, str]]


def _nothing(_: IntegrationEvent) -> Mapping[str, str]:
    return {}


def _named(reads: Reads, datas: Iterable[IntegrationEvent]) -> dict[str, set[str]]:
    """Per column, the values a batch's events have the projectors read rows by."""
    named: dict[str, set[str]] = {}
    for data in datas:
        for column, value in reads(data).items():
            named.setdefault(column, set()).add(value)
    return named


def _position(message: Message) -> Position | None:
    if message.partition is None or message.offset is None:
        return None
    return Position(message.topic, message.partition, message.offset)


class FeedRunner:
    def __init__(
        self,
        store: ViewStore,
        projectors: Sequence[Projector],
        dead_letters: Publisher,
        dead_letter_topic: str,
        reads: Reads = _nothing,
    ) -> None:
        """``reads``: what the projectors read rows by, which a batch reads up front, a query
        per table, rather than a row at a time (only a cost: the rows read are the same)."""
        self._reads = reads
        self._store = store
        self._projectors = tuple(projectors)
        # A projector's own batch reads (``Prepares``), made before the batch is applied.
        self._preparing = [cast(Prepares, p) for p in self._projectors if isinstance(p, Prepares)]
        self._dead_letters = dead_letters
        self._dead_letter_topic = dead_letter_topic

    def consume(self, message: Message) -> Result:
        [result] = self.consume_batch([message])
        return result

    def quarantine(self, message: Message, reason: str) -> None:
        """``message`` to the dead letters with ``reason``, and the position moved past it: it
        failed each time it was applied alone (``services.feeds.quarantine``). Its event
        id is not recorded as processed, so a replay after a fix applies it."""
        self._dead_letters.publish([self._dead_letter(message, reason)])
        position = _position(message)
        self._store.apply_batch([], [position] if position is not None else [])

    # A batch's objects are freed by reference counting when it is done: see ``paused``.
    @paused()
    def consume_batch(self, messages: Sequence[Message]) -> list[Result]:
        """Apply the messages in order, in one transaction; dead letters are published first.

        The transaction moves the position past every message, so a batch is either applied
        whole or, after a crash, delivered again whole (its dead letters published again).
        """
        spans = [self._span(message) for message in messages]
        results: list[Result | None] = [None] * len(messages)
        events: list[tuple[int, CloudEvent, IntegrationEvent]] = []
        letters: list[Message] = []
        for index, message in enumerate(messages):
            try:
                event = CloudEvent.from_bytes(message.value)
                data = parse(event)
            except (EnvelopeError, UnknownEvent, InvalidEventData) as error:
                letters.append(self._dead_letter(message, str(error)))
                results[index] = Result(Outcome.DEAD_LETTERED, str(error))
                continue
            spans[index].set_attribute("cloudevents.event_type", event.type)
            events.append((index, event, data))
        try:
            if letters:
                self._dead_letters.publish(letters)
            for projector in self._preparing:
                projector.prepare([data for _, _, data in events])
            applied = self._store.apply_batch(
                [
                    Applying(
                        event.id,
                        event.type,
                        partial(self._changes, event=event, data=data),
                        Journalled(
                            event.partitionkey, messages[index].value, _position(messages[index])
                        ),
                    )
                    for index, event, data in events
                ],
                [p for m in messages if (p := _position(m)) is not None],
                warm=_named(self._reads, (data for _, _, data in events)),
            )
            for (index, _, _), done in zip(events, applied, strict=True):
                results[index] = Result(Outcome.APPLIED if done else Outcome.DUPLICATE)
        finally:
            for span, result in zip(spans, results, strict=True):
                if result is not None:
                    span.set_attribute("tsunagu.outcome", result.outcome.value)
                span.end()
        return [r for r in results if r is not None]

    def _changes(
        self, state: ViewState, *, event: CloudEvent, data: IntegrationEvent
    ) -> list[Change]:
        return [change for project in self._projectors for change in project(state, event, data)]

    @staticmethod
    def _span(message: Message) -> Span:
        carrier = {
            name: value
            for name in ("traceparent", "tracestate")
            if (value := message.header(name)) is not None
        }
        return tracer(__name__).start_span(
            "projection.apply", context=context_from(carrier), kind=SpanKind.CONSUMER
        )

    def _dead_letter(self, message: Message, reason: str) -> Message:
        return dead_letter(message, reason, self._dead_letter_topic)


def dead_letter(message: Message, reason: str, topic: str) -> Message:
    """``message`` unchanged, for the dead-letter ``topic``, with the reason and its origin."""
    log.warning("dead-lettered", extra={"topic": message.topic, "reason": reason[:300]})
    headers = tuple(h for h in message.headers if h[0] not in (REASON_HEADER, ORIGIN_HEADER))
    headers += (
        (REASON_HEADER, reason.encode("utf-8")),
        (ORIGIN_HEADER, message.topic.encode()),
    )
    return Message(topic, message.key, message.value, headers)
