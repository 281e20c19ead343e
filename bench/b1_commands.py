"""B1: commands per second into one service over HTTP, from 32 concurrent clients.

Tsunagu: ``POST /consultations`` (open a consultation) to ``tsunagu serve intake`` on PostgreSQL,
each client sending its next command as soon as the last is answered; only 201s count. The raw
baseline, measured in the same run on the same server: single-row INSERT transactions per
second from 32 psycopg connections. The load client runs on the same cores as the server: the
detail file gives the CPU each side spent per command, and how busy the whole machine was.

Each consultation carries a 主訴, so that intake seals it (crypto-shredding) as it stores the
command: a new consultation is a new data subject, whose data key intake makes in memory and
stores with the event, in the event's own transaction (``KeyStore.stored_with_events``). What
sealing costs a command is measured in the same run on the same database: the consultations'
events sealed in this process as intake seals them, with the key made, then again with the key
known (``bench.sealing_cost``); it is shown as CPU per command and as a share of the intake's CPU
per command under the load. Storing the key's row is part of the event's INSERT: it is in the
command's rate, not in this figure.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from bench.common import (
    OFFICE,
    backend_cpu_seconds,
    children,
    cpu_seconds,
    durability,
    machine_cpu_seconds,
    note,
    show,
    stack,
    token,
)
from bench.http_client import Outcome, closed_loop, post
from bench.sealing_cost import Cost, timed
from contracts.reference import reference
from services.intake.consultation import Consultation
from services.platform.sealed_events import Sealing
from services.platform.sealing import Sealer
from services.platform.settings import Settings
from services.wiring import COMMAND_SERVICES, key_store
from tests.infrastructure import Infrastructure

CLIENTS = 32
# Server processes for the intake API. Each is one interpreter (one GIL), and much of a
# command's time is spent waiting on PostgreSQL, so a process more than the cores keeps the
# cores busy; more than that only adds switching (see README, "Benchmarks").
WORKERS = (os.cpu_count() or 1) + 1
MAIN_COMPLAINT = "家賃を三か月滞納していて、仕事も見つからず生活費が足りない"
OPEN = {
    "channel": "phone",
    "route_in": "self",
    "caller_kind": "anonymous",
    "main_complaint": MAIN_COMPLAINT,
}
# Consultations sealed in this process to measure what sealing costs a command.
SEALED, TINY_SEALED = 2_000, 100
# About the size of a stored ConsultationOpened (its JSON state with the trace context, and
# its 主訴 sealed: 188 characters).
ROW_BYTES = 700


def raw_inserts(database_url: str, clients: int, seconds: float) -> float:
    """Single-row INSERT transactions per second from ``clients`` connections at once."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS raw_insert (id uuid PRIMARY KEY, body bytea NOT NULL)"
        )
    body = os.urandom(ROW_BYTES)
    counts = [0] * clients
    window: list[float] = []

    def open_window() -> None:
        # Runs once every connection is open, so that connecting is not timed.
        window.append(time.monotonic())

    ready = threading.Barrier(clients, action=open_window)

    def client(number: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as connection:
            ready.wait()
            while time.monotonic() < window[0] + seconds:
                connection.execute(
                    "INSERT INTO raw_insert (id, body) VALUES (%s, %s)", (uuid.uuid4(), body)
                )
                counts[number] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - window[0])


def drive(
    port: int, *, seconds: float, warmup: float, window: Callable[[], None] = lambda: None
) -> Outcome:
    """B1's load: ``CLIENTS`` connections opening consultations back to back."""
    request = post("/consultations", OPEN, token())
    outcome = asyncio.run(
        closed_loop(port, request, clients=CLIENTS, seconds=seconds, warmup=warmup, window=window)
    )
    failures = outcome.failures(201)
    if failures:
        raise RuntimeError(f"B1: replies other than 201: {failures}")
    return outcome


