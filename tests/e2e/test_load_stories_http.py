"""Generated lifecycles played as stories over HTTP: the monthly statistics count what the
generator says it generated."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from bench.load import Lifecycle, LoadProfile, stories, tally
from contracts.reference import reference
from services.platform.settings import Settings
from services.scenarios import Scenario, ScenarioPlayer
from services.wiring import embedded_app
from tests.conftest import TokenFactory

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]


Wanted = Callable[[Lifecycle, Scenario], bool]


def path(name: str) -> Wanted:
    return lambda life, _: life.path == name


def step(do: str, **fields: str) -> Wanted:
    def found(_: Lifecycle, story: Scenario) -> bool:
        return any(
            e["do"] == do and all(e.get(k) == v for k, v in fields.items()) for e in story.steps
        )

    return found


def a_handful() -> list[tuple[Lifecycle, Scenario]]:
    """One story of each way through the office, and cases with and without a decline."""
    wanted: dict[str, Wanted] = {
        "information only": path("information_only"),
        "continued": path("continued"),
        "to public assistance at triage": path("public_assistance"),
        "a desk's slip and its local id": step("link_person"),
        "a case with a declined slip": step("decline"),
        "a case with a 支援会議": step("share_in_meeting"),
        "closed into public assistance": step(
            "close_case", reason="transferred_to_public_assistance"
        ),
    }
    chosen: dict[str, tuple[Lifecycle, Scenario]] = {}
    for life, story in stories(LoadProfile(seed=7, municipalities=1), 400):
        for what, matches in wanted.items():
            if what not in chosen and matches(life, story):
                chosen[what] = (life, story)
                break
    assert set(chosen) == set(wanted), f"no story for {set(wanted) - set(chosen)}"
    return list(chosen.values())


def months_between(months: list[str]) -> list[str]:
    first, last = datetime.strptime(min(months), "%Y-%m"), datetime.strptime(max(months), "%Y-%m")
    every = []
    while first <= last:
        every.append(first.strftime("%Y-%m"))
        first = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return every


def test_generated_stories_play_and_the_statistics_match_the_generators_tally(
    embedded_settings: Settings, token: TokenFactory, auth: Auth
) -> None:
    client = TestClient(embedded_app(embedded_settings))
    player = ScenarioPlayer.embedded(client, token)
    played = []
    for life, story in a_handful():
        outcome = player.play(story)
        assert outcome.skipped == [] and outcome.refused == [], story.name
        played.append((life, outcome.shift))

    expected = tally(played)
    everything = sum(expected.values(), Counter[str]())
    for metric in ("to_public_assistance", "plans_approved", "referrals.outcome.declined"):
        assert everything[metric] > 0, metric
    zama = reference().municipality_code
    assert {municipality for municipality, _ in expected} == {zama}
    for month in months_between([month for _, month in expected]):
        response = client.get(f"/views/statistics/{month}", headers=auth())
        assert response.status_code == 200, response.text
        figures = response.json()["figures"]
        counted = {k: v for k, v in figures.items() if v and k != "issues_per_assessment"}
        assert counted == dict(expected.get((zama, month), Counter())), month
        if counted.get("first_assessments"):
            ratio = counted["first_assessment_issues"] / counted["first_assessments"]
            assert figures["issues_per_assessment"] == round(ratio, 2)
