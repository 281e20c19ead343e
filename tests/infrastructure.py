"""The real PostgreSQL and Kafka the integration tests talk to, and processes run against them.

Where they come from, in order: ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` when set;
testcontainers when a Docker engine answers; else ``deploy/local/`` starts them on this
machine (and stops them afterwards, if it was this run that started them).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
# deploy/local's state directory: the same variable and default as its scripts.
LOCAL_DIR = Path(os.environ.get("TSUNAGU_LOCAL_DIR", ROOT / "var" / "local"))


@dataclass(frozen=True)
class Infrastructure:
    database_url: str
    kafka_bootstrap_servers: str
    origin: str


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


@contextlib.contextmanager
def provide() -> Iterator[Infrastructure]:
    url, bootstrap = os.environ.get("DATABASE_URL"), os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if url and bootstrap:
        yield Infrastructure(url, bootstrap, "environment")
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with (
            PostgresContainer("postgres:16-alpine", driver=None) as postgres,
            KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft() as kafka,
        ):
            yield Infrastructure(
                postgres.get_connection_url(), kafka.get_bootstrap_server(), "testcontainers"
            )
    else:
        running = (
            subprocess.run(
                ["bash", str(ROOT / "deploy/local/kafka.sh"), "status"], capture_output=True
            ).returncode
            == 0
        )
        subprocess.run(["bash", str(ROOT / "deploy/local/up.sh")], check=True)
        try:
            env = _read_env_file(LOCAL_DIR / "env")
            yield Infrastructure(
                env["DATABASE_URL"], env["KAFKA_BOOTSTRAP_SERVERS"], "deploy/local"
            )
        finally:
            if not running and not os.environ.get("TSUNAGU_KEEP_SERVERS"):
                subprocess.run(["bash", str(ROOT / "deploy/local/down.sh")], check=False)


def fresh_database(server_url: str) -> str:
    """A new, empty database on the same server, so each test starts from nothing."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Process:
    """A ``tsunagu`` command in a child process, with its output kept for failure reports."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]
