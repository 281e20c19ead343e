"""Faults under load: kill -9 of each kind of process the ``tsunagu`` command runs in the
distributed stack (every service's server, relay and feed, the views' server and feed, the
desk, the sweeper, the audit ingest and the checkpointer), the broker stopped and started with
events in flight, PostgreSQL restarted, one poison event. Meanwhile commands of every service
and reads of both kinds (the views' own, and intake's, which reach the chain through the outbox,
the relay and the ingest) keep coming. Then every accepted command is visible exactly once in
every feed that keeps it, every read is in the audit chain once, the chain verifies and its head
is signed, and the lapsed consent was swept. Figures are printed, never timed.

On servers of the test's own (deploy/local's scripts under a directory of its own): the shared
ones serve every other test.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from contracts.topics import Topics
from services.cli import parser
from services.platform.lifecycle import HEALTH_FILE, READY
from services.platform.settings import Settings
from services.projection.agency_view import SWEEP_CAUSE
from tests.conftest import TokenFactory, run_cli, settings_env
from tests.infrastructure import Process, free_port, fresh_database, wait_for
from tests.integration.kafka_tools import produce_raw
from tests.integration.own_servers import OwnServers, own_servers
from tests.unit.test_contracts import opened_event

pytestmark = [pytest.mark.integration, pytest.mark.faults]

OPEN = {"channel": "phone", "route_in": "self", "caller_kind": "anonymous"}
# Far longer than anything here takes when it works.
HUNG = 180.0
# Commands of each kind accepted between two faults: each fault happens under load.
BETWEEN_FAULTS = 5
# Each load's pause after an answer: enough to keep every process busy on two shared cores,
# few enough for the faults, not the load, to be what the processes go through.
PACE = 0.25
# How long the consent the sweeper must purge lasts: longer than it takes to kill the sweeper.
LAPSING = 120
# The commands a ``tsunagu`` process kind of its own does not run: one-shot commands, and the
# embedded platform (``run``).
ONE_SHOT = {"token", "run", "deadletter", "health", "setup", "topics", "upgrade", "keys"}
# Of ``audit`` and ``views``, the forms that keep running.
RUNNING = {
    "audit": [["ingest"], ["checkpoint", "--every", "1"]],
    "views": [["sweep", "--every", "1"]],
    "retention": [["sweep", "--every", "1"]],
}


def subcommands(command: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [found] = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found.choices)


def kinds() -> dict[str, list[str]]:
    """Every kind of process the CLI runs in the distributed stack, by name, with its arguments
    (a server's port added when it starts): each service a command may serve, relay or feed."""
    found: dict[str, list[str]] = {}
    for name, command in subcommands(parser()).items():
        if name in ONE_SHOT:
            continue
        if name in RUNNING:
            for args in RUNNING[name]:
                found[f"{name} {args[0]}"] = [name, *args]
            continue
        [service] = [a for a in command._actions if a.dest == "service"]
        assert service.choices is not None, name
        for choice in service.choices:
            found[f"{name} {choice}"] = [name, choice]
    return found


def test_every_kind_of_process_the_cli_runs_is_one_this_suite_kills() -> None:
    """A new long-running command must be added here, so that the faults below reach it."""
    named = set(subcommands(parser()))
    assert named == ONE_SHOT | set(RUNNING) | {"serve", "relay", "project"}
    found = kinds()
    assert {"serve web", "serve projection", "project projection", "audit ingest"} <= set(found)
    for service in ("intake", "referral", "meeting"):
        assert {f"serve {service}", f"relay {service}"} <= set(found)
    assert {"project referral", "project meeting", "views sweep", "audit checkpoint"} <= set(found)
    assert {"project intake", "retention sweep"} <= set(found)


@dataclass
class Stack:
    """One process of each kind, each restarted at will, each saying when it is ready: a
    server by answering, the others in their health file."""

    settings: Settings
    directory: Path
    ports: dict[str, int] = field(default_factory=dict)
    running: dict[str, Process] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, kind: str) -> None:
        args = kinds()[kind]
        if args[0] == "serve":
            self.ports.setdefault(args[1], free_port())
            args = [*args, "--port", str(self.ports[args[1]])]
        health = self.directory / f"{kind}.health"
        health.unlink(missing_ok=True)
        env = settings_env(self.settings) | {HEALTH_FILE: str(health)}
        # The desk, in front of each service.
        for service, port in self.ports.items():
            name = "views" if service == "projection" else service
            env[f"TSUNAGU_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
        log = self.directory / f"{kind.replace(' ', '-')}.log"
        self.running[kind] = Process(args, env, log).start()

    def ready(self, kind: str) -> bool:
        if kind.startswith("serve "):
            service = kind.removeprefix("serve ")
            return _answers(f"{self.url(service)}/{'signin' if service == 'web' else 'health'}")
        health = self.directory / f"{kind}.health"
        return health.exists() and health.read_text().strip() == READY

    def wait_ready(self, kind: str) -> None:
        wait_for(lambda: self.ready(kind), HUNG, lambda: f"{kind}\n{self.running[kind].output()}")

    def restart(self, kind: str) -> None:
        """kill -9, started again, and ready."""
        self.running[kind].kill9()
        self.start(kind)
        self.wait_ready(kind)

    def stop(self) -> None:
        for process in self.running.values():
            process.stop()


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServers]:
    with own_servers(tmp_path_factory.mktemp("servers")) as servers:
        yield servers


