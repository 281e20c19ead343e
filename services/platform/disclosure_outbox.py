"""A service's RecordViewed entries, kept in its own database until the bus has them.

A service other than the views cannot append to the audit chain: the chain lives in the views'
database, and services never write another's. Its reads are recorded here, in the transaction
that ends before the body is sent; a relay publishes them, oldest first, to the audit topic
and only then marks them, and the views append each to its municipality's chain once (by the
event's id), so a crash in between costs a repeat the chain ignores, never an entry. Embedded,
the in-process bus carries them to the chain before the answer leaves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from contracts.envelope import CloudEvent, event_id
from contracts.events.audit import RecordViewed
from services.platform.bus import Message, Publisher
from services.platform.sql import Database, Row

log = logging.getLogger(__name__)

TABLES = (
    """CREATE TABLE IF NOT EXISTS disclosure_outbox (
        event_id TEXT PRIMARY KEY,
        recorded TEXT NOT NULL,
        partition_key TEXT NOT NULL,
        body TEXT NOT NULL,
        published INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS disclosure_outbox_unpublished "
    "ON disclosure_outbox (published, recorded, event_id)",
)


def cloudevent(entry: RecordViewed, municipality: str, source: str) -> CloudEvent:
    """The entry as it travels: keyed by the person, so one person's reads keep their order."""
    key = entry.person_id or str(entry.disclosure_id)
    return CloudEvent(
        id=event_id(entry.disclosure_id, 1),
        source=source,
        type=entry.cloudevent_type(),
        time=datetime.now(UTC),
        subject=entry.person_id,
        dataschema=entry.schema_id(),
        municipality=municipality,
        personid=entry.person_id,
        partitionkey=key,
        eventversion=entry.version,
        data=entry.model_dump(mode="json"),
    )


class DisclosureOutbox:
    """A ``Sink``: the entries kept in the service's database, then published to ``topic``."""

    def __init__(
        self,
        database: Database,
        service: str,
        topic: str,
        publish_to: Publisher | None = None,
    ) -> None:
        self.database, self.topic = database, topic
        self._source = f"/tsunagu/{service}"
        # Embedded: published to the in-process bus at once, so the chain has the entry before
        # the answer leaves. Distributed: the service's relay process publishes them.
        self._publish_to = publish_to
        self._lock = threading.Lock()
        with database.transaction() as tx:
            for statement in TABLES:
                tx.execute(statement)

    def record(self, municipality: str, entries: Sequence[RecordViewed]) -> None:
        events = [cloudevent(entry, municipality, self._source) for entry in entries]
        with self.database.transaction() as tx:
            for event in events:
                tx.execute(
                    "INSERT INTO disclosure_outbox (event_id, recorded, partition_key, body) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        event.id,
                        event.time.isoformat(),
                        event.partitionkey,
                        event.to_bytes().decode(),
                    ),
                )
        if self._publish_to is not None:
            self.publish(self._publish_to)

    def publish(self, publisher: Publisher, batch: int = 200) -> int:
        """Publish every unpublished entry, oldest first; how many were published."""
        published = 0
        with self._lock:
            while rows := self._unpublished(batch):
                publisher.publish([self._message(row) for row in rows])
                with self.database.transaction() as tx:
                    for row in rows:
                        tx.execute(
                            "UPDATE disclosure_outbox SET published = 1 WHERE event_id = ?",
                            (row["event_id"],),
                        )
                published += len(rows)
        return published

    def run(self, publisher: Publisher, stop: threading.Event, poll_seconds: float) -> None:
        """The distributed relay's loop: publish, then look again after ``poll_seconds``."""
        while not stop.is_set():
            try:
                self.publish(publisher)
            except Exception:
                log.exception(
                    "publishing disclosures failed; retrying", extra={"topic": self.topic}
                )
                stop.wait(1.0)
                continue
            stop.wait(poll_seconds)

    def _unpublished(self, batch: int) -> list[Row]:
        with self.database.transaction() as tx:
            rows: list[Row] = tx.fetchall(
                "SELECT * FROM disclosure_outbox WHERE published = 0 "
                "ORDER BY recorded, event_id LIMIT ?",
                (batch,),
            )
        return rows

    def _message(self, row: Row) -> Message:
        headers = (
            ("content-type", b"application/cloudevents+json; charset=utf-8"),
            ("ce_id", str(row["event_id"]).encode()),
        )
        return Message(self.topic, row["partition_key"], str(row["body"]).encode(), headers)
