"""Each agency's view of a person over HTTP in embedded mode: the stories, purge and replay."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from contracts.envelope import CloudEvent
from contracts.events import ViewPurged, parse
from contracts.topics import Topics
from services.cli import main
from services.platform.bus import Message
from services.platform.http import create_app
from services.platform.settings import Settings
from services.projection.agency_view import sweep
from services.projection.audit import AuditLog
from services.projection.person_api import build_router
from services.projection.person_facts import person_record
from services.scenarios import Played, ScenarioPlayer
from services.wiring import embedded_app, person_index
from tests.conftest import JWT_SECRET, TokenFactory
from tests.scenario_checks import (
    check_every_disclosure_replays,
    check_view_expectations,
    check_vital_interest_is_flagged,
    play_all,
)

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
Story = tuple[TestClient, dict[str, Played]]


@pytest.fixture
def story(client: TestClient, token: TokenFactory) -> Story:
    return client, play_all(ScenarioPlayer.embedded(client, token))


def view(client: TestClient, auth: Auth, person: str, agency: str) -> dict[str, Any]:
    """The categories ``agency`` sees of the person, by name."""
    response = client.get(f"/views/persons/{person}", headers=auth(agency))
    assert response.status_code == 200, response.text
    return {entry["category"]: entry for entry in response.json()["categories"]}


def seen_at(client: TestClient, auth: Auth, played: Played, agency: str, on: str) -> dict[str, Any]:
    """What ``agency`` was able to see of the story's person on a (shifted) story date.

    The stories are entered today about the past, so the replay admits back-entered events.
    """
    at = quote(played.when(on))
    response = client.get(
        f"/views/persons/{played.person}/as-of?at={at}&agency={agency}&back_entered=true",
        headers=auth("zama-jiritsu", "meeting_organiser"),
    )
    assert response.status_code == 200, response.text
    categories: dict[str, Any] = response.json()["agency_view"]["categories"]
    return categories


def table_rows(settings: Settings, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Straight from the SQLite file the views live in, not through the API."""
    with sqlite3.connect(settings.var_dir / "projection-feed.sqlite3") as connection:
        return connection.execute(sql, params).fetchall()


def test_scenario_01_each_agency_sees_what_its_consent_covers_now(story: Story, auth: Auth) -> None:
    client, played = story
    offender = played["01-released-offender-a"]
    hellowork = view(client, auth, offender.person, "hellowork-atsugi")
    assert set(hellowork) == {"identity", "contact", "consultation", "employment"}
    assert {c["basis"]["id"] for c in hellowork.values()} == {offender.consents[0]}
    oneaid = view(client, auth, offender.person, "oneaid")
    assert {"identity", "contact", "housing", "criminal_record"} <= set(oneaid)
    assert oneaid["housing"]["basis"]["id"] == offender.consents[1]
    assert not {"health", "employment", "mental_health"} & set(oneaid)
    assert view(client, auth, offender.person, "zama-shuno") == {}


@pytest.mark.parametrize(
    ("name", "agency", "on", "sees", "never"),
    [
        (
            "01-released-offender-a",
            "hellowork-atsugi",
            "2025-05-01T12:00",
            {"identity", "contact", "consultation", "employment"},
            {"health", "criminal_record", "housing", "mental_health"},
        ),
        (
            "01-released-offender-a",
            "oneaid",
            "2025-06-21T12:00",
            {"identity", "contact", "housing", "criminal_record"},
            {"health", "employment"},
        ),
        ("01-released-offender-a", "zama-shuno", "2025-06-21T12:00", set(), None),
        (
            "03-tax-desk-referral",
            "zama-shuno",
            "2025-09-02T12:00",
            {"identity", "contact", "tax", "referral_status"},
            {"mental_health", "employment", "consultation"},
        ),
        (
            "03-tax-desk-referral",
            "seikatsuclub",
            "2025-09-13T12:00",
            {"consultation", "mental_health", "employment"},
            {"tax"},
        ),
        ("03-tax-desk-referral", "zama-shakyo", "2025-09-13T12:00", {"consultation"}, {"tax"}),
        ("05-family-c", "zama-kodomo", "2014-07-15T12:00", {"family"}, None),
        ("05-family-c", "zama-kodomo", "2014-07-20T00:00", set(), None),
        ("05-family-c", "minsei", "2014-07-21T12:00", set(), {"family", "finances", "health"}),
    ],
)
def test_scenario_views_as_of_their_dates(
    story: Story,
    auth: Auth,
    name: str,
    agency: str,
    on: str,
    sees: set[str],
    never: set[str] | None,
) -> None:
    client, played = story
    categories = seen_at(client, auth, played[name], agency, on)
    if never is None:  # "sees" is the whole answer
        assert set(categories) == sees
    else:
        assert sees <= set(categories) and not never & set(categories)


