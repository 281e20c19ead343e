from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import psycopg
import pytest
import tenacity
from kafka.errors import KafkaTimeoutError, UnsupportedVersionError

from services.cli import main
from services.platform import lifecycle
from services.platform.lifecycle import (
    Stopped,
    describe,
    health,
    is_transient,
    report,
    until_available,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "_backoff", tenacity.wait_none)


def failing(errors: list[Exception]) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "done"

    return calls, action


def test_transient_failures_are_waited_out_with_a_line_each_and_one_when_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls, action = failing(
        [psycopg.OperationalError("connection refused"), KafkaTimeoutError("no broker")]
    )
    with caplog.at_level(logging.INFO, logger=lifecycle.__name__):
        assert until_available("PostgreSQL", action) == "done"
    assert len(calls) == 3
    waits = [r for r in caplog.records if r.getMessage() == "waiting for PostgreSQL"]
    assert [w.error for w in waits] == [  # type: ignore[attr-defined]
        "OperationalError: connection refused",
        "KafkaTimeoutError: KafkaTimeoutError: no broker",
    ]
    assert [r.getMessage() for r in caplog.records][-1] == "PostgreSQL is back"


def test_a_failure_that_will_not_go_away_is_raised_at_once() -> None:
    calls, action = failing([ValueError("bad"), ValueError("bad")])
    with pytest.raises(ValueError):
        until_available("PostgreSQL", action)
    assert len(calls) == 1


def test_any_error_retries_deterministic_failures_too() -> None:
    calls, action = failing([ValueError("bad")])
    assert until_available("x", action, any_error=True) == "done"
    assert len(calls) == 2


def test_a_stop_ends_the_wait() -> None:
    stop = threading.Event()

    def action() -> None:
        stop.set()
        raise psycopg.OperationalError("away")

    with pytest.raises(Stopped):
        until_available("PostgreSQL", action, stop)


def test_which_failures_are_transient() -> None:
    assert is_transient(psycopg.errors.DeadlockDetected("deadlock detected"))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert not is_transient(sqlite3.OperationalError("no such table: consultation_view"))
    assert not is_transient(psycopg.errors.DataError("PostgreSQL text fields cannot contain NUL"))
    assert not is_transient(UnsupportedVersionError())
    assert not is_transient(KeyError("x"))


def test_a_deterministic_error_is_described_by_where_it_was_raised_never_its_data() -> None:
    try:
        raise ValueError("山田太郎 090-1234-5678")
    except ValueError as error:
        described = describe(error)
    assert "山田" not in described and "090" not in described
    assert described.startswith("ValueError at test_lifecycle.py:")


def test_the_health_file_says_waiting_while_waiting_and_what_it_said_before_once_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lifecycle.HEALTH_FILE, str(tmp_path / "health"))
    report(lifecycle.READY)
    seen: list[str | None] = []

    def action() -> str:
        seen.append(health())
        if len(seen) < 3:
            raise psycopg.OperationalError("away")
        return "done"

    until_available("PostgreSQL", action)
    assert seen == ["ok", "waiting for PostgreSQL", "waiting for PostgreSQL"]
    assert health() == "ok"


@pytest.mark.parametrize(("state", "code"), [("ok", 0), ("waiting for Kafka", 1), (None, 1)])
def test_tsunagu_health_is_the_process_s_own_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str | None, code: int
) -> None:
    monkeypatch.setenv(lifecycle.HEALTH_FILE, str(tmp_path / "health"))
    if state is not None:
        report(state)
    assert main(["health"]) == code


@pytest.mark.parametrize(("status", "code"), [(200, 0), (503, 1)])
def test_tsunagu_health_with_a_url_is_its_answer(status: int, code: int) -> None:
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            """Quiet."""

    server = HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert main(["health", "--url", f"http://127.0.0.1:{server.server_port}/health"]) == code
    finally:
        server.shutdown()
