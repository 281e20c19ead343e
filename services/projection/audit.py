"""The audit log: who saw what about a person, on what basis, kept as a tamper-evident hash chain.

Each entry's hash covers its own fields (its position included) and the previous entry's hash, so
changing, removing, reordering or slipping in an entry breaks the chain there; ``verify`` walks
the chain in position order and names the first entry that does not fit. Triggers refuse UPDATE
and DELETE, so tampering needs someone able to drop them: the chain is the proof against exactly
that person. Denied privacy-officer calls are entries of the same chain.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring as _string
from typing import Any

from contracts.disclosure import BASES
from contracts.errors import Conflict, NotFound
from services.platform.pagination import Key, Page
from services.platform.sql import Database, Row, SharedReads, Transaction

ZERO_HASH = "0" * 64
RECORD_VIEWED, ACCESS_DENIED = "record_viewed", "access_denied"
KINDS = (RECORD_VIEWED, ACCESS_DENIED)
VITAL_INTEREST = "vital_interest"
# Besides ``decide``'s bases, what a referral slip about a person not yet registered was sent
# on (the receiver reads it on the slip's own basis).
SLIP_BASES = ("verbal_consent", "community_concern")
AUDIT_BASES = (*BASES, *SLIP_BASES)

# Every column the entry hash covers, in the order they are stored.
HASHED = (
    "position",
    "kind",
    "viewer_staff_id",
    "viewer_agency",
    "viewer_roles",
    "person_id",
    "categories",
    "bases",
    "request_id",
    "trace_id",
    "view_request",
    "recorded_at",
    "state_position",
    "response_hash",
    "reason",
    "disclosed_by",
)
# Columns added after chains were first written: hashed only when set, so that the entries
# written before them keep their hashes.
ADDED_LATER = frozenset({"disclosed_by"})

TABLES = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        position BIGINT PRIMARY KEY,
        kind TEXT NOT NULL,
        viewer_staff_id TEXT NOT NULL,
        viewer_agency TEXT NOT NULL,
        viewer_roles TEXT NOT NULL,
        person_id TEXT,
        categories TEXT NOT NULL,
        bases TEXT NOT NULL,
        request_id TEXT,
        trace_id TEXT,
        view_request TEXT,
        recorded_at TEXT NOT NULL,
        state_position BIGINT,
        response_hash TEXT,
        reason TEXT,
        previous_hash TEXT NOT NULL,
        entry_hash TEXT NOT NULL,
        disclosed_by TEXT
    )""",
    # One row per category shown: what finds the disclosures under one consent or declaration
    # without parsing every entry's JSON. Written in the entry's own transaction.
    """CREATE TABLE IF NOT EXISTS audit_basis (
        position BIGINT NOT NULL,
        category TEXT NOT NULL,
        basis TEXT NOT NULL,
        basis_id TEXT,
        PRIMARY KEY (position, category)
    )""",
    # One row per agency whose record an entry disclosed (its ``disclosed_by``): what finds the
    # disclosures an agency made. Written in the entry's own transaction.
    """CREATE TABLE IF NOT EXISTS audit_discloser (
        position BIGINT NOT NULL,
        agency TEXT NOT NULL,
        PRIMARY KEY (position, agency)
    )""",
    # The RecordViewed events (by CloudEvent id) another service's disclosures came as, so a
    # redelivered one is appended once. Written in the entry's own transaction.
    """CREATE TABLE IF NOT EXISTS audit_source (
        source_id TEXT PRIMARY KEY,
        position BIGINT NOT NULL
    )""",
    # Reviews live outside the chain: reviewing a disclosure must not change the entry.
    """CREATE TABLE IF NOT EXISTS audit_review (
        position BIGINT PRIMARY KEY,
        reviewer_staff_id TEXT NOT NULL,
        note TEXT NOT NULL,
        reviewed_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_log_person ON audit_log (person_id, recorded_at)",
    "CREATE INDEX IF NOT EXISTS audit_log_agency ON audit_log (viewer_agency, recorded_at)",
    "CREATE INDEX IF NOT EXISTS audit_basis_id ON audit_basis (basis_id)",
    "CREATE INDEX IF NOT EXISTS audit_basis_basis ON audit_basis (basis, position)",
    "CREATE INDEX IF NOT EXISTS audit_discloser_agency ON audit_discloser (agency, position)",
)
APPEND_ONLY = ("audit_log", "audit_basis", "audit_review", "audit_discloser", "audit_source")

# Built once: json.dumps with options builds an encoder on every call.
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
# The hashed columns in the order canonical JSON lists them, and the text before each value in
# that JSON: the verifier writes the same text value by value, which is faster than building a
# dict to encode (the columns hold only text, integers and NULL).
SORTED = tuple(sorted(HASHED))
_BEFORE = tuple(("{" if i == 0 else ",") + json.dumps(n) + ":" for i, n in enumerate(SORTED))


def canonical_json(value: Any) -> str:
    return _canonical(value)


def entry_hash(previous_hash: str, hashed: Mapping[str, Any]) -> str:
    return hash_of(previous_hash, [hashed[name] for name in SORTED])


def hash_of(previous_hash: str, values: Sequence[Any]) -> str:
    """``sha256(previous hash + canonical JSON of the hashed fields)``, the fields' values
    given in ``SORTED`` order; a column ``ADDED_LATER`` is left out where it is NULL."""
    parts = [previous_hash]
    for name, before, value in zip(SORTED, _BEFORE, values, strict=True):
        if value is None and name in ADDED_LATER:
            continue
        if type(value) is str:
            parts += (before, _string(value))
        elif value is None:
            parts += (before, "null")
        elif type(value) is int:
            parts += (before, str(value))
        else:
            parts += (before, _canonical(value))
    parts.append("}")
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def iso(at: datetime) -> str:
    """One text form for every instant, so that text order is time order in both databases."""
    if at.tzinfo is None:
        raise ValueError("audit times must carry a UTC offset")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class AuditEntry:
    """What one disclosure (or one refused privacy-officer call) is recorded with."""

    kind: str
    viewer_staff_id: str
    viewer_agency: str
    viewer_roles: tuple[str, ...]
    recorded_at: datetime
    person_id: str | None = None
    # category -> (basis, basis id): the consent, meeting or declaration; None for own_record
    shown: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    request_id: str | None = None
    trace_id: str | None = None
    # Which view answered, with its parameters: what a disclosure replay renders again.
    view_request: Mapping[str, Any] | None = None
    # The event journal's position the response was built from.
    state_position: int | None = None
    response_hash: str | None = None
    reason: str | None = None
    # The agencies whose records the response showed: those that made the disclosure.
    disclosed_by: tuple[str, ...] | None = None

    def columns(self) -> dict[str, Any]:
        if self.kind not in KINDS:
            raise ValueError(f"unknown audit entry kind {self.kind!r}; known: {list(KINDS)}")
        unknown = sorted({basis for basis, _ in self.shown.values()} - set(AUDIT_BASES))
        if unknown:
            raise ValueError(f"unknown bases {unknown}; known: {list(AUDIT_BASES)}")
        return {
            "kind": self.kind,
            "viewer_staff_id": self.viewer_staff_id,
            "viewer_agency": self.viewer_agency,
            "viewer_roles": canonical_json(sorted(self.viewer_roles)),
            "person_id": self.person_id,
            "categories": canonical_json(list(self.shown)),
            "bases": canonical_json(
                {c: {"basis": b, "basis_id": i} for c, (b, i) in self.shown.items()}
            ),
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "view_request": canonical_json(self.view_request) if self.view_request else None,
            "recorded_at": iso(self.recorded_at),
            "state_position": self.state_position,
            "response_hash": self.response_hash,
            "reason": self.reason,
            "disclosed_by": (
                canonical_json(sorted(set(self.disclosed_by)))
                if self.disclosed_by is not None
                else None
            ),
        }


@dataclass(frozen=True)
class AuditRecord:
    """An entry as stored: its place in the chain and its hashes."""

    position: int
    kind: str
    viewer_staff_id: str
    viewer_agency: str
    viewer_roles: list[str]
    person_id: str | None
    categories: list[str]
    bases: dict[str, dict[str, str | None]]
    request_id: str | None
    trace_id: str | None
    view_request: dict[str, Any] | None
    recorded_at: str
    state_position: int | None
    response_hash: str | None
    reason: str | None
    previous_hash: str
    entry_hash: str
    # The agencies whose records were disclosed; None in entries written before it was kept.
    disclosed_by: list[str] | None = None

    @classmethod
    def from_row(cls, row: Row) -> AuditRecord:
        parsed = {name: json.loads(row[name]) for name in ("viewer_roles", "categories", "bases")}
        view = json.loads(row["view_request"]) if row["view_request"] else None
        disclosed = row.get("disclosed_by")
        return cls(
            **{
                **row,
                **parsed,
                "view_request": view,
                "disclosed_by": json.loads(disclosed) if disclosed else None,
            }
        )


def audit_key(record: AuditRecord) -> Key:
    """An entry's place in a page of entries: its position in the chain."""
    return (str(record.position),)


