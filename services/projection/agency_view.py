"""Each agency's lawful view of each person, materialised, and purged when its basis ends.

``agency_view`` holds, per agency and person, only the facts whose category ``decide`` allows
that agency now, each with the basis that allows it and the instant that basis ends. It is
recomputed for a person after every event about them; what is no longer allowed is DELETED
from the table (not hidden by the API) and a ``view_purge`` row records it for the audit
(the ViewPurged record). Bases that end with time alone — a consent's expiry, a 支援会議
(Article 9 support meeting) membership's end, a vital-interest window — are caught by
``sweep``, which finds the rows whose ``valid_until`` has passed.

A catch-up over a backlog (a rebuild) does not decide a person's views after every batch: it
marks the person stale (``view_stale``), and ``settle`` decides each one once, at the end. Reads
are unaffected: a person's view is decided again at the instant it is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from contracts import disclosure
from contracts.envelope import CloudEvent
from contracts.events import ConsentWithdrawn, IntegrationEvent, PersonsMerged, PersonsUnmerged
from contracts.reference import reference
from services.projection import consents, merges
from services.projection.changes import Change, Delete, Projector, Upsert, ViewState
from services.projection.person_facts import (
    Pending,
    Reader,
    project_person_facts,
    reader_of,
    record_from,
    utc,
)
from services.projection.store import ViewStore

TABLES = (
    """CREATE TABLE IF NOT EXISTS agency_view (
        agency TEXT NOT NULL,
        person_id TEXT NOT NULL,
        category TEXT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        basis TEXT NOT NULL,
        basis_id TEXT,
        valid_until TEXT,
        PRIMARY KEY (agency, person_id, category, field)
    )""",
    "CREATE INDEX IF NOT EXISTS agency_view_person ON agency_view (person_id)",
    # The sweep's question, "whose basis has ended?", answered by an index.
    "CREATE INDEX IF NOT EXISTS agency_view_until ON agency_view (valid_until)",
    # The outbox of ViewPurged events: ``published`` turns 1 once the bus has taken it.
    """CREATE TABLE IF NOT EXISTS view_purge (
        purge_id TEXT PRIMARY KEY,
        agency TEXT NOT NULL,
        person_id TEXT NOT NULL,
        categories TEXT NOT NULL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL,
        published INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS view_purge_person ON view_purge (person_id, at)",
    "CREATE INDEX IF NOT EXISTS view_purge_unpublished ON view_purge (published, at)",
    # The persons a catch-up has applied events about and not yet decided the views of
    # (``settle``): kept with the events, so a catch-up that dies leaves them to the sweep.
    "CREATE TABLE IF NOT EXISTS view_stale (person_id TEXT PRIMARY KEY)",
)

# The purposes an agency's standing view serves; a category shown under any of them is shown,
# with the basis of the first purpose that allows it.
VIEW_PURPOSES = ("support_coordination", "meeting", "referral")
OWN_RECORD = "own_record"
POLICY_VIEWER = "projection"
SWEEP_CAUSE = "basis ended (expired or lapsed)"
READ_CAUSE = "basis ended (found when the view was read)"
SETTLE_CAUSE = "basis ended (found when a catch-up's views were decided)"
# Persons whose views one ``settle`` transaction decides: their rows are read a query per table.
SETTLE_CHUNK = 2000

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Purge:
    """Categories of a person removed from an agency's view, with the bases they had."""

    agency: str
    person_id: str
    categories: dict[str, dict[str, str | None]] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class Allowed:
    basis: str
    basis_id: str | None
    valid_until: datetime | None


def _end(
    record: disclosure.PersonRecord,
    agency: str,
    category: str,
    allow: disclosure.Allow,
    now: datetime,
) -> datetime | None:
    """When the basis ``allow`` stops covering ``category`` for ``agency``; None if never."""
    if allow.basis == "consent":
        [consent] = [c for c in record.consents if c.consent_id == allow.basis_id]
        ends = [consent.valid_until] + [
            w.at for w in consent.withdrawals if w.at > now and w.matches(agency, category)
        ]
        return min(ends)
    if allow.basis == "article9_meeting":
        return min(
            m.valid_until
            for m in record.memberships
            if m.meeting_id == allow.basis_id and m.agency == agency
        )
    if allow.basis == "vital_interest":
        return min(
            d.valid_until for d in record.vital_interests if d.declaration_id == allow.basis_id
        )
    return None


