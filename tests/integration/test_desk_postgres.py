"""The desk's lists and person search on PostgreSQL: keyset pages, folded matching, LIKE escapes.

The services run in this process on the test's own database, their events carried to the views
by the in-process bus: what differs from the embedded app is the store, not the transport.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.topics import Topics
from services.platform.bus import InProcessBus
from services.platform.settings import Settings
from services.wiring import (
    FEEDS,
    feed_runner,
    feed_store,
    key_store,
    projection_app,
    relay,
    service_app,
)
from tests.integration.conftest import Cleanup

pytestmark = pytest.mark.integration

Auth = Callable[..., dict[str, str]]
NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


@dataclass
class Platform:
    intake: TestClient
    referral: TestClient
    views: TestClient
    settle: Callable[[], None]


@pytest.fixture
def platform(distributed_settings: Settings, cleanup: Cleanup) -> Iterator[Platform]:
    settings, bus = distributed_settings, InProcessBus()
    topics = Topics(settings.topic_prefix)
    stores = {s: cleanup.store(feed_store(settings, s)) for s in ("projection", "referral")}
    keys = key_store(settings)
    for service, store in stores.items():
        runner = feed_runner(settings, service, store, bus, keys=keys)
        for source in FEEDS[service].sources:
            bus.subscribe(topics.events(source), runner.consume)
    apps = {name: service_app(settings, name) for name in ("intake", "referral")}
    relays = [
        cleanup.relay(relay(settings, name, app.state.application, bus))
        for name, app in apps.items()
    ]

    def settle() -> None:
        while sum(r.drain() for r in relays):
            pass

    yield Platform(
        cleanup.client(apps["intake"]),
        cleanup.client(apps["referral"]),
        cleanup.client(projection_app(settings)),
        settle,
    )
    keys.close()


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def pages(client: TestClient, url: str, headers: dict[str, str]) -> list[list[Any]]:
    found = []
    while True:
        response = client.get(url, headers=headers)
        found.append(ok(response))
        if "link" not in response.headers:
            return found
        match = NEXT.match(response.headers["link"])
        assert match
        url = match.group(1)


def test_search_candidates_and_lists_page_on_postgres(platform: Platform, auth: Auth) -> None:
    kana = ["タカハシ", "ﾀｶﾊｼ", "たかはし"]
    people = [
        ok(
            platform.intake.post(
                "/persons",
                json={
                    "family_name": "髙橋" if i == 0 else "高橋",
                    "given_name": "花子",
                    "family_name_kana": k,
                    "given_name_kana": "ハナコ",
                    "birth_date": "1960-04-01",
                },
                headers=auth(),
            ),
            201,
        )["id"]
        for i, k in enumerate(kana)
    ]
    ok(platform.intake.post("/persons", json={"family_name": "100%_"}, headers=auth()), 201)
    for person in people:
        body = {"channel": "phone", "route_in": "self", "caller_kind": "self", "person_id": person}
        ok(platform.intake.post("/consultations", json=body, headers=auth()), 201)
    platform.settle()

    walked = pages(platform.views, "/persons/search?q=たかはし&limit=1", auth())
    assert [len(p) for p in walked] == [1, 1, 1]
    assert sorted(row["person_id"] for p in walked for row in p) == sorted(people)
    assert len(ok(platform.views.get("/persons/search?q=高橋%20花子", headers=auth()))) == 3
    # LIKE's wildcards typed in a query are letters, not wildcards.
    assert len(ok(platform.views.get("/persons/search?q=100%25_", headers=auth()))) == 1
    assert ok(platform.views.get("/persons/search?q=%25", headers=auth())) == []

    query = "family_name=高橋&given_name=花子&birth_date=1960-04-01&limit=2"
    walked = pages(platform.views, f"/persons/candidates?{query}", auth())
    assert sorted(row["person_id"] for p in walked for row in p) == sorted(people)

    walked = pages(platform.views, "/consultations?limit=2", auth())
    assert [len(p) for p in walked] == [2, 1]
    assert [row["person_id"] for p in walked for row in p] == people

    # Referral boxes: the views' and the referral service's own, in the same order.
    now = "2030-01-01T00:00:00+09:00"
    for person in people:
        consent = {
            "person_id": person,
            "recipients": ["hellowork-atsugi"],
            "categories": ["identity", "contact"],
            "purposes": ["referral"],
            "valid_until": now,
        }
        consent_id = ok(platform.intake.post("/consents", json=consent, headers=auth()), 201)["id"]
        platform.settle()
        slip = {
            "kind": "service_request",
            "to": "hellowork-atsugi",
            "reason": "就労支援",
            "categories": ["identity", "contact"],
            "person_id": person,
            "consent_id": consent_id,
        }
        ok(platform.referral.post("/referrals", json=slip, headers=auth()), 201)
    platform.settle()
    hellowork = auth("hellowork-atsugi")
    views_box = [
        r["referral_id"] for p in pages(platform.views, "/inbox?limit=2", hellowork) for r in p
    ]
    own_box = [
        r["id"] for p in pages(platform.referral, "/referrals/inbox?limit=2", hellowork) for r in p
    ]
    assert len(views_box) == 3 and views_box == own_box
