"""What the benchmarks share: a stack of their own, tokens, and how figures are shown and kept.

Each benchmark runs its processes as ``tsunagu`` commands against the real servers (see
``tests.infrastructure.provide``), in a database and under a topic prefix of its own, and drops
both afterwards, so that neither runs nor other users of the servers see each other's data.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from bench.load import Generated
from services.feeds.store import ViewStore
from services.platform.auth import mint_token
from services.platform.bus import InProcessBus, Message
from services.platform.settings import Settings
from services.wiring import feed_store, key_store, projection_runner
from tests.infrastructure import Infrastructure, Process, free_port, fresh_database

T = TypeVar("T")
SECRET = "bench-secret-" + "b" * 40
OFFICE = "zama-jiritsu"
# What the benchmarks record besides the headline figures: baselines, settings, per process.
_DETAIL: dict[str, dict[str, Any]] = {}


def token(agency: str = OFFICE, role: str = "caseworker") -> str:
    return mint_token(SECRET, staff_id="bench", agency=agency, roles=[role])


@dataclass
class Stack:
    """A database and a topic prefix on the shared servers, and the processes run against them."""

    servers: Infrastructure
    database_url: str
    topic_prefix: str
    workdir: Path
    partitions: int = 8
    processes: list[Process] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            KAFKA_BOOTSTRAP_SERVERS=self.servers.kafka_bootstrap_servers,
            TSUNAGU_VAR_DIR=str(self.workdir / "var"),
            TSUNAGU_TOPIC_PREFIX=self.topic_prefix,
            TSUNAGU_TOPIC_PARTITIONS=str(self.partitions),
            TSUNAGU_JWT_SECRET=SECRET,
        )
        # A collector left configured in the environment would add export work to every span.
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        return env

    def start(self, *args: str) -> Process:
        log = self.workdir / f"{'-'.join(args)}-{len(self.processes)}.log"
        process = Process(list(args), self.env(), log).start()
        self.processes.append(process)
        return process

    def serve(self, service: str, workers: int = 1) -> tuple[Process, int]:
        """``tsunagu serve`` on a free port, once it answers /health."""
        port = free_port()
        process = self.start("serve", service, "--port", str(port), "--workers", str(workers))
        wait_until_healthy(process, port)
        # One worker answering is not all of them ready; each says so in the log.
        deadline = time.monotonic() + 60
        while process.output().count("Application startup complete") < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all {workers} workers started:\n{process.output()}")
            time.sleep(0.2)
        return process, port

    def settings(self) -> Settings:
        """The settings of an in-process app or feed on this stack."""
        return Settings(
            var_dir=self.workdir / "var",
            database_url=self.database_url,
            topic_prefix=self.topic_prefix,
            jwt_secret=SECRET,
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def project(
    settings: Settings, events: Iterable[Generated], name: str, batch: int
) -> tuple[ViewStore, int]:
    """Apply ``events`` through the views' feed in-process (``FeedRunner``), ``batch``
    messages at a time, as consumed from topics ``<name>.<service>.events``: what a benchmark
    reads afterwards. The store is returned open (the caller closes its database), with the
    number of events applied."""
    store, keys = feed_store(settings, "projection"), key_store(settings)
    runner = projection_runner(settings, store, InProcessBus(), keys)
    messages = (
        Message(f"{name}.{g.service}.events", g.key, g.value, (), 0, offset)
        for offset, g in enumerate(events)
    )
    applied = 0
    while chunk := list(itertools.islice(messages, batch)):
        runner.consume_batch(chunk)
        applied += len(chunk)
    keys.close()
    return store, applied


def wait_until_healthy(process: Process, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.popen is not None
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.args} exited:\n{process.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{process.args} did not answer /health in {timeout:.0f}s")


@contextlib.contextmanager
def stack(servers: Infrastructure, name: str) -> Iterator[Stack]:
    """A fresh database and topic prefix for one benchmark; all of it gone afterwards."""
    prefix = f"bench{name}{uuid.uuid4().hex[:8]}"
    database_url = fresh_database(servers.database_url)
    with tempfile.TemporaryDirectory(prefix=f"tsunagu-{name}-") as workdir:
        running = Stack(servers, database_url, prefix, Path(workdir))
        try:
            yield running
        finally:
            running.stop()
            drop_database(servers.database_url, database_url)
            delete_topics(servers.kafka_bootstrap_servers, prefix)


def drop_database(server_url: str, database_url: str) -> None:
    name = database_url.rpartition("/")[2]
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_topics(bootstrap: str, prefix: str) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        # Faust's own topics start with the app id, which starts with the prefix too.
        mine = [t for t in admin.list_topics() if t.startswith(prefix)]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()


def timings(measure: Callable[[T], object], inputs: Sequence[T], warmup: int = 20) -> list[float]:
    """Milliseconds each call of ``measure`` took, one per input after the first ``warmup``
    inputs, whose calls are made but not counted."""
    for item in inputs[:warmup]:
        measure(item)
    took = []
    for item in inputs[warmup:]:
        started = time.perf_counter()
        measure(item)
        took.append((time.perf_counter() - started) * 1000)
    return took


def side_by_side(
    first: Callable[[T], object],
    second: Callable[[T], object],
    inputs: Sequence[T],
    warmup: int = 20,
) -> tuple[list[float], list[float]]:
    """``timings`` of two measures taken in turns on each input, the one going first swapped
    every time: a page and the API calls behind it meet the same database (its checkpoints,
    its growing tables), so that their ratio compares them and not the moments they ran at."""
    took: tuple[list[float], list[float]] = ([], [])
    for number, item in enumerate(inputs):
        order = ((0, first), (1, second)) if number % 2 == 0 else ((1, second), (0, first))
        for which, measure in order:
            started = time.perf_counter()
            measure(item)
            if number >= warmup:
                took[which].append((time.perf_counter() - started) * 1000)
    return took


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def show(
    key: str, value: float, unit: str, *, baseline: float | None = None, of: str = ""
) -> float:
    """Print a figure (and its ratio to the baseline measured in the same run); keep both."""
    line = f"{key:<22} {value:>10.1f} {unit}"
    entry: dict[str, Any] = {"value": value, "unit": unit}
    if baseline is not None:
        line += f"   baseline {baseline:.1f} {unit} ({of})   ratio {value / baseline:.3f}"
        entry.update(baseline=baseline, baseline_is=of, ratio=value / baseline)
    print(line, flush=True)
    _DETAIL.setdefault(key.partition(".")[0], {})[key] = entry
    return value


def note(benchmark: str, **facts: Any) -> None:
    """Keep facts about a run (settings, per-process figures) for the detail file."""
    _DETAIL.setdefault(benchmark, {}).update(facts)


def detail() -> dict[str, dict[str, Any]]:
    return {name: dict(facts) for name, facts in _DETAIL.items()}


def rss_mb(pid: int, field_name: str = "VmHWM") -> float:
    """A process's peak (``VmHWM``) or current (``VmRSS``) resident memory, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no {field_name} for process {pid}")


