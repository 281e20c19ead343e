"""The projector on Kafka and PostgreSQL: kill -9 and restart lose and double nothing, its
position moves with its rows, and the views can be dropped and rebuilt from the topics."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from contracts.topics import Topics
from services.platform.settings import Settings
from services.wiring import service_app, view_store
from tests.conftest import settings_env
from tests.infrastructure import ROOT, Process, wait_for
from tests.integration.conftest import Cleanup

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
OPEN = {"channel": "visit", "route_in": "self", "caller_kind": "self"}


def test_kill_9_of_the_projector_then_a_rebuild(
    distributed_settings: Settings,
    spawn: Spawn,
    auth: Callable[..., dict[str, str]],
    cleanup: Cleanup,
) -> None:
    settings = distributed_settings
    spawn(["relay", "intake"], settings)
    projector = spawn(["project", "projection"], settings)
    intake = cleanup.client(service_app(settings, "intake"))
    store = cleanup.store(view_store(settings))
    topic = Topics(settings.topic_prefix).events("intake")

    for number in range(300):
        assert intake.post("/consultations", json=OPEN, headers=auth()).status_code == 201
        if number == 100:
            wait_for(lambda: store.count("consultation_view") > 0, 90, projector.output)
        if number == 150:
            projector.kill9()
            projected_when_killed = store.count("consultation_view")
        if number == 200:
            projector = spawn(["project", "projection"], settings)

    assert 0 < projected_when_killed < 300
    wait_for(lambda: store.count("consultation_view") >= 300, 120, projector.output)
    assert store.count("consultation_view") == 300
    assert store.count("processed_event") == 300
    # The position moved with the rows: it accounts for every message on the topic.
    positions = {tp: n for tp, n in store.positions().items() if tp[0] == topic}
    assert sum(positions.values()) == 300

    rebuilt = subprocess.run(
        [sys.executable, "-m", "services.cli", "views", "rebuild", "projection"],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert '"replayed": 300' in rebuilt.stdout
    assert "rebuilt 300/300 messages (100%)" in rebuilt.stderr
    assert store.count("consultation_view") == 300
    assert store.count("processed_event") == 300