def allowed_categories(
    agency: str, record: disclosure.PersonRecord, at: datetime
) -> dict[str, Allowed]:
    """What ``decide`` lets ``agency`` see of the person at ``at``, over the view's purposes."""
    viewer = disclosure.Viewer(agency=agency, staff_id=POLICY_VIEWER)
    return {
        category: Allowed(allow.basis, allow.basis_id, _end(record, agency, category, allow, at))
        for category, allow in disclosure.visible_for_any(viewer, record, VIEW_PURPOSES, at).items()
    }


def visible_to(agency: str, fact: dict[str, Any]) -> bool:
    """A fact limited to some agencies (a referral's status, a local id) is theirs alone."""
    audience = fact.get("audience")
    return audience is None or agency in json.loads(audience)


def own_fact(agency: str, fact: dict[str, Any]) -> bool:
    """Whether ``agency`` recorded the fact itself: the agency that recorded it, or one of the
    agencies it is limited to (a referral's status is both ends' own record)."""
    if fact["agency"] == agency:
        return True
    audience = fact.get("audience")
    return audience is not None and agency in json.loads(audience)


class FactBases:
    """``decide``'s answers for one agency at one instant, fact by fact: the facts it recorded
    itself on its own record; every other fact, even of a category it holds facts of, only on
    a consent, a 支援会議 membership or a vital-interest declaration (``decide_fact``)."""

    def __init__(self, agency: str, record: disclosure.PersonRecord, at: datetime) -> None:
        self.agency, self._record, self._at = agency, record, at
        self.categories = allowed_categories(agency, record, at)
        self._others: dict[str, Allowed] | None = None

    def of(self, fact: dict[str, Any]) -> Allowed | None:
        """The basis on which the agency may see ``fact`` (a row with its category, recording
        agency and audience), or None."""
        grant = self.categories.get(fact["category"])
        if grant is None or grant.basis != OWN_RECORD or own_fact(self.agency, fact):
            return grant
        if self._others is None:
            without = self._record.without_own(self.agency)
            self._others = allowed_categories(self.agency, without, self._at)
        return self._others.get(fact["category"])


def _named(record: disclosure.PersonRecord) -> set[str]:
    """Every agency some basis names: no other can be allowed anything."""
    named = {agency for agencies in record.recorded_by.values() for agency in agencies}
    named.update(agency for c in record.consents for agency in c.recipients)
    named.update(m.agency for m in record.memberships)
    named.update(agency for d in record.vital_interests for agency in d.recipients)
    return named


def _audience(fact: dict[str, Any]) -> frozenset[str] | None:
    audience = fact.get("audience")
    return frozenset(json.loads(audience)) if audience is not None else None


def refresh_changes(
    state: Reader, person_id: str, now: datetime, cause: str, purge_key: str
) -> tuple[list[Change], list[Purge]]:
    """The changes that make the person's rows in ``agency_view`` what ``decide`` allows now.

    A person merged into another has no view of their own: what it held is deleted, with no
    purge recorded (nothing left anyone's view: it is shown as the survivor's, whose view is
    decided here too). The survivor's view is decided on everything merged into them.
    """
    survivor = merges.survivor_of(state, person_id)
    if survivor != person_id:
        moved: list[Change] = [
            Delete("agency_view", {k: row[k] for k in ("agency", "person_id", "category", "field")})
            for row in state.rows("agency_view", {"person_id": person_id})
        ]
        decided, purges = refresh_changes(state, survivor, now, cause, purge_key)
        return moved + decided, purges
    state = merges.united(state, person_id)
    record = record_from(state, person_id)
    facts = state.rows("person_fact", {"person_id": person_id})
    existing = {
        (row["agency"], row["category"], row["field"]): row
        for row in state.rows("agency_view", {"person_id": person_id})
    }
    changes: list[Change] = []
    wanted: set[tuple[str, str, str]] = set()
    lost: dict[str, dict[str, dict[str, str | None]]] = {}
    named = _named(record)
    audiences = [_audience(fact) for fact in facts]
    held: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (holder, category, _), row in existing.items():
        held.setdefault(holder, []).append((category, row))
    # Only an agency some basis names can be allowed anything, and only one holding rows can
    # lose any: the others (thousands, in a national reference) have nothing to refresh.
    for agency in sorted((named | held.keys()) & reference().agencies.keys()):
        bases = FactBases(agency, record, now) if agency in named else None
        for fact, audience in zip(facts, audiences, strict=True):
            category = fact["category"]
            if bases is None or category not in bases.categories:
                continue
            if audience is not None and agency not in audience:
                continue
            grant = bases.of(fact)
            if grant is None:
                continue
            basis, basis_id = grant.basis, grant.basis_id
            until = utc(grant.valid_until) if grant.valid_until else None
            key = (agency, category, fact["field"])
            wanted.add(key)
            stored = existing.get(key)
            if (
                stored is None
                or stored["value"] != fact["value"]
                or stored["basis"] != basis
                or stored["basis_id"] != basis_id
                or stored["valid_until"] != until
            ):
                values = {
                    "value": fact["value"],
                    "basis": basis,
                    "basis_id": basis_id,
                    "valid_until": until,
                }
                changes.append(Upsert("agency_view", _key(person_id, key), values))
        # A category leaves the view where any of its rows does: another agency's facts
        # whose basis ended, even while the agency's own facts of it stay.
        for category, row in held.get(agency, ()):
            if (agency, category, row["field"]) not in wanted:
                lost.setdefault(agency, {})[category] = {
                    "basis": row["basis"],
                    "basis_id": row["basis_id"],
                }
    changes += [Delete("agency_view", _key(person_id, k)) for k in existing if k not in wanted]
    purges = [
        Purge(agency, person_id, categories, cause) for agency, categories in sorted(lost.items())
    ]
    changes += [
        Upsert(
            "view_purge",
            {"purge_id": f"{purge_key}|{person_id}|{p.agency}"},
            {
                "agency": p.agency,
                "person_id": person_id,
                "categories": json.dumps(p.categories, sort_keys=True),
                "reason": p.reason,
                "at": utc(now),
            },
        )
        for p in purges
    ]
    return changes, purges


