"""All five stories in distributed mode: intake, referral and meeting as separate services on
PostgreSQL, joined only by Kafka (relay and faust feeds), played step by step over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from services.meeting.feed import FeedFacts
from services.platform.settings import Settings
from services.scenarios import Client, ScenarioPlayer
from services.wiring import feed_store, service_app
from tests.conftest import TokenFactory
from tests.infrastructure import Process
from tests.integration.feeds import AfterTheFeed
from tests.scenario_checks import check_intake_expectations, play_all

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]


def test_every_step_of_every_story_plays_across_the_services(
    distributed_settings: Settings, spawn: Spawn, token: TokenFactory
) -> None:
    settings = distributed_settings
    spawn(["relay", "intake"], settings)
    referral_feed = spawn(["project", "referral"], settings)
    meeting_feed = spawn(["project", "meeting"], settings)
    referral_replica = feed_store(settings, "referral")
    meeting_facts = FeedFacts(feed_store(settings, "meeting"))

    def consent_known(url: str, body: Any) -> bool:
        if url != "/referrals" or not body.get("consent_id"):
            return True
        with referral_replica.database.transaction() as tx:
            found = tx.fetchone(
                "SELECT 1 AS found FROM consent WHERE consent_id = ?", (body["consent_id"],)
            )
        return found is not None

    def applicant_known(url: str, body: Any) -> bool:
        if url == "/cases":
            return meeting_facts.applicant(UUID(body["consultation_id"])) is not None
        if url == "/vital-interests":
            return meeting_facts.knows_person(UUID(body["person_id"]))
        return True

    intake = TestClient(service_app(settings, "intake"))
    referral = AfterTheFeed(
        TestClient(service_app(settings, "referral")), consent_known, referral_feed
    )
    meeting_client = TestClient(service_app(settings, "meeting"))
    meeting = AfterTheFeed(meeting_client, applicant_known, meeting_feed)
    services: dict[str, tuple[Client, str]] = {
        "intake": (intake, ""),
        "referral": (referral, ""),
        "meeting": (meeting, ""),
    }
    played = play_all(ScenarioPlayer(services, token))

    assert {name: p.skipped for name, p in played.items() if p.skipped} == {}
    check_intake_expectations(intake, token, "", played)
    assert [step for step, _ in played["03-tax-desk-referral"].refused] == ["share_in_meeting"]

    shuno = {"Authorization": f"Bearer {token('zama-shuno')}"}
    [sent] = referral.get("/referrals/outbox", headers=shuno).json()
    assert [h["state"] for h in sent["history"]] == ["sent", "accepted", "completed"]
    assert "categories" not in sent

    family = played["05-family-c"]
    officer = {"Authorization": f"Bearer {token('zama-jiritsu', 'privacy_officer')}"}

    def kodomo_sees(on: str) -> set[str]:
        path = f"/persons/{family.person}/disclosure?agency=zama-kodomo&at={quote(family.when(on))}"
        response = meeting_client.get(path, headers=officer)
        assert response.status_code == 200, response.text
        return set(response.json()["categories"])

    assert kodomo_sees("2014-07-15T12:00") == {"family"}
    assert kodomo_sees("2014-07-20T00:00") == set()
    referral_replica.database.close()
