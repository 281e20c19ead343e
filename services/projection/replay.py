"""Disclosure replay: build a recorded response again from the events, and compare the hashes.

An audit entry (RecordViewed) keeps which view answered with which parameters, the instant
``decide`` was asked, the event journal's position the response was built from and the hash
of the body served. The replay applies the journalled events up to that position to empty
person tables, with the same projectors, renders the same view at the same instant, and shows
that the body hashes to what was served and which basis permitted each category.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.envelope import CloudEvent
from contracts.errors import Conflict
from contracts.events import parse
from services.platform.sql import SqliteDatabase
from services.projection.agency_view import READ_CAUSE, refresh
from services.projection.audit import RECORD_VIEWED, AuditRecord
from services.projection.changes import Change, Projector, ViewState
from services.projection.feed import PERSON_TABLES, person_projectors
from services.projection.person_documents import DECIDED_AT_READ, render
from services.projection.person_facts import TxReader
from services.projection.store import ViewStore


@dataclass(frozen=True)
class Replay:
    position: int
    state_position: int
    events_replayed: int
    served_hash: str | None
    replayed_hash: str
    matches: bool
    # category -> the basis that permitted it in the replay, and whether the entry agrees
    bases: dict[str, dict[str, str | None]]
    bases_match: bool
    document: dict[str, Any]


def journal(store: ViewStore, up_to: int, page: int = 1000) -> Iterator[bytes]:
    """The journalled event bodies, in commit order, up to and including position ``up_to``."""
    after = 0
    while after < up_to:
        with store.database.transaction() as tx:
            rows = tx.fetchall(
                "SELECT seq, body FROM event_journal WHERE seq > ? AND seq <= ? "
                "ORDER BY seq LIMIT ?",
                (after, up_to, page),
            )
        if not rows:
            return
        for row in rows:
            yield str(row["body"]).encode("utf-8")
        after = int(rows[-1]["seq"])


def _apply(store: ViewStore, projectors: tuple[Projector, ...], body: bytes) -> None:
    event = CloudEvent.from_bytes(body)
    data = parse(event)

    def changes(state: ViewState) -> list[Change]:
        return [change for project in projectors for change in project(state, event, data)]

    store.apply(event.id, event.type, changes)


def replay_disclosure(views: ViewStore, entry: AuditRecord) -> Replay:
    if (
        entry.kind != RECORD_VIEWED
        or entry.view_request is None
        or entry.state_position is None
        or entry.person_id is None
    ):
        raise Conflict(
            f"entry {entry.position} is not a recorded disclosure that can be replayed",
            position=entry.position,
        )
    at = datetime.fromisoformat(entry.recorded_at)
    scratch = ViewStore(SqliteDatabase(":memory:"), PERSON_TABLES)
    try:
        projectors = person_projectors(lambda: at)
        replayed = 0
        for body in journal(views, entry.state_position):
            _apply(scratch, projectors, body)
            replayed += 1
        if entry.view_request["view"] in DECIDED_AT_READ:
            refresh(scratch, entry.person_id, at, READ_CAUSE)
        with scratch.database.transaction() as tx:
            disclosure = render(
                entry.view_request, TxReader(tx), entry.viewer_agency, entry.person_id, at
            )
    finally:
        scratch.database.close()
    replayed_hash = hashlib.sha256(disclosure.body()).hexdigest()
    bases = {c: {"basis": b, "basis_id": i} for c, (b, i) in disclosure.shown.items()}
    return Replay(
        position=entry.position,
        state_position=entry.state_position,
        events_replayed=replayed,
        served_hash=entry.response_hash,
        replayed_hash=replayed_hash,
        matches=replayed_hash == entry.response_hash,
        bases=bases,
        bases_match=bases == entry.bases,
        document=disclosure.document,
    )
