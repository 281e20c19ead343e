"""B4: a 500-event case replayed as of a random instant.

The case: lifecycles from ``bench.load`` (consultations, consents, referrals, plans, meetings,
closures), their person ids rewritten to one person, until that person has 500 events; applied
with other persons' events (``BACKGROUND``) through the views feed (``FeedRunner``) into a
fresh PostgreSQL schema. Then, in this process, ``GET /persons/{id}/as-of?at=T`` through FastAPI's
TestClient on the projection service's app (authentication, ``person_documents.case_as_of``,
the audit entry each disclosure appends, the JSON body), as a meeting organiser of the support
office, for random instants T between the person's first and last event: B4.p99_ms.

Baseline: the same person's timeline rows up to T, read by one SQL query on one connection.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from fastapi.testclient import TestClient

from bench.common import OFFICE, note, percentile, project, show, stack, timings, token
from bench.load import Generated, LoadProfile, Relaying, event_stream, lifecycles, render_events
from contracts.reference import reference
from services.platform.keys import KeyStore
from services.platform.sealing import Sealer
from services.wiring import key_store, projection_app
from tests.infrastructure import Infrastructure

CASE_EVENTS = 500
BACKGROUND, TINY_BACKGROUND = 50_000, 1_000
REQUESTS, TINY_REQUESTS = 2_000, 40
WARMUP = 20
PROFILE = LoadProfile(seed=20250404)
PERSON = "0b4e1a5e-0000-4000-8000-000000000500"


class _AsThePerson(Sealer):
    """Seals what is about ``lent`` (the person whose lifecycle is being rendered) under the
    one person's key instead, as intake seals a person's values under their own; any other
    subject's (an anonymous consultation's) under its own."""

    lent: UUID | None = None

    def seal(self, subject: UUID, value: Any, at: datetime) -> Any:
        return super().seal(UUID(PERSON) if subject == self.lent else subject, value, at)


def case_events(keys: KeyStore) -> list[Generated]:
    """Whole lifecycles of other persons of the office's municipality (the views know a person
    only in the municipality that registered them), made the one person's, up to
    ``CASE_EVENTS``: their ids rewritten, their values sealed under the person's key."""
    events: list[Generated] = []
    home = reference().agencies[OFFICE].municipality
    sealer = _AsThePerson(keys)
    relaying = Relaying(sealer)
    for life in (life for life in lifecycles(PROFILE, 1_000) if life.municipality == home):
        sealer.lent = UUID(life.person_id)
        mine = [
            g._replace(
                key=g.key.replace(life.person_id, PERSON),
                value=g.value.replace(life.person_id.encode(), PERSON.encode()),
                person=PERSON if g.person else None,
            )
            for g in render_events(life, PROFILE.seed, relaying)
        ]
        events += mine[: CASE_EVENTS - len(events)]
        if len(events) == CASE_EVENTS:
            return events
    raise RuntimeError(f"fewer than {CASE_EVENTS} events in the lifecycles generated")


def run(servers: Infrastructure, *, tiny: bool) -> dict[str, float]:
    background = TINY_BACKGROUND if tiny else BACKGROUND
    requests = TINY_REQUESTS if tiny else REQUESTS
    with stack(servers, "b4") as running:
        settings = running.settings()
        # Sealed under keys kept where the views open them, as the relays' events are.
        keys = key_store(settings)
        try:
            case = case_events(keys)
        finally:
            keys.close()
        others = event_stream(LoadProfile(seed=4), background // 9, settings)
        # The case's events arrive among the others, in business-time order.
        backlog = sorted([*case, *itertools.islice(others, background)], key=lambda g: g.at)
        first, last = min(g.at for g in case), max(g.at for g in case)
        rng = random.Random(4)
        instants = [
            datetime.fromtimestamp(rng.uniform(first, last), UTC) for _ in range(requests + WARMUP)
        ]
        store, _ = project(settings, backlog, "b4", 2_000)
        with store.database.transaction() as tx:
            row = tx.fetchone("SELECT COUNT(*) AS n FROM timeline WHERE person_id = ?", (PERSON,))
        rows = int(row["n"]) if row else 0
        store.database.close()

        headers = {"Authorization": f"Bearer {token(OFFICE, 'meeting_organiser')}"}
        with TestClient(projection_app(settings)) as client:

            def as_of(at: datetime) -> object:
                response = client.get(
                    f"/persons/{PERSON}/as-of", params={"at": at.isoformat()}, headers=headers
                )
                assert response.status_code == 200, response.text
                return response.content

            took = timings(as_of, instants, WARMUP)

        with psycopg.connect(running.database_url, autocommit=True) as connection:

            def one_query(at: datetime) -> object:
                return connection.execute(
                    "SELECT * FROM projection.timeline WHERE person_id = %s AND at <= %s "
                    "ORDER BY at, recorded_at, row_id",
                    (PERSON, at.isoformat(timespec="microseconds")),
                ).fetchall()

            raw = timings(one_query, instants, WARMUP)
    note(
        "B4",
        case_events=CASE_EVENTS,
        case_timeline_rows=rows,
        background_events=len(backlog) - len(case),
        requests=requests,
        p50_ms=round(percentile(took, 0.5), 2),
        baseline_p50_ms=round(percentile(raw, 0.5), 2),
        path="GET /persons/{id}/as-of through FastAPI's TestClient, PostgreSQL",
    )
    value = show(
        "B4.p99_ms",
        percentile(took, 0.99),
        "ms",
        baseline=percentile(raw, 0.99),
        of="one SQL query for the rows",
    )
    return {"B4.p99_ms": value}
