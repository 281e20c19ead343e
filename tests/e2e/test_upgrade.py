"""``tsunagu upgrade`` on a small embedded deployment written before personal fields were sealed
(``tests.upgrade_story``): the upgrade must leave stores with the same events holding nothing
of the person in clear, from which the same aggregates open to the same values, and do nothing
when run again; the deployment started again shows the person, finds them by their local id
and duplicate, replays a read made before, and keeps nothing of them in clear anywhere.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from services import cli, wiring
from services.platform.sealing import Opener
from services.platform.settings import Settings
from services.scenarios import Played, ScenarioPlayer
from services.upgrade import upgrade
from tests.conftest import JWT_SECRET, TokenFactory
from tests.sealed_scan import file_places, in_clear
from tests.upgrade_story import (
    LOCAL_ID,
    PERSON,
    STORY,
    TWIN,
    VALUES,
    history,
    legacy_indexes,
    unsealed,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    var = tmp_path / "var"
    monkeypatch.setenv("TSUNAGU_VAR_DIR", str(var))
    monkeypatch.setenv("TSUNAGU_JWT_SECRET", JWT_SECRET)
    # The command upgrades the embedded stores, even from a shell that names the servers.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    return Settings(var_dir=var, jwt_secret=JWT_SECRET)


@pytest.fixture
def old(
    settings: Settings, token: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Played, UUID]]:
    """The story played by the deployment as it was, a twin registered, and the person's page
    read once (an audit entry to replay)."""
    with monkeypatch.context() as patch:
        patch.setattr(wiring, "command_application", unsealed)
        with TestClient(wiring.embedded_app(settings)) as client:
            played = ScenarioPlayer.embedded(client, token).play(STORY)
            assert played.skipped == [] and played.refused == [], played
            headers = {"Authorization": f"Bearer {token('zama-jiritsu', 'caseworker')}"}
            twin = client.post("/intake/persons", json=TWIN, headers=headers)
            assert twin.status_code == 201, twin.text
            intake = client.app.state.applications["intake"]  # type: ignore[attr-defined]
            legacy_indexes(intake, UUID(played.person), UUID(twin.json()["id"]))
            read = client.get(f"/views/persons/{played.person}", headers=headers)
            assert read.status_code == 200, read.text
    yield played, UUID(twin.json()["id"])


def as_json(value: object) -> object:
    """A value of an aggregate's state as JSON has it (as a sealed one opens)."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value.isoformat() if isinstance(value, date) else str(value)


def aggregates(settings: Settings, opener: Opener | None = None) -> dict[str, Any]:
    """Every aggregate of every service (but intake's index aggregates) as JSON, its sealed
    values opened by ``opener``."""
    found: dict[str, Any] = {}
    for service in wiring.COMMAND_SERVICES:
        ids = dict.fromkeys(originator for originator, *_ in history(settings, service))
        app = wiring.COMMAND_SERVICES[service].application(settings, None)
        try:
            for each in ids:
                state = json.loads(json.dumps(vars(app.repository.get(each)), default=as_json))
                found[f"{service}:{each}"] = opener.open(state) if opener else state
        finally:
            app.close()
    return found


def live_stores(var: Path) -> list[Path]:
    return sorted(p for p in var.glob("*-events.sqlite3*") if ".cleartext." not in p.name)


