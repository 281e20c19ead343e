"""Each agency's lawful view of each person, decided when it is read, and the record of what
left whose view when a basis ended.

No agency's view is stored: ``decided_views`` decides, at the instant asked, which of the
person's facts (``category_facts``) ``decide`` allows each agency, from the bases as they stand
(the consent replica, 支援会議 (Article 9 support meeting) memberships, vital-interest
declarations, merges). A basis that ends needs no deletion, only a record for the audit: a
``view_purge`` row (the ViewPurged record) says which categories left which agency's view,
on which basis, and when. It is written

- by the projector, with the event that ends a basis at once (a withdrawal, an unmerge): the
  views just before the event and just after it, decided, compared (``lost``);
- by ``sweep``, for the bases that end with time alone (a consent's expiry, a withdrawal dated
  ahead, a membership's end, a vital-interest window): the projector notes each such end
  (``basis_end``), and the sweep compares the views decided just before it and at it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import disclosure
from contracts.envelope import CloudEvent
from contracts.events import ConsentWithdrawn, IntegrationEvent, PersonsMerged, PersonsUnmerged
from contracts.reference import reference
from services.feeds import consents
from services.feeds.changes import Change, Projector, Upsert, ViewState
from services.feeds.store import ViewStore
from services.projection import merges
from services.projection.person_facts import (
    Pending,
    Reader,
    facts_of,
    project_person_facts,
    reader_of,
    record_from,
    utc,
)

TABLES = (
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
    # Each instant a basis ends with time alone, until ``sweep`` has recorded what it took.
    """CREATE TABLE IF NOT EXISTS basis_end (
        end_id TEXT PRIMARY KEY,
        person_id TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        swept INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS basis_end_due ON basis_end (swept, ends_at)",
    # Views were once materialised per agency: a store from then loses that copy of the facts.
    "DROP TABLE IF EXISTS agency_view",
    "DROP TABLE IF EXISTS view_stale",
)

# The purposes an agency's standing view serves; a category shown under any of them is shown,
# with the basis of the first purpose that allows it.
VIEW_PURPOSES = ("support_coordination", "meeting", "referral")
OWN_RECORD = "own_record"
POLICY_VIEWER = "projection"
SWEEP_CAUSE = "basis ended (expired or lapsed)"
# The views "just before" an end are decided this long before it: the clock's resolution.
JUST_BEFORE = timedelta(microseconds=1)
# The column each basis table holds the instant it ends in, when it ends with time alone.
ENDS = {
    "consent": "valid_until",
    "consent_withdrawal": "at",
    "meeting_membership": "valid_until",
    "vital_interest": "valid_until",
}

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


# An agency's view of one person: (category, field) -> the fact shown, with its basis.
View = dict[tuple[str, str], dict[str, Any]]


def decided_views(
    state: Reader, person_id: str, at: datetime, agencies: Collection[str] | None = None
) -> dict[str, View]:
    """Every agency's view of the person at ``at`` (or only ``agencies``'), decided from the
    facts and the bases as they stand: each fact ``decide_fact`` allows the agency, with the
    basis that allows it and the instant that basis ends. Agencies shown nothing are absent.

    A person merged into another has no view of their own: their facts are the survivor's.
    """
    if merges.survivor_of(state, person_id) != person_id:
        return {}
    state = merges.united(state, person_id)
    record = record_from(state, person_id)
    # Only an agency some basis names can be allowed anything: the others (thousands, in a
    # national reference) are not asked.
    named = _named(record) & reference().agencies.keys()
    if agencies is not None:
        named &= set(agencies)
    if not named:
        return {}
    facts = facts_of(state, person_id)
    audiences = [_audience(fact) for fact in facts]
    views: dict[str, View] = {}
    for agency in sorted(named):
        bases = FactBases(agency, record, at)
        view: View = {}
        for fact, audience in zip(facts, audiences, strict=True):
            category = fact["category"]
            if category not in bases.categories:
                continue
            if audience is not None and agency not in audience:
                continue
            grant = bases.of(fact)
            if grant is None:
                continue
            view[(category, fact["field"])] = {
                "category": category,
                "field": fact["field"],
                "value": fact["value"],
                "basis": grant.basis,
                "basis_id": grant.basis_id,
                "valid_until": utc(grant.valid_until) if grant.valid_until else None,
            }
        if view:
            views[agency] = view
    return views


def decided_view(state: Reader, agency: str, person_id: str, at: datetime) -> list[dict[str, Any]]:
    """``agency``'s view of the person at ``at`` (``decided_views``), in category and field
    order."""
    view = decided_views(state, person_id, at, (agency,)).get(agency, {})
    return [view[key] for key in sorted(view)]


def lost(before: dict[str, View], after: dict[str, View]) -> dict[str, dict[str, dict[str, Any]]]:
    """What left each agency's view between two decisions: per agency, each category any of
    whose facts is no longer shown (another agency's facts whose basis ended, even while the
    agency's own facts of it stay), with the basis it had been shown on."""
    gone: dict[str, dict[str, dict[str, Any]]] = {}
    for agency, view in before.items():
        still = after.get(agency, {})
        for key, row in view.items():
            if key not in still:
                gone.setdefault(agency, {})[row["category"]] = {
                    "basis": row["basis"],
                    "basis_id": row["basis_id"],
                }
    return gone