PROC = Path("/proc")


def cpu_seconds(pid: int, proc: Path = PROC) -> float:
    """CPU time (user and system) a process has used so far (Linux)."""
    fields = (proc / str(pid) / "stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """The whole machine's (busy, total) CPU seconds so far, over every core (Linux)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle and waiting for I/O
    hertz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hertz, sum(ticks) / hertz


def backend_cpu_seconds(database_url: str, proc: Path = PROC) -> dict[int, float]:
    """The CPU seconds (``cpu_seconds``) of each PostgreSQL server process serving connections
    to that database (same machine). A connection closed meanwhile (another process's) is left
    out: its process may be gone between finding it and reading its figures."""
    title = f" {database_url.rpartition('/')[2]} ".encode()
    found = {}
    for entry in proc.iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit():
                command = (entry / "cmdline").read_bytes()
                if command.startswith(b"postgres: ") and title in command:
                    found[int(entry.name)] = cpu_seconds(int(entry.name), proc)
    return found


def checkpoint(database_url: str) -> None:
    """Write out the server's dirty pages now, so that the next measurement does not pay for
    them; a role not allowed to (PostgreSQL 15 wants a superuser or pg_checkpoint) skips it."""
    with (
        psycopg.connect(database_url, autocommit=True) as connection,
        contextlib.suppress(psycopg.errors.InsufficientPrivilege),
    ):
        connection.execute("CHECKPOINT")


def durability(database_url: str) -> dict[str, str]:
    """The server's settings that decide what a commit costs (``make bench``'s: all on)."""
    with psycopg.connect(database_url) as connection:
        return {
            name: str(connection.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("fsync", "synchronous_commit", "full_page_writes")
        }


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (uvicorn's workers, for instance)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # The command name may hold spaces and parentheses: the fields follow the last ")".
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)