def test_scenario_03_article9_basis_names_the_meeting(story: Story, auth: Auth) -> None:
    client, played = story
    tax = played["03-tax-desk-referral"]
    categories = seen_at(client, auth, tax, "seikatsuclub", "2025-09-13T12:00")
    assert categories["mental_health"]["basis"] == "article9_meeting"
    assert categories["mental_health"]["basis_id"] == tax.meetings[0]


def test_replay_shows_the_case_as_it_was(story: Story, auth: Auth) -> None:
    client, played = story
    offender = played["01-released-offender-a"]
    at = quote(offender.when("2025-04-24T23:59"))
    url = f"/views/persons/{offender.person}/as-of?at={at}"
    organiser = auth("zama-jiritsu", "meeting_organiser")
    replay = client.get(f"{url}&back_entered=true", headers=organiser).json()
    events = [e["event"] for e in replay["timeline"]]
    assert "PlanDrafted" in events and "PlanApproved" not in events
    assert "ReferralSent" not in events and "AssessmentRecorded" in events
    # Entered only today: nothing of it was known on that date.
    assert client.get(url, headers=organiser).json()["timeline"] == []
    assert client.get(url, headers=auth("zama-jiritsu")).status_code == 403


def test_the_replay_is_filtered_for_the_viewer_now(story: Story, auth: Auth) -> None:
    client, played = story
    offender = played["01-released-offender-a"]
    at = quote(offender.when("2025-10-16T00:00"))
    replay = client.get(
        f"/views/persons/{offender.person}/as-of?at={at}&back_entered=true",
        headers=auth("hellowork-atsugi", "meeting_organiser"),
    ).json()
    assert set(replay["state"]) == {"identity", "contact", "consultation", "employment"}
    # Hello Work's organiser reaches its own agency only (reference data): what oneaid could
    # see is not its to ask. (A viewer's own view hiding what another agency saw:
    # test_own_record_http.py.)
    refused = client.get(
        f"/views/persons/{offender.person}/as-of?at={at}&back_entered=true&agency=oneaid",
        headers=auth("hellowork-atsugi", "meeting_organiser"),
    )
    assert refused.status_code == 403
    assert "own agency" in refused.json()["message"]


def test_another_agencys_view_is_403(story: Story, auth: Auth) -> None:
    client, played = story
    person = played["01-released-offender-a"].person
    response = client.get(f"/views/persons/{person}?agency=oneaid", headers=auth("zama-shuno"))
    assert response.status_code == 403
    own = client.get(f"/views/persons/{person}?agency=oneaid", headers=auth("oneaid"))
    assert own.status_code == 200


def test_every_view_showing_data_is_audited(story: Story, auth: Auth) -> None:
    client, played = story
    offender = played["01-released-offender-a"]
    view(client, auth, offender.person, "hellowork-atsugi")
    view(client, auth, offender.person, "zama-shuno")  # shows nothing: nothing to record
    log: AuditLog = client.app.state.audit  # type: ignore[attr-defined]
    # Playing the story read the person through other services too; the person views' reads:
    [entry] = [
        e
        for e in log.seen_person(offender.person)
        if e.view_request is not None and e.view_request.get("view") == "person"
    ]
    assert entry.viewer_agency == "hellowork-atsugi"
    assert entry.bases["employment"] == {"basis": "consent", "basis_id": offender.consents[0]}


def test_local_ids_find_persons_for_their_own_agency_only(story: Story, auth: Auth) -> None:
    client, played = story
    url = "/views/persons/by-local-id?local_id=T-000123"
    found = client.get(url, headers=auth("zama-shuno"))
    assert found.json() == {"person_id": played["03-tax-desk-referral"].person}
    assert client.get(url, headers=auth("zama-jiritsu")).status_code == 404


