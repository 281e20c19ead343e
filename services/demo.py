"""Demo data for the embedded run: the scenarios, played once through the real HTTP routes."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.platform.auth import mint_token, signing_secret
from services.platform.settings import Settings
from services.scenarios import ScenarioPlayer, load_scenarios

log = logging.getLogger(__name__)
MARKER = "demo-loaded"


def load_demo(app: FastAPI, settings: Settings) -> None:
    marker = settings.var_dir / MARKER
    if marker.exists():
        return
    secret = signing_secret(settings)

    def token_for(agency: str, role: str) -> str:
        return mint_token(secret, staff_id="demo", agency=agency, roles=[role])

    player = ScenarioPlayer.embedded(TestClient(app), token_for)
    for scenario in load_scenarios():
        played = player.play(scenario)
        log.info(
            "demo scenario played",
            extra={
                "scenario": scenario.name,
                "consultations": len(played.consultations),
                "skipped_steps": len(played.skipped),
            },
        )
    marker.write_text("1\n", encoding="utf-8")
