"""B6: resident memory of each service process under B1's load.

The intake API (its uvicorn supervisor and each worker, as B1 runs them), ``tsunagu relay
intake`` and the faust worker ``tsunagu project`` run together while B1's 32 clients open
consultations; the relay and the worker therefore carry B1's whole stream (a worker that falls
behind holds what it has fetched). Each process's figure is its peak resident set
(``VmHWM``), read just before it is stopped; B6.max_rss_mb is the largest.
"""

from __future__ import annotations

from pathlib import Path

from bench import b1_commands
from bench.common import children, note, rss_mb, show, stack
from tests.infrastructure import Infrastructure, Process


def _pid(process: Process) -> int:
    assert process.popen is not None
    return process.popen.pid


def _resource_tracker(pid: int) -> bool:
    """multiprocessing's helper beside uvicorn's workers: not a service process."""
    return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()


def run(servers: Infrastructure, *, tiny: bool) -> dict[str, float]:
    seconds, warmup = (1.0, 0.5) if tiny else (20.0, 3.0)
    with stack(servers, "b6") as running:
        intake, port = running.serve("intake", b1_commands.WORKERS)
        relay = running.start("relay", "intake")
        projector = running.start("project", "projection")
        b1_commands.drive(port, seconds=seconds, warmup=warmup)
        pids = {"intake supervisor": _pid(intake)}
        pids.update(relay=_pid(relay), projector=_pid(projector))
        workers = [pid for pid in children(_pid(intake)) if not _resource_tracker(pid)]
        pids.update({f"intake worker {n}": pid for n, pid in enumerate(workers, 1)})
        peaks = {name: rss_mb(pid) for name, pid in pids.items()}
    for name, peak in peaks.items():
        print(f"  {name:<20} {peak:>8.1f} MB")
    note("B6", peak_rss_mb=peaks, seconds=seconds, intake_workers=b1_commands.WORKERS)
    return {"B6.max_rss_mb": show("B6.max_rss_mb", max(peaks.values()), "MB")}