def test_an_audit_entry_names_the_parameters_of_a_read_not_what_was_typed(
    story: Story, auth: Auth
) -> None:
    client, played = story
    person = played["03-tax-desk-referral"].person
    url = "/views/persons/by-local-id?local_id=T-000123"
    assert client.get(url, headers=auth("zama-shuno")).status_code == 200
    log: AuditLog = client.app.state.audit  # type: ignore[attr-defined]
    asked = [
        e.view_request
        for e in log.seen_person(person)
        if e.view_request and e.view_request.get("route") == "GET /views/persons/by-local-id"
    ]
    # A local id is the person's own number at that agency, and the chain is kept for ever.
    assert asked and all(a["query"] == ["local_id"] for a in asked)
    assert "T-000123" not in json.dumps([e.view_request for e in log.seen_person(person)])


def test_referral_boxes_show_states_and_overdue_flags(story: Story, auth: Auth) -> None:
    client, played = story
    inbox = client.get("/views/inbox", headers=auth("oneaid")).json()
    offender = played["01-released-offender-a"].referrals[0]
    [declined] = [r for r in inbox if r["referral_id"] == offender]
    assert (declined["state"], declined["counterpart"]) == ("declined", "zama-jiritsu")
    # The volunteer's concern (scenario 05) was never acknowledged, years ago in story time.
    [concern] = client.get("/views/outbox", headers=auth("minsei")).json()
    assert concern["state"] == "sent" and concern["acknowledgement_overdue"] is True


def person_with_consent(client: TestClient, auth: Auth, valid_until: datetime) -> tuple[str, str]:
    """A registered person and a consent letting Hello Work see identity and contact."""
    person = client.post(
        "/intake/persons", json={"family_name": "試験", "sex": "female"}, headers=auth()
    ).json()["id"]
    now = datetime.now(UTC)
    consent = client.post(
        "/intake/consents",
        json={
            "person_id": person,
            "recipients": ["hellowork-atsugi"],
            "categories": ["identity", "contact"],
            "purposes": ["support_coordination"],
            "valid_from": (now - timedelta(hours=1)).isoformat(),
            "valid_until": valid_until.isoformat(),
            "method": "written_application_form",
        },
        headers=auth(),
    )
    assert consent.status_code == 201, consent.text
    return str(person), str(consent.json()["id"])


def test_a_withdrawal_takes_its_categories_out_of_the_view_and_records_the_purge(
    client: TestClient, auth: Auth, embedded_settings: Settings
) -> None:
    person, consent = person_with_consent(client, auth, datetime.now(UTC) + timedelta(days=30))
    assert set(view(client, auth, person, "hellowork-atsugi")) == {"identity", "contact"}
    # No agency's view is kept: it is decided from the facts when read, so a withdrawal
    # leaves no copy of the facts behind to delete.
    tables = "SELECT name FROM sqlite_master WHERE name IN ('agency_view', 'view_stale')"
    assert table_rows(embedded_settings, tables, ()) == []
    withdrawn = client.post(
        f"/intake/consents/{consent}/withdrawals",
        json={"at": datetime.now(UTC).isoformat()},
        headers=auth(),
    )
    assert withdrawn.status_code in (200, 201), withdrawn.text
    [(categories, reason)] = table_rows(
        embedded_settings,
        "SELECT categories, reason FROM view_purge WHERE agency = ? AND person_id = ?",
        ("hellowork-atsugi", person),
    )
    assert consent in categories and "withdrawn" in reason
    assert view(client, auth, person, "hellowork-atsugi") == {}
    # The caseworker's own record is untouched.
    assert set(view(client, auth, person, "zama-jiritsu")) == {"identity", "contact"}


def test_an_expired_consent_is_purged_by_the_sweep(
    client: TestClient, auth: Auth, embedded_settings: Settings
) -> None:
    ends = datetime.now(UTC) + timedelta(days=1)
    person, consent = person_with_consent(client, auth, ends)
    views = client.app.state.views  # type: ignore[attr-defined]
    assert sweep(views, ends - timedelta(seconds=1)) == []
    [purge] = sweep(views, ends)
    assert (purge.agency, purge.person_id) == ("hellowork-atsugi", person)
    assert {c["basis_id"] for c in purge.categories.values()} == {consent}
    # Recorded once, at the instant the consent ended, however often the sweep runs.
    assert sweep(views, ends + timedelta(days=1)) == []
    assert table_rows(
        embedded_settings, "SELECT at FROM view_purge WHERE person_id = ?", (person,)
    ) == [(ends.isoformat(timespec="microseconds"),)]


