"""deploy/local's servers under a state directory of a test's own, to stop and start at will.

The shared servers (var/local) serve every other test running at the same time: a test that
stops a broker or a database stops its own, never theirs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.infrastructure import ROOT


class OwnServers:
    """``deploy/local/<server>.sh`` with ``TSUNAGU_LOCAL_DIR`` set to a directory of our own."""

    def __init__(self, local_dir: Path) -> None:
        self.local_dir = local_dir
        self._env = {**os.environ, "TSUNAGU_LOCAL_DIR": str(local_dir)}

    def _run(self, server: str, command: str) -> str:
        done = subprocess.run(
            ["bash", str(ROOT / f"deploy/local/{server}.sh"), command],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{server}.sh {command}: {done.stderr[-3000:]}"
        return done.stdout.strip()

    def start(self, server: str) -> str:
        """The server's address (``KAFKA_BOOTSTRAP_SERVERS`` or ``DATABASE_URL``) once ready."""
        _, _, value = self._run(server, "start").partition("=")
        return value

    def stop(self, server: str) -> None:
        self._run(server, "stop")

    def wipe(self, server: str) -> None:
        self._run(server, "wipe")

    def running(self, server: str) -> bool:
        return (
            subprocess.run(
                ["bash", str(ROOT / f"deploy/local/{server}.sh"), "status"],
                env=self._env,
                capture_output=True,
            ).returncode
            == 0
        )


@contextlib.contextmanager
def own_servers(local_dir: Path) -> Iterator[OwnServers]:
    """Servers under ``local_dir``, started as a test asks; wiped at the end whatever it did."""
    servers = OwnServers(local_dir)
    try:
        yield servers
    finally:
        for server in ("kafka", "postgres"):
            servers.wipe(server)
