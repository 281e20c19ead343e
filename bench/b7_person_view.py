"""B7: a person view read by an agency, among 50,000 persons.

The persons: lifecycles from ``bench.load`` (consultations, consents, referrals, plans,
meetings, closures) in one municipality, applied through the views feed (``project``) into a
fresh PostgreSQL schema; about half of them register a person (the others consult without
one). Then, in this process, ``GET /persons/{id}`` (the desk's person page calls it; embedded
mode serves it as ``/views/persons/{id}``) through FastAPI's TestClient on the projection
service's app (authentication, the view decided at the read instant, the audit entry each
disclosure appends, the JSON body), as a caseworker of the social welfare council
(``AGENCY``), for registered persons drawn at random: the council has a basis (a consent, a
referral) for about a quarter of them and none for the others, whose answer withholds every
category. Figures: p50, p95 and p99 of all reads (B7.p99_ms), and of each kind apart.

Baseline: what a view decided at read needs at least, the person's facts (``category_facts``,
a record per category) and consents (``consent``), one query each by person id on one psycopg
connection. Read and baseline are timed in turns (``side_by_side``): reads with a view append
to the audit chain, and both meet the same chain and the same checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from bench.common import (
    detail,
    machine_cpu_seconds,
    note,
    percentile,
    project,
    show,
    side_by_side,
    stack,
    token,
)
from bench.load import JST, NEW_PER_YEAR, Generated, LoadProfile, event_stream
from services.platform.settings import Settings
from services.wiring import projection_app
from tests.infrastructure import Infrastructure, provide

PERSONS, TINY_PERSONS = 50_000, 300
REQUESTS, TINY_REQUESTS = 2_000, 40
WARMUP = 20
BATCH = 5_000
SEED = 20250707
# The lifecycles' arrivals are spread over the months before today, however many: a read now
# meets consents in force, lapsed and yet to come. (At Zama's own rate from a fixed start,
# 50,000 lifecycles would span 120 years; at the read nearly every consent would have lapsed
# or be yet to come, and a partner would be shown its own records only.)
WINDOW = timedelta(days=548)
# A partner with a basis for some of the office's persons and none for most: both ways of
# answering are measured. (The office itself registers everyone, so it sees them all.)
AGENCY = "zama-shakyo"
ROLE = "caseworker"
BASELINE = (
    "SELECT * FROM projection.category_facts WHERE person_id = %s",
    "SELECT * FROM projection.consent WHERE person_id = %s",
)
SHARES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


class Readable:
    """The persons a desk can read, noted from the events on their way to the views: those
    registered, less duplicates merged into another while merged (their read answers 409,
    naming the survivor), in the order they were registered."""

    def __init__(self) -> None:
        self._registered: dict[str, None] = {}
        self._merged: set[str] = set()

    def passing(self, events: Iterable[Generated]) -> Iterator[Generated]:
        for event in events:
            if event.person is not None:
                if event.name == "PersonRegistered":
                    self._registered[event.person] = None
                elif event.name == "PersonsMerged":
                    self._merged.add(event.person)
                elif event.name == "PersonsUnmerged":
                    self._merged.discard(event.person)
            yield event

    @property
    def persons(self) -> list[str]:
        return [person for person in self._registered if person not in self._merged]


def profile(lifecycles: int) -> LoadProfile:
    """``lifecycles`` arriving in one municipality over the ``WINDOW`` before today."""
    today = datetime.now(JST).replace(hour=9, minute=0, second=0, microsecond=0)
    per_year = lifecycles / (WINDOW / timedelta(days=365))
    return LoadProfile(SEED, 1, per_year / NEW_PER_YEAR, today - WINDOW)


def population(settings: Settings, lifecycles: int) -> tuple[list[str], int]:
    """``lifecycles`` (``profile``) applied to the views of ``settings``: the persons a desk
    can read, and the number of events applied."""
    readable = Readable()
    events = readable.passing(event_stream(profile(lifecycles), lifecycles, settings))
    store, applied = project(settings, events, "b7", BATCH)
    store.database.close()
    return readable.persons, applied


class Reads:
    """Reads of persons' views as ``agency``'s caseworker, through the views app; the last
    answer to each person is kept, to tell afterwards whether it showed anything."""

    def __init__(self, client: TestClient, agency: str = AGENCY) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {token(agency, ROLE)}"}
        self._bodies: dict[str, bytes] = {}

    def __call__(self, person: str) -> object:
        answer = self._client.get(f"/persons/{person}", headers=self._headers)
        assert answer.status_code == 200, answer.text[:500]
        # Parsed only afterwards: parsing is the caller's work, not the service's.
        self._bodies[person] = answer.content
        return answer.content

    def bases(self, person: str) -> frozenset[str]:
        """The kinds of basis the last read of the person showed categories on: none when it
        showed the agency nothing."""
        shown = json.loads(self._bodies[person])["categories"]
        return frozenset(category["basis"]["kind"] for category in shown)


def spread(times: list[float]) -> dict[str, float]:
    return {name: round(percentile(times, share), 2) for name, share in SHARES.items()}


def measure(servers: Infrastructure, lifecycles: int, requests: int) -> dict[str, float]:
    with stack(servers, "b7") as running:
        settings = running.settings()
        began = time.monotonic()
        persons, events = population(settings, lifecycles)
        populated = time.monotonic() - began
        rng = random.Random(7)
        chosen = [rng.choice(persons) for _ in range(requests + WARMUP)]
        with (
            TestClient(projection_app(settings)) as client,
            psycopg.connect(running.database_url, autocommit=True) as connection,
        ):
            read = Reads(client)

            def raw(person: str) -> object:
                return [connection.execute(query, (person,)).fetchall() for query in BASELINE]

            load_at_reads = os.getloadavg()
            started = machine_cpu_seconds()
            took, baseline = side_by_side(read, raw, chosen, WARMUP)
            ended = machine_cpu_seconds()
    busy, total = (end - start for start, end in zip(started, ended, strict=True))
    bases = [read.bases(person) for person in chosen[WARMUP:]]
    with_view = [t for t, shown in zip(took, bases, strict=True) if shown]
    without = [t for t, shown in zip(took, bases, strict=True) if not shown]
    if not (with_view and without):
        raise RuntimeError(f"{AGENCY} was shown {len(with_view)} of {len(took)}: not both kinds")
    note(
        "B7",
        lifecycles=lifecycles,
        events=events,
        persons=len(persons),
        population_seconds=round(populated, 1),
        agency=AGENCY,
        requests=requests,
        reads_with_a_view=len(with_view),
        reads_by_bases=dict(Counter("+".join(sorted(shown)) or "none" for shown in bases)),
        with_a_view_ms=spread(with_view),
        without_a_view_ms=spread(without),
        load_average_at_reads=[round(load, 2) for load in load_at_reads],
        machine_busy_share_during_reads=round(busy / total, 3),
        path="GET /persons/{id} through FastAPI's TestClient, PostgreSQL",
    )
    of = "the person's facts and consents, one query each"
    figures = {
        f"B7.{name}_ms": show(
            f"B7.{name}_ms",
            percentile(took, share),
            "ms",
            baseline=percentile(baseline, share),
            of=of,
        )
        for name, share in SHARES.items()
    }
    return {"B7.p99_ms": figures["B7.p99_ms"]}


def run(servers: Infrastructure, *, tiny: bool) -> dict[str, float]:
    if tiny:
        return measure(servers, TINY_PERSONS, TINY_REQUESTS)
    return measure(servers, PERSONS, REQUESTS)


def main(argv: Sequence[str] | None = None) -> None:
    """B7 at a size of one's choosing (``python -m bench.b7_person_view --persons 5000``): its
    figures and notes printed, none kept (``bench.run`` keeps those of the real size)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--persons", type=int, default=PERSONS, help="lifecycles generated")
    parser.add_argument("--requests", type=int, default=REQUESTS)
    args = parser.parse_args(argv)
    with provide() as servers:
        measure(servers, args.persons, args.requests)
    json.dump(detail()["B7"], sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
