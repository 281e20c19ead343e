"""Playing the intake steps of every scenario over HTTP and checking what intake answers.

Shared by the embedded e2e test and the distributed integration test, so both modes are held
to the same expectations.
"""

from __future__ import annotations

from typing import Any

from services.scenarios import Played, ScenarioPlayer, TokenFor, load_scenarios, step_time


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
