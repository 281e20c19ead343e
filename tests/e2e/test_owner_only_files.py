"""Embedded mode keeps its stores, dead letters and keys under var/ for its owner only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contracts.topics import Topics
from services.platform.auth import mint_token, signing_secret
from services.platform.bus import Message
from services.platform.settings import Settings
from services.wiring import embedded_app

pytestmark = pytest.mark.e2e


def looser_than_the_owner_s(var: Path) -> dict[str, str]:
    """Every file under ``var`` not 0600, every directory (``var`` too) not 0700."""
    loose = {}
    for path in [var, *var.rglob("*")]:
        expected = 0o700 if path.is_dir() else 0o600
        if (mode := stat.S_IMODE(path.stat().st_mode)) != expected:
            loose[str(path.relative_to(var))] = oct(mode)
    return loose


def test_every_file_under_var_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    var = tmp_path / "var"
    # No secrets configured: the development JWT, session and checkpoint keys are made in var/.
    settings = Settings(var_dir=var)
    with TestClient(embedded_app(settings)) as client:
        token = mint_token(
            signing_secret(settings), staff_id="s001", agency="zama-jiritsu", roles=["caseworker"]
        )
        headers = {"Authorization": f"Bearer {token}"}
        registered = client.post(
            "/intake/persons",
            json={"family_name": "志村", "address": "座間市緑ケ丘1-1", "phone": "046-000-0000"},
            headers=headers,
        )
        assert registered.status_code == 201, registered.text
        shown = client.get(f"/views/persons/{registered.json()['id']}", headers=headers)
        assert shown.status_code == 200, shown.text
        # A message no feed can read goes to the dead letters' file.
        intake = Topics(settings.topic_prefix).events("intake")
        client.app.state.bus.publish([Message(intake, "k", b'{"oops": 1}')])  # type: ignore[attr-defined]

        written = {p.name for p in var.rglob("*")}
        assert {
            "dev-jwt-secret",
            "web-session-secret",
            "intake-events.sqlite3",
            "projection-feed.sqlite3",
            "projection-feed.sqlite3-wal",
            "projection-feed.sqlite3-shm",
            "dead-letters.jsonl",
        } <= written, written
        assert looser_than_the_owner_s(var) == {}
    # Stopping anchors the audit chain: a checkpoint, signed with the development key.
    assert {"dev-checkpoint-key.pem", "checkpoint-public-keys.pem"} <= {
        p.name for p in var.rglob("*")
    }
    assert looser_than_the_owner_s(var) == {}
