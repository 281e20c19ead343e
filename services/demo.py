"""Demo data for the embedded run: the scenarios, played once through the real HTTP routes."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.platform.auth import mint_token, signing_secret
from services.platform.private_files import private_file
from services.platform.settings import Settings
from services.scenarios import Played, Scenario, ScenarioPlayer, load_scenarios

log = logging.getLogger(__name__)
MARKER = "demo-loaded"


def load_demo(app: FastAPI, settings: Settings) -> None:
    marker = settings.var_dir / MARKER
    if marker.exists():
        return
    secret = signing_secret(settings)

    def token_for(agency: str, role: str) -> str:
        return mint_token(secret, staff_id="demo", agency=agency, roles=[role])

    client = TestClient(app)
    player = ScenarioPlayer.embedded(client, token_for)
    for scenario in load_scenarios():
        played = player.play(scenario)
        for agency in _viewers(scenario, played):
            # Each agency the story's expect block names opens the person's page once, as its
            # worker would today: the privacy officer then has disclosures to answer for.
            headers = {"Authorization": f"Bearer {token_for(agency, 'caseworker')}"}
            client.get(f"/views/persons/{played.person}", headers=headers)
        log.info(
            "demo scenario played",
            extra={
                "scenario": scenario.name,
                "consultations": len(played.consultations),
                "skipped_steps": len(played.skipped),
            },
        )
    private_file(marker).write_text("1\n", encoding="utf-8")


def _viewers(scenario: Scenario, played: Played) -> list[str]:
    """The agencies whose view of the story's person its expect block describes, once each."""
    if not played.persons:
        return []
    named = [e["view"]["as"] for e in scenario.expect if isinstance(e, dict) and "view" in e]
    return list(dict.fromkeys(named))
