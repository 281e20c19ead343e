"""Other services' RecordViewed events, appended to their municipality's audit chain.

Fed by the in-process bus (embedded) or a consumer of the audit topic (``tsunagu audit
ingest``, ``run_ingest``) that commits its offsets only once a batch is appended. Each event is
appended once, by its CloudEvent id, in the transaction that appends it, so a batch delivered
again after a crash adds nothing; a message no one can read goes to the dead-letter topic with
the reason, and one that fails each time it is appended alone is quarantined there, as the
feeds' are (``services.feeds.quarantine``).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from contracts.envelope import CloudEvent, EnvelopeError
from contracts.errors import NotFound
from contracts.events import InvalidEventData, UnknownEvent, parse
from contracts.events.audit import RecordViewed
from contracts.topics import Topics
from services.feeds.quarantine import apply_or_quarantine
from services.feeds.runner import dead_letter
from services.platform.bus import Message, Publisher
from services.platform.lifecycle import Stopped, until_available
from services.platform.settings import Settings
from services.projection.audit import AuditEntry
from services.projection.chains import Chains, entry_of

log = logging.getLogger(__name__)


class AuditIngest:
    def __init__(self, chains: Chains, dead_letters: Publisher, dead_letter_topic: str) -> None:
        self._chains = chains
        self._dead_letters, self._dead_letter_topic = dead_letters, dead_letter_topic

    def consume(self, message: Message) -> None:
        self.consume_batch([message])

    def quarantine(self, message: Message, reason: str) -> None:
        """``message`` to the dead letters: it failed each time it was appended alone
        (``services.feeds.quarantine``)."""
        self._dead_letters.publish([dead_letter(message, reason, self._dead_letter_topic)])

    def consume_batch(self, messages: Sequence[Message]) -> None:
        """Append every readable entry, grouped by municipality, one transaction per chain."""
        chains: dict[str, tuple[list[AuditEntry], list[str | None]]] = defaultdict(lambda: ([], []))
        letters: list[Message] = []
        for message in messages:
            try:
                event = CloudEvent.from_bytes(message.value)
                data = parse(event)
                if not isinstance(data, RecordViewed):
                    raise UnknownEvent(f"{event.type} is not an audit entry")
                self._chains.of(event.municipality)
            except (EnvelopeError, UnknownEvent, InvalidEventData, NotFound) as error:
                letters.append(dead_letter(message, str(error), self._dead_letter_topic))
                continue
            entries, sources = chains[event.municipality]
            entries.append(entry_of(data))
            sources.append(event.id)
        if letters:
            self._dead_letters.publish(letters)
        for municipality, (entries, sources) in chains.items():
            self._chains.of(municipality).append_all(entries, sources)


# Records per batch at most, each batch appended chain by chain in one transaction.
BATCH = 500


def run_ingest(settings: Settings, ingest: AuditIngest, stop: threading.Event) -> None:
    """The distributed mode's ingest: consume the audit topic in a consumer group, append each
    batch, then commit its offsets; a batch that could not be appended is read again."""
    while not stop.is_set():
        # The broker may be away (restarting) when a consumer is made again: wait for it, as
        # at start, rather than end the process.
        try:
            consumer = until_available("Kafka", lambda: _consumer(settings), stop)
        except Stopped:
            return
        try:
            while not stop.is_set():
                polled = consumer.poll(timeout_ms=500, max_records=BATCH)
                received = [r for records in polled.values() for r in records]
                if received:
                    apply_or_quarantine(ingest, [_message(r) for r in received], stop)
                    consumer.commit()
        except Stopped:
            return
        except Exception:
            # Kafka failed under the consumer: the uncommitted batch is delivered again to the
            # consumer made next, and appends nothing twice.
            log.exception("consuming disclosures failed; retrying")
            stop.wait(1.0)
        finally:
            consumer.close()


def _consumer(settings: Settings) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(
        Topics(settings.topic_prefix).events("audit"),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.topic_prefix}-audit-ingest",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def _message(record: Any) -> Message:
    headers = tuple((str(k), bytes(v or b"")) for k, v in record.headers or ())
    key = record.key.decode("utf-8") if record.key else ""
    return Message(record.topic, key, bytes(record.value), headers, record.partition, record.offset)
