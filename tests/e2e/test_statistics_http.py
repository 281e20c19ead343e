"""The scenarios' statistics expectations, each story played alone in its own platform."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.scenarios import JST, Played, ScenarioPlayer, load_scenarios, step_time
from services.wiring import embedded_app
from tests.conftest import TokenFactory
from tests.scenario_checks import check_statistics_expectations

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]


def play(name: str, settings: Settings, token: TokenFactory) -> tuple[TestClient, Played]:
    client = TestClient(embedded_app(settings))
    [story] = [s for s in load_scenarios() if s.name == name]
    return client, ScenarioPlayer.embedded(client, token).play(story)


def month_of(played: Played, on: str) -> str:
    """The real month a story's date falls in, once the story is shifted to end before now."""
    return step_time(played.when(on)).astimezone(JST).strftime("%Y-%m")


def figures(client: TestClient, auth: Auth, month: str) -> dict[str, Any]:
    response = client.get(f"/views/statistics/{month}", headers=auth())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["figures"]
    return result


@pytest.mark.parametrize("name", ["02-debt-shimura", "04-anonymous-unclear-caller"])
def test_each_storys_statistics_expectations(
    name: str, embedded_settings: Settings, token: TokenFactory
) -> None:
    client, played = play(name, embedded_settings, token)
    assert check_statistics_expectations(client, token, "/views", {name: played}) >= 3


def test_exports_suppress_and_only_the_office_reads_figures(
    embedded_settings: Settings, token: TokenFactory, auth: Auth
) -> None:
    client, played = play("04-anonymous-unclear-caller", embedded_settings, token)
    month = month_of(played, "2025-08-03T09:15")
    exported = client.get(f"/views/statistics/{month}/export.json", headers=auth()).json()
    assert exported["figures"]["route_in.public_relations_bulletin"] == "*"
    csv_text = client.get(f"/views/statistics/{month}/export.csv", headers=auth()).text
    assert csv_text.startswith("市区町村コード,年月,")
    assert client.get(f"/views/statistics/{month}", headers=auth("zama-shuno")).status_code == 403
    assert client.get("/views/statistics/2025-13", headers=auth()).status_code == 422
