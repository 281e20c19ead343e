"""The scenarios' statistics expectations, each story played alone in its own platform."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.scenarios import JST, Played, ScenarioPlayer, load_scenarios, step_time
from services.wiring import embedded_app
from tests.conftest import TokenFactory

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


def test_scenario_02_february_and_august(
    embedded_settings: Settings, token: TokenFactory, auth: Auth
) -> None:
    client, played = play("02-debt-shimura", embedded_settings, token)

    def on(date: str) -> dict[str, Any]:
        return figures(client, auth, month_of(played, date))

    assert on("2024-02-05T13:05")["new_consultations"] == 1
    assert on("2024-02-05T13:05")["route_in.real_estate_agent"] == 1
    assert on("2024-02-09T10:30")["plans_approved"] == 1
    assert on("2024-02-06T10:00")["issues_per_assessment"] == 6
    assert on("2024-08-01T09:30")["closures.goals_achieved"] == 1


def test_scenario_04_two_consultations_in_august(
    embedded_settings: Settings, token: TokenFactory, auth: Auth
) -> None:
    client, played = play("04-anonymous-unclear-caller", embedded_settings, token)
    # Shifted by whole days, the two August calls may fall in two real months: sum them.
    months = {month_of(played, on) for on in ("2025-08-03T09:15", "2025-08-05T13:00")}
    totals: Counter[str] = Counter()
    for month in months:
        totals.update({k: v for k, v in figures(client, auth, month).items() if isinstance(v, int)})
    assert totals["new_consultations"] == 2
    assert totals["route_in.public_relations_bulletin"] == 1
    assert totals["route_in.family_or_acquaintance"] == 1


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
