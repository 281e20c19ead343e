"""All five stories in distributed mode: intake, referral and meeting as separate services on
PostgreSQL, joined only by Kafka (relay and faust feeds), played step by step over HTTP."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from services.scenarios import ScenarioPlayer, load_scenarios
from tests.conftest import TokenFactory
from tests.integration.conftest import Platform
from tests.scenario_checks import (
    check_every_disclosure_replays,
    check_intake_expectations,
    check_statistics_expectations,
    check_view_expectations,
    check_vital_interest_is_flagged,
    play_all,
)

pytestmark = pytest.mark.integration


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