def test_a_read_after_a_basis_lapsed_shows_nothing_of_it_and_leaves_the_purge_to_the_sweep(
    client: TestClient, auth: Auth, embedded_settings: Settings
) -> None:
    ends = datetime.now(UTC) + timedelta(days=1)
    person, _ = person_with_consent(client, auth, ends)
    views = client.app.state.views  # type: ignore[attr-defined]
    later = create_app("views at a later instant", embedded_settings, "test")
    disclosures = client.app.state.view_disclosures  # type: ignore[attr-defined]
    index = person_index(client.app.state.keys)  # type: ignore[attr-defined]
    later.include_router(build_router(views, disclosures, index, clock=lambda: ends))
    response = TestClient(later).get(f"/persons/{person}", headers=auth("hellowork-atsugi"))
    assert response.json()["categories"] == []
    purges = "SELECT agency FROM view_purge WHERE person_id = ?"
    assert table_rows(embedded_settings, purges, (person,)) == []
    sweep(views, ends)
    assert table_rows(embedded_settings, purges, (person,)) == [("hellowork-atsugi",)]


def test_the_sweep_command_purges_and_prints_what_it_purged(
    client: TestClient,
    auth: Auth,
    embedded_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ends = datetime.now(UTC) + timedelta(days=1)
    person, consent = person_with_consent(client, auth, ends)
    monkeypatch.setenv("TSUNAGU_VAR_DIR", str(embedded_settings.var_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["views", "sweep", "--at", ends.isoformat()]) == 0
    [line] = capsys.readouterr().out.splitlines()
    purge = json.loads(line)
    assert (purge["agency"], purge["person_id"]) == ("hellowork-atsugi", person)
    assert purge["categories"]["identity"]["basis_id"] == consent


def test_person_record_reads_the_ledger_back_for_decide(client: TestClient, auth: Auth) -> None:
    person, consent = person_with_consent(client, auth, datetime.now(UTC) + timedelta(days=30))
    views = client.app.state.views  # type: ignore[attr-defined]
    with views.database.transaction() as tx:
        record = person_record(tx, person)
    assert [c.consent_id for c in record.consents] == [consent]
    assert record.recorded_by["identity"] == frozenset({"zama-jiritsu"})


def test_every_view_and_audit_expectation_of_the_stories(story: Story, token: TokenFactory) -> None:
    client, played = story
    checks = check_view_expectations(client, token, "/views", played)
    check_vital_interest_is_flagged(ScenarioPlayer.embedded(client, token), checks)
    assert check_every_disclosure_replays(checks, played) >= 10


def test_a_purge_is_published_as_view_purged_and_listed_for_the_privacy_officer(
    client: TestClient, auth: Auth, embedded_settings: Settings
) -> None:
    published: list[Message] = []
    bus = client.app.state.bus  # type: ignore[attr-defined]
    bus.subscribe(Topics(embedded_settings.topic_prefix).events("projection"), published.append)
    person, consent = person_with_consent(client, auth, datetime.now(UTC) + timedelta(days=30))
    withdrawn = client.post(
        f"/intake/consents/{consent}/withdrawals",
        json={"at": datetime.now(UTC).isoformat()},
        headers=auth(),
    )
    assert withdrawn.status_code in (200, 201), withdrawn.text
    [message] = published
    event = CloudEvent.from_bytes(message.value)
    data = parse(event)
    assert isinstance(data, ViewPurged) and event.personid == person == message.key
    assert (data.agency, sorted(data.categories)) == ("hellowork-atsugi", ["contact", "identity"])
    assert table_rows(
        embedded_settings, "SELECT published FROM view_purge WHERE person_id = ?", (person,)
    ) == [(1,)]
    officer = auth("zama-jiritsu", "privacy_officer")
    [purge] = client.get(f"/views/audit/persons/{person}/purges", headers=officer).json()
    assert purge["agency"] == "hellowork-atsugi" and purge["published"] is True
    assert {c["basis_id"] for c in purge["categories"].values()} == {consent}
    refused = client.get(f"/views/audit/persons/{person}/purges", headers=auth("hellowork-atsugi"))
    assert refused.status_code == 403


def test_a_replay_exposes_a_view_that_the_events_do_not_support(
    client: TestClient, auth: Auth, embedded_settings: Settings
) -> None:
    person, _ = person_with_consent(client, auth, datetime.now(UTC) + timedelta(days=30))
    officer = auth("zama-jiritsu", "privacy_officer")
    assert view(client, auth, person, "hellowork-atsugi")
    # A fact changed behind the projectors' back (no event says so) is served by the next read...
    with sqlite3.connect(embedded_settings.var_dir / "projection-feed.sqlite3") as connection:
        where = (person, "identity")
        [(stored,)] = connection.execute(
            "SELECT facts FROM category_facts WHERE person_id = ? AND category = ?", where
        ).fetchall()
        forged = {field: ["forged", *fact[1:]] for field, fact in json.loads(stored).items()}
        connection.execute(
            "UPDATE category_facts SET facts = ? WHERE person_id = ? AND category = ?",
            (json.dumps(forged), *where),
        )
    assert "forged" in json.dumps(view(client, auth, person, "hellowork-atsugi"))
    entries = client.get(f"/views/audit/persons/{person}", headers=officer).json()
    # Registering the person and recording the consent were reads of them too (intake's).
    honest, forged = [e for e in entries if e["state_position"] is not None]
    # ... and the replay, built from the events alone, does not hash to it.
    first = client.get(f"/views/audit/entries/{honest['position']}/replay", headers=officer)
    assert first.json()["matches"] is True
    second = client.get(f"/views/audit/entries/{forged['position']}/replay", headers=officer)
    assert second.json()["matches"] is False
    assert second.json()["replayed_hash"] != forged["response_hash"]
    assert "forged" not in json.dumps(second.json()["document"])


def test_only_a_recorded_disclosure_can_be_replayed(client: TestClient, auth: Auth) -> None:
    officer = auth("zama-jiritsu", "privacy_officer")
    assert client.get("/views/audit/entries/99/replay", headers=officer).status_code == 404
    denied = client.get("/views/audit/verify", headers=auth("zama-shuno"))
    assert denied.status_code == 403
    [refusal] = client.get("/views/audit/agencies/zama-shuno", headers=officer).json()
    replay = client.get(f"/views/audit/entries/{refusal['position']}/replay", headers=officer)
    assert replay.status_code == 409


def test_the_replay_command_rebuilds_a_recorded_view(
    client: TestClient,
    auth: Auth,
    embedded_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    person, consent = person_with_consent(client, auth, datetime.now(UTC) + timedelta(days=30))
    assert view(client, auth, person, "hellowork-atsugi")
    log: AuditLog = client.app.state.audit  # type: ignore[attr-defined]
    [viewed] = [e for e in log.seen_person(person) if e.state_position is not None]
    monkeypatch.setenv("TSUNAGU_VAR_DIR", str(embedded_settings.var_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["audit", "replay", str(viewed.position)]) == 0
    replay = json.loads(capsys.readouterr().out)
    assert replay["matches"] is True and replay["position"] == viewed.position
    assert replay["bases"]["identity"] == {"basis": "consent", "basis_id": consent}


def test_the_embedded_app_sweeps_lapsed_bases_by_itself(tmp_path: Path, auth: Auth) -> None:
    settings = Settings(var_dir=tmp_path / "var", jwt_secret=JWT_SECRET, sweep_seconds=0.2)
    with TestClient(embedded_app(settings)) as client:
        person, _ = person_with_consent(client, auth, datetime.now(UTC) + timedelta(seconds=2))
        count = "SELECT COUNT(*) FROM view_purge WHERE person_id = ? AND published = 1"
        deadline = time.monotonic() + 30
        while table_rows(settings, count, (person,)) == [(0,)] and time.monotonic() < deadline:
            time.sleep(0.2)
        # No read and no event: the app's own sweeper purged the view and published the purge.
        assert table_rows(settings, count, (person,)) == [(1,)]
