"""``python -m bench.document_fold``: what #17's own design costs an event, beside the floor.

B3 asks the views' catch-up for 20,000 events/s from 2 replicas on 2 cores, which share them
with PostgreSQL and Kafka: at most 100 µs of CPU an event, for everything. This measures, in
one process on the tests' PostgreSQL, two ways of consuming the same generated events (B3's
backlog, ``bench.load``):

- the floor: B3's own (``JournalOnly``): each message parsed and validated and journalled by
  COPY, one transaction per batch;
- the sketch of #17's design, with nothing else: the floor, then each event folded in memory
  into one document per person (or per subject, while the person is unknown): a timeline entry
  per data category with its fields, each field's current value with its provenance, and the
  bases' scopes. The fields and categories are those of the real views
  (``person_facts._by_category``). Each document the batch touched is read once and written
  once, as JSONB, by COPY into a stage and one merge.

The sketch leaves out what the real views also keep (statistics, referral boxes, the
consultation list, the name index, processed ids, basis ends, attaching waiting records), so
what it costs bounds the design from below. Each figure is this process's CPU (Python) and the
database's server processes' CPU, per event.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.b3_catchup import EVENTS_PER_PERSON, PROFILE, JournalOnly
from bench.common import backend_cpu_seconds, checkpoint, stack
from bench.load import event_stream
from contracts.envelope import CloudEvent
from contracts.events import (
    ConsentRecorded,
    ConsentWithdrawn,
    IntegrationEvent,
    VitalInterestDeclared,
)
from contracts.topics import Topics
from services.platform.bus import Message
from services.projection.person_facts import (
    CATEGORY_OF,
    _audience,
    _basis_summary,
    _by_category,
    _subject,
    utc,
)
from tests.infrastructure import Infrastructure, provide

EVENTS = 100_000
BATCH = 50_000  # as B3's catch-up (``rebuild.BATCH``)
# Two cores at B3's target: the CPU an event may cost, everything included.
BUDGET_US = 2 / 20_000 * 1e6

Document = dict[str, Any]


def about(event: CloudEvent, data: IntegrationEvent) -> str:
    """Whose document an event goes into: its person's, else its subject's (a consultation
    opened anonymously, a provisional slip)."""
    person = getattr(data, "person_id", None)
    return str(person) if person is not None else _subject(data)


def new_document() -> Document:
    return {"timeline": [], "facts": {}, "bases": []}


def fold(document: Document, event: CloudEvent, data: IntegrationEvent) -> None:
    """``event`` into ``document``: its timeline entries, the facts it sets and the bases it
    records, as the views' tables keep them today."""
    recorded_at = utc(event.time)
    at = utc(data.at) if hasattr(data, "at") else recorded_at
    agency = getattr(data, "agency", event.source)
    if isinstance(data, ConsentRecorded | ConsentWithdrawn | VitalInterestDeclared):
        scope = _basis_summary(data)
        document["bases"].append([data.name, at, scope])
        document["timeline"].append([event.id, None, agency, at, recorded_at, data.name, scope])
        return
    if data.name not in CATEGORY_OF:
        return
    for category, fields in _by_category(data, _subject(data)).items():
        document["timeline"].append(
            [event.id, category, agency, at, recorded_at, data.name, fields]
        )
        facts = document["facts"].setdefault(category, {})
        provenance = [agency, _audience(data, category), at, event.id]
        for field, value in fields.items():
            facts[field] = [value, *provenance]


@dataclass(frozen=True)
class Cost:
    events_per_s: float
    python_us: float
    postgres_us: float

    @property
    def total_us(self) -> float:
        return self.python_us + self.postgres_us


class DocumentFold(JournalOnly):
    """The floor, then each touched document read once and written once, in the floor's
    transaction."""

    @staticmethod
    def create_documents(database_url: str) -> None:
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS sketch_document")
            connection.execute(
                "CREATE TABLE sketch_document (about TEXT PRIMARY KEY, document JSONB NOT NULL)"
            )

    def consume_batch(self, messages: Sequence[Message]) -> list[str]:
        journalled = self.journal(messages)
        owners = [about(event, data) for event, data in journalled]
        cursor = self._connection.cursor()
        documents: dict[str, Document] = dict(
            cursor.execute(
                "SELECT about, document FROM sketch_document WHERE about = ANY(%s)",
                (list(set(owners)),),
            ).fetchall()
        )
        for (event, data), owner in zip(journalled, owners, strict=True):
            if owner not in documents:
                documents[owner] = new_document()
            fold(documents[owner], event, data)
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS sketch_stage (about TEXT, document JSONB) "
            "ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY sketch_stage (about, document) FROM STDIN") as copy:
            for owner, document in documents.items():
                copy.write_row((owner, json.dumps(document, ensure_ascii=False)))
        cursor.execute(
            "INSERT INTO sketch_document SELECT about, document FROM sketch_stage "
            "ON CONFLICT (about) DO UPDATE SET document = excluded.document"
        )
        self._connection.commit()
        return [event.id for event, _ in journalled]


def measure(database_url: str, messages: Sequence[Message], documents: bool) -> Cost:
    """``messages`` consumed in batches of ``BATCH`` by B3's floor, or by the sketch, into
    empty tables."""
    JournalOnly.create(database_url)
    if documents:
        DocumentFold.create_documents(database_url)
    checkpoint(database_url)
    consumer = DocumentFold(database_url) if documents else JournalOnly(database_url)
    try:
        server = sum(backend_cpu_seconds(database_url).values())
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(messages), BATCH):
            consumer.consume_batch(messages[start : start + BATCH])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        server = sum(backend_cpu_seconds(database_url).values()) - server
    finally:
        consumer.close()
    JournalOnly.drop(database_url)
    count = len(messages)
    return Cost(count / wall, cpu / count * 1e6, server / count * 1e6)


def compare(servers: Infrastructure, events: int, rounds: int) -> list[tuple[str, Cost]]:
    """The floor and the sketch over the same ``events`` generated events, in turns, ``rounds``
    times each, in a database of their own; each printed as it is measured."""
    measured: list[tuple[str, Cost]] = []
    with stack(servers, "fold") as running:
        settings = running.settings()
        assert settings.database_url
        persons = events // EVENTS_PER_PERSON + 1
        generated = itertools.islice(event_stream(PROFILE, persons, settings), events)
        topics = Topics(settings.topic_prefix)
        messages = [Message(topics.events(g.service), g.key, g.value) for g in generated]
        print(f"{len(messages):,} events; B3's target leaves {BUDGET_US:.0f} µs CPU an event")
        for _, documents in itertools.product(range(rounds), (False, True)):
            name = "sketch" if documents else "floor"
            cost = measure(settings.database_url, messages, documents)
            print(
                f"{name:6}: {cost.events_per_s:8,.0f} events/s in one process; Python "
                f"{cost.python_us:5.1f} µs, PostgreSQL {cost.postgres_us:5.1f} µs, together "
                f"{cost.total_us:5.1f} µs an event",
                flush=True,
            )
            measured.append((name, cost))
    return measured


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--rounds", type=int, default=2, help="floor and sketch, in turns")
    args = parser.parse_args(argv)
    with provide() as servers:
        compare(servers, args.events, args.rounds)


if __name__ == "__main__":
    main()
