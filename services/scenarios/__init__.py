"""The five stories of ``shared/scenarios`` (copied here), played through the HTTP APIs.

The embedded ``make run`` plays them as demo data and the end-to-end tests play them in both
run modes. Steps this build cannot perform yet are reported as skipped, never faked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import yaml

SCENARIO_DIR = Path(__file__).parent
# The stories' dates are local to Zama.
JST = timezone(timedelta(hours=9))


class Response(Protocol):
    status_code: int

    def json(self) -> Any: ...


class Client(Protocol):
    def post(self, url: str, *, json: Any, headers: dict[str, str]) -> Response: ...


@dataclass(frozen=True)
class Scenario:
    name: str
    person: dict[str, Any] | None
    steps: list[dict[str, Any]]
    expect: list[Any]


def load_scenarios(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    scenarios = []
    for path in sorted(directory.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        scenarios.append(
            Scenario(path.stem, raw.get("person"), raw["steps"], raw.get("expect", []))
        )
    return scenarios


def step_time(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=JST)


@dataclass
class Played:
    consultations: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


TokenFor = Callable[[str, str], str]


class ScenarioPlayer:
    def __init__(self, client: Client, token_for: TokenFor, intake_prefix: str = "/intake") -> None:
        self._client = client
        self._token_for = token_for
        self._intake = intake_prefix

    def play(self, scenario: Scenario) -> Played:
        played = Played()
        for step in scenario.steps:
            action = step["do"]
            if action == "open_consultation":
                played.consultations.append(self._open_consultation(step))
            else:
                played.skipped.append(action)
        return played

    def _open_consultation(self, step: dict[str, Any]) -> str:
        body = {
            "channel": step["channel"],
            "route_in": step["route_in"],
            # The story of a person phoning for themself does not say "self".
            "caller_kind": step.get("caller", "self"),
            "main_complaint": step.get("main_complaint"),
            "notes": step.get("notes"),
            "opened_at": step_time(step["at"]).isoformat(),
        }
        response = self._client.post(
            f"{self._intake}/consultations",
            json=body,
            headers={"Authorization": f"Bearer {self._token_for(step['by'], 'caseworker')}"},
        )
        if response.status_code != 201:
            raise RuntimeError(
                f"open_consultation failed: {response.status_code} {response.json()}"
            )
        return str(response.json()["id"])