@pytest.fixture
def stack(own: OwnServers, distributed_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    settings = replace(
        distributed_settings,
        database_url=fresh_database(own.start("postgres")),
        kafka_bootstrap_servers=own.start("kafka"),
        # Fourteen processes share two cores: the outboxes need not be polled 50 times a second.
        relay_poll_seconds=0.2,
    )
    assert run_cli(settings, "setup").returncode == 0
    stack = Stack(settings, tmp_path)
    # The servers first: the desk is told where they are.
    for kind in sorted(kinds(), key=lambda kind: kind == "serve web"):
        stack.start(kind)
    try:
        for kind in kinds():
            stack.wait_ready(kind)
        yield stack
    finally:
        stack.stop()


class Load:
    """Requests sent one after another until stopped: commands (POST ``body``), whose ids are
    kept when answered 201, or reads (GET), counted when answered 200."""

    def __init__(
        self, url: str, headers: dict[str, str], body: dict[str, Any] | None = None
    ) -> None:
        self.accepted: list[str] = []
        self.refused = 0
        # Why the last refused request was: what a timeout reports.
        self.last_refusal = ""
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
                except httpx.HTTPError as error:
                    answer, self.last_refusal = None, type(error).__name__
                if answer is not None and answer.status_code == ok:
                    self.accepted.append(answer.json()["id"] if self._body else "read")
                    self._stop.wait(PACE)
                else:
                    if answer is not None:
                        self.last_refusal = f"{answer.status_code} {answer.text[:500]}"
                    # A server away: its client waits a moment, as a desk would.
                    self.refused += 1
                    self._stop.wait(0.2)

    def start(self) -> Load:
        self._thread.start()
        return self

    def grows(self, by: int, what: str) -> None:
        target = len(self.accepted) + by
        try:
            wait_for(lambda: len(self.accepted) >= target, HUNG, what)
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}; the last refused: {self.last_refusal}") from None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class Loads:
    """Every load at once; ``grow`` waits until each command load has had more accepted."""

    commands: dict[str, Load]
    reads: dict[str, Load]

    def __enter__(self) -> Loads:
        for load in (*self.commands.values(), *self.reads.values()):
            load.start()
        return self

    def __exit__(self, *_: object) -> None:
        for load in (*self.commands.values(), *self.reads.values()):
            load.stop()

    def grow(self, what: str) -> None:
        for name, load in self.commands.items():
            load.grows(BETWEEN_FAULTS, f"{name} accepted after {what}")


# Where each kind of command shows, once per id, in every feed that keeps it; and how many the
# service stored (the events that made them).
SHOWN = {
    "consultations": ["SELECT consultation_id FROM projection.consultation_view"],
    "consents": [
        f"SELECT consent_id FROM {schema}.consent"
        for schema in ("projection", "referral", "meeting")
    ],
    "referrals": ["SELECT referral_id FROM projection.referral_box WHERE direction = 'out'"],
    "meetings": [
        "SELECT meeting_id FROM projection.meeting_membership WHERE agency = 'zama-shakyo'"
    ],
}
STORED = {
    "consultations": ("intake.intake_events", "%Consultation%Opened%"),
    "consents": ("intake.intake_events", "%Consent%Recorded%"),
    "referrals": ("referral.referral_events", "%Referral%Sent%"),
    "meetings": ("meeting.meeting_events", "%Meeting%Scheduled%"),
}


