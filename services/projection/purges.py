"""ViewPurged on the bus: the view_purge rows, published by an outbox reader.

A purge is written with the view rows it removes (``agency_view``), so none is lost; this
reader publishes the unpublished ones and only then marks them. A crash in between publishes
them again under the same event id, which consumers drop (at-least-once, exactly-once in
effect), as with the command services' relays.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

from contracts.envelope import CloudEvent, event_id
from contracts.events import ViewPurged
from contracts.reference import reference
from services.feeds.store import ViewStore
from services.platform.bus import Message, Publisher
from services.platform.sql import Row
from services.projection.agency_view import Purge, sweep

log = logging.getLogger(__name__)

SOURCE = "/tsunagu/projection"


def _message(topic: str, row: Row) -> Message:
    data = ViewPurged(
        person_id=row["person_id"],
        agency=row["agency"],
        categories=sorted(json.loads(row["categories"])),
        reason=row["reason"],
        at=datetime.fromisoformat(row["at"]),
    )
    event = CloudEvent(
        id=event_id(row["purge_id"], 1),
        source=SOURCE,
        type=data.cloudevent_type(),
        time=datetime.now(UTC),
        subject=row["person_id"],
        dataschema=data.schema_id(),
        municipality=reference().agencies[row["agency"]].municipality,
        personid=row["person_id"],
        partitionkey=row["person_id"],
        eventversion=data.version,
        data=data.model_dump(mode="json"),
    )
    return Message(topic, event.partitionkey, event.to_bytes(), (("ce_id", event.id.encode()),))


def publish_purges(store: ViewStore, publisher: Publisher, topic: str, batch: int = 200) -> int:
    """Publish every unpublished purge, oldest first; how many were published."""
    published = 0
    while True:
        with store.database.transaction() as tx:
            rows = tx.fetchall(
                "SELECT * FROM view_purge WHERE published = 0 ORDER BY at, purge_id LIMIT ?",
                (batch,),
            )
        if not rows:
            return published
        publisher.publish([_message(topic, row) for row in rows])
        with store.database.transaction() as tx:
            for row in rows:
                tx.execute(
                    "UPDATE view_purge SET published = 1 WHERE purge_id = ?", (row["purge_id"],)
                )
        published += len(rows)


def sweep_and_publish(
    store: ViewStore, publisher: Publisher, topic: str, now: datetime | None = None
) -> list[Purge]:
    """Purge what lapsed bases allowed (nothing else happens when a consent expires), then
    publish every purge not yet on the bus, the sweep's and the projector's."""
    purges = sweep(store, now)
    publish_purges(store, publisher, topic)
    return purges


def run_sweeper(
    store: ViewStore, publisher: Publisher, topic: str, every: float, stop: threading.Event
) -> None:
    """The distributed mode's sweeper process: sweep and publish every ``every`` seconds."""
    while not stop.is_set():
        try:
            purges = sweep_and_publish(store, publisher, topic)
            if purges:
                log.info("swept", extra={"purges": len(purges)})
        except Exception:
            log.exception("sweep failed; retrying at the next tick")
        stop.wait(every)
