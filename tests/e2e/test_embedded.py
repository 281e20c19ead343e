"""The embedded platform as a newcomer meets it: `tsunagu run`, a token, the HTTP flow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from services.scenarios import load_scenarios
from tests.e2e.test_owner_only_files import looser_than_the_owner_s
from tests.infrastructure import ROOT, free_port, wait_for

pytestmark = pytest.mark.e2e


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_make_run_serves_the_flow_with_demo_data_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    env["TSUNAGU_VAR_DIR"] = str(tmp_path / "var")
    env.pop("TSUNAGU_JWT_SECRET", None)
    port = free_port()
    log = (tmp_path / "run.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the embedded server")
        printed = (tmp_path / "run.log").read_text()
        assert f"{base}/docs" in printed and "tsunagu token" in printed

        token = cli(
            "token", "--agency", "zama-jiritsu", "--role", "caseworker", "--staff", "s001", env=env
        )
        headers = {"Authorization": f"Bearer {token}"}
        demo = httpx.get(f"{base}/views/consultations", headers=headers).json()
        scenario_openings = sum(
            1 for s in load_scenarios() for step in s.steps if step["do"] == "open_consultation"
        )
        assert len(demo) == scenario_openings

        opened = httpx.post(
            f"{base}/intake/consultations",
            json={
                "channel": "phone",
                "route_in": "self",
                "caller_kind": "anonymous",
                "notes": "髙﨑 👋",
            },
            headers=headers,
        )
        assert opened.status_code == 201
        view = httpx.get(f"{base}/views/consultations", headers=headers).json()
        assert opened.json()["id"] in {row["consultation_id"] for row in view}
        assert (
            next(r for r in view if r["consultation_id"] == opened.json()["id"])["notes"]
            == "髙﨑 👋"
        )

        invalid = httpx.post(
            f"{base}/intake/consultations", json={"channel": "fax"}, headers=headers
        )
        assert invalid.status_code == 422
        fields = {p["field"] for p in invalid.json()["problems"]}
        assert {"route_in", "caller_kind"} <= fields
        wrong = httpx.post(
            f"{base}/intake/consultations",
            json={"channel": "fax", "route_in": "self", "caller_kind": "self"},
            headers=headers,
        )
        assert wrong.json()["problems"][0]["field"] == "channel"
        assert "visit" in wrong.json()["problems"][0]["allowed"]
        too_big = httpx.post(
            f"{base}/intake/consultations", content=b"x" * (1024 * 1024 + 1), headers=headers
        )
        assert too_big.status_code == 413
        assert httpx.get(f"{base}/views/consultations").status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=30)
    assert code == 0
    # The demo's stores, its marker and the keys made for it are the owner's alone.
    assert looser_than_the_owner_s(tmp_path / "var") == {}