def test_faults_under_load_lose_nothing_and_double_nothing(
    own: OwnServers, stack: Stack, token: TokenFactory
) -> None:
    settings = stack.settings
    assert settings.database_url and settings.kafka_bootstrap_servers
    office = {"Authorization": f"Bearer {token()}"}
    now = datetime.now(UTC)
    # A person of each load: one person's views are decided again on each event about them.
    reader, consenting, met = (
        _created(stack, "intake", "/persons", {"family_name": name}, office)
        for name in ("佐藤", "鈴木", "高橋")
    )
    consent = {
        "person_id": consenting,
        "recipients": ["zama-shakyo"],
        "categories": ["identity"],
        "purposes": ["referral", "support_coordination"],
        "valid_until": (now + timedelta(days=90)).isoformat(),
    }
    slip = {
        "kind": "service_request",
        "to": "zama-shakyo",
        "reason": "家計の相談",
        "categories": ["identity"],
        "person_id": consenting,
        "consent_id": _created(stack, "intake", "/consents", consent, office),
    }
    meeting = {
        "kind": "article9_support_meeting",
        "scheduled_for": (now + timedelta(days=1)).isoformat(),
        "person_id": met,
        "members": [
            {"agency": agency, "valid_until": (now + timedelta(days=30)).isoformat()}
            for agency in ("zama-jiritsu", "zama-shakyo")
        ],
    }
    # The oldest line of the list is a person's: each read of it is a disclosure, audited.
    opened = {**OPEN, "person_id": reader}
    _created(stack, "intake", "/consultations", opened, office)
    oldest = f"{stack.url('projection')}/consultations?limit=1"
    wait_for(lambda: bool(httpx.get(oldest, headers=office).json()), HUNG, "the first line")
    lapsing = _lapsing_consent(stack, office)

    loads = Loads(
        commands={
            "consultations": Load(f"{stack.url('intake')}/consultations", office, OPEN),
            "consents": Load(f"{stack.url('intake')}/consents", office, consent),
            "referrals": Load(f"{stack.url('referral')}/referrals", office, slip),
            "meetings": Load(f"{stack.url('meeting')}/meetings", office, meeting),
        },
        reads={
            "views": Load(oldest, office),
            "intake": Load(f"{stack.url('intake')}/persons/{reader}", office),
            "desk": Load(f"{stack.url('web')}/signin", {}),
        },
    )
    with loads:
        loads.grow("the start")
        # The sweeper first: the consent lapses once it has been killed, and only the sweeper
        # started again can purge it.
        for kind in sorted(kinds(), key=lambda kind: kind != "views sweep"):
            if kind == "views sweep":
                assert not _purged(settings, lapsing), "swept before the sweeper was killed"
            stack.restart(kind)
            loads.grow(f"kill -9 of {kind}")
        own.stop("kafka")
        loads.grow("the broker's stop")  # stored meanwhile: in flight between relay and feeds
        own.start("kafka")
        loads.grow("the broker's start")
        own.stop("postgres")
        own.start("postgres")
        loads.grow("PostgreSQL's restart")
        poison = _poisoned(settings, Topics(settings.topic_prefix).events("intake"))
        loads.grow("the poison event")

    with psycopg.connect(settings.database_url, autocommit=True) as connection:
        for name, load in loads.commands.items():
            _exactly_once(connection, name, set(load.accepted), stack)
        _reads_audited_once(connection, loads.reads, stack)
        sweeper = stack.running["views sweep"].output()
        wait_for(lambda: _purged(settings, lapsing), HUNG, f"the lapsed consent swept\n{sweeper}")
    letters = _dead_letters(settings)
    print(f"dead-lettered {len(letters)}, the poison {[d['id'] for d in letters] == [poison]}")
    assert [(d["id"], "NUL" in str(d["reason"])) for d in letters] == [(poison, True)]
    _verified_and_signed(settings, stack)


def _created(stack: Stack, service: str, path: str, body: Any, headers: dict[str, str]) -> str:
    answer = httpx.post(f"{stack.url(service)}{path}", json=body, headers=headers, timeout=30)
    assert answer.status_code == 201, answer.text
    created: str = answer.json()["id"]
    return created


