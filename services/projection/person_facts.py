"""What the views know about each person, from every service's events, by data category.

Three kinds of table, all in the projection schema:

- ``timeline``: one row per (event, person, data category) with the event's fields of that
  category; rows of an event with no person yet (a consultation opened anonymously, a
  provisional referral) wait under their ``subject`` and are tied to the person when intake or
  referral says who it was. Basis events (consents, memberships, declarations) have no category:
  they carry the scope of a basis, not data about the person.
- ``category_facts``: one record per person and data category, holding each field's current
  value with its provenance (the recording agency, whom it is limited to, when, and the event),
  read back a fact per field by ``facts_of``. A record rather than a row per field: an event
  touches one or two categories but three fields on average, and a batch writes each record it
  touched once (10,026 records against 86,431 rows for 30,780 events).
- the bases ``decide`` weighs: the consent replica (``consents.py``), ``meeting_membership``
  (支援会議 members) and ``vital_interest`` declarations.

``CATEGORY_OF`` is the one place that says which data category a field belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast, runtime_checkable

from contracts import disclosure
from contracts.envelope import CloudEvent
from contracts.events import (
    AssessmentRecorded,
    CaseEvent,
    ConsentRecorded,
    ConsentWithdrawn,
    ConsultationAttached,
    InformationShared,
    IntegrationEvent,
    MeetingHeld,
    MeetingScheduled,
    PersonLinked,
    ReferralEvent,
    ReferralPersonIdentified,
    ReferralSent,
    VitalInterestDeclared,
)
from services.feeds.changes import Change, Upsert, ViewState
from services.feeds.consents import TABLES as CONSENT_TABLES
from services.feeds.consents import consents_of_rows
from services.feeds.store import schema
from services.platform.sql import Transaction
from services.projection.merges import KEY as MERGE_KEY
from services.projection.merges import TABLES as MERGE_TABLES
from services.projection.merges import united

ARTICLE9 = "article9_support_meeting"
REFERRAL_STATUS = "referral_status"
# Categories a referral slip always names to say whom it is about; the slip's reason speaks of
# the others.
SLIP_ADDRESS = frozenset({"identity", "contact", REFERRAL_STATUS})

# The data category of every field the views keep: "Event" is the category of the event's
# fields, "Event.field" overrides it for one field, "issue.<code>" maps an assessment's issue
# codes (reference `issue_categories`). Two categories are decided by the event itself:
# InformationShared names its own, and a referral slip's reason belongs to the categories the
# slip shares (see ``_referral``). Every issue not listed is a consultation matter.
CATEGORY_OF: dict[str, str] = {
    "PersonRegistered": "identity",
    "PersonRegistered.address": "contact",
    "PersonRegistered.phone": "contact",
    "PersonLinked": "identity",
    "ConsultationOpened": "consultation",
    "ConsultationTriaged": "consultation",
    "ConsultationAttached": "consultation",
    "ApplicationReceived": "consultation",
    "AssessmentRecorded": "consultation",
    "issue.illness": "health",
    "issue.mental_health": "mental_health",
    "issue.suicide_risk": "mental_health",
    "issue.problem_drinking": "health",
    "issue.debt": "debt",
    "issue.family_relations": "family",
    "issue.economic_hardship": "finances",
    "issue.household_finance": "finances",
    "issue.job_search_difficulty": "employment",
    "issue.unstable_housing": "housing",
    "issue.homelessness": "housing",
    "issue.released_offender": "criminal_record",
    "issue.tax_or_utility_arrears": "tax",
    "CaseOpened": "plan",
    "PlanDrafted": "plan",
    "PlanApproved": "plan",
    "MonitoringRecorded": "plan",
    "PlanEvaluated": "plan",
    "ResourceGapNoted": "plan",
    "CaseClosed": "plan",
    "CaseReopened": "plan",
    "FollowUpRecorded": "plan",
    "EmergencySupportRecorded": "welfare_benefit",
    "MeetingScheduled": "plan",
    "MeetingHeld": "plan",
    "ReferralSent": REFERRAL_STATUS,
    "ReferralAcknowledged": REFERRAL_STATUS,
    "ReferralAccepted": REFERRAL_STATUS,
    "ReferralDeclined": REFERRAL_STATUS,
    "ReferralStarted": REFERRAL_STATUS,
    "ReferralPutOnHold": REFERRAL_STATUS,
    "ReferralCompleted": REFERRAL_STATUS,
    "ReferralFailed": REFERRAL_STATUS,
    "ReferralWithdrawn": REFERRAL_STATUS,
    "ReferralRerouted": REFERRAL_STATUS,
    "ReferralDeclineFollowedUp": REFERRAL_STATUS,
    "ReferralPersonIdentified": REFERRAL_STATUS,
}

# Fields that say who acted or which record is meant: they name the fact, they are not one.
_NAMING = frozenset(
    {"agency", "staff_id", "at", "person_id", "consultation_id", "case_id", "referral_id"}
    | {"meeting_id", "item_id", "sender", "receiver", "assessment_number", "plan_version"}
)

TABLES = (
    """CREATE TABLE IF NOT EXISTS timeline (
        row_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        person_id TEXT,
        subject TEXT NOT NULL,
        at TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        event TEXT NOT NULL,
        agency TEXT NOT NULL,
        category TEXT,
        summary TEXT NOT NULL,
        audience TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS timeline_person ON timeline (person_id, at)",
    "CREATE INDEX IF NOT EXISTS timeline_subject ON timeline (subject)",
    """CREATE TABLE IF NOT EXISTS category_facts (
        person_id TEXT NOT NULL,
        category TEXT NOT NULL,
        facts TEXT NOT NULL,
        PRIMARY KEY (person_id, category)
    )""",
    # The row per field that ``category_facts`` replaced (rebuild the views to fill it).
    "DROP TABLE IF EXISTS person_fact",
    """CREATE TABLE IF NOT EXISTS case_person (
        case_id TEXT PRIMARY KEY,
        person_id TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS meeting_membership (
        meeting_id TEXT NOT NULL,
        agency TEXT NOT NULL,
        person_id TEXT NOT NULL,
        valid_from TEXT NOT NULL,
        valid_until TEXT NOT NULL,
        PRIMARY KEY (meeting_id, agency)
    )""",
    "CREATE INDEX IF NOT EXISTS meeting_membership_person ON meeting_membership (person_id)",
    """CREATE TABLE IF NOT EXISTS vital_interest (
        declaration_id TEXT PRIMARY KEY,
        person_id TEXT NOT NULL,
        recipients TEXT NOT NULL,
        categories TEXT NOT NULL,
        valid_from TEXT NOT NULL,
        valid_until TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS vital_interest_person ON vital_interest (person_id)",
    """CREATE TABLE IF NOT EXISTS referral_box (
        agency TEXT NOT NULL,
        referral_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        counterpart TEXT NOT NULL,
        person_id TEXT,
        kind TEXT,
        categories TEXT,
        state TEXT NOT NULL,
        sent_at TEXT,
        changed_at TEXT NOT NULL,
        decline_followed_up INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (agency, referral_id)
    )""",
    # Both ends' lines of a referral, read together by the batch that applies its events.
    "CREATE INDEX IF NOT EXISTS referral_box_referral ON referral_box (referral_id)",
    # The desk's boxes, in keyset order (``queries.referral_box``), whole or by state.
    "CREATE INDEX IF NOT EXISTS referral_box_listed "
    "ON referral_box (agency, direction, COALESCE(sent_at, ''), referral_id)",
    "CREATE INDEX IF NOT EXISTS referral_box_in_state "
    "ON referral_box (agency, direction, state, COALESCE(sent_at, ''), referral_id)",
)

# Primary keys of the tables the views read while projecting, so pending changes can be
# overlaid on what is stored (see ``Pending``).
KEYS: dict[str, tuple[str, ...]] = {
    "timeline": ("row_id",),
    "category_facts": ("person_id", "category"),
    "case_person": ("case_id",),
    "meeting_membership": ("meeting_id", "agency"),
    "vital_interest": ("declaration_id",),
    "referral_box": ("agency", "referral_id"),
    "consent": ("consent_id",),
    "consent_withdrawal": ("withdrawal_id",),
    "view_purge": ("purge_id",),
    "basis_end": ("end_id",),
    "person_merge": MERGE_KEY,
}


# The columns of the tables whose changes ``Pending`` lays over the stored rows: a change that
# sets them all needs nothing from underneath.
_COLUMNS: dict[str, frozenset[str]] = {
    table.name: frozenset(table.types)
    for table in map(schema, (*TABLES, *CONSENT_TABLES, *MERGE_TABLES))
    if table is not None
}


def utc(at: datetime) -> str:
    """One text form per instant, so text order is time order in both databases."""
    if at.tzinfo is None:
        raise ValueError("view times must carry a UTC offset")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@runtime_checkable
class Reader(Protocol):
    """Rows by equality on some columns: the one read the person views need."""

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]: ...


class TxReader:
    """A ``Reader`` over an open transaction that only reads (a response being built).

    A response reads the same rows more than once (a replay builds the person as they are now
    and as they were then, then lists the timeline): each read goes to the database once.
    """

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._read: dict[tuple[str, tuple[tuple[str, Any], ...]], list[dict[str, Any]]] = {}

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        asked = (table, tuple(where.items()))
        if asked not in self._read:
            clause = " AND ".join(f"{column} = ?" for column in where) or "1 = 1"
            self._read[asked] = self._tx.fetchall(
                f"SELECT * FROM {table} WHERE {clause}", tuple(where.values())
            )
        return list(self._read[asked])


def reader_of(state: ViewState) -> Reader:
    # What isinstance(state, Reader) checks, without a runtime protocol's cost on every event.
    if not callable(getattr(state, "rows", None)):
        raise TypeError("the person views need a view state that can read rows (rows())")
    return cast(Reader, state)


class Pending:
    """Stored rows as they will be once ``changes`` are applied.

    The store applies every projector's changes for an event together, after all have run, so
    a projector that reads what another writes for the same event reads through this overlay.
    A stored row is read only when a change leaves some of its columns as they are.
    """

    def __init__(self, base: Reader, changes: Iterable[Change]) -> None:
        self._base = base
        # table -> key -> (stored row discarded, the columns set; None: deleted)
        self._rows: dict[str, dict[tuple[Any, ...], tuple[bool, dict[str, Any] | None]]] = {}
        for change in changes:
            table = self._rows.setdefault(change.table, {})
            key = tuple(change.key[c] for c in KEYS[change.table])
            if isinstance(change, Upsert):
                discarded, earlier = table.get(key, (False, {}))
                if earlier is None:
                    discarded, earlier = True, {}
                table[key] = (discarded, {**earlier, **change.key, **change.values})
            else:
                table[key] = (True, None)

    def _stored(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        found = self._base.rows(table, key)
        return found[0] if found else None

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        pending = self._rows.get(table, {})
        columns = KEYS.get(table, ())
        found: list[dict[str, Any]] = []
        underneath: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in self._base.rows(table, where):
            key = tuple(row[c] for c in columns)
            if key in pending:
                underneath[key] = row
            else:
                found.append(row)
        complete = _COLUMNS.get(table)
        for key, (discarded, values) in pending.items():
            if values is None:
                continue
            if any(c in values and values[c] != v for c, v in where.items()):
                continue
            if not discarded and (complete is None or not complete <= values.keys()):
                stored = underneath.get(key) or self._stored(
                    table, dict(zip(columns, key, strict=True))
                )
                values = {**(stored or {}), **values}
            if all(values.get(c) == v for c, v in where.items()):
                found.append(values)
        return found


# --- projecting events into facts -------------------------------------------------------------


def _category(event: str, field: str) -> str:
    return CATEGORY_OF.get(f"{event}.{field}") or CATEGORY_OF[event]


def _subject(data: IntegrationEvent) -> str:
    """The record an event is about, which prefixes its field names and waits for a person."""
    if isinstance(data, ReferralEvent):
        return f"referral:{data.referral_id}"
    if isinstance(data, AssessmentRecorded):
        return f"case:{data.case_id}/assessment:{data.assessment_number}"
    if isinstance(data, CaseEvent):
        version = getattr(data, "plan_version", None)
        return f"case:{data.case_id}" + (f"/plan:{version}" if version else "")
    if isinstance(data, MeetingScheduled | MeetingHeld | InformationShared):
        return f"meeting:{data.meeting_id}"
    consultation = getattr(data, "consultation_id", None)
    if consultation is not None:
        return f"consultation:{consultation}"
    return "person"


def _fields(data: IntegrationEvent) -> dict[str, Any]:
    dumped: dict[str, Any] = data.model_dump(mode="json")
    return {name: value for name, value in dumped.items() if name not in _NAMING}


def _by_category(data: IntegrationEvent, prefix: str) -> dict[str | None, dict[str, Any]]:
    """The event's fields grouped by data category, named ``<prefix>.<field>`` (its subject)."""
    grouped: dict[str | None, dict[str, Any]] = {}

    def put(category: str | None, field: str, value: Any) -> None:
        grouped.setdefault(category, {})[f"{prefix}.{field}"] = value

    if isinstance(data, AssessmentRecorded):
        for issue in data.issues:
            category = CATEGORY_OF.get(f"issue.{issue}", "consultation")
            grouped.setdefault(category, {}).setdefault(f"{prefix}.issues", []).append(issue)
        put("consultation", "strengths", data.strengths)
        put("consultation", "notes", data.notes)
        return grouped
    if isinstance(data, InformationShared):
        for category in data.categories:
            put(category, "note", data.note)
        return grouped
    if isinstance(data, ReferralSent):
        content = [c for c in data.categories if c not in SLIP_ADDRESS] or [REFERRAL_STATUS]
        for category in content:
            put(category, "reason", data.reason)
        for field in ("kind", "categories", "basis", "provisional"):
            put(REFERRAL_STATUS, field, getattr(data, field))
        if "identity" in data.categories:
            # The names stay on the slip, off the bus; that the slip named the person is part
            # of the sender's own record, so the sender's view shows whom it referred.
            put("identity", "named_on_slip", True)
        put(REFERRAL_STATUS, "state", "sent")
        return grouped
    if isinstance(data, ReferralEvent):
        for field, value in _fields(data).items():
            put(REFERRAL_STATUS, field, value)
        put(REFERRAL_STATUS, "state", data.name.removeprefix("Referral").lower())
        return grouped
    if isinstance(data, MeetingScheduled | MeetingHeld) and data.person_id is None:
        # A regular meeting reviews many people's cases: what it concluded is about them all,
        # so each person's timeline keeps only that the meeting took place.
        put("plan", "kind", data.kind)
        return grouped
    for field, value in _fields(data).items():
        put(_category(data.name, field), field, value)
    if not grouped:
        # Nothing but the fact that it happened (an application received): keep when.
        when = getattr(data, "at", None)
        put(_category(data.name, "at"), "at", when.isoformat() if when else None)
    return grouped


def _persons(state: Reader, data: IntegrationEvent) -> list[str]:
    person = getattr(data, "person_id", None)
    if person is not None:
        return [str(person)]
    if isinstance(data, MeetingScheduled):
        cases = [str(c) for c in data.case_ids]
    elif isinstance(data, MeetingHeld):
        cases = [str(p.case_id) for p in data.plans_discussed]
    else:
        return []
    found = {row["person_id"] for c in cases for row in state.rows("case_person", {"case_id": c})}
    return sorted(found)


def _audience(data: IntegrationEvent, category: str | None) -> str | None:
    """Agencies a fact is limited to whatever the category allows, or None for no limit.

    A referral's status is both ends' own record (so a volunteer who referred learns the person
    was connected) but nobody else's business; an agency's local id is its own filing key.
    """
    if isinstance(data, ReferralEvent) and category == REFERRAL_STATUS:
        return json.dumps(sorted({data.sender, data.receiver}))
    if isinstance(data, PersonLinked):
        return json.dumps([data.agency])
    return None


def _timeline_rows(
    event: CloudEvent,
    data: IntegrationEvent,
    persons: Sequence[str | None],
    grouped: dict[str | None, dict[str, Any]],
    subject: str,
) -> list[Upsert]:
    """A row per person (None: not known yet, the row waits under ``subject``) and category,
    what they share worked out once for the event."""
    recorded_at = utc(event.time)
    shared = {
        "event_id": event.id,
        "subject": subject,
        "at": utc(data.at) if hasattr(data, "at") else recorded_at,
        "recorded_at": recorded_at,
        "event": data.name,
        "agency": getattr(data, "agency", event.source),
    }
    summaries = {
        category: json.dumps(summary, ensure_ascii=False, sort_keys=True)
        for category, summary in grouped.items()
    }
    return [
        Upsert(
            "timeline",
            key={"row_id": f"{event.id}|{person or subject}|{category or '-'}"},
            values={
                **shared,
                "person_id": person,
                "category": category,
                "summary": summaries[category],
                "audience": _audience(data, category),
            },
        )
        for person in persons
        for category in grouped
    ]


# A fact in its category's record: field -> these, in this order (a list: the names would
# repeat in every fact of every record).
PROVENANCE = ("value", "agency", "audience", "at", "event_id")


def _record(value: Any) -> dict[str, list[Any]]:
    """A category record's facts: as stored (text), or as a batch holds them (decoded)."""
    return cast(dict[str, list[Any]], json.loads(value) if isinstance(value, str) else value)


class _Facts:
    """The facts an event sets, per person and category, written as one record each."""

    def __init__(self) -> None:
        self._set: dict[tuple[str, str], dict[str, list[Any]]] = {}

    def add(self, row: dict[str, Any], summary: dict[str, Any]) -> None:
        """The current values a timeline row sets, once it belongs to a person."""
        if row["person_id"] is None or row["category"] is None:
            return
        provenance = [row["agency"], row["audience"], row["at"], row["event_id"]]
        facts = self._set.setdefault((row["person_id"], row["category"]), {})
        for field, value in summary.items():
            facts[field] = [value, *provenance]

    def changes(self, state: Reader) -> list[Change]:
        changes: list[Change] = []
        for (person, category), facts in self._set.items():
            key = {"person_id": person, "category": category}
            [*stored] = state.rows("category_facts", key)
            # A new record each time: the one read may be the batch's, which others still hold.
            record = {**_record(stored[0]["facts"]), **facts} if stored else facts
            changes.append(Upsert("category_facts", key, {"facts": record}))
        return changes


def facts_of(state: Reader, person_id: str) -> list[dict[str, Any]]:
    """The person's facts, a row per field: its category and field, its value (as the event
    gave it: JSON's types) and its provenance (``PROVENANCE``), and ``recorded_under`` for a
    merged record's.

    Of a field several merged records hold, the person's own value stands, then the first
    merged record's in id order (the order ``merges.united`` reads them in).
    """
    found: list[dict[str, Any]] = []
    held: set[tuple[str, str]] = set()
    for row in state.rows("category_facts", {"person_id": person_id}):
        category = row["category"]
        under = {"recorded_under": row["recorded_under"]} if "recorded_under" in row else {}
        for field, (value, *provenance) in _record(row["facts"]).items():
            if (category, field) in held:
                continue
            held.add((category, field))
            found.append(
                {
                    "person_id": person_id,
                    "category": category,
                    "field": field,
                    "value": value,
                    **dict(zip(PROVENANCE[1:], provenance, strict=True)),
                    **under,
                }
            )
    return found


def _attach(state: Reader, subject: str, person: str, facts: _Facts) -> list[Change]:
    """Tie the rows waiting under ``subject`` to ``person``, and make them the person's facts.

    Where rows set the same field, the last one's value stands, as it would have had the
    person been known when each was projected: so they go in the order they were recorded,
    whatever order the read (stored rows, then those pending in the batch) gives them in.
    """
    changes: list[Change] = []
    waiting = state.rows("timeline", {"subject": subject})
    for row in sorted(waiting, key=lambda row: (row["recorded_at"], row["row_id"])):
        if row["person_id"] is not None:
            continue
        attached = {**row, "person_id": person}
        key = {"row_id": row["row_id"]}
        changes.append(Upsert("timeline", key, {k: v for k, v in attached.items() if k not in key}))
        facts.add(attached, json.loads(row["summary"]))
    return changes


def _basis_summary(data: IntegrationEvent) -> dict[str, Any]:
    return {name: value for name, value in _fields(data).items() if name != "reason"}


def project_person_facts(
    view: ViewState, event: CloudEvent, data: IntegrationEvent
) -> Sequence[Change]:
    """Timeline, current facts, bases and referral boxes from any service's event."""
    state = reader_of(view)
    changes: list[Change] = []
    if isinstance(data, ConsentRecorded | ConsentWithdrawn | VitalInterestDeclared):
        # The scope of a basis, for the replay; the consent replica itself is consents.py's.
        basis: dict[str | None, dict[str, Any]] = {None: _basis_summary(data)}
        changes += _timeline_rows(event, data, [str(data.person_id)], basis, _subject(data))
        if isinstance(data, VitalInterestDeclared):
            changes.append(_declaration(data))
        return changes
    if data.name not in CATEGORY_OF and not isinstance(data, InformationShared):
        return []  # merges (``merges.py``) and other events that carry no fact of their own
    if isinstance(data, CaseEvent):
        changes.append(
            Upsert(
                "case_person", {"case_id": str(data.case_id)}, {"person_id": str(data.person_id)}
            )
        )
    if isinstance(data, MeetingScheduled) and data.kind == ARTICLE9 and data.person_id:
        changes += [
            Upsert(
                "meeting_membership",
                {"meeting_id": str(data.meeting_id), "agency": member.agency},
                {
                    "person_id": str(data.person_id),
                    "valid_from": utc(member.valid_from),
                    "valid_until": utc(member.valid_until),
                },
            )
            for member in data.members
        ]
    if isinstance(data, ReferralEvent):
        changes += _referral_box(state, event, data)
    persons: list[str | None] = list(_persons(state, data)) or [None]
    subject = _subject(data)
    grouped = _by_category(data, subject)
    facts = _Facts()
    for row in _timeline_rows(event, data, persons, grouped, subject):
        changes.append(row)
        facts.add(row.values, grouped[row.values["category"]])
    if isinstance(data, ConsultationAttached):
        subject = f"consultation:{data.consultation_id}"
        changes += _attach(state, subject, str(data.person_id), facts)
    if isinstance(data, ReferralPersonIdentified) and data.person_id is not None:
        changes += _attach(state, f"referral:{data.referral_id}", str(data.person_id), facts)
    return changes + facts.changes(state)


def reads(data: IntegrationEvent) -> dict[str, str]:
    """The values of the columns the person projectors read rows by for this event: what a
    store applying many events together reads for all of them at once."""
    found: dict[str, str] = {}
    person = getattr(data, "person_id", None)
    if person is not None:
        found["person_id"] = str(person)
    if isinstance(data, ReferralEvent):
        found["referral_id"] = str(data.referral_id)
    if isinstance(data, ConsultationAttached):
        found["subject"] = f"consultation:{data.consultation_id}"
    elif isinstance(data, ReferralPersonIdentified):
        found["subject"] = f"referral:{data.referral_id}"
    return found


def _declaration(data: VitalInterestDeclared) -> Upsert:
    return Upsert(
        "vital_interest",
        {"declaration_id": str(data.declaration_id)},
        {
            "person_id": str(data.person_id),
            "recipients": json.dumps(sorted(data.recipients)),
            "categories": json.dumps(sorted(data.categories)),
            "valid_from": utc(data.valid_from),
            "valid_until": utc(data.valid_until),
        },
    )


def _referral_box(state: Reader, event: CloudEvent, data: ReferralEvent) -> list[Change]:
    """The sender's outbox line and the receiver's inbox line for this referral."""
    changes: list[Change] = []
    for agency, direction, counterpart in (
        (data.sender, "out", data.receiver),
        (data.receiver, "in", data.sender),
    ):
        key = {"agency": agency, "referral_id": str(data.referral_id)}
        [*earlier] = state.rows("referral_box", key)
        values: dict[str, Any] = {
            "direction": direction,
            "counterpart": counterpart,
            "person_id": str(data.person_id) if data.person_id else None,
            "changed_at": utc(data.at),
        }
        if isinstance(data, ReferralSent):
            values |= {
                "kind": data.kind,
                "categories": json.dumps(data.categories),
                "sent_at": utc(data.at),
                "state": "sent",
            }
        elif data.name == "ReferralDeclineFollowedUp":
            values |= {"decline_followed_up": 1, "state": earlier[0]["state"] if earlier else ""}
        elif data.name != "ReferralPersonIdentified":
            values["state"] = data.name.removeprefix("Referral").lower()
        else:
            values["state"] = earlier[0]["state"] if earlier else "sent"
        if not values["person_id"] and earlier:
            values["person_id"] = earlier[0]["person_id"]
        changes.append(Upsert("referral_box", key, values))
    return changes


# --- reading a person back as the disclosure policy sees them ---------------------------------


def record_from(
    state: Reader, person_id: str, as_of: datetime | None = None, known_at: datetime | None = None
) -> disclosure.PersonRecord:
    """The person as ``decide`` reads them; with ``as_of``, own records only from then on.

    ``known_at`` also leaves out what was recorded later than that (a back-entered contact).
    """
    state = united(state, person_id)
    recorded_by: dict[str, set[str]] = {}
    until = utc(as_of) if as_of is not None else None
    known = utc(known_at) if known_at is not None else None
    # A referral's rows repeat the same few audiences: each is parsed once.
    audiences: set[str] = set()
    for row in state.rows("timeline", {"person_id": person_id}):
        category = row["category"]
        if category is None or (until is not None and row["at"] > until):
            continue
        if known is not None and row["recorded_at"] > known:
            continue
        recorded_by.setdefault(category, set()).add(row["agency"])
        if category == REFERRAL_STATUS and row["audience"]:
            audiences.add(row["audience"])
    for audience in audiences:
        recorded_by[REFERRAL_STATUS].update(json.loads(audience))
    memberships = tuple(
        disclosure.MeetingMembership(
            meeting_id=row["meeting_id"],
            agency=row["agency"],
            valid_from=datetime.fromisoformat(row["valid_from"]),
            valid_until=datetime.fromisoformat(row["valid_until"]),
        )
        for row in state.rows("meeting_membership", {"person_id": person_id})
    )
    declarations = tuple(
        disclosure.VitalInterest(
            declaration_id=row["declaration_id"],
            recipients=frozenset(json.loads(row["recipients"])),
            categories=frozenset(json.loads(row["categories"])),
            valid_from=datetime.fromisoformat(row["valid_from"]),
            valid_until=datetime.fromisoformat(row["valid_until"]),
        )
        for row in state.rows("vital_interest", {"person_id": person_id})
    )
    consents = consents_of_rows(
        state.rows("consent", {"person_id": person_id}),
        state.rows("consent_withdrawal", {"person_id": person_id}),
    )
    return disclosure.PersonRecord(
        person_id=person_id,
        recorded_by={c: frozenset(a) for c, a in recorded_by.items()},
        consents=consents,
        memberships=memberships,
        vital_interests=declarations,
    )


def person_record(tx: Transaction, person_id: str) -> disclosure.PersonRecord:
    """The person as ``decide`` reads them now, from the projection's tables."""
    return record_from(TxReader(tx), person_id)