@dataclass(frozen=True)
class Review:
    position: int
    reviewer_staff_id: str
    note: str
    reviewed_at: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad_position: int | None
    problem: str | None
    # What the problem is: altered, deleted, reordered, inserted or broken_link.
    kind: str | None = None


def _with_next(rows: Iterator[Row]) -> Iterator[tuple[Row, Row | None]]:
    current = next(rows, None)
    while current is not None:
        following = next(rows, None)
        yield current, following
        current = following


def _problem(
    row: Row, after: Row | None, before: Row | None, position: int, previous_hash: str
) -> tuple[int, str, str] | None:
    """Where, what and how ``row`` breaks the chain verified up to ``position - 1``, if it
    does: (first bad position, kind, description)."""
    at = row["position"]
    if at > position:
        return position, "deleted", f"deleted: entries {position}..{at - 1} are missing"
    if at < position:
        return at, "inserted", f"inserted: entry {at} is outside the sequence that starts at 1"
    if row["previous_hash"] != previous_hash:
        if before is not None and row["previous_hash"] == before["previous_hash"]:
            first = before["position"]
            return (
                first,
                "inserted",
                f"inserted: entries {first} and {at} both follow entry {first - 1}",
            )
        if after is not None and row["previous_hash"] == after["entry_hash"]:
            return at, "reordered", f"reordered: entry {at} comes after entry {at + 1} in the chain"
        if after is not None and after["previous_hash"] == previous_hash:
            return (
                at,
                "inserted",
                f"inserted: entry {at} does not belong between {at - 1} and {at + 1}",
            )
        return (
            at,
            "broken_link",
            (
                f"broken link: entry {at} does not follow entry {at - 1} "
                "(an entry was removed or the link altered)"
            ),
        )
    if entry_hash(previous_hash, row) != row["entry_hash"]:
        return at, "altered", f"altered: entry {at} no longer matches its hash"
    return None


