"""Playing the intake steps of every scenario over HTTP and checking what intake answers.

Shared by the embedded e2e test and the distributed integration test, so both modes are held
to the same expectations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from contracts.reference import reference
from services.scenarios import (
    JST,
    Played,
    Scenario,
    ScenarioPlayer,
    TokenFor,
    load_scenarios,
    step_time,
)

ORGANISER = "meeting_organiser"
# The stories' municipality's organiser, whose replay reaches every agency there.
MUNICIPAL_ORGANISER = "zama-jiritsu"


def play_all(player: ScenarioPlayer) -> dict[str, Played]:
    return {scenario.name: player.play(scenario) for scenario in load_scenarios()}


def check_intake_expectations(
    client: Any, token_for: TokenFor, prefix: str, played: dict[str, Played]
) -> None:
    def get(path: str, agency: str = "zama-jiritsu") -> Any:
        headers = {"Authorization": f"Bearer {token_for(agency, 'caseworker')}"}
        response = client.get(f"{prefix}{path}", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    # Scenario 04: both consultations exist from the moment they were opened, with no person and
    # no complaint required, and are then tied to the person registered later.
    unclear = played["04-anonymous-unclear-caller"]
    first, second = (get(f"/consultations/{c}") for c in unclear.consultations)
    assert first["main_complaint"] is None
    assert first["opened_at"].startswith(unclear.when("2025-08-03T09:15")[:16])
    assert first["person_id"] == second["person_id"] == unclear.person
    assert second["triage"] == "continue_here"

    # Every story with a registered person and an application: the consultation holds both.
    for name in ("01-released-offender-a", "02-debt-shimura"):
        story = played[name]
        consultation = get(f"/consultations/{story.consultations[-1]}")
        assert consultation["person_id"] == story.person
        assert consultation["application_at"] is not None

    # Scenario 03: the tax desk's number finds the person for the support office, under the
    # consent written on the つなぐシート, and the consultation is tied to that person.
    tax = played["03-tax-desk-referral"]
    found = get("/persons/by-local-id?agency=zama-shuno&local_id=T-000123")
    assert found["person_id"] == tax.person
    assert get(f"/consultations/{tax.consultations[-1]}")["person_id"] == tax.person
    [sheet] = (get(f"/consents/{c}") for c in tax.consents)
    assert sheet["method"] == "written_tsunagu_sheet"
    assert sheet["recipients"] == ["zama-jiritsu"] and "tax" in sheet["categories"]

    # Scenario 01: which consents covered Hello Work for employment, on a date in the story.
    offender = played["01-released-offender-a"]
    at = offender.when("2025-05-01T12:00")
    covering = get(
        f"/persons/{offender.person}/consents?recipient=hellowork-atsugi&category=employment"
        f"&purpose=support_coordination&at={at.replace('+', '%2B')}"
    )
    assert [c["id"] for c in covering] == [offender.consents[0]]
    assert step_time(covering[0]["valid_from"]) <= step_time(at)


def _on(view: dict[Any, Any]) -> str:
    # YAML 1.1 reads the key "on" as True; a bare date means the middle of that day.
    on = view.get("on", view.get(True))
    return str(on) if "T" in str(on) else f"{on}T12:00"


class ViewChecks:
    """Each story's ``view`` and ``audit`` expectations, asked over HTTP of the views service.

    A view ``{as: A, on: D}`` is what agency A was able to see on date D: the replay as of D,
    asked by A's own meeting organiser, so that the audit entries name A as the viewer.
    """

    def __init__(self, client: Any, token_for: TokenFor, prefix: str) -> None:
        self.client, self.token_for, self.prefix = client, token_for, prefix
        self.requests: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def get(self, path: str, agency: str, role: str, request_id: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token_for(agency, role)}"}
        if request_id:
            headers["X-Request-Id"] = request_id
        response = self.client.get(f"{self.prefix}{path}", headers=headers)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def seen(self, story: Played, agency: str, on: str) -> dict[str, Any]:
        """What ``agency`` could see on the (shifted) date, recorded under a request id.

        Asked by the agency's own organiser where the reference data grants it one (an
        organiser replays only its own agency's view), else by the municipality's.
        """
        request_id = f"check-{uuid.uuid4()}"
        at = quote(story.when(on))
        path = f"/persons/{story.person}/as-of?at={at}&agency={agency}&back_entered=true"
        asker = agency if reference().scope(ORGANISER, agency) else MUNICIPAL_ORGANISER
        reply = self.get(path, asker, ORGANISER, request_id)
        self.requests.setdefault(story.person, []).append((request_id, reply))
        categories: dict[str, Any] = reply["agency_view"]["categories"]
        return categories

    def check_views(self, scenario: Scenario, story: Played) -> None:
        for expect in scenario.expect:
            if not isinstance(expect, dict) or "view" not in expect:
                continue
            agency, on = expect["view"]["as"], _on(expect["view"])
            seen = set(self.seen(story, agency, on))
            sees, never = set(expect.get("sees", [])), set(expect.get("never", []))
            if "never" not in expect and "sees" in expect:
                assert seen == sees, (scenario.name, agency, on, seen)  # the whole answer
            assert sees <= seen and not never & seen, (scenario.name, agency, on, seen)

    def audit_of(self, person: str, **window: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={quote(v)}" for k, v in window.items())
        entries: list[dict[str, Any]] = self.get(
            f"/audit/persons/{person}?{query}", "zama-jiritsu", "privacy_officer"
        )
        return entries

    def check_audit_lists_the_views(self, scenario: Scenario, story: Played) -> None:
        """Every view above that showed data is listed with viewer, categories, bases, time."""
        [expect] = [e["audit"] for e in scenario.expect if isinstance(e, dict) and "audit" in e]
        window = {}
        if "between" in expect:
            since, until = expect["between"]
            window = {"since": story.when(f"{since}T00:00"), "until": story.when(f"{until}T00:00")}
        entries = {e["request_id"]: e for e in self.audit_of(story.person, **window)}
        shown = 0
        for request_id, reply in self.requests[story.person]:
            # The case as the asker sees it now, and what it may see of the agency's view then.
            showed = set(reply["state"]) | {
                c for c, e in reply["agency_view"]["categories"].items() if e["fields"] is not None
            }
            if not showed:
                assert request_id not in entries  # nothing shown, nothing to record
                continue
            entry = entries[request_id]
            assert entry["kind"] == "record_viewed" and entry["person_id"] == story.person
            assert showed <= set(entry["categories"]) == set(entry["bases"])
            assert entry["recorded_at"] and entry["response_hash"]
            shown += 1
        assert shown, f"{scenario.name}: no view showed data, so the audit check proves nothing"


def check_view_expectations(
    client: Any, token_for: TokenFor, prefix: str, played: dict[str, Played]
) -> ViewChecks:
    """Every ``view`` expectation of every story, then the audit expectations that list them."""
    checks = ViewChecks(client, token_for, prefix)
    scenarios = {s.name: s for s in load_scenarios()}
    for name, scenario in scenarios.items():
        checks.check_views(scenario, played[name])

    offender = played["01-released-offender-a"]
    checks.check_audit_lists_the_views(scenarios["01-released-offender-a"], offender)

    # 03: seikatsuclub's view under the Article 9 meeting, named by its id ...
    tax = played["03-tax-desk-referral"]
    checks.check_audit_lists_the_views(scenarios["03-tax-desk-referral"], tax)
    club = [
        e
        for e in checks.audit_of(tax.person)
        if e["viewer_agency"] == "seikatsuclub" and "mental_health" in e["bases"]
    ]
    assert club and club[-1]["bases"]["mental_health"] == {
        "basis": "article9_meeting",
        "basis_id": tax.meetings[0],
    }
    # ... and zama-jiritsu's view of the tax slip under the つなぐシート consent, on the day it
    # accepted the slip (its own assessment makes tax its own record from that afternoon).
    jiritsu = checks.seen(tax, "zama-jiritsu", "2025-09-01T10:30")
    assert jiritsu["tax"]["basis"] == "consent" and jiritsu["tax"]["basis_id"] == tax.consents[0]
    return checks


def check_vital_interest_is_flagged(
    player: ScenarioPlayer, checks: ViewChecks, settle: Callable[[], None] = lambda: None
) -> None:
    """05: a disclosure under a vital-interest declaration awaits the privacy officer's review.

    The story is played again up to the declaration, so that its 72 hours are running now and
    zama-kodomo's view of the child's family is a disclosure made under it.
    """
    [family] = [s for s in load_scenarios() if s.name == "05-family-c"]
    steps = family.steps[
        : 1 + next(i for i, s in enumerate(family.steps) if s["do"] == "declare_vital_interest")
    ]
    story = player.play(Scenario(family.name, family.person, steps, family.expect))
    settle()  # distributed: until the views have the new story's events
    kodomo = checks.get(f"/persons/{story.person}", "zama-kodomo", "caseworker")
    [family_seen] = [c for c in kodomo["categories"] if c["category"] == "family"]
    assert family_seen["basis"]["kind"] == "vital_interest"
    pending = checks.get("/audit/vital-interest/pending", "zama-jiritsu", "privacy_officer")
    [flagged] = [e for e in pending if e["person_id"] == story.person]
    assert flagged["viewer_agency"] == "zama-kodomo"
    assert flagged["bases"]["family"]["basis"] == "vital_interest"


def check_every_disclosure_replays(checks: ViewChecks, played: dict[str, Played]) -> int:
    """Each RecordViewed entry the views recorded about the stories' persons, built again
    from the events, hashes to the body served and names the same bases; the number of entries
    replayed. (Other services' reads name no journal position: no replay rebuilds them.)"""
    replayed = 0
    for story in played.values():
        for entry in checks.audit_of(story.person):
            if entry["kind"] != "record_viewed" or entry["state_position"] is None:
                continue
            replay = checks.get(
                f"/audit/entries/{entry['position']}/replay", "zama-jiritsu", "privacy_officer"
            )
            assert replay["matches"], (entry["position"], entry["view_request"], replay)
            assert replay["bases_match"] and replay["served_hash"] == entry["response_hash"]
            replayed += 1
    return replayed


def check_statistics_expectations(
    client: Any, token_for: TokenFor, prefix: str, played: dict[str, Played]
) -> int:
    """Each ``statistics`` expectation of the played stories; how many figures were checked.

    A story is shifted by whole days, so its month may straddle two real months: the figures
    of every real month its steps of that month fall in are summed.
    """
    headers = {"Authorization": f"Bearer {token_for('zama-jiritsu', 'caseworker')}"}
    checked = 0
    for scenario in load_scenarios():
        if scenario.name not in played:
            continue
        story = played[scenario.name]
        for expect in scenario.expect:
            if not isinstance(expect, dict) or "statistics" not in expect:
                continue
            month = str(expect["statistics"]["month"])
            real_months = {
                step_time(story.when(step["at"])).astimezone(JST).strftime("%Y-%m")
                for step in scenario.steps
                if str(step["at"]).startswith(month)
            }
            totals: dict[str, float] = {}
            for real in sorted(real_months):
                response = client.get(f"{prefix}/statistics/{real}", headers=headers)
                assert response.status_code == 200, response.text
                for key, value in response.json()["figures"].items():
                    if isinstance(value, int | float):
                        totals[key] = totals.get(key, 0) + value
            for key, expected in expect["counts"].items():
                assert totals.get(key) == expected, (scenario.name, month, key, totals.get(key))
                checked += 1
    return checked
