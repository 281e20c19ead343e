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

    def get(self, url: str, *, headers: dict[str, str]) -> Response: ...


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


def shift_for(scenario: Scenario, now: datetime | None = None) -> timedelta:
    """Whole days that move a story so its last step falls a day before ``now``.

    The stories' dates are illustrative (only their order matters), while every access check
    runs on the real clock: played unshifted, a consent would have expired before the step that
    relies on it. Expectations are shifted by the same amount.
    """
    last = max(step_time(step["at"]) for step in scenario.steps)
    gap = (now or datetime.now(JST)) - last
    return timedelta(days=max(gap.days - 1, 0))


@dataclass
class Played:
    consultations: list[str] = field(default_factory=list)
    persons: list[str] = field(default_factory=list)
    consents: list[str] = field(default_factory=list)
    referrals: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    meetings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Steps the platform lawfully refused (e.g. tax shared without consent), with the reason.
    refused: list[tuple[str, str]] = field(default_factory=list)
    shift: timedelta = timedelta(0)

    def when(self, value: Any) -> str:
        """A story's date as played: shifted, with its offset."""
        return (step_time(value) + self.shift).isoformat()

    @property
    def person(self) -> str:
        if not self.persons:
            raise RuntimeError("the story names no registered person yet")
        return self.persons[-1]


TokenFor = Callable[[str, str], str]
StepHandler = Callable[["ScenarioPlayer", Scenario, dict[str, Any], Played], None]
# Steps of the other services, registered by their modules (see ``step``), with the service
# each needs: a player given no such service reports the step as skipped.
STEP_HANDLERS: dict[str, tuple[str, StepHandler]] = {}


def step(name: str, service: str | None = None) -> Callable[[StepHandler], StepHandler]:
    """Register a step; its service defaults to the module's name (``referral_steps``)."""

    def register(handler: StepHandler) -> StepHandler:
        owner = service or handler.__module__.rsplit(".", 1)[-1].removesuffix("_steps")
        STEP_HANDLERS[name] = (owner, handler)
        return handler

    return register


# What a story may also tell of its person, sent as given when it does.
PERSON_DETAILS = ("family_name_kana", "given_name_kana", "birth_date", "address", "phone")
INTAKE_STEPS = (
    "open_consultation",
    "triage",
    "register_person",
    "link_person",
    "receive_application",
    "record_consent",
    "withdraw_consent",
    "attach_consultations",
)