def _lapsing_consent(stack: Stack, headers: dict[str, str]) -> str:
    """A person shakyo sees under a consent that lapses with no event to say so: only the
    sweeper purges it. Its id, once shakyo's view holds it."""
    person = _created(stack, "intake", "/persons", {"family_name": "志村"}, headers)
    consent = {
        "person_id": person,
        "recipients": ["zama-shakyo"],
        "categories": ["identity"],
        "purposes": ["support_coordination"],
        "valid_until": (datetime.now(UTC) + timedelta(seconds=LAPSING)).isoformat(),
    }
    _created(stack, "intake", "/consents", consent, headers)
    # Shakyo's view is decided when read: once the views hold the consent, it shows the person.
    query = "SELECT count(*) FROM projection.consent WHERE person_id = %s AND recipients LIKE %s"

    def shown() -> bool:
        assert stack.settings.database_url
        with psycopg.connect(stack.settings.database_url) as connection:
            [row] = connection.execute(query, (person, '%"zama-shakyo"%')).fetchall()
        return int(row[0]) > 0

    wait_for(shown, HUNG, "shakyo's view of the person under the lapsing consent")
    return person


def _purged(settings: Settings, person: str) -> bool:
    assert settings.database_url
    query = "SELECT count(*) FROM projection.view_purge WHERE person_id = %s AND reason = %s"
    with psycopg.connect(settings.database_url) as connection:
        [row] = connection.execute(query, (person, SWEEP_CAUSE)).fetchall()
    return int(row[0]) > 0


def _exactly_once(
    connection: psycopg.Connection[Any], name: str, accepted: set[str], stack: Stack
) -> None:
    """Every command stored shows once in every feed that keeps it; every accepted one is
    among them."""
    table, topic = STORED[name]

    def stored() -> int:
        query = f"SELECT count(*) FROM {table} WHERE topic LIKE %s"
        [row] = connection.execute(query, (topic,)).fetchall()
        return int(row[0])

    for query in SHOWN[name]:
        feed = stack.running["project projection"].output()

        def shown(query: str = query) -> list[str]:
            rows = connection.execute(query).fetchall()
            return [str(row[0]) for row in rows]

        wait_for(lambda: len(set(shown())) >= stored(), HUNG, f"{name}: {query}\n{feed}")
        seen, kept = shown(), stored()
        print(
            f"{name} ({query.split('FROM ')[1].split()[0]}): accepted {len(accepted)}, "
            f"stored {kept}, visible {len(set(seen))}, lost {len(accepted - set(seen))}, "
            f"duplicated {len(seen) - len(set(seen)) + max(0, len(set(seen)) - kept)}"
        )
        assert accepted <= set(seen)
        assert len(seen) == len(set(seen)) == kept


def _reads_audited_once(
    connection: psycopg.Connection[Any], reads: dict[str, Load], stack: Stack
) -> None:
    """The reads of intake, referral and meeting: each one recorded in its service's outbox is
    one entry of the chain, through the relay and the ingest. The views' reads: appended by the
    views themselves."""
    recorded = {
        str(row[0])
        for service in ("intake", "referral", "meeting")
        for row in connection.execute(f"SELECT event_id FROM {service}.disclosure_outbox")
    }

    def appended() -> set[str]:
        rows = connection.execute("SELECT source_id FROM projection.audit_source")
        return {str(row[0]) for row in rows}

    ingest = stack.running["audit ingest"].output()
    wait_for(lambda: recorded <= appended(), HUNG, f"intake's reads in the chain\n{ingest}")
    [[entries]] = connection.execute("SELECT count(*) FROM projection.audit_log").fetchall()
    print(
        f"reads answered: views {len(reads['views'].accepted)}, intake "
        f"{len(reads['intake'].accepted)} (recorded by the services {len(recorded)}, in the chain "
        f"{len(recorded & appended())}), desk {len(reads['desk'].accepted)}; "
        f"audit entries {entries}"
    )
    assert appended() == recorded
    assert len(recorded) >= len(reads["intake"].accepted) > 0
    assert int(entries) >= len(recorded) + len(reads["views"].accepted)
    assert reads["desk"].accepted


def _verified_and_signed(settings: Settings, stack: Stack) -> None:
    """The chain verifies, and the checkpointer (killed and started again) has signed its head."""
    answers: list[dict[str, Any]] = []

    def anchored() -> bool:
        verified = run_cli(settings, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        answers.append(json.loads(verified.stdout))
        return bool(answers[-1]["not_yet_anchored"] == 0)

    wait_for(anchored, HUNG, stack.running["audit checkpoint"].output, every=2)
    chain = answers[-1]
    print(f"audit entries verified {chain['checked']}, checkpoints {chain['checkpoints']}")
    assert chain["ok"] and chain["anchored"] == chain["checked"]


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
