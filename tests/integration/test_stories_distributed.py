"""All five stories in distributed mode: intake, referral and meeting as separate services on
PostgreSQL, joined only by Kafka (relay and faust feeds), played step by step over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from contracts.reference import reference
from contracts.topics import Topics
from services.meeting.feed import FeedFacts
from services.platform.settings import Settings
from services.scenarios import Client, ScenarioPlayer, load_scenarios
from services.wiring import feed_store, service_app, view_store
from tests.conftest import TokenFactory
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Cleanup
from tests.integration.feeds import AfterTheFeed
from tests.integration.kafka_tools import end_offsets
from tests.scenario_checks import (
    check_every_disclosure_replays,
    check_intake_expectations,
    check_statistics_expectations,
    check_view_expectations,
    check_vital_interest_is_flagged,
    play_all,
)

pytestmark = pytest.mark.integration
# Every story is played in Zama.
ZAMA = reference().agencies["zama-jiritsu"].municipality

Spawn = Callable[[list[str], Settings], Process]


@dataclass
class Platform:
    """Intake, referral, meeting and views as separate services, joined only by Kafka."""

    settings: Settings
    services: dict[str, tuple[Client, str]]
    views: TestClient
    settle: Callable[[], None]


@pytest.fixture
def platform(
    distributed_settings: Settings, spawn: Spawn, token: TokenFactory, cleanup: Cleanup
) -> Iterator[Platform]:
    settings = distributed_settings
    for service in ("intake", "referral", "meeting"):
        spawn(["relay", service], settings)
    projection = spawn(["project", "projection"], settings)
    referral_feed = spawn(["project", "referral"], settings)
    meeting_feed = spawn(["project", "meeting"], settings)
    referral_replica = cleanup.store(feed_store(settings, "referral"))
    meeting_facts = FeedFacts(cleanup.store(feed_store(settings, "meeting")))
    views = cleanup.store(view_store(settings))
    topics = [Topics(settings.topic_prefix).events(s) for s in ("intake", "referral", "meeting")]

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
        about_person = url == "/vital-interests" or (
            url == "/meetings" and body.get("kind") == "article9_support_meeting"
        )
        if about_person:
            return meeting_facts.knows_person(UUID(body["person_id"]), ZAMA)
        return True

    def caught_up() -> bool:
        stored = views.positions()
        ends = end_offsets(str(settings.kafka_bootstrap_servers), topics)
        return all(stored.get(part, 0) >= end for part, end in ends.items())

    def settle() -> None:
        # The relays may still be publishing the last commands: caught up twice, 1 s apart.
        for _ in range(2):
            time.sleep(1)
            wait_for(caught_up, 120, f"the views to catch up\n{projection.output()}")

    referral = AfterTheFeed(
        cleanup.client(service_app(settings, "referral")), consent_known, referral_feed
    )
    meeting = AfterTheFeed(
        cleanup.client(service_app(settings, "meeting")), applicant_known, meeting_feed
    )
    services: dict[str, tuple[Client, str]] = {
        "intake": (cleanup.client(service_app(settings, "intake")), ""),
        "referral": (referral, ""),
        "meeting": (meeting, ""),
    }
    yield Platform(settings, services, cleanup.client(service_app(settings, "projection")), settle)


def test_every_step_of_every_story_plays_across_the_services(
    platform: Platform, token: TokenFactory
) -> None:
    services = platform.services
    intake, referral, meeting_client = (services[s][0] for s in ("intake", "referral", "meeting"))
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
        assert response.status_code == 200, response.json()
        return set(response.json()["categories"])

    assert kodomo_sees("2014-07-15T12:00") == {"family"}
    assert kodomo_sees("2014-07-20T00:00") == set()

    # The views: every view and audit expectation, and every disclosure replayed, on PostgreSQL.
    platform.settle()
    checks = check_view_expectations(platform.views, token, "", played)
    check_vital_interest_is_flagged(ScenarioPlayer(services, token), checks, platform.settle)
    assert check_every_disclosure_replays(checks, played) >= 10


def test_the_statistics_expectations_hold_across_the_services(
    platform: Platform, token: TokenFactory
) -> None:
    # Only the stories with statistics: the others' steps would fall in the same real months.
    stories = [
        s for s in load_scenarios() if s.name in ("02-debt-shimura", "04-anonymous-unclear-caller")
    ]
    player = ScenarioPlayer(platform.services, token)
    played = {story.name: player.play(story) for story in stories}
    platform.settle()
    assert check_statistics_expectations(platform.views, token, "", played) >= 7