# Entries from which a PostgreSQL chain is checked in ranges by several processes first: fewer
# are walked sooner than processes start.
PARALLEL_FROM = 200_000
# Entries per range: small enough to spread over the processes, large enough to stream well.
RANGE = 250_000
# Positions per query when looking up the hashes checkpoints signed: well under SQLite's limit
# of bound parameters.
HASHES_PER_QUERY = 500
# Rows per INSERT when appending: a page of entries in one statement, well under SQLite's limit
# of bound parameters (audit_log has about twenty columns).
_ROWS_PER_INSERT = 200


def _sound(shared: SharedReads, entries: int) -> int:
    """How many entries from the first on are sound, checked in ranges side by side.

    The positions are known to be exactly 1..``entries``; an entry is sound when it links to
    the stored hash of the one before and its own hash matches its fields.
    """
    starts = range(1, entries + 1, RANGE)
    lasts = [min(first + RANGE - 1, entries) for first in starts]
    workers = min(len(starts), os.cpu_count() or 1)
    if workers == 1:
        found = [_first_unsound(shared, f, n) for f, n in zip(starts, lasts, strict=True)]
    else:
        # Spawned, not forked: the caller may be a server with threads and open connections.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            found = list(pool.map(_first_unsound, [shared] * len(starts), starts, lasts))
    return next((bad - 1 for bad in found if bad is not None), entries)


