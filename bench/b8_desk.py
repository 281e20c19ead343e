"""B8: the desk's pages against the API calls behind them, among 50,000 persons.

The persons: lifecycles from ``bench.load`` (consultations, consents, referrals, plans,
meetings, closures) in one municipality, applied through the views feed (``FeedRunner``)
into a fresh PostgreSQL schema. Then, in this process, through FastAPI's TestClient, a support
office caseworker signed in to the desk (``services.web``) whose API client calls the views
service's app in-process, as embedded mode does:

- the worklist (``GET /``): four calls to the views (new slips, declines, follow-ups due,
  recent consultations), each a page of 20;
- a person page (``GET /persons/{id}``): one call, the person view, for persons the office has
  a view of, drawn at random.

Baseline: the same API calls, made directly to the views app through its own TestClient, one
after another, with the same token: what a page costs above the API is the rendering and the
hop. Page and calls are timed in turns (``side_by_side``): each of the worklist's calls appends
20 audit entries, and a page measured before its calls would meet a smaller chain and the
checkpoints after loading. Figures: p50 and p99 of each page, beside the sum of its calls'
times.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient

from bench.common import OFFICE, note, percentile, project, show, side_by_side, stack, token
from bench.load import LoadProfile, event_stream
from services.web.client import SERVICES, Services
from services.web.formatting import today
from services.wiring import projection_app, web_app
from tests.infrastructure import Infrastructure

PERSONS, TINY_PERSONS = 50_000, 300
REQUESTS, TINY_REQUESTS = 1_000, 30
WARMUP = 20
PAGE = 20
PROFILE = LoadProfile(seed=20250808, municipalities=1)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def worklist_calls() -> list[tuple[str, dict[str, str | int]]]:
    """The calls the worklist makes (``services/web/pages/home.py``), as paths and queries."""
    day = today()
    return [
        ("/inbox", {"state": "sent", "limit": PAGE}),
        ("/outbox", {"state": "declined", "limit": PAGE}),
        ("/consultations", {"follow_up_due_by": day.isoformat(), "limit": PAGE}),
        ("/consultations", {"opened_since": (day - timedelta(days=14)).isoformat(), "limit": PAGE}),
    ]


def run(servers: Infrastructure, *, tiny: bool) -> dict[str, float]:
    persons = TINY_PERSONS if tiny else PERSONS
    requests = TINY_REQUESTS if tiny else REQUESTS
    with stack(servers, "b8") as running:
        settings = running.settings()
        store, events = project(settings, event_stream(PROFILE, persons, settings), "b8", 5_000)
        with store.database.transaction() as tx:
            seen = [
                row["person_id"]
                for row in tx.fetchall(
                    # Whom the office recorded facts of: the timeline rows the facts came from;
                    # not a duplicate merged into another (read through that person: 409).
                    "SELECT DISTINCT person_id FROM timeline "
                    "WHERE agency = ? AND person_id IS NOT NULL AND category IS NOT NULL "
                    "AND person_id NOT IN (SELECT person_id FROM person_merge "
                    "WHERE person_id <> survivor_id UNION SELECT other_id FROM person_merge "
                    "WHERE other_id <> survivor_id)",
                    (OFFICE,),
                )
            ]
        store.database.close()
        rng = random.Random(8)
        chosen = [rng.choice(seen) for _ in range(requests + WARMUP)]

        views = projection_app(settings)
        urls = {service: f"http://{service}.b8" for service in SERVICES}
        desk = web_app(settings, Services(urls, httpx.ASGITransport(app=views)), dev_signin=True)
        headers = {"Authorization": f"Bearer {token(OFFICE, 'caseworker')}"}
        with TestClient(views) as api, TestClient(desk) as browser:
            signed = browser.post(
                "/signin",
                data={
                    "csrf_token": CSRF.findall(browser.get("/signin").text)[0],
                    "agency": OFFICE,
                    "role": "caseworker",
                    "staff_id": "bench",
                },
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text

            def page(path: str) -> Callable[[int], object]:
                def get(i: int) -> object:
                    answer = browser.get(path.format(person=chosen[i]))
                    assert answer.status_code == 200, answer.text[:500]
                    return answer.content

                return get

            def calls(made: list[tuple[str, dict[str, str | int]]]) -> Callable[[int], object]:
                def get(i: int) -> object:
                    for path, params in made:
                        answer = api.get(
                            path.format(person=chosen[i]), params=params, headers=headers
                        )
                        assert answer.status_code == 200, answer.text[:500]
                    return None

                return get

            asked = range(WARMUP + requests)
            worklist, worklist_api = side_by_side(page("/"), calls(worklist_calls()), asked, WARMUP)
            person, person_api = side_by_side(
                page("/persons/{person}"), calls([("/persons/{person}", {})]), asked, WARMUP
            )
    note(
        "B8",
        persons=persons,
        events=events,
        persons_the_office_sees=len(seen),
        requests=requests,
        worklist_p50_ms=round(percentile(worklist, 0.5), 2),
        worklist_api_p50_ms=round(percentile(worklist_api, 0.5), 2),
        person_p50_ms=round(percentile(person, 0.5), 2),
        person_api_p50_ms=round(percentile(person_api, 0.5), 2),
        path="desk page through FastAPI's TestClient, its API calls in-process (ASGI), PostgreSQL",
    )
    return {
        "B8.worklist_p99_ms": show(
            "B8.worklist_p99_ms",
            percentile(worklist, 0.99),
            "ms",
            baseline=percentile(worklist_api, 0.99),
            of="its 4 API calls",
        ),
        "B8.person_p99_ms": show(
            "B8.person_p99_ms",
            percentile(person, 0.99),
            "ms",
            baseline=percentile(person_api, 0.99),
            of="its API call",
        ),
    }
