"""Disclosure replay: build a recorded response again from the events, and compare the hashes.

An audit entry (RecordViewed) keeps which view answered with which parameters, the instant
``decide`` was asked, the event journal's position the response was built from and the hash
of the body served. The replay applies the journalled events up to that position to empty
person tables, with the same projectors, renders the same view at the same instant, and shows
that the body hashes to what was served and which basis permitted each category. Content
erased since it was served (its keys destroyed) cannot be rebuilt: the replay says when and
why it was erased, beside the hash served and the bases, which stand as recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from contracts import disclosure
from contracts.envelope import CloudEvent
from contracts.errors import Conflict
from contracts.events import parse
from services.feeds.changes import Change, Projector, ViewState
from services.feeds.store import ViewStore
from services.platform.disclose import OWN_RECORD, Opening, Shown
from services.platform.sealing import erasures
from services.platform.sql import SqliteDatabase
from services.projection.agency_view import POLICY_VIEWER, VIEW_PURPOSES, FactBases, visible_to
from services.projection.audit import RECORD_VIEWED, AuditRecord
from services.projection.feed import PERSON_TABLES, person_projectors
from services.projection.merges import united
from services.projection.person_documents import render
from services.projection.person_facts import TxReader, facts_of, record_from


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
    # The rebuilt response; None where the asker's agency may not see all of it now.
    document: dict[str, Any] | None
    document_withheld: list[dict[str, str]] = field(default_factory=list)
    # When and why content the response showed was erased since (its keys destroyed): the
    # body cannot be rebuilt as served, so the hashes cannot agree; what was recorded stands.
    erased: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


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


def decided_for(
    views: ViewStore, agency: str, entry: AuditRecord, now: datetime
) -> tuple[Shown, list[dict[str, str]]]:
    """Whether ``agency`` may see now what the entry's response showed: each category it
    showed, with the basis, when ``decide_fact`` allows every fact of it the views hold (a
    response shows no more than those); else why not. The document is shown whole or not at
    all: a part of it would not hash to anything."""
    if entry.person_id is None:
        return {}, []
    with views.database.transaction(snapshot=True) as tx:
        state = united(TxReader(tx), entry.person_id)
        record = record_from(state, entry.person_id)
        facts = facts_of(state, entry.person_id)
    bases = FactBases(agency, record, now)
    viewer = disclosure.Viewer(agency, POLICY_VIEWER)
    shown: Shown = {}
    withheld: list[dict[str, str]] = []
    for category in entry.categories:
        grants = [
            bases.of(fact) if visible_to(agency, fact) else None
            for fact in facts
            if fact["category"] == category
        ]
        allowed = [g for g in grants if g is not None]
        if grants and len(allowed) == len(grants):
            grant = next((g for g in allowed if g.basis != OWN_RECORD), allowed[0])
            shown[category] = (grant.basis, grant.basis_id)
            continue
        decision = disclosure.decide(
            viewer, record.without_own(agency), category, VIEW_PURPOSES[0], now
        )
        reason = (
            decision.reason
            if isinstance(decision, disclosure.Deny)
            else f"some {category} facts are limited to other agencies"
        )
        withheld.append({"category": category, "reason": reason})
    return shown, withheld


def replay_disclosure(views: ViewStore, entry: AuditRecord, opener: Opening) -> Replay:
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
        with scratch.database.transaction() as tx:
            disclosure = render(
                entry.view_request, TxReader(tx), entry.viewer_agency, entry.person_id, at
            )
    finally:
        scratch.database.close()
    disclosure = disclosure.opened(opener)
    replayed_hash = hashlib.sha256(disclosure.body()).hexdigest()
    erased = next(erasures(disclosure.document), None)
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
        erased=dict(erased) if erased is not None else None,
    )
