"""B5: the audit log at ten million entries: who saw a person, and the hash chain verified.

The log: entries shaped as the views append them (a RecordViewed per disclosure, one in a hundred
a refused privacy-officer call; 23 agencies, 100,000 persons, one to four categories each with
its basis, request and trace ids, the view asked for, the journal position, the body's hash),
three seconds apart. They are chained here with the verifier's own hash function and loaded
with COPY into a fresh database whose ``AuditLog`` made the tables and triggers; the two
secondary indexes are built after the load rather than row by row.

- B5.query_p99_ms: ``AuditLog.seen_person`` for random persons (about a hundred entries each),
  p99; baseline: the same rows by one SQL query on one connection;
- B5.verify_per_s: ``AuditLog.verify()`` over the whole chain, in entries a second; baseline:
  the same columns of every entry read in position order through one cursor, nothing checked.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.common import note, percentile, show, stack
from contracts.reference import reference
from services.platform.sql import PostgresDatabase
from services.projection.audit import (
    ACCESS_DENIED,
    HASHED,
    RECORD_VIEWED,
    SORTED,
    TABLES,
    ZERO_HASH,
    AuditLog,
    canonical_json,
    hash_of,
    iso,
)
from tests.infrastructure import Infrastructure

ENTRIES, TINY_ENTRIES = 10_000_000, 10_000
PERSONS, TINY_PERSONS = 100_000, 100
QUERIES, TINY_QUERIES = 2_000, 50
T0 = datetime(2025, 4, 1, tzinfo=UTC)
STORED = (*HASHED, "previous_hash", "entry_hash")
SECONDARY = [s for s in TABLES if s.startswith("CREATE INDEX") and " ON audit_log " in s]
CATEGORIES = ("identity", "contact", "consultation", "plan", "referral_status", "finances")
BASES = (("own_record", None), ("consent", "c-{n}"), ("article9_meeting", "m-{n}"))


def _shown(rng: random.Random) -> tuple[str, str]:
    """An entry's categories and bases columns, as ``AuditEntry.columns`` writes them."""
    shown = {}
    for category in rng.sample(CATEGORIES, rng.randint(1, 4)):
        basis, basis_id = rng.choice(BASES)
        shown[category] = {
            "basis": basis,
            "basis_id": basis_id and basis_id.format(n=rng.randrange(10**6)),
        }
    return canonical_json(list(shown)), canonical_json(shown)


def entries(count: int, persons: int, seed: int = 5) -> Iterator[tuple[Any, ...]]:
    """The log's rows in position order, each column of ``STORED``, chained."""
    rng = random.Random(seed)
    agencies = sorted(reference().agencies)
    people = [f"{rng.getrandbits(128):032x}" for _ in range(persons)]
    shapes = [_shown(rng) for _ in range(500)]
    view = canonical_json({"view": "person"})
    roles = canonical_json(["caseworker"])
    previous = ZERO_HASH
    at = T0
    for position in range(1, count + 1):
        at += timedelta(seconds=3)
        denied = position % 100 == 0
        categories, bases = ("[]", "{}") if denied else rng.choice(shapes)
        row = {
            "position": position,
            "kind": ACCESS_DENIED if denied else RECORD_VIEWED,
            "viewer_staff_id": f"s{position % 12 + 1:03d}",
            "viewer_agency": rng.choice(agencies),
            "viewer_roles": roles,
            "person_id": rng.choice(people),
            "categories": categories,
            "bases": bases,
            "request_id": f"{rng.getrandbits(128):032x}",
            "trace_id": f"{rng.getrandbits(128):032x}",
            "view_request": None if denied else view,
            "recorded_at": iso(at),
            "state_position": None if denied else position,
            "response_hash": None if denied else f"{rng.getrandbits(256):064x}",
            "reason": "the audit needs the privacy_officer role" if denied else None,
            # Whose record was shown: one agency, as a person view of another's facts names.
            "disclosed_by": None if denied else canonical_json([rng.choice(agencies)]),
        }
        current = hash_of(previous, [row[name] for name in SORTED])
        yield (*(row[name] for name in HASHED), previous, current)
        previous = current


def load(database_url: str, count: int, persons: int) -> float:
    """Make the log and COPY ``count`` chained entries in; the seconds it took."""
    database = PostgresDatabase(database_url, "projection")
    AuditLog(database)
    database.close()
    started = time.perf_counter()
    with psycopg.connect(database_url, options="-c search_path=projection") as connection:
        for statement in SECONDARY:
            connection.execute(f"DROP INDEX IF EXISTS {statement.split()[5]}")
        with connection.cursor().copy(f"COPY audit_log ({', '.join(STORED)}) FROM STDIN") as copy:
            for row in entries(count, persons):
                copy.write_row(row)
        for statement in SECONDARY:
            connection.execute(statement)
        connection.commit()
        connection.execute("ANALYZE audit_log")
    return time.perf_counter() - started


def _read_all(database_url: str) -> int:
    read = 0
    with (
        psycopg.connect(database_url, options="-c search_path=projection") as connection,
        connection.cursor(name="baseline") as cursor,
    ):
        cursor.itersize = 20_000
        cursor.execute(f"SELECT {', '.join(STORED)} FROM audit_log ORDER BY position")
        for _ in cursor:
            read += 1
    return read


def run(servers: Infrastructure, *, tiny: bool) -> dict[str, float]:
    count = TINY_ENTRIES if tiny else ENTRIES
    persons = TINY_PERSONS if tiny else PERSONS
    queries = TINY_QUERIES if tiny else QUERIES
    with stack(servers, "b5") as running:
        url = running.database_url
        loaded = load(url, count, persons)
        print(f"  loaded {count:,} entries in {loaded:.0f}s", flush=True)
        with psycopg.connect(url, options="-c search_path=projection") as connection:
            people = [r[0] for r in connection.execute("SELECT DISTINCT person_id FROM audit_log")]
        rng = random.Random(6)
        asked = [rng.choice(people) for _ in range(queries)]

        database = PostgresDatabase(url, "projection")
        log = AuditLog(database)
        try:
            took = []
            for person in asked:
                started = time.perf_counter()
                log.seen_person(person)
                took.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            verification = log.verify()
            verify_seconds = time.perf_counter() - started
        finally:
            database.close()
        assert verification.ok and verification.checked == count, verification

        raw = []
        with psycopg.connect(url, options="-c search_path=projection") as connection:
            for person in asked:
                started = time.perf_counter()
                connection.execute(
                    "SELECT * FROM audit_log WHERE person_id = %s ORDER BY position", (person,)
                ).fetchall()
                raw.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        assert _read_all(url) == count
        read_seconds = time.perf_counter() - started

    note("B5", entries=count, persons=persons, queries=queries, load_seconds=round(loaded, 1))
    query = show(
        "B5.query_p99_ms",
        percentile(took, 0.99),
        "ms",
        baseline=percentile(raw, 0.99),
        of="one SQL query for the rows",
    )
    rate = show(
        "B5.verify_per_s",
        count / verify_seconds,
        "entries/s",
        baseline=count / read_seconds,
        of="every entry read in order, unchecked",
    )
    return {"B5.query_p99_ms": query, "B5.verify_per_s": rate}