class ScenarioPlayer:
    """Plays a story's steps through the HTTP API, each as the agency the step names."""

    def __init__(self, services: dict[str, tuple[Client, str]], token_for: TokenFor) -> None:
        """``services`` maps a service name to the client and path prefix that reach it."""
        self._services = services
        self._token_for = token_for

    @classmethod
    def embedded(cls, client: Client, token_for: TokenFor) -> ScenarioPlayer:
        """Every service behind one client, under ``/<service>`` (the embedded app)."""
        names = ("intake", "referral", "meeting", "views")
        return cls({name: (client, f"/{name}") for name in names}, token_for)

    def play(self, scenario: Scenario) -> Played:
        played = Played(shift=shift_for(scenario))
        for entry in scenario.steps:
            action = entry["do"]
            if action in INTAKE_STEPS:
                getattr(self, f"_{action}")(scenario, entry, played)
            elif action in STEP_HANDLERS and STEP_HANDLERS[action][0] in self._services:
                STEP_HANDLERS[action][1](self, scenario, entry, played)
            else:
                played.skipped.append(action)
        return played

    def call(
        self,
        service: str,
        method: str,
        path: str,
        entry: dict[str, Any],
        body: Any = None,
        role: str = "caseworker",
    ) -> Any:
        """One request as the agency that takes the step; any refusal stops the story."""
        status, reply = self.attempt(service, method, path, entry, body, role)
        if status not in (200, 201):
            raise RuntimeError(f"{entry['do']} failed: {status} {reply}")
        return reply

    def attempt(
        self,
        service: str,
        method: str,
        path: str,
        entry: dict[str, Any],
        body: Any = None,
        role: str = "caseworker",
    ) -> tuple[int, Any]:
        """One request whose refusal may be the lawful outcome: the status and the reply."""
        if service not in self._services:
            raise RuntimeError(f"{entry['do']}: no {service} service reachable")
        client, prefix = self._services[service]
        headers = {"Authorization": f"Bearer {self._token_for(entry['by'], role)}"}
        if method == "GET":
            response = client.get(f"{prefix}{path}", headers=headers)
        else:
            response = client.post(f"{prefix}{path}", json=body, headers=headers)
        return response.status_code, response.json()

    def _call(self, method: str, path: str, entry: dict[str, Any], body: Any = None) -> Any:
        return self.call("intake", method, path, entry, body)

    def _open_consultation(self, _: Scenario, step: dict[str, Any], played: Played) -> None:
        body = {
            "channel": step["channel"],
            "route_in": step["route_in"],
            # The story of a person phoning for themself does not say "self".
            "caller_kind": step.get("caller", "self"),
            "main_complaint": step.get("main_complaint"),
            "notes": step.get("notes"),
            "opened_at": played.when(step["at"]),
        }
        played.consultations.append(self._call("POST", "/consultations", step, body)["id"])

    def _register_person(self, scenario: Scenario, step: dict[str, Any], played: Played) -> None:
        person = dict(step.get("person") or scenario.person or {})
        body = {
            "family_name": person.get("family_name"),
            "given_name": person.get("given_name"),
            "birth_year": person.get("birth_year"),
            "sex": person.get("sex", "unknown"),
            "registered_at": played.when(step["at"]),
        }
        body |= {k: str(person[k]) for k in PERSON_DETAILS if k in person}
        local = step.get("local_id")
        if local and local["agency"] == step["by"]:
            body["local_id"] = local["id"]
        played.persons.append(self._call("POST", "/persons", step, body)["id"])
        self._identify_provisional_referrals(step, played)

    def _identify_provisional_referrals(self, step: dict[str, Any], played: Played) -> None:
        """Tie the story's slips about a not-yet-known person, sent or received by the agency
        that registers them, to that person: so that a minsei volunteer who referred sees the
        person was connected, and the slip's receiver finds it under the person."""
        if "referral" not in self._services:
            return
        for referral_id in played.referrals:
            status, slip = self.attempt("referral", "GET", f"/referrals/{referral_id}", step)
            if status == 200 and not slip.get("person_id"):
                body = {"person_id": played.person}
                self.call("referral", "POST", f"/referrals/{referral_id}/person", step, body)

    def _attach(self, consultation_id: str, step: dict[str, Any], played: Played) -> None:
        body = {"person_id": played.person, "at": played.when(step["at"])}
        self._call("POST", f"/consultations/{consultation_id}/attach", step, body)

    def _attach_consultations(self, _: Scenario, step: dict[str, Any], played: Played) -> None:
        ordinals = {"first": 0, "second": 1, "third": 2, "last": -1}
        for name in step["consultations"]:
            self._attach(played.consultations[ordinals[name]], step, played)

    def _link_person(self, _: Scenario, step: dict[str, Any], played: Played) -> None:
        """Find the person by another agency's local id (from the slip) and tie the case to them."""
        local = step["to_local_id"]
        found = self._call(
            "GET", f"/persons/by-local-id?agency={local['agency']}&local_id={local['id']}", step
        )
        played.persons.append(str(found["person_id"]))
        self._attach(played.consultations[-1], step, played)

    def _receive_application(self, _: Scenario, step: dict[str, Any], played: Played) -> None:
        # The stories register the person after opening; the application needs them attached.
        self._attach(played.consultations[-1], step, played)
        body = {"at": played.when(step["at"])}
        self._call("POST", f"/consultations/{played.consultations[-1]}/application", step, body)

    def _triage(self, _: Scenario, step: dict[str, Any], played: Played) -> None:
        body = {"outcome": step["outcome"], "at": played.when(step["at"])}
        for key in ("target_agency", "target_system", "note"):
            if key in step:
                body[key] = step[key]
        if "follow_up_on" in step:
            body["follow_up_on"] = str(step["follow_up_on"])
        self._call("POST", f"/consultations/{played.consultations[-1]}/triage", step, body)

    def _record_consent(self, _: Scenario, step: dict[str, Any], played: Played) -> None:
        # "until" is the last day covered: the consent ends when that day ends in Zama.
        last_day = step_time(f"{step['until']}T00:00") + played.shift
        body = {
            "person_id": played.person,
            "recipients": step["recipients"],
            "categories": step["categories"],
            "purposes": [step["purpose"]],
            "valid_from": played.when(step["at"]),
            "valid_until": (last_day + timedelta(days=1)).isoformat(),
            "method": step.get("method", "written_application_form"),
        }
        played.consents.append(self._call("POST", "/consents", step, body)["id"])

    def _withdraw_consent(self, _: Scenario, step: dict[str, Any], played: Played) -> None:
        body = {
            "recipients": step.get("recipients"),
            "categories": step.get("categories"),
            "at": played.when(step["at"]),
        }
        self._call("POST", f"/consents/{played.consents[-1]}/withdrawals", step, body)


from services.scenarios import meeting_steps, referral_steps  # noqa: E402, F401