def _key(person_id: str, key: tuple[str, str, str]) -> dict[str, Any]:
    agency, category, name = key
    return {"agency": agency, "person_id": person_id, "category": category, "field": name}


def _cause(data: IntegrationEvent) -> str:
    if isinstance(data, ConsentWithdrawn):
        return f"consent {data.consent_id} withdrawn (withdrawal {data.withdrawal_id})"
    if isinstance(data, PersonsUnmerged):
        return f"person {data.person_id} unmerged from {data.survivor_id}"
    return f"basis no longer in force after {data.name}"


def agency_views(clock: Clock = _now) -> Projector:
    """The projector that refreshes every agency's view of each person an event touches.

    It reads the person as they will be after this event: the store applies all projectors'
    changes together, so the consent replica's and the facts' changes for this same event are
    recomputed here (both are pure) and overlaid on the stored rows.
    """

    def project(view: ViewState, event: CloudEvent, data: IntegrationEvent) -> Sequence[Change]:
        return _refreshed(view, event, data, _upcoming(view, event, data), clock())

    return project


def person_views(clock: Clock = _now, *, postponed: bool = False) -> Projector:
    """The consent replica's, the facts' and ``agency_views``' changes, as one projector.

    The same changes as the three in a row, but the consents and facts are worked out once
    rather than again inside ``agency_views``. On a store that applies events in batches
    (``Deferring``), each person's views are refreshed once per batch, after the last event
    about them, and the purge names the first of those events; an event that changes one of
    the person's bases (a basis may end with it) has them refreshed at once, so that a purge
    names the event that ended the basis.

    ``postponed`` (a catch-up over a backlog): the persons are only marked stale, and
    ``settle`` decides each one's views once, when the catch-up is done. A catch-up rebuilds
    views from nothing, so there is nothing shown in between to purge; the purges it would
    otherwise record again are history, kept from the live run.
    """

    def project(view: ViewState, event: CloudEvent, data: IntegrationEvent) -> Sequence[Change]:
        upcoming = _upcoming(view, event, data)
        if postponed:
            stale = [Upsert("view_stale", {"person_id": p}, {}) for p in _touched(data, upcoming)]
            return [*upcoming, *stale]
        # Looked up rather than isinstance(view, Deferring): a runtime protocol check costs
        # more than the rest of a small event's projection.
        defer = getattr(view, "defer", None)
        if defer is None:
            return [*upcoming, *_refreshed(view, event, data, upcoming, clock())]
        urgent = any(isinstance(c, Upsert) and c.table in BASES for c in upcoming)
        for person in sorted(_touched(data, upcoming)):
            refresh = partial(
                _refresh_person, person=person, clock=clock, cause=_cause(data), key=event.id
            )
            defer(person, refresh, urgent=urgent)
        return upcoming

    return project