def _first_unsound(shared: SharedReads, first: int, last: int) -> int | None:
    """The first entry in ``first``..``last`` that is not sound, read in one stream; or None."""
    columns = ", ".join(("position", "previous_hash", "entry_hash", *SORTED))
    with shared.stream(
        f"SELECT {columns} FROM audit_log WHERE position >= ? AND position <= ? ORDER BY position",
        (max(first - 1, 1), last),
    ) as rows:
        previous = ZERO_HASH
        for row in rows:
            position, linked, stored = row[0], row[1], row[2]
            if position < first:
                previous = stored
            elif linked != previous or hash_of(previous, row[3:]) != stored:
                return int(position)
            else:
                previous = stored
    return None


def _insert(tx: Transaction, appended: Sequence[tuple[AuditEntry, Row, str | None]]) -> None:
    """Entries and their index rows, each table in as few statements as the rows allow: a page
    of persons read together is one round trip per table while the lock is held, not one per
    person."""
    if not appended:
        return
    rows = [row for _, row, _ in appended]
    _insert_rows(tx, "audit_log", tuple(rows[0]), [tuple(row.values()) for row in rows])
    _insert_rows(
        tx,
        "audit_basis",
        ("position", "category", "basis", "basis_id"),
        [
            (row["position"], category, basis, basis_id)
            for entry, row, _ in appended
            for category, (basis, basis_id) in entry.shown.items()
        ],
    )
    _insert_rows(
        tx,
        "audit_discloser",
        ("position", "agency"),
        [
            (row["position"], agency)
            for entry, row, _ in appended
            for agency in sorted(set(entry.disclosed_by or ()))
        ],
    )
    _insert_rows(
        tx,
        "audit_source",
        ("source_id", "position"),
        [(source, row["position"]) for _, row, source in appended if source is not None],
    )


def _insert_rows(
    tx: Transaction, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    one = "(" + ", ".join("?" for _ in columns) + ")"
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        tx.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join(one for _ in chunk),
            [value for row in chunk for value in row],
        )


def _appended_as(tx: Transaction, source: str) -> AuditRecord | None:
    row = tx.fetchone(
        "SELECT l.* FROM audit_log l JOIN audit_source s ON s.position = l.position "
        "WHERE s.source_id = ?",
        (source,),
    )
    return AuditRecord.from_row(row) if row is not None else None


def _head(tx: Transaction) -> tuple[int, str]:
    last = tx.fetchone("SELECT position, entry_hash FROM audit_log ORDER BY position DESC LIMIT 1")
    return (int(last["position"]), str(last["entry_hash"])) if last else (0, ZERO_HASH)


