"""``python -m bench.run``: run the benchmarks against the real servers and keep the figures.

Each benchmark module has ``run(servers, *, tiny) -> {key: figure}``; adding one is a line in
``BENCHMARKS``. This runs those asked for (``--only B1,B2``; all by default) and merges their
headline figures, with the machine and the date, into ``bench/results/latest.json``, and what
each benchmark noted (baselines, settings, per-process figures) into ``latest-detail.json``.
``--tiny`` runs each once, small, to prove it works, and writes elsewhere (a temporary
directory unless ``--results`` says where), never over the real figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import checkpoint, detail, note
from tests.infrastructure import Infrastructure, provide

RESULTS = Path(__file__).resolve().parent / "results"
# (the figures' prefix, the module measuring them), in the order they run.
BENCHMARKS: tuple[tuple[str, str], ...] = (
    ("B1", "bench.b1_commands"),
    ("B2", "bench.b2_freshness"),
    ("B3", "bench.b3_catchup"),
    ("B4", "bench.b4_replay"),
    ("B5", "bench.b5_audit"),
    ("B6", "bench.b6_memory"),
    ("B7", "bench.b7_person_view"),
    ("B8", "bench.b8_desk"),
)

Benchmark = Callable[..., dict[str, float]]
# A 1-minute load average below this is a machine at rest (2 cores; the servers idle).
QUIET_LOAD = 0.5


def machine() -> dict[str, float]:
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {"cores": os.cpu_count() or 0, "memory_gb": round(pages * page_size / 2**30, 1)}


def selected(only: str | None) -> list[tuple[str, Benchmark]]:
    wanted = {name.strip().upper() for name in only.split(",")} if only else None
    chosen = []
    for name, module in BENCHMARKS:
        if wanted is None or name in wanted:
            chosen.append((name, importlib.import_module(module).run))
    if wanted is not None and len(chosen) != len(wanted):
        known = ", ".join(name for name, _ in BENCHMARKS)
        raise SystemExit(f"unknown benchmark in {only!r}; known: {known}")
    return chosen


def quiet(servers: Infrastructure, *, below: float = QUIET_LOAD, longest: float = 120) -> None:
    """Start a benchmark on a quiet machine: the previous one's dirty pages written out and
    the load average fallen below ``below`` (waiting ``longest`` seconds at most), so that
    no benchmark pays for the one before it. The load it started at is kept with its figures."""
    checkpoint(servers.database_url)
    deadline = time.monotonic() + longest
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(2)


def run(
    benchmarks: Sequence[tuple[str, Benchmark]],
    servers: Infrastructure,
    *,
    tiny: bool,
    directory: Path,
) -> Path:
    """Each benchmark in turn, its figures merged into ``directory``'s files as soon as it has
    run: one that fails later in a long run loses none of those before it."""
    written = directory / "latest.json"
    for name, benchmark in benchmarks:
        print(f"--- {name}", flush=True)
        if not tiny:
            quiet(servers)
        note(name, load_average_before=[round(load, 2) for load in os.getloadavg()])
        written = write(benchmark(servers, tiny=tiny), [name], directory, {"tiny": tiny})
    return written


def write(
    figures: dict[str, float], ran: Sequence[str], directory: Path, facts: dict[str, object]
) -> Path:
    """Merge this run's figures into the directory's files: a partial run (``--only``) replaces
    the figures of the benchmarks it ran and keeps the others, each with the date it was run."""
    directory.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    target, detail_file = directory / "latest.json", directory / "latest-detail.json"
    headline = _load(target)
    notes = _load(detail_file)
    for name in ran:
        headline = {k: v for k, v in headline.items() if not k.startswith(f"{name}.")}
        notes[name] = {"date": when, **facts, **detail().get(name, {})}
    headline.update(figures, machine=machine(), date=when)
    target.write_text(json.dumps(headline, indent=2) + "\n", encoding="utf-8")
    detail_file.write_text(json.dumps(notes, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return target


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8")) if path.exists() else {}
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="each benchmark once, small")
    parser.add_argument("--only", help="e.g. B1,B2 (default: all)")
    parser.add_argument("--results", type=Path, help="where to write (default: bench/results)")
    args = parser.parse_args(argv)
    benchmarks = selected(args.only)
    directory = args.results or (Path(tempfile.mkdtemp(prefix="bench-")) if args.tiny else RESULTS)
    with provide() as servers:
        written = run(benchmarks, servers, tiny=args.tiny, directory=directory)
    print(f"figures written to {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
