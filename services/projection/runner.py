"""The projection runner: one message in, views changed once, or the message dead-lettered.

Both the faust agent and the embedded in-process bus hand every message to ``consume``. A
message that cannot be read (not a CloudEvent, unknown type or version, data off-schema) goes
to the dead-letter topic with the reason and processing goes on; it is never silently dropped.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.trace import SpanKind

from contracts.envelope import CloudEvent, EnvelopeError
from contracts.events import InvalidEventData, UnknownEvent, parse
from services.platform.bus import Message, Publisher
from services.platform.tracing import context_from, tracer
from services.projection.changes import Projector
from services.projection.store import Journalled, Position, ViewStore

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


def _position(message: Message) -> Position | None:
    if message.partition is None or message.offset is None:
        return None
    return Position(message.topic, message.partition, message.offset)


class ProjectionRunner:
    def __init__(
        self,
        store: ViewStore,
        projectors: Sequence[Projector],
        dead_letters: Publisher,
        dead_letter_topic: str,
    ) -> None:
        self._store = store
        self._projectors = tuple(projectors)
        self._dead_letters = dead_letters
        self._dead_letter_topic = dead_letter_topic

    def consume(self, message: Message) -> Result:
        carrier = {
            name: value
            for name in ("traceparent", "tracestate")
            if (value := message.header(name)) is not None
        }
        with tracer(__name__).start_as_current_span(
            "projection.apply", context=context_from(carrier), kind=SpanKind.CONSUMER
        ) as span:
            try:
                event = CloudEvent.from_bytes(message.value)
                data = parse(event)
            except (EnvelopeError, UnknownEvent, InvalidEventData) as error:
                self._dead_letter(message, str(error))
                if (position := _position(message)) is not None:
                    self._store.advance(position)
                span.set_attribute("tsunagu.outcome", Outcome.DEAD_LETTERED.value)
                return Result(Outcome.DEAD_LETTERED, str(error))
            span.set_attribute("cloudevents.event_type", event.type)
            applied = self._store.apply(
                event.id,
                event.type,
                lambda state: [c for p in self._projectors for c in p(state, event, data)],
                _position(message),
                Journalled(event.partitionkey, message.value, _position(message)),
            )
            outcome = Outcome.APPLIED if applied else Outcome.DUPLICATE
            span.set_attribute("tsunagu.outcome", outcome.value)
            return Result(outcome)

    def _dead_letter(self, message: Message, reason: str) -> None:
        log.warning("dead-lettered", extra={"topic": message.topic, "reason": reason[:300]})
        headers = tuple(h for h in message.headers if h[0] not in (REASON_HEADER, ORIGIN_HEADER))
        headers += (
            (REASON_HEADER, reason.encode("utf-8")),
            (ORIGIN_HEADER, message.topic.encode()),
        )
        self._dead_letters.publish(
            [Message(self._dead_letter_topic, message.key, message.value, headers)]
        )