# The tables of the bases ``decide`` weighs: a change to them may end one.
BASES = ("consent", "consent_withdrawal", "meeting_membership", "vital_interest", "person_merge")


def _refresh_person(
    view: ViewState, *, person: str, clock: Clock, cause: str, key: str
) -> list[Change]:
    changes, _ = refresh_changes(reader_of(view), person, clock(), cause, key)
    return changes


def _upcoming(view: ViewState, event: CloudEvent, data: IntegrationEvent) -> list[Change]:
    return [
        *consents.project_consents(view, event, data),
        *project_person_facts(view, event, data),
        *merges.project_merges(view, event, data),
    ]


def _touched(data: IntegrationEvent, upcoming: list[Change]) -> set[str]:
    """The persons whose views an event's changes may change."""
    persons = {
        str(value)
        for change in upcoming
        if isinstance(change, Upsert) and change.table in ("timeline", "consent_withdrawal")
        for value in [{**change.key, **change.values}.get("person_id")]
        if value is not None
    }
    if getattr(data, "person_id", None) is not None:
        persons.add(str(data.person_id))  # type: ignore[attr-defined]
    if isinstance(data, PersonsMerged | PersonsUnmerged):
        persons.add(str(data.survivor_id))
    return persons


def _refreshed(
    view: ViewState,
    event: CloudEvent,
    data: IntegrationEvent,
    upcoming: list[Change],
    now: datetime,
) -> list[Change]:
    state = Pending(reader_of(view), upcoming)
    changes: list[Change] = []
    for person in sorted(_touched(data, upcoming)):
        refreshed, _ = refresh_changes(state, person, now, _cause(data), event.id)
        changes += refreshed
    return changes


def refresh(store: ViewStore, person_id: str, now: datetime, cause: str) -> list[Purge]:
    """Recompute one person's rows in every agency's view at ``now``; what was purged."""
    return refresh_all(store, [person_id], now, cause)


def refresh_all(store: ViewStore, persons: Sequence[str], now: datetime, cause: str) -> list[Purge]:
    """``refresh`` for several persons (a page of search results) in one transaction, their
    rows read a query per table."""
    purges: list[Purge] = []
    key = f"refresh:{utc(now)}"

    def changes(view: ViewState) -> list[Change]:
        state, found = reader_of(view), []
        for person in persons:
            changed, lost = refresh_changes(state, person, now, cause, key)
            found += changed
            purges.extend(lost)
        return found

    with store.database.transaction() as tx:
        store.apply_in(tx, changes, warm={"person_id": persons})
    return purges


def settle(store: ViewStore, now: datetime | None = None, chunk: int = SETTLE_CHUNK) -> int:
    """Decide, at ``now``, the views of every person a catch-up left stale; how many.

    Each transaction claims up to ``chunk`` persons and decides their views, so replicas
    settling side by side share the work (PostgreSQL: rows another has claimed are skipped)
    and a crash leaves the unsettled ones marked.
    """
    at, settled = now or _now(), 0
    while True:
        with store.database.transaction() as tx:
            claimed = tx.take_first("view_stale", "person_id", chunk)
            if not claimed:
                return settled
            decided = partial(settle_changes, persons=claimed, now=at)
            store.apply_in(tx, decided, warm={"person_id": claimed})
        settled += len(claimed)


def settle_changes(view: ViewState, persons: list[str], now: datetime) -> list[Change]:
    """The changes that decide the views of ``persons``, once each, at ``now``."""
    state, key = reader_of(view), f"settle:{utc(now)}"
    return [
        change
        for person in persons
        for change in refresh_changes(state, person, now, SETTLE_CAUSE, key)[0]
    ]


def sweep(store: ViewStore, now: datetime | None = None) -> list[Purge]:
    """Refresh every person whose view holds a row whose basis has ended by ``now``; first,
    decide the views a catch-up that stopped short left stale."""
    at = now or _now()
    settle(store, at)
    with store.database.transaction() as tx:
        due = tx.fetchall(
            "SELECT DISTINCT person_id FROM agency_view "
            "WHERE valid_until IS NOT NULL AND valid_until <= ? ORDER BY person_id",
            (utc(at),),
        )
    purges: list[Purge] = []
    for row in due:
        purges += refresh(store, row["person_id"], at, SWEEP_CAUSE)
    return purges
