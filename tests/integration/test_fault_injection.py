"""Faults under load: kill -9 of each kind of process on the way from a command to a view and
its audited read, the broker stopped and started with events in flight, PostgreSQL restarted,
one poison event. Every accepted command is then visible exactly once, every read is in the
audit chain and the chain verifies. Figures are printed, never timed.

On servers of the test's own (deploy/local's scripts under a directory of its own): the shared
ones serve every other test.
"""

from __future__ import annotations

import functools
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
import psycopg
import pytest

from contracts.topics import Topics
from services.platform.settings import Settings
from tests.conftest import run_cli
from tests.infrastructure import Process, fresh_database, wait_for
from tests.integration.kafka_tools import produce_raw
from tests.integration.own_servers import OwnServers, own_servers
from tests.unit.test_contracts import opened_event

pytestmark = [pytest.mark.integration, pytest.mark.faults]

Spawn = Callable[[list[str], Settings], Process]
OPEN = {"channel": "phone", "route_in": "self", "caller_kind": "anonymous"}
# Far longer than anything here takes when it works.
HUNG = 180.0


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServers]:
    with own_servers(tmp_path_factory.mktemp("servers")) as servers:
        yield servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Load:
    """Requests sent one after another until stopped: commands (POST ``body``), whose ids are
    kept when answered 201, or reads (GET), counted when answered 200."""

    def __init__(
        self, url: str, headers: dict[str, str], body: dict[str, str] | None = None
    ) -> None:
        self.accepted: list[str] = []
        self.refused = 0
        self._url, self._headers, self._body = url, headers, body
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def _request(self, client: httpx.Client) -> httpx.Response:
        if self._body is None:
            return client.get(self._url, headers=self._headers)
        return client.post(self._url, json=self._body, headers=self._headers)

    def _send(self) -> None:
        ok = 200 if self._body is None else 201
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    answer: httpx.Response | None = self._request(client)
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == ok:
                    self.accepted.append(answer.json()["id"] if self._body else "read")
                else:
                    # A server away: its client waits a moment, as a desk would.
                    self.refused += 1
                    self._stop.wait(0.2)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def grows(self, by: int) -> None:
        """Wait until ``by`` more commands are accepted."""
        target = len(self.accepted) + by
        wait_for(lambda: len(self.accepted) >= target, HUNG, f"{by} more accepted commands")


def test_faults_under_load_lose_nothing_and_double_nothing(
    own: OwnServers,
    distributed_settings: Settings,
    spawn: Spawn,
    token: Callable[..., str],
) -> None:
    settings = replace(
        distributed_settings,
        database_url=fresh_database(own.start("postgres")),
        kafka_bootstrap_servers=own.start("kafka"),
    )
    assert settings.database_url and settings.kafka_bootstrap_servers
    assert run_cli(settings, "setup").returncode == 0
    intake, views = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    processes = {
        "intake": ["serve", "intake", "--port", intake.rpartition(":")[2]],
        "relay": ["relay", "intake"],
        "feed": ["project", "projection"],
        "views": ["serve", "projection", "--port", views.rpartition(":")[2]],
    }
    running = {kind: spawn(args, settings) for kind, args in processes.items()}
    headers = {"Authorization": f"Bearer {token()}"}
    for url in (intake, views):
        wait_for(functools.partial(_answers, f"{url}/health"), HUNG, f"{url}/health")
    topic = Topics(settings.topic_prefix).events("intake")
    # The oldest line of the list is a person's: each read of it is a disclosure, audited.
    person = httpx.post(f"{intake}/persons", json={"family_name": "佐藤"}, headers=headers)
    assert person.status_code == 201, person.text
    opened = {**OPEN, "person_id": person.json()["id"]}
    assert httpx.post(f"{intake}/consultations", json=opened, headers=headers).status_code == 201
    oldest = f"{views}/consultations?limit=1"
    wait_for(lambda: bool(httpx.get(oldest, headers=headers).json()), HUNG, "the first line")

    with (
        Load(f"{intake}/consultations", headers, OPEN) as load,
        Load(oldest, headers) as reads,
    ):
        load.grows(30)
        for kind, args in processes.items():
            running[kind].kill9()
            running[kind] = spawn(args, settings)
            load.grows(30)
        own.stop("kafka")
        load.grows(20)  # stored meanwhile: in flight between the relay and the feed
        own.start("kafka")
        load.grows(30)
        own.stop("postgres")
        own.start("postgres")
        load.grows(30)
        poison = _poisoned(settings, topic)
        load.grows(30)

    accepted = set(load.accepted)
    with psycopg.connect(settings.database_url) as connection:

        def visible() -> list[str]:
            rows = connection.execute("SELECT consultation_id FROM projection.consultation_view")
            return [str(row[0]) for row in rows]

        def stored() -> int:
            query = "SELECT count(*) FROM intake.intake_events WHERE topic LIKE %s"
            [count] = connection.execute(query, ("%Consultation%Opened%",)).fetchall()
            return int(count[0])

        wait_for(lambda: len(visible()) >= stored(), HUNG, running["feed"].output())
        seen, kept = visible(), stored()
    letters = [
        d for d in _dead_letters(settings) if d["id"] == poison and "NUL" in str(d["reason"])
    ]
    print(
        f"accepted {len(accepted)}, refused while a server was away {load.refused}, "
        f"stored {kept}, visible {len(seen)}, lost {len(accepted - set(seen))}, "
        f"duplicated {len(seen) - len(set(seen)) + max(0, len(set(seen)) - kept)}, "
        f"dead-lettered {len(letters)}"
    )
    assert accepted <= set(seen)
    assert len(seen) == len(set(seen)) == kept
    assert len(letters) == 1
    verified = run_cli(settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    chain = json.loads(verified.stdout)
    print(f"reads {len(reads.accepted)}, audit entries verified {chain['checked']}")
    assert chain["ok"] and chain["checked"] >= len(reads.accepted) > 0


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _poisoned(settings: Settings, topic: str) -> str:
    """A consultation whose notes PostgreSQL cannot hold, put on the topic; its event id."""
    assert settings.kafka_bootstrap_servers
    opened = opened_event()
    event = opened.model_copy(update={"data": {**opened.data, "notes": "ab\u0000cd"}})
    produce_raw(
        settings.kafka_bootstrap_servers, topic, event.partitionkey.encode(), event.to_bytes()
    )
    return event.id


def _dead_letters(settings: Settings) -> list[dict[str, object]]:
    listed = run_cli(settings, "deadletter", "list")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]
