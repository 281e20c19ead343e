"""One event PostgreSQL cannot hold (a NUL byte in a text column) no longer stops every view:
the projector quarantines it, later consultations become visible, and an operator lists,
shows and replays it with ``tsunagu deadletter``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from contracts.envelope import CloudEvent
from contracts.topics import Topics
from services.platform.settings import Settings
from services.wiring import intake_app, view_store
from tests.conftest import run_cli
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Cleanup
from tests.integration.kafka_tools import produce_raw, read_topic

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
Auth = Callable[..., dict[str, str]]
OPEN = {"channel": "phone", "route_in": "self", "caller_kind": "anonymous"}


def deadletter(settings: Settings, *args: str) -> list[dict[str, Any]]:
    done = run_cli(settings, "deadletter", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_nul_byte_is_quarantined_and_later_consultations_become_visible(
    distributed_settings: Settings, spawn: Spawn, auth: Auth, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    bootstrap = settings.kafka_bootstrap_servers
    assert bootstrap
    topic = Topics(settings.topic_prefix).events("intake")
    spawn(["relay", "intake"], settings)
    projector = spawn(["project", "projection"], settings)
    intake = cleanup.client(intake_app(settings))
    store = cleanup.store(view_store(settings))
    assert intake.post("/consultations", json=OPEN, headers=auth()).status_code == 201
    wait_for(lambda: store.count("consultation_view") == 1, 120, projector.output)

    # The edge refuses such notes: the poison comes as an event already on the topic would.
    [record] = read_topic(bootstrap, topic, expect=1)
    opened = CloudEvent.from_bytes(record.value)  # type: ignore[attr-defined]
    consultation = str(uuid.uuid4())
    poison = opened.model_copy(
        update={
            "id": str(uuid.uuid4()),
            "partitionkey": consultation,
            "data": {**opened.data, "consultation_id": consultation, "notes": "ab\u0000cd"},
        }
    )
    produce_raw(bootstrap, topic, consultation.encode(), poison.to_bytes())
    for _ in range(5):
        assert intake.post("/consultations", json=OPEN, headers=auth()).status_code == 201

    wait_for(lambda: store.count("consultation_view") == 6, 120, projector.output)
    [letter] = [d for d in deadletter(settings, "list") if d["id"] == poison.id]
    assert letter["topic"] == topic and letter["key"] == consultation
    assert "NUL" in letter["reason"]

    [shown] = deadletter(settings, "show", letter["name"])
    assert shown["value"]["id"] == poison.id
    assert deadletter(settings, "replay", letter["name"]) == [
        {"replayed": letter["name"], "topic": topic}
    ]
    # Sent to its topic again; still poison, so quarantined again, and the view goes on.
    records = read_topic(bootstrap, topic, expect=8)
    values = [r.value for r in records]  # type: ignore[attr-defined]
    assert values.count(poison.to_bytes()) == 2
    wait_for(
        lambda: len([d for d in deadletter(settings, "list") if d["id"] == poison.id]) == 2,
        120,
        projector.output(),
    )
    assert store.count("consultation_view") == 6

    # A rebuild meets it twice more, and goes on past it.
    rebuilt = run_cli(settings, "views", "rebuild", "projection")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert store.count("consultation_view") == 6
