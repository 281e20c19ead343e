"""Retention on the real servers (#20): intake's own feed (`tsunagu project intake`) learns from
meeting's topic that a case closed six years ago, the due list on PostgreSQL names the person,
an extension keeps another's records, and `tsunagu retention sweep` erases the one due, for
retention, as every view then shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.topics import Topics
from services.feeds.lag import unread
from services.intake.retention import add_years, municipal_date
from services.platform.settings import Settings
from services.processes import BEHIND
from services.wiring import FEEDS, feed_store
from tests.conftest import TokenFactory, run_cli
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Platform

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
SIX_YEARS_AGO = add_years(municipal_date(datetime.now(UTC)), -6)


def closed_six_years_ago(platform: Platform, headers: dict[str, str]) -> str:
    return closed_case_six_years_ago(platform, headers)[0]


def closed_case_six_years_ago(platform: Platform, headers: dict[str, str]) -> tuple[str, str]:
    """A person and their case, closed six years ago."""
    intake, _ = platform.services["intake"]
    meeting, _ = platform.services["meeting"]
    day = datetime(SIX_YEARS_AGO.year, SIX_YEARS_AGO.month, SIX_YEARS_AGO.day, 1, tzinfo=UTC)
    start = (day - timedelta(days=100)).isoformat()

    def post(client: Any, path: str, body: dict[str, Any]) -> Any:
        answer = client.post(path, json=body, headers=headers)
        assert answer.status_code < 300, answer.text
        return answer.json()

    person = post(intake, "/persons", {"family_name": "満了", "registered_at": start})["id"]
    consultation = post(
        intake,
        "/consultations",
        {
            "channel": "phone",
            "route_in": "self",
            "caller_kind": "self",
            "person_id": person,
            "opened_at": start,
        },
    )["id"]
    post(intake, f"/consultations/{consultation}/application", {"at": start})
    case = post(
        meeting, "/cases", {"consultation_id": consultation, "person_id": person, "at": start}
    )["id"]
    post(meeting, f"/cases/{case}/closure", {"reason": "goals_achieved", "at": day.isoformat()})
    return str(person), str(case)


def test_the_sweep_erases_who_intakes_feed_finds_due_and_keeps_an_extension(
    platform: Platform, spawn: Spawn, token: TokenFactory
) -> None:
    settings = platform.settings
    feed = spawn(["project", "intake"], settings)
    headers = {"Authorization": f"Bearer {token('zama-jiritsu', 'privacy_officer')}"}
    intake: Any = platform.services["intake"][0]
    due, kept = (closed_six_years_ago(platform, headers) for _ in range(2))

    def listed() -> set[str]:
        answer = intake.get("/retention/due", headers=headers)
        assert answer.status_code == 200, answer.text
        return {row["person_id"] for row in answer.json()}

    wait_for(lambda: listed() == {due, kept}, 120, lambda: f"intake's feed\n{feed.output()}")
    until = (municipal_date(datetime.now(UTC)) + timedelta(days=400)).isoformat()
    extension = {"until": until, "reason": "監査で記録を確認中"}
    answer = intake.post(f"/persons/{kept}/retention-extension", json=extension, headers=headers)
    assert answer.status_code == 201, answer.text
    wait_for(
        lambda: listed() == {due}, 120, lambda: f"the extension in intake's feed\n{feed.output()}"
    )

    swept = run_cli(settings, "retention", "sweep")
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.splitlines() == [f'{{"erased": "{due}", "reason": "retention"}}']
    again = run_cli(settings, "retention", "sweep")
    assert (again.returncode, again.stdout) == (0, "")
    wait_for(
        lambda: listed() == set(), 120, lambda: f"the erasure in intake's feed\n{feed.output()}"
    )

    platform.settle()
    office = {"Authorization": f"Bearer {token('zama-jiritsu')}"}
    erased = platform.views.get(f"/persons/{due}", headers=office).json()
    assert erased["erased"]["reason"] == "retention"
    still = platform.views.get(f"/persons/{kept}", headers=office).json()
    assert "erased" not in still or still["erased"] is None


@pytest.mark.parametrize("stopped", [["project", "intake"], ["relay", "meeting"]], ids=" ".join)
def test_the_sweep_erases_nobody_while_a_reopening_has_not_reached_intakes_feed(
    platform: Platform, spawn: Spawn, token: TokenFactory, stopped: list[str]
) -> None:
    """A case closed six years ago is reopened while intake's retention feed is stopped (the
    reopening waits on meeting's topic) or while meeting's relay is (it waits in meeting's
    outbox: the feed has read all there is and still finds the case closed). The sweep erases
    nobody and names what to start; once it runs, the person is no longer due."""
    settings = platform.settings
    assert settings.kafka_bootstrap_servers
    feed = spawn(["project", "intake"], settings)
    headers = {"Authorization": f"Bearer {token('zama-jiritsu', 'privacy_officer')}"}
    intake: Any = platform.services["intake"][0]
    meeting: Any = platform.services["meeting"][0]
    person, case = closed_case_six_years_ago(platform, headers)

    def listed() -> set[str]:
        answer = intake.get("/retention/due", headers=headers)
        assert answer.status_code == 200, answer.text
        return {row["person_id"] for row in answer.json()}

    wait_for(lambda: listed() == {person}, 120, lambda: f"intake's feed\n{feed.output()}")
    (feed if stopped[0] == "project" else platform.relays["meeting"]).stop()
    office = {"Authorization": f"Bearer {token('zama-jiritsu')}"}
    answer = meeting.post(f"/cases/{case}/reopening", json={"reason": "再び滞納"}, headers=office)
    assert answer.status_code == 200, answer.text
    store = feed_store(settings, "intake")
    topics = [Topics(settings.topic_prefix).events(s) for s in FEEDS["intake"].sources]
    on_the_topic = stopped[0] == "project"
    try:
        wait_for(
            lambda: (unread(settings.kafka_bootstrap_servers or "", store, topics) > 0)
            == on_the_topic,
            60,
            lambda: f"the reopening {'on' if on_the_topic else 'off'} meeting's topic",
        )
    finally:
        store.database.close()

    behind = run_cli(settings, "retention", "sweep")

    assert (behind.returncode, behind.stdout) == (BEHIND, ""), behind.stderr
    assert f"tsunagu {' '.join(stopped)}" in behind.stderr
    assert intake.get(f"/persons/{person}/retention", headers=headers).status_code == 200
    assert listed() == {person}
    restarted = spawn(stopped, settings)
    wait_for(lambda: listed() == set(), 120, lambda: f"the reopening\n{restarted.output()}")
    caught_up = run_cli(settings, "retention", "sweep")
    assert (caught_up.returncode, caught_up.stdout) == (0, ""), caught_up.stderr
    platform.settle()
    kept = platform.views.get(f"/persons/{person}", headers=office).json()
    assert kept.get("erased") is None
