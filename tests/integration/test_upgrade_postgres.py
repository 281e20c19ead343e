"""``tsunagu upgrade`` on PostgreSQL and Kafka: the old events tables kept in schemas of their
own, the live ones replaced by sealed copies in one transaction, the relays publishing from the
first event onto the new topics, the signed audit checkpoints copied there."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import cast
from uuid import UUID

import psycopg
import pytest

from contracts.topics import Topics
from services import wiring
from services.platform.bus import KafkaPublisher
from services.platform.settings import Settings
from services.scenarios import ScenarioPlayer
from tests.conftest import TokenFactory, run_cli
from tests.integration.conftest import Cleanup
from tests.integration.kafka_tools import every_record
from tests.sealed_scan import KafkaRecord, in_clear, kafka_places, postgres_places
from tests.upgrade_story import STORY, TWIN, VALUES, history, legacy_indexes, unsealed

pytestmark = pytest.mark.integration

# Meeting's steps need its feed of intake's events, not run here: its store stays empty.
UPGRADED = ("intake", "referral")


def schemas(settings: Settings) -> set[str]:
    assert settings.database_url
    with psycopg.connect(settings.database_url) as connection:
        rows = connection.execute("SELECT nspname FROM pg_namespace").fetchall()
    return {row[0] for row in rows}


def test_an_old_postgres_store_is_upgraded_onto_new_topics(
    distributed_settings: Settings,
    token: TokenFactory,
    cleanup: Cleanup,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = distributed_settings
    assert settings.database_url and settings.kafka_bootstrap_servers
    with monkeypatch.context() as patch:
        patch.setattr(wiring, "command_application", unsealed)
        intake = cleanup.client(wiring.service_app(settings, "intake"))
        referral = cleanup.client(wiring.service_app(settings, "referral"))
        player = ScenarioPlayer({"intake": (intake, ""), "referral": (referral, "")}, token)
        played = player.play(STORY)
        assert played.refused == [] and played.persons, played
        headers = {"Authorization": f"Bearer {token('zama-jiritsu', 'caseworker')}"}
        twin = intake.post("/persons", json=TWIN, headers=headers)
        assert twin.status_code == 201, twin.text
        app = intake.app.state.application  # type: ignore[attr-defined]
        legacy_indexes(app, UUID(played.person), UUID(twin.json()["id"]))
    # A signed checkpoint of the (empty) audit chain, on the old prefix's topic.
    assert run_cli(settings, "audit", "checkpoint").returncode == 0
    before = {s: history(settings, s) for s in UPGRADED}
    new = f"{settings.topic_prefix}v2"

    upgraded = run_cli(settings, "upgrade", "--topic-prefix", new)
    assert upgraded.returncode == 0, upgraded.stderr
    report = json.loads(upgraded.stdout)
    assert {o["service"]: o["state"] for o in report["services"]} == {
        "intake": "upgraded",
        "referral": "upgraded",
        "meeting": "nothing to upgrade",
    }
    assert report["topic_prefix"] == new
    assert Topics(settings.topic_prefix).events("intake") in report["old_topics"]

    # The live events tables hold nothing of the person in clear; the kept ones still do.
    tables = dict(postgres_places(settings.database_url))
    live = [(t, tables[t]) for t in ("intake.intake_events", "referral.referral_events")]
    assert in_clear(live, VALUES) == {}
    assert in_clear([("kept", tables["intake_cleartext.intake_events"])], VALUES)
    assert {s: history(settings, s) for s in UPGRADED} == before
    assert "intake_upgrading" not in schemas(settings)

    # The relays, on the new prefix, publish every event again from the first: sealed.
    moved = replace(settings, topic_prefix=new)
    publisher = KafkaPublisher(settings.kafka_bootstrap_servers)
    published = 0
    for name in UPGRADED:
        application = wiring.COMMAND_SERVICES[name].application(moved, None)
        relay = cleanup.relay(wiring.relay(moved, name, application, publisher))
        published += relay.drain()
        application.close()
    publisher.close()
    topics = [Topics(new).events(s) for s in UPGRADED]
    records = cast(list[KafkaRecord], every_record(settings.kafka_bootstrap_servers, topics))
    assert records and published >= len(records)
    assert in_clear(kafka_places(records), VALUES) == {}
    # The signed checkpoint is on the new prefix's topic, as it was signed.
    old_checkpoints = every_record(
        settings.kafka_bootstrap_servers, [Topics(settings.topic_prefix).audit_checkpoints]
    )
    new_checkpoints = every_record(
        settings.kafka_bootstrap_servers, [Topics(new).audit_checkpoints]
    )
    signed = [r.value for r in cast(list[KafkaRecord], old_checkpoints)]
    assert signed and [r.value for r in cast(list[KafkaRecord], new_checkpoints)] == signed

    # Run again: nothing to do; then the kept schemas are dropped once verified.
    again = run_cli(settings, "upgrade", "--drop-old")
    assert again.returncode == 0, again.stderr
    states = {o["service"]: o for o in json.loads(again.stdout)["services"]}
    assert {s: states[s]["state"] for s in UPGRADED} == dict.fromkeys(UPGRADED, "already upgraded")
    assert {s: states[s]["old_store_dropped"] for s in UPGRADED} == dict.fromkeys(UPGRADED, True)
    assert not {"intake_cleartext", "referral_cleartext"} & schemas(settings)
    assert {s: history(settings, s) for s in UPGRADED} == before
    # The service stores on after the events copied: the next number follows the last.
    sealing = cleanup.client(wiring.service_app(settings, "intake"))
    registered = sealing.post("/persons", json={**TWIN, "phone": "046-000-0002"}, headers=headers)
    assert registered.status_code == 201, registered.text
    assert history(settings, "intake")[: len(before["intake"])] == before["intake"]