def _cause(data: IntegrationEvent) -> str:
    if isinstance(data, ConsentWithdrawn):
        return f"consent {data.consent_id} withdrawn (withdrawal {data.withdrawal_id})"
    if isinstance(data, PersonsUnmerged):
        return f"person {data.person_id} unmerged from {data.survivor_id}"
    return f"basis no longer in force after {data.name}"


def _recorded(purges: Sequence[Purge], key: str, at: datetime) -> list[Change]:
    """The ``view_purge`` rows of ``purges``, each keyed by ``key`` and its person and agency,
    so that the same purge recorded again (a redelivery, two sweepers) is one row."""
    return [
        Upsert(
            "view_purge",
            {"purge_id": f"{key}|{p.person_id}|{p.agency}"},
            {
                "agency": p.agency,
                "person_id": p.person_id,
                "categories": json.dumps(p.categories, sort_keys=True),
                "reason": p.reason,
                "at": utc(at),
            },
        )
        for p in purges
    ]


def _left(person: str, before: dict[str, View], after: dict[str, View], cause: str) -> list[Purge]:
    """The purges of what left each agency's view of ``person`` between two decisions."""
    return [
        Purge(agency, person, cats, cause) for agency, cats in sorted(lost(before, after).items())
    ]


def person_views(clock: Clock = _now, *, postponed: bool = False) -> Projector:
    """The consent replica's, the facts' and the merges' changes, and what a change to a
    person's bases takes out of agencies' views: decided at ``clock()`` before the event and
    after it, and recorded as purges named by the event. Each end a basis will reach with time
    alone is noted for ``sweep`` (one already past is history: nothing of it is shown now).

    ``postponed`` (a catch-up over a backlog): no purge is recorded. A catch-up rebuilds the
    tables from nothing; the purges of the live run are history, kept from it.
    """

    def project(view: ViewState, event: CloudEvent, data: IntegrationEvent) -> Sequence[Change]:
        upcoming = _upcoming(view, event, data)
        now = clock()
        changes = [*upcoming, *_ends(upcoming, now)]
        if postponed or not any(isinstance(c, Upsert) and c.table in BASES for c in upcoming):
            return changes
        before = reader_of(view)
        after = Pending(before, upcoming)
        # A person merged by this event is the survivor: what the duplicate held is shown as
        # the survivor's, so nothing left anyone's view.
        persons = sorted({merges.survivor_of(after, p) for p in _touched(data, upcoming)})
        purges = [
            purge
            for person in persons
            for purge in _left(
                person,
                decided_views(before, person, now),
                decided_views(after, person, now),
                _cause(data),
            )
        ]
        return changes + _recorded(purges, event.id, now)

    return project


# The tables of the bases ``decide`` weighs: a change to them may end one.
BASES = (*ENDS, "person_merge")


def _ends(upcoming: list[Change], now: datetime) -> list[Change]:
    """A ``basis_end`` for each basis an event records that ends with time alone."""
    ends: list[Change] = []
    for change in upcoming:
        column = ENDS.get(change.table)
        if not isinstance(change, Upsert) or column is None or column not in change.values:
            continue
        ends_at = utc(datetime.fromisoformat(change.values[column]))
        end_id = "|".join([change.table, *map(str, change.key.values())])
        ends.append(
            Upsert(
                "basis_end",
                {"end_id": end_id},
                {
                    "person_id": change.values["person_id"],
                    "ends_at": ends_at,
                    "swept": int(ends_at <= utc(now)),
                },
            )
        )
    return ends


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
        # Neither table keys its rows by person.
        for value in [change.values.get("person_id")]
        if value is not None
    }
    if getattr(data, "person_id", None) is not None:
        persons.add(str(data.person_id))  # type: ignore[attr-defined]
    if isinstance(data, PersonsMerged | PersonsUnmerged):
        persons.add(str(data.survivor_id))
    return persons


def sweep(store: ViewStore, now: datetime | None = None) -> list[Purge]:
    """Record what every basis that ended with time alone by ``now`` took out of agencies'
    views, end by end in the order they ended; the purges recorded.

    For each end: the person's views decided just before it and at it, compared. Each end is
    swept in its own transaction with its purges, so a sweep that dies leaves the rest due,
    and two sweepers record one purge (keyed by the end).
    """
    at = now or _now()
    with store.database.transaction() as tx:
        due = tx.fetchall(
            "SELECT * FROM basis_end WHERE swept = 0 AND ends_at <= ? ORDER BY ends_at, end_id",
            (utc(at),),
        )
    purges: list[Purge] = []
    for end in due:
        purges += _sweep_end(store, end["end_id"], end["person_id"], end["ends_at"])
    return purges


def _sweep_end(store: ViewStore, end_id: str, person: str, ends_at: str) -> list[Purge]:
    ended = datetime.fromisoformat(ends_at)
    found: list[Purge] = []

    def changes(view: ViewState) -> list[Change]:
        state = reader_of(view)
        survivor = merges.survivor_of(state, person)
        before = decided_views(state, survivor, ended - JUST_BEFORE)
        found.extend(_left(survivor, before, decided_views(state, survivor, ended), SWEEP_CAUSE))
        swept = Upsert(
            "basis_end", {"end_id": end_id}, {"person_id": person, "ends_at": ends_at, "swept": 1}
        )
        return [*_recorded(found, f"sweep|{end_id}|{ends_at}", ended), swept]

    store.apply_now(changes)
    return found
