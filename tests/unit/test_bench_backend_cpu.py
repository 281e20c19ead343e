"""What the benchmarks read of PostgreSQL's server processes: a process gone meanwhile is left
out, not an error (a tiny B3 run once failed on the other replica's closed connection)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.common import backend_cpu_seconds

pytestmark = pytest.mark.unit

URL = "postgresql://tsunagu:tsunagu@127.0.0.1:5432/bench_b3"
# /proc/<pid>/stat: the fields after the command's closing parenthesis; utime and stime are
# the 12th and 13th of them.
STAT = "7 (postgres) S " + " ".join(["0"] * 10) + " 250 50 " + " ".join(["0"] * 30)


def _process(proc: Path, pid: int, cmdline: bytes, *, stat: bool = True) -> None:
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cmdline").write_bytes(cmdline)
    if stat:
        (proc / str(pid) / "stat").write_text(STAT)


def test_only_the_databases_live_backends_are_counted(tmp_path: Path) -> None:
    _process(tmp_path, 101, b"postgres: tsunagu bench_b3 127.0.0.1(40000) idle\0")
    # Listed, then gone before its figures are read: its stat file has gone with it.
    _process(tmp_path, 102, b"postgres: tsunagu bench_b3 127.0.0.1(40001) idle\0", stat=False)
    _process(tmp_path, 103, b"postgres: tsunagu other 127.0.0.1(40002) idle\0")
    _process(tmp_path, 104, b"python -m bench.run\0")

    found = backend_cpu_seconds(URL, tmp_path)

    assert found == {101: 300 / os.sysconf("SC_CLK_TCK")}
