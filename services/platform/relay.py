"""The relay (transactional outbox reader): stored domain events -> integration events on the bus.

It follows an application's notification log from its last recorded position, publishes a
batch, waits for the bus to accept it, and only then moves its position. A crash between the
two republishes the batch; event ids are derived from the stored event, so consumers drop the
repeats (at-least-once delivery, exactly-once in effect).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from uuid import UUID

from eventsourcing.domain import DomainEvent, DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder
from opentelemetry.trace import SpanKind

from contracts.envelope import CONTENT_TYPE, CloudEvent, event_id
from contracts.events import IntegrationEvent
from services.platform.bus import Message, Publisher
from services.platform.eventstore import NewEventsListener, TracingMapper
from services.platform.lifecycle import Stopped, until_available
from services.platform.sql import Database
from services.platform.tracing import context_from, current_carrier, tracer

log = logging.getLogger(__name__)

Translate = Callable[[DomainEventProtocol[UUID]], CloudEvent | None]
# (stop, seconds): returns once new events may have been stored, ``stop`` is set, or the seconds
# have passed; the relay looks again whichever it was, so a late or lost wake-up costs time only.
WaitForEvents = Callable[[threading.Event, float], object]
# A service's reading of one of its domain events: the data, the municipality, the person.
Translation = tuple[IntegrationEvent, str, UUID | None]


def translator(translate: Callable[[object], Translation | None], source: str) -> Translate:
    """The relay's ``Translate`` for a service: its own translation, put in the envelope."""

    def to_cloudevent(domain_event: DomainEventProtocol[UUID]) -> CloudEvent | None:
        translated = translate(domain_event)
        if translated is None:
            return None
        data, municipality, person_id = translated
        assert isinstance(domain_event, DomainEvent)
        subject = domain_event.originator_id
        return envelope(domain_event, data, municipality, person_id, subject, source)

    return to_cloudevent


class RelayPosition:
    """The last notification id a relay has published, kept in the service's own database."""

    def __init__(self, database: Database, name: str) -> None:
        self._database = database
        self._name = name
        with database.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS relay_position "
                "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )

    def get(self) -> int:
        with self._database.transaction() as tx:
            row = tx.fetchone("SELECT position FROM relay_position WHERE name = ?", (self._name,))
        return int(row["position"]) if row else 0

    def set(self, position: int) -> None:
        with self._database.transaction() as tx:
            tx.execute(
                "INSERT INTO relay_position (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (self._name, position),
            )

    def close(self) -> None:
        self._database.close()


class RelayBacklog:
    """What a service has stored that its relay has not published yet.

    Asked before acting, for good, on what a feed learnt from the topics: an event its relay
    has not published (stopped, or slow) is not on them, so no feed can have seen it.
    """

    def __init__(self, recorder: ApplicationRecorder, position: RelayPosition) -> None:
        self._recorder, self._position = recorder, position

    def unpublished(self) -> int:
        # The relay's position is the id of the last event it published; ids may skip numbers
        # between events, never after the last one.
        return max(0, (self._recorder.max_notification_id() or 0) - self._position.get())

    def close(self) -> None:
        self._position.close()


class Relay:
    def __init__(
        self,
        *,
        recorder: ApplicationRecorder,
        mapper: TracingMapper,
        translate: Translate,
        topic: str,
        publisher: Publisher,
        position: RelayPosition,
        batch_size: int = 200,
        wait: WaitForEvents | None = None,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._translate = translate
        self._topic = topic
        self._publisher = publisher
        self._position = position
        self._batch_size = batch_size
        # A store that announces its inserts wakes the relay at once; others are polled.
        self._wait: WaitForEvents = wait or threading.Event.wait
        self._lock = threading.Lock()

    def pump(self) -> int:
        """Publish one batch after the recorded position; the number of stored events read."""
        with self._lock:
            after = self._position.get()
            notifications = self._recorder.select_notifications(
                start=after, limit=self._batch_size, inclusive_of_start=False
            )
            if not notifications:
                return 0
            messages = [m for n in notifications if (m := self._message(n)) is not None]
            self._publisher.publish(messages)
            self._position.set(notifications[-1].id)
            log.debug("relayed", extra={"topic": self._topic, "count": len(messages)})
            return len(notifications)

    def close(self) -> None:
        """Its position's connections, and the one it waits for new events on."""
        self._position.close()
        if isinstance(self._wait, NewEventsListener):
            self._wait.close()

    def drain(self) -> int:
        """Publish until nothing is left; the number of stored events read."""
        total = 0
        while count := self.pump():
            total += count
        return total

    def run(self, stop: threading.Event, poll_seconds: float) -> None:
        """Publish until ``stop``; when caught up, wait for new events ``poll_seconds`` at most.

        A batch that fails (PostgreSQL or Kafka away) is tried again with backoff until it is
        published: the position has not moved, so nothing is skipped.
        """

        def step() -> None:
            if self.pump() < self._batch_size:
                self._wait(stop, poll_seconds)

        with contextlib.suppress(Stopped):
            while not stop.is_set():
                until_available(
                    f"PostgreSQL and Kafka (relay to {self._topic})", step, stop, any_error=True
                )

    def _message(self, notification: object) -> Message | None:
        domain_event, stored_trace = self._mapper.decode(notification)  # type: ignore[arg-type]
        with tracer(__name__).start_as_current_span(
            "relay.publish", context=context_from(stored_trace), kind=SpanKind.PRODUCER
        ) as span:
            cloud_event = self._translate(domain_event)
            if cloud_event is None:
                return None
            span.set_attribute("messaging.destination.name", self._topic)
            span.set_attribute("cloudevents.event_type", cloud_event.type)
            return message(self._topic, cloud_event, current_carrier())


def message(topic: str, cloud_event: CloudEvent, trace: Mapping[str, str]) -> Message:
    """``cloud_event`` as a relay sends it: keyed by its partition key, with the trace context
    it is published under in the envelope and in the headers, and its id in ``ce_id``."""
    traced = cloud_event.model_copy(
        update={"traceparent": trace.get("traceparent"), "tracestate": trace.get("tracestate")}
    )
    headers = [("content-type", CONTENT_TYPE.encode("utf-8"))]
    headers += [(k, v.encode("utf-8")) for k, v in trace.items()]
    headers.append(("ce_id", traced.id.encode("utf-8")))
    return Message(topic, traced.partitionkey, traced.to_bytes(), tuple(headers))


def envelope(
    domain_event: DomainEvent,
    data: IntegrationEvent,
    municipality: str,
    person_id: UUID | None,
    subject: UUID,
    source: str,
) -> CloudEvent:
    """Wrap ``data``; keyed by the person, else the subject, so their events keep their order."""
    return CloudEvent(
        id=event_id(domain_event.originator_id, domain_event.originator_version),
        source=source,
        type=data.cloudevent_type(),
        time=domain_event.timestamp,
        subject=str(subject),
        dataschema=data.schema_id(),
        municipality=municipality,
        personid=str(person_id) if person_id else None,
        partitionkey=str(person_id or subject),
        eventversion=data.version,
        data=data.model_dump(mode="json"),
    )