@dataclass
class _Usage:
    """CPU seconds so far: the intake server's processes, its database's backends, the load
    client (this process) and the whole machine."""

    server: float
    database: dict[int, float]
    client: float
    machine: tuple[float, float]

    @classmethod
    def now(cls, server: list[int], database_url: str) -> _Usage:
        return cls(
            sum(cpu_seconds(pid) for pid in server),
            backend_cpu_seconds(database_url),
            time.process_time(),
            machine_cpu_seconds(),
        )

    def since(self, start: _Usage, commands: int) -> dict[str, float]:
        # A backend opened during the window counts whole.
        database = sum(t - start.database.get(pid, 0.0) for pid, t in self.database.items())
        busy, total = (b - a for a, b in zip(start.machine, self.machine, strict=True))
        per_command = {
            "server_cpu_ms_per_command": self.server - start.server,
            "client_cpu_ms_per_command": self.client - start.client,
        }
        if self.database:  # visible when PostgreSQL runs on this machine, not in a container
            per_command["postgres_cpu_ms_per_command"] = database
        facts = {name: 1000 * used / commands for name, used in per_command.items()}
        facts["machine_busy_share"] = busy / total
        return facts


def sealing_cost(settings: Settings, commands: int) -> tuple[Cost, Cost]:
    """What sealing B1's command costs intake, per command: its event sealed as intake seals it
    (its subject's key made, then its field sealed), and the same with the key already known."""
    keys = key_store(settings)
    sealing = Sealing(COMMAND_SERVICES["intake"].published, Sealer(keys))
    now = datetime.now(UTC)
    events: list[tuple[uuid.UUID, object]] = []
    for _ in range(commands):
        consultation = Consultation(
            municipality=reference().agencies[OFFICE].municipality,
            agency=OFFICE,
            staff_id="bench",
            opened_at=now,
            channel=OPEN["channel"],
            route_in=OPEN["route_in"],
            caller_kind=OPEN["caller_kind"],
            person_id=None,
            main_complaint=MAIN_COMPLAINT,
            notes=None,
        )
        events += [(consultation.id, event) for event in consultation.collect_events()]

    def seal_all() -> int:
        for subject, event in events:
            with keys.stored_with_events([subject]):
                sealing.seal(event)
        return len(events)

    try:
        return timed(seal_all), timed(seal_all)
    finally:
        keys.close()


def run(servers: Infrastructure, *, tiny: bool) -> dict[str, float]:
    seconds, warmup = (1.0, 0.5) if tiny else (20.0, 3.0)
    with stack(servers, "b1") as running:
        raw = raw_inserts(running.database_url, CLIENTS, seconds)
        raw_single = raw_inserts(running.database_url, 1, seconds / 2)
        settings = durability(running.database_url)
        server, port = running.serve("intake", WORKERS)
        assert server.popen is not None
        processes = [server.popen.pid, *children(server.popen.pid)]
        marks: list[_Usage] = []
        outcome = drive(
            port,
            seconds=seconds,
            warmup=warmup,
            window=lambda: marks.append(_Usage.now(processes, running.database_url)),
        )
        server.stop()
        sealed, known = sealing_cost(running.settings(), TINY_SEALED if tiny else SEALED)
    rate = outcome.succeeded(201) / outcome.seconds
    usage = marks[1].since(marks[0], outcome.succeeded(201))
    command_us = usage["server_cpu_ms_per_command"] * 1000
    show(
        "B1.commands_per_s",
        rate,
        "commands/s",
        baseline=raw,
        of=f"PostgreSQL single-row INSERT transactions/s, {CLIENTS} clients",
    )
    note(
        "B1",
        raw_insert_tx_per_s_1_client=raw_single,
        postgres=settings,
        clients=CLIENTS,
        intake_workers=WORKERS,
        seconds=outcome.seconds,
        commands=outcome.succeeded(201),
        **usage,
        sealing_per_command={
            "what": "its event sealed in this process as intake seals it, same database",
            "with_its_new_data_key": sealed.facts(),
            "its_field_alone_key_known": known.facts(),
            "making_the_data_key": sealed.minus(known).facts(),
        },
    )
    show("B1.sealing_us_per_command", sealed.cpu_us, "µs CPU")
    percent = show("B1.sealing_percent", 100 * sealed.cpu_us / command_us, "% of intake's CPU")
    print(
        f"  sealing a command: {sealed.cpu_us:.0f} µs CPU ({sealed.wall_us:.0f} µs wall) of the "
        f"intake's {command_us:.0f} µs CPU a command; of it, making its new subject's data key "
        f"{sealed.cpu_us - known.cpu_us:.0f} µs CPU ({sealed.wall_us - known.wall_us:.0f} µs wall)",
        flush=True,
    )
    return {
        "B1.commands_per_s": rate,
        "B1.ratio": rate / raw,
        "B1.sealing_us_per_command": sealed.cpu_us,
        "B1.sealing_percent": percent,
    }
