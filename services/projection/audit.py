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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts.disclosure import BASES
from contracts.errors import Conflict, NotFound
from services.platform.sql import Database, Row, Transaction

ZERO_HASH = "0" * 64
RECORD_VIEWED, ACCESS_DENIED = "record_viewed", "access_denied"
KINDS = (RECORD_VIEWED, ACCESS_DENIED)
VITAL_INTEREST = "vital_interest"

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
)

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
        entry_hash TEXT NOT NULL
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
)
APPEND_ONLY = ("audit_log", "audit_basis", "audit_review")

# No "%" or "?" below: the PostgreSQL adapter rewrites "?" and psycopg reads "%".
POSTGRES_REFUSE = """CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused';
END
$$"""


def _append_only_ddl(dialect: str) -> list[str]:
    if dialect == "postgresql":
        statements = [POSTGRES_REFUSE]
        for table in APPEND_ONLY:
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
            ]
        return statements
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE {operation} "
        f"ON {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
        for table in APPEND_ONLY
        for operation in ("UPDATE", "DELETE")
    ]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(previous_hash: str, hashed: Mapping[str, Any]) -> str:
    fields = {name: hashed[name] for name in HASHED}
    return hashlib.sha256((previous_hash + canonical_json(fields)).encode()).hexdigest()


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

    def columns(self) -> dict[str, Any]:
        if self.kind not in KINDS:
            raise ValueError(f"unknown audit entry kind {self.kind!r}; known: {list(KINDS)}")
        unknown = sorted({basis for basis, _ in self.shown.values()} - set(BASES))
        if unknown:
            raise ValueError(f"unknown bases {unknown}; known: {list(BASES)}")
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

    @classmethod
    def from_row(cls, row: Row) -> AuditRecord:
        parsed = {name: json.loads(row[name]) for name in ("viewer_roles", "categories", "bases")}
        view = json.loads(row["view_request"]) if row["view_request"] else None
        return cls(**{**row, **parsed, "view_request": view})


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


def _with_next(rows: Iterator[Row]) -> Iterator[tuple[Row, Row | None]]:
    current = next(rows, None)
    while current is not None:
        following = next(rows, None)
        yield current, following
        current = following


def _problem(
    row: Row, after: Row | None, before: Row | None, position: int, previous_hash: str
) -> tuple[int, str] | None:
    """Where and how ``row`` breaks the chain verified up to ``position - 1``, if it does."""
    at = row["position"]
    if at > position:
        return position, f"deleted: entries {position}..{at - 1} are missing"
    if at < position:
        return at, f"inserted: entry {at} is outside the sequence that starts at 1"
    if row["previous_hash"] != previous_hash:
        if before is not None and row["previous_hash"] == before["previous_hash"]:
            first = before["position"]
            return first, f"inserted: entries {first} and {at} both follow entry {first - 1}"
        if after is not None and row["previous_hash"] == after["entry_hash"]:
            return at, f"reordered: entry {at} comes after entry {at + 1} in the chain"
        if after is not None and after["previous_hash"] == previous_hash:
            return at, f"inserted: entry {at} does not belong between {at - 1} and {at + 1}"
        return at, (
            f"broken link: entry {at} does not follow entry {at - 1} "
            "(an entry was removed or the link altered)"
        )
    if entry_hash(previous_hash, row) != row["entry_hash"]:
        return at, f"altered: entry {at} no longer matches its hash"
    return None


class AuditLog:
    """The append-only, hash-chained record of every disclosure, on the views' database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        with database.transaction() as tx:
            for statement in (*TABLES, *_append_only_ddl(database.dialect)):
                tx.execute(statement)

    def append(self, entry: AuditEntry) -> AuditRecord:
        columns = entry.columns()
        with self.database.transaction() as tx:
            if self.database.dialect == "postgresql":
                # Each position is max + 1 and links to the last hash: appends must take turns.
                # EXCLUSIVE still lets the verifier and the queries read meanwhile.
                tx.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            last = tx.fetchone(
                "SELECT position, entry_hash FROM audit_log ORDER BY position DESC LIMIT 1"
            )
            position = int(last["position"]) + 1 if last else 1
            previous = str(last["entry_hash"]) if last else ZERO_HASH
            hashed = {"position": position, **columns}
            row = {**hashed, "previous_hash": previous, "entry_hash": entry_hash(previous, hashed)}
            tx.execute(
                f"INSERT INTO audit_log ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                tuple(row.values()),
            )
            for category, (basis, basis_id) in entry.shown.items():
                tx.execute(
                    "INSERT INTO audit_basis (position, category, basis, basis_id) "
                    "VALUES (?, ?, ?, ?)",
                    (position, category, basis, basis_id),
                )
        return AuditRecord.from_row(row)

    def verify(self, batch_size: int = 10_000) -> Verification:
        """Walk the chain in position order, ``batch_size`` rows in memory at a time."""
        position, previous_hash, before = 1, ZERO_HASH, None
        for row, after in _with_next(self._rows(batch_size)):
            problem = _problem(row, after, before, position, previous_hash)
            if problem is not None:
                first_bad, description = problem
                # Everything before the first bad entry is sound (none, if it sits before 1).
                return Verification(False, max(first_bad - 1, 0), first_bad, description)
            position, previous_hash, before = position + 1, row["entry_hash"], row
        return Verification(True, position - 1, None, None)

    def _rows(self, batch_size: int) -> Iterator[Row]:
        # Keyset pages: the first without a lower bound, so a row forged at position 0 or below
        # is read too. Appends commit in position order, so a page never skips a later row.
        last: int | None = None
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

    def entry(self, position: int) -> AuditRecord:
        with self.database.transaction() as tx:
            row = tx.fetchone("SELECT * FROM audit_log WHERE position = ?", (position,))
        if row is None:
            raise NotFound(f"the audit log has no entry {position}")
        return AuditRecord.from_row(row)

    def seen_person(
        self, person_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRecord]:
        """Every entry about this person, ``since`` inclusive, ``until`` exclusive."""
        return self._select("person_id = ?", (person_id,), since, until)

    def seen_by_agency(
        self, agency: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRecord]:
        return self._select("viewer_agency = ?", (agency,), since, until)

    def under_consent(self, consent_id: str) -> list[AuditRecord]:
        """What was disclosed under this consent: who already has what if it is withdrawn."""
        return self._select(
            "position IN (SELECT position FROM audit_basis WHERE basis = ? AND basis_id = ?)",
            ("consent", consent_id),
        )

    def vital_interest_pending(self) -> list[AuditRecord]:
        return self._select(
            "position IN (SELECT position FROM audit_basis WHERE basis = ?) "
            "AND position NOT IN (SELECT position FROM audit_review)",
            (VITAL_INTEREST,),
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
    ) -> list[AuditRecord]:
        clauses, values = [condition], list(params)
        if since is not None:
            clauses.append("recorded_at >= ?")
            values.append(iso(since))
        if until is not None:
            clauses.append("recorded_at < ?")
            values.append(iso(until))
        with self.database.transaction() as tx:
            rows = tx.fetchall(
                f"SELECT * FROM audit_log WHERE {' AND '.join(clauses)} ORDER BY position",
                tuple(values),
            )
        return [AuditRecord.from_row(row) for row in rows]