def test_an_old_store_is_copied_sealed_with_the_same_events_and_a_second_run_does_nothing(
    settings: Settings,
    old: tuple[Played, UUID],
    token: TokenFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    played, twin = old
    var = settings.var_dir
    before = {s: history(settings, s) for s in wiring.COMMAND_SERVICES}
    values_before = aggregates(settings)
    # The old stores hold the person in clear: the test looks where something is to find.
    assert set(in_clear(file_places(var), VALUES)) == set(VALUES)

    assert cli.main(["upgrade"]) == 0
    report = json.loads(capsys.readouterr().out)
    states = {o["service"]: o for o in report["services"]}
    assert {s: o["state"] for s, o in states.items()} == dict.fromkeys(
        wiring.COMMAND_SERVICES, "upgraded"
    )
    # A list of likely duplicates and a local id's aggregate, each as made before the blind
    # index and as made since (by these services, storing as given): made again once each.
    assert (states["intake"]["indexes_dropped"], states["intake"]["indexes_made"]) == (4, 2)
    assert all(o["sealed_values"] > 0 for o in report["services"])
    assert all(o["journal_entries"] > 0 for o in report["services"])

    # The live stores: nothing of the person in clear, in any file (the WAL too) or row.
    live = tuple(p.name for p in live_stores(var))
    assert in_clear([p for p in file_places(var) if p[0].startswith(live)], VALUES) == {}
    # The same events in the same order, with their ids, versions and times.
    assert {s: history(settings, s) for s in wiring.COMMAND_SERVICES} == before
    keys = wiring.key_store(settings)
    try:
        # Every aggregate reads back with the same values once its sealed ones are opened.
        assert aggregates(settings, Opener(keys)) == values_before
    finally:
        keys.close()
    # The old stores are kept as they were, and every store file is its owner's only.
    assert {p.name for p in var.glob("*.cleartext.sqlite3")} == {
        f"{s}-events.cleartext.sqlite3" for s in wiring.COMMAND_SERVICES
    }
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in var.glob("*.sqlite3*")} == {"0o600"}

    # Run again: every live store is the sealed copy of its old one, and nothing changes.
    stored = {p.name: p.read_bytes() for p in live_stores(var)}
    again = upgrade(settings, topic_prefix=None, drop_old=False)
    assert {o.state for o in again.services} == {"already upgraded"}
    assert {p.name: p.read_bytes() for p in live_stores(var)} == stored

    # Started again, the relays publish the sealed events from the first and the feeds rebuild.
    officer = {"Authorization": f"Bearer {token('zama-jiritsu', 'privacy_officer')}"}
    caseworker = {"Authorization": f"Bearer {token('zama-jiritsu', 'caseworker')}"}
    with TestClient(wiring.embedded_app(settings)) as client:
        page = client.get(f"/views/persons/{played.person}", headers=caseworker)
        assert page.status_code == 200, page.text
        assert PERSON["family_name"] in page.text and PERSON["address"] in page.text
        # Intake's lookups, made again under their blind keys, find him.
        found = client.get(f"/intake/persons/by-local-id?local_id={LOCAL_ID}", headers=caseworker)
        assert found.status_code == 200, found.text
        assert found.json()["person_id"] == played.person
        twins = client.get(f"/intake/persons/{played.person}/duplicates", headers=caseworker)
        assert twins.status_code == 200, twins.text
        assert twins.json()["candidates"] == [str(twin)]
        # The read made before the upgrade replays from the journal, its messages sealed now.
        entries = client.get(f"/views/audit/persons/{played.person}", headers=officer).json()
        first = min(e["position"] for e in entries if e["state_position"] is not None)
        replayed = client.get(f"/views/audit/entries/{first}/replay", headers=officer)
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["matches"] is True
    # Then nothing under var/ holds the person in clear, but the old stores kept beside.
    kept = tuple(f"{s}-events.cleartext.sqlite3" for s in wiring.COMMAND_SERVICES)
    assert in_clear([p for p in file_places(var) if not p[0].startswith(kept)], VALUES) == {}

    dropped = upgrade(settings, topic_prefix=None, drop_old=True)
    assert {o.old_store_dropped for o in dropped.services} == {True}
    assert list(var.glob("*.cleartext.sqlite3*")) == []


def test_a_store_whose_services_seal_already_has_nothing_to_upgrade(
    settings: Settings, token: TokenFactory
) -> None:
    with TestClient(wiring.embedded_app(settings)) as client:
        played = ScenarioPlayer.embedded(client, token).play(STORY)
        assert played.skipped == [], played
    report = upgrade(settings, topic_prefix=None, drop_old=True)
    assert {o.state for o in report.services} == {"nothing to upgrade"}
    assert report.feeds_emptied == [] and list(settings.var_dir.glob("*.cleartext.*")) == []


def test_a_person_erased_before_the_upgrade_is_sealed_under_keys_nobody_keeps(
    settings: Settings, old: tuple[Played, UUID]
) -> None:
    """An erasure made by this version before the upgrade ran destroyed keys the old events
    were never sealed under: the upgrade cannot seal them under the person's key, and must not
    keep them readable."""
    played, _ = old
    person = UUID(played.person)
    keys = wiring.key_store(settings)
    try:
        keys.erase([person], "subject_request", datetime.now(UTC))
        report = upgrade(settings, topic_prefix=None, drop_old=False)
        [intake] = [o for o in report.services if o.service == "intake"]
        assert intake.state == "upgraded" and intake.shredded_events > 0
        app = wiring.COMMAND_SERVICES["intake"].application(settings, None)
        try:
            registered = vars(app.repository.get(person))
        finally:
            app.close()
        opened = Opener(keys).open({k: registered[k] for k in ("family_name", "address")})
        assert {v["reason"] for v in opened.values()} == {"subject_request"}
    finally:
        keys.close()
    live = tuple(p.name for p in live_stores(settings.var_dir))
    places = [p for p in file_places(settings.var_dir) if p[0].startswith(live)]
    assert in_clear(places, {k: v for k, v in PERSON.items() if k != "sex"}) == {}