class AuditLog:
    """The append-only, hash-chained record of every disclosure, on the views' database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        with database.transaction() as tx:
            for statement in TABLES:
                tx.execute(statement)
            tx.append_only(APPEND_ONLY)
            # A chain's table made before the columns ``ADDED_LATER``: NULL in its old entries,
            # which the hash leaves out.
            tx.add_columns("audit_log", {column: "TEXT" for column in sorted(ADDED_LATER)})

    def append(self, entry: AuditEntry) -> AuditRecord:
        [record] = self.append_all([entry])
        return record

    def append_all(
        self, entries: Sequence[AuditEntry], sources: Sequence[str | None] | None = None
    ) -> list[AuditRecord]:
        """Append ``entries`` in order, in one transaction (a page of persons read together).

        ``sources``: for each entry, the id of the RecordViewed event it came as, or None; an
        event appended before is not appended again, and its entry is returned as stored.
        """
        columns = [entry.columns() for entry in entries]
        from_events = sources if sources is not None else [None] * len(entries)
        records: list[AuditRecord] = []
        with self.database.transaction() as tx:
            # Each position is max + 1 and links to the last hash: appends must take turns.
            tx.lock_for_append("audit_log")
            last, previous = _head(tx)
            appended: list[tuple[AuditEntry, Row, str | None]] = []
            # A producer that retried under a fault may put one event twice on the topic, so
            # one batch can hold it twice: it is appended the first time only.
            staged: dict[str, AuditRecord] = {}
            for entry, values, source in zip(entries, columns, from_events, strict=True):
                if source is not None:
                    known = staged.get(source) or _appended_as(tx, source)
                    if known is not None:
                        records.append(known)
                        continue
                last += 1
                hashed = {"position": last, **values}
                row = {
                    **hashed,
                    "previous_hash": previous,
                    "entry_hash": entry_hash(previous, hashed),
                }
                appended.append((entry, row, source))
                previous = row["entry_hash"]
                records.append(AuditRecord.from_row(row))
                if source is not None:
                    staged[source] = records[-1]
            _insert(tx, appended)
        return records

    def verify(self, batch_size: int = 10_000, parallel_from: int = PARALLEL_FROM) -> Verification:
        """Walk the chain in position order, ``batch_size`` rows in memory at a time.

        Where the database serves processes side by side (PostgreSQL), a chain of
        ``parallel_from`` entries or more is first checked in ranges, in processes of their own
        (see ``_sound``): each entry's hash depends only on its own fields and the previous
        entry's stored hash, so a range needs nothing from the others but that one hash. The
        walk then starts at the first entry a range found wrong (if any), where it stands
        exactly as it would have after walking every entry before it, and names the problem as
        it always does.
        """
        position, previous_hash, before = 1, ZERO_HASH, None
        shared = self.database.shared_reads()
        if shared is not None:
            entries = self._entries()
            if entries is not None and entries >= max(parallel_from, 1):
                sound = _sound(shared, entries)
                if sound == entries:
                    return Verification(True, entries, None, None)
                if sound > 0:
                    before = self._row(sound)
                    position, previous_hash = sound + 1, before["entry_hash"]
        for row, after in _with_next(self._rows(batch_size, position - 1 if before else None)):
            problem = _problem(row, after, before, position, previous_hash)
            if problem is not None:
                first_bad, kind, description = problem
                # Everything before the first bad entry is sound (none, if it sits before 1).
                return Verification(False, max(first_bad - 1, 0), first_bad, description, kind)
            position, previous_hash, before = position + 1, row["entry_hash"], row
        return Verification(True, position - 1, None, None)

    def head(self) -> tuple[int, str]:
        """The last entry's position and hash: what a checkpoint signs (0 and zeros if none)."""
        with self.database.transaction() as tx:
            return _head(tx)

    def hashes_at(self, positions: Iterable[int]) -> dict[int, str]:
        """The stored hash of each entry asked for that exists."""
        wanted = sorted(set(positions))
        found: dict[int, str] = {}
        for start in range(0, len(wanted), HASHES_PER_QUERY):
            chunk = wanted[start : start + HASHES_PER_QUERY]
            with self.database.transaction() as tx:
                rows = tx.fetchall(
                    "SELECT position, entry_hash FROM audit_log WHERE position IN "
                    f"({', '.join('?' for _ in chunk)})",
                    chunk,
                )
            found.update((int(row["position"]), str(row["entry_hash"])) for row in rows)
        return found

    def _entries(self) -> int | None:
        """How many entries there are, when their positions are exactly 1..that (else None)."""
        with self.database.transaction() as tx:
            row = tx.fetchone(
                "SELECT COUNT(*) AS n, MIN(position) AS low, MAX(position) AS high FROM audit_log"
            )
        if row is None or row["n"] == 0 or row["low"] != 1 or row["high"] != row["n"]:
            return None
        return int(row["n"])

    def _row(self, position: int) -> Row:
        with self.database.transaction() as tx:
            row: Row | None = tx.fetchone("SELECT * FROM audit_log WHERE position = ?", (position,))
        assert row is not None, f"entry {position} was there a moment ago"
        return row

    def _rows(self, batch_size: int, after: int | None = None) -> Iterator[Row]:
        # Keyset pages: the first without a lower bound unless told where to start, so a row
        # forged at position 0 or below is read too. Appends commit in position order, so a
        # page never skips a later row.
        last = after
        while True:
            with self.database.transaction() as tx:
                if last is None:
                    rows = tx.fetchall(
                        "SELECT * FROM audit_log ORDER BY position LIMIT ?", (batch_size,)
                    )
                else:
                    rows = tx.fetchall(
                        "SELECT * FROM audit_log WHERE position > ? ORDER BY position LIMIT ?",
                        (last, batch_size),
                    )
            yield from rows
            if len(rows) < batch_size:
                return
            last = rows[-1]["position"]

    def entry(self, position: int, *, involving: str | None = None) -> AuditRecord:
        """The entry at ``position``; with ``involving``, only if that agency received or made
        the disclosure (``_select``)."""
        [*found] = self._select("position = ?", (position,), involving=involving)
        if not found:
            raise NotFound(f"the audit log has no entry {position}")
        return found[0]

    def seen_person(
        self,
        person_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        agency: str | None = None,
        page: Page | None = None,
        involving: str | None = None,
    ) -> list[AuditRecord]:
        """Every entry about this person, ``since`` inclusive, ``until`` exclusive; with
        ``agency``, only its staff's; with ``page``, one keyset page (``audit_key``)."""
        condition, params = "person_id = ?", [person_id]
        if agency is not None:
            condition += " AND viewer_agency = ?"
            params.append(agency)
        return self._select(condition, params, since, until, page, involving)

    def seen_by_agency(
        self,
        agency: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        page: Page | None = None,
        involving: str | None = None,
    ) -> list[AuditRecord]:
        return self._select("viewer_agency = ?", (agency,), since, until, page, involving)

    def under_consent(self, consent_id: str, *, involving: str | None = None) -> list[AuditRecord]:
        """What was disclosed under this consent: who already has what if it is withdrawn."""
        return self._select(
            "position IN (SELECT position FROM audit_basis WHERE basis = ? AND basis_id = ?)",
            ("consent", consent_id),
            involving=involving,
        )

    def vital_interest_pending(self, *, involving: str | None = None) -> list[AuditRecord]:
        return self._select(
            "position IN (SELECT position FROM audit_basis WHERE basis = ?) "
            "AND position NOT IN (SELECT position FROM audit_review)",
            (VITAL_INTEREST,),
            involving=involving,
        )

    def review(self, position: int, reviewer_staff_id: str, note: str) -> Review:
        """Record a privacy officer's review of a vital-interest disclosure, once."""
        review = Review(position, reviewer_staff_id, note, iso(datetime.now(UTC)))
        with self.database.transaction() as tx:
            if not self._pending(tx, position) or not tx.execute(
                "INSERT INTO audit_review (position, reviewer_staff_id, note, reviewed_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (position) DO NOTHING",
                (position, reviewer_staff_id, note, review.reviewed_at),
            ):
                raise Conflict(
                    f"entry {position} is not a vital-interest disclosure awaiting review",
                    position=position,
                )
        return review

    @staticmethod
    def _pending(tx: Transaction, position: int) -> bool:
        return (
            tx.fetchone(
                "SELECT position FROM audit_basis WHERE position = ? AND basis = ? LIMIT 1",
                (position, VITAL_INTEREST),
            )
            is not None
        )

    def _select(
        self,
        condition: str,
        params: Sequence[Any],
        since: datetime | None = None,
        until: datetime | None = None,
        page: Page | None = None,
        involving: str | None = None,
    ) -> list[AuditRecord]:
        """``involving``: only the entries in which that agency received the disclosure (its
        staff read) or made it (its record was shown): what an own-agency privacy officer
        audits."""
        clauses, values = [condition], list(params)
        if involving is not None:
            clauses.append(
                "(viewer_agency = ? OR position IN "
                "(SELECT position FROM audit_discloser WHERE agency = ?))"
            )
            values += [involving, involving]
        if since is not None:
            clauses.append("recorded_at >= ?")
            values.append(iso(since))
        if until is not None:
            clauses.append("recorded_at < ?")
            values.append(iso(until))
        limit = ""
        if page is not None:
            after = page.after_number()
            if after is not None:
                clauses.append("position > ?")
                values.append(after)
            limit = " LIMIT ?"
            values.append(page.fetch)
        with self.database.transaction() as tx:
            rows = tx.fetchall(
                f"SELECT * FROM audit_log WHERE {' AND '.join(clauses)} ORDER BY position{limit}",
                tuple(values),
            )
        return [AuditRecord.from_row(row) for row in rows]
