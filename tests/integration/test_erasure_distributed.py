"""Crypto-shredding on the real servers (#20): a recognisable person played through intake,
referral, meeting and the views is in clear only in the answers that lawfully show them, never
in PostgreSQL (any schema) nor in any of the deployment's Kafka topics; once erased, nothing
there opens to them and the audit chain still verifies. A reader missing a key shows the field
as erased, and the views go on applying events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from contracts.topics import Topics
from services.platform.keys import KeyStore
from services.platform.settings import Settings
from services.scenarios import ScenarioPlayer
from services.wiring import key_store, service_app
from tests.conftest import TokenFactory, run_cli
from tests.erasure_story import PERSON, VALUES, lawful_reads, play
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Cleanup, Platform
from tests.integration.kafka_tools import end_offsets, every_record, topics_named
from tests.sealed_scan import (
    Place,
    decrypting_to,
    erased,
    file_places,
    in_clear,
    kafka_places,
    opened,
    postgres_places,
    sealed_tokens,
    tokens_opening_to,
)

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
# What the lawful reads must show, opened: the person and what they came with.
SHOWN = {
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "address",
    "phone",
    "main_complaint",
}


def stored(settings: Settings, files: Path) -> list[Place]:
    """All the deployment keeps: the whole database, every schema, as pg_dump writes it; every
    record of every topic under its prefix (the services' events, the audit topic, the dead
    letters, the feeds' own faust topics), read raw from the start; and the files under
    ``files``: the processes' logs and their var dir."""
    assert settings.database_url and settings.kafka_bootstrap_servers
    topics = topics_named(settings.kafka_bootstrap_servers, settings.topic_prefix)
    named = Topics(settings.topic_prefix)
    assert {named.events(s) for s in ("intake", "referral", "meeting", "audit")} <= set(topics)
    records = every_record(settings.kafka_bootstrap_servers, topics)
    return [
        *postgres_places(settings.database_url),
        *kafka_places(records),  # type: ignore[arg-type]
        *file_places(files),
    ]


@pytest.fixture
def keys(distributed_settings: Settings) -> Iterator[KeyStore]:
    store = key_store(distributed_settings)
    yield store
    store.close()


def test_the_person_is_sealed_everywhere_and_nothing_opens_to_them_once_erased(
    platform: Platform, spawn: Spawn, token: TokenFactory, keys: KeyStore, tmp_path: Path
) -> None:
    settings = platform.settings
    spawn(["audit", "ingest"], settings)
    played = play(ScenarioPlayer(platform.services, token))
    platform.settle()
    intake = platform.services["intake"][0]

    def get(path: str, agency: str) -> Any:
        headers = {"Authorization": f"Bearer {token(agency)}"}
        response = platform.views.get(path, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    # The answers to lawful reads open what they show...
    person = intake.get(
        f"/persons/{played.person}", headers={"Authorization": f"Bearer {token()}"}
    ).json()
    answers = {"intake's person": person, **lawful_reads(get, played)}
    shown = in_clear([("answers", json.dumps(answers, ensure_ascii=False).encode())], VALUES)
    assert set(shown) >= SHOWN, shown
    [found] = answers["search"]
    assert found["person_id"] == played.person

    # ...and nothing else holds them in clear; every sealed value opens, some to them.
    kept = stored(settings, tmp_path)
    assert in_clear(kept, VALUES) == {}
    tokens = sealed_tokens(kept)
    assert [t for t, value in opened(tokens, keys).items() if erased(value)] == []
    where = decrypting_to(kept, keys, VALUES)
    assert set(PERSON) - {"sex"} <= set(where)
    # Found sealed in each kind of store read: the event store, the topic and the views.
    sealed_in = {place.split("[")[0].split(" ")[0] for place in where["family_name"]}
    topic = Topics(settings.topic_prefix).events("intake")
    assert {"intake.intake_events", topic, "projection.category_facts"} <= sealed_in, sealed_in
    theirs = tokens_opening_to(kept, keys, VALUES)

    officer = {"Authorization": f"Bearer {token('zama-jiritsu', 'privacy_officer')}"}
    erasure = {"reason": "subject_request"}
    done = intake.post(f"/persons/{played.person}/erasure", json=erasure, headers=officer)
    assert done.status_code == 201, done.json()
    platform.settle()

    page = get(f"/persons/{played.person}", "zama-jiritsu")
    [identity] = [c["fields"] for c in page["categories"] if c["category"] == "identity"]
    assert erased(identity["family_name"]) == "subject_request", identity

    kept = stored(settings, tmp_path)
    assert in_clear(kept, VALUES) == {}
    assert decrypting_to(kept, keys, VALUES) == {}
    # Each value sealed for them (under the person's key or a consultation's, a referral's or
    # a meeting's linked to them) opens to the erasure, with its reason.
    assert {erased(value) for value in opened(theirs, keys).values()} == {"subject_request"}
    verified = run_cli(settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    chain = json.loads(verified.stdout)
    assert chain["ok"] is True and chain["checked"] >= len(answers), chain


def test_a_reader_missing_a_key_shows_the_fields_as_erased_and_goes_on(
    distributed_settings: Settings, spawn: Spawn, token: TokenFactory, cleanup: Cleanup
) -> None:
    """As a replica of the key store behind the event it reads, or one restored without a
    key: the views apply the person's events and answer for them with the erasure notice
    (``key_missing``), and so for every event after them."""
    settings = distributed_settings
    assert settings.database_url and settings.kafka_bootstrap_servers
    spawn(["relay", "intake"], settings)
    intake = cleanup.client(service_app(settings, "intake"))
    views = cleanup.client(service_app(settings, "projection"))
    headers = {"Authorization": f"Bearer {token()}"}

    def register(family_name: str) -> str:
        body = {"family_name": family_name, "family_name_kana": "シギハラ"}
        registered = intake.post("/persons", json=body, headers=headers)
        assert registered.status_code == 201, registered.text
        return str(registered.json()["id"])

    keyless = register(PERSON["family_name"])
    with psycopg.connect(settings.database_url, autocommit=True) as connection:
        deleted = connection.execute("DELETE FROM keys.data_key WHERE subject = %s", (keyless,))
        assert deleted.rowcount == 1
    projection = spawn(["project", "projection"], settings)
    later = register("後藤")

    def shown(person_id: str) -> dict[str, Any] | None:
        page = views.get(f"/persons/{person_id}", headers=headers)
        if page.status_code == 404:
            return None
        assert page.status_code == 200, page.text
        [fields] = [c["fields"] for c in page.json()["categories"] if c["category"] == "identity"]
        return dict(fields)

    wait_for(
        lambda: shown(keyless) is not None and shown(later) is not None,
        120,
        f"the views to apply both\n{projection.output()}",
    )
    missing = shown(keyless)
    assert missing is not None
    given = {k: erased(v) for k, v in missing.items() if v is not None}
    assert given == dict.fromkeys(("family_name", "family_name_kana", "sex"), "key_missing")
    after = shown(later)
    assert after is not None
    assert (after["family_name"], after["family_name_kana"]) == ("後藤", "シギハラ")
    # Without the key, the reader could make no search tokens of the name: only the other
    # person of that kana is found, and the search answers.
    searched = views.get(f"/persons/search?q={quote('シギハラ')}", headers=headers)
    assert searched.status_code == 200, searched.text
    assert [r["person_id"] for r in searched.json()] == [later]
    found = intake.get(f"/persons/{keyless}", headers=headers)
    assert found.status_code == 200, found.text
    assert erased(found.json()["family_name"]) == "key_missing"
    # Nothing was set aside as unreadable: the reader without a key still applied the event.
    dead = Topics(settings.topic_prefix).dead_letter
    assert sum(end_offsets(settings.kafka_bootstrap_servers, [dead]).values()) == 0
