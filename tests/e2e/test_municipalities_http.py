"""Issue 15: many municipalities, one deployment, on the embedded platform. Staff of Zama and of
Ebina never see, count or audit anything of the other's, on any read route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.wiring import embedded_app
from tests.municipality_matrix import (
    EBINA,
    ZAMA,
    Answer,
    build,
    check,
    check_counts_and_chains,
    covered,
)

pytestmark = pytest.mark.e2e

PREFIX = {"intake": "/intake", "referral": "/referral", "meeting": "/meeting", "views": "/views"}


class Embedded:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(
        self, service: str, method: str, path: str, token: str, body: Any | None = None
    ) -> Answer:
        headers = {"Authorization": f"Bearer {token}"}
        url = PREFIX[service] + path
        return self.client.request(method, url, json=body, headers=headers)

    def settle(self) -> None:
        """Embedded, every command is relayed before its answer and every read recorded."""


@pytest.fixture
def platform(embedded_settings: Settings) -> Iterator[Embedded]:
    with TestClient(embedded_app(embedded_settings)) as client:
        platform = Embedded(client)
        for municipality in (ZAMA, EBINA):
            municipality.ids.clear()
            build(platform, municipality)
        yield platform


def test_the_matrix_names_every_read_route(embedded_settings: Settings) -> None:
    app = embedded_app(embedded_settings)

    def routes(service: str) -> set[str]:
        prefix = PREFIX[service]
        return {
            route.path.removeprefix(prefix)
            for route in app.routes
            if isinstance(route, APIRoute)
            and route.path.startswith(prefix + "/")
            and "GET" in route.methods
        }

    covered(routes)


def test_staff_of_one_municipality_never_see_count_or_audit_the_others(
    platform: Embedded,
) -> None:
    for this, other in ((ZAMA, EBINA), (EBINA, ZAMA)):
        assert check(platform, this, other) > 90
        check_counts_and_chains(platform, this, other)
