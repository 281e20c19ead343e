"""The privacy officer's audit over HTTP and the CLI, on the embedded platform."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from services.cli import parser
from services.platform.settings import Settings
from services.projection.audit import RECORD_VIEWED, AuditEntry, AuditLog
from services.projection.checkpoint import CHECKPOINT_FILE, DEV_KEY_FILE
from services.wiring import embedded_app
from tests.audit_tampering import tamper_file
from tests.infrastructure import ROOT

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
ROUTES = [
    ("GET", "/views/audit/persons/p1"),
    ("GET", "/views/audit/agencies/zama-shakyo"),
    ("GET", "/views/audit/consents/c1"),
    ("GET", "/views/audit/vital-interest/pending"),
    ("POST", "/views/audit/vital-interest/1/review"),
    ("GET", "/views/audit/verify"),
    ("POST", "/views/audit/checkpoints"),
]


@pytest.fixture
def client(embedded_settings: Settings) -> Iterator[TestClient]:
    with TestClient(embedded_app(embedded_settings)) as client:
        yield client


def audit(client: TestClient) -> AuditLog:
    log: AuditLog = client.app.state.audit  # type: ignore[attr-defined]
    return log


def disclose(log: AuditLog, shown: dict[str, tuple[str, str | None]]) -> None:
    log.append(
        AuditEntry(
            kind=RECORD_VIEWED,
            viewer_staff_id="s007",
            viewer_agency="zama-shakyo",
            viewer_roles=("caseworker",),
            recorded_at=T0,
            person_id="p1",
            shown=shown,
            response_hash="b" * 64,
        )
    )


def positions(response: object) -> list[int]:
    assert getattr(response, "status_code", None) == 200, getattr(response, "text", "")
    return [entry["position"] for entry in response.json()]  # type: ignore[attr-defined]


def test_a_privacy_officer_asks_who_saw_what(client: TestClient, auth: Auth) -> None:
    disclose(audit(client), {"identity": ("consent", "c1")})
    disclose(audit(client), {"health": ("vital_interest", "v1")})
    officer = auth("zama-jiritsu", "privacy_officer")

    assert positions(client.get("/views/audit/persons/p1", headers=officer)) == [1, 2]
    window = {"since": "2025-04-01T18:00:00+09:00", "until": "2025-04-02T00:00:00+09:00"}
    assert positions(client.get("/views/audit/persons/p1", params=window, headers=officer)) == [
        1,
        2,
    ]
    before = {"until": "2025-04-01T18:00:00+09:00"}
    assert positions(client.get("/views/audit/persons/p1", params=before, headers=officer)) == []
    assert positions(client.get("/views/audit/agencies/zama-shakyo", headers=officer)) == [1, 2]
    [entry] = client.get("/views/audit/consents/c1", headers=officer).json()
    assert entry["bases"] == {"identity": {"basis": "consent", "basis_id": "c1"}}
    assert positions(client.get("/views/audit/vital-interest/pending", headers=officer)) == [2]

    review = client.post(
        "/views/audit/vital-interest/2/review", json={"note": "declared in time"}, headers=officer
    )
    assert review.status_code == 200, review.text
    assert review.json()["reviewer_staff_id"] == "s001"
    assert positions(client.get("/views/audit/vital-interest/pending", headers=officer)) == []
    again = client.post("/views/audit/vital-interest/2/review", json={"note": "x"}, headers=officer)
    assert again.status_code == 409

    checkpoint = client.post("/views/audit/checkpoints", headers=officer)
    assert checkpoint.status_code == 201, checkpoint.text
    assert (checkpoint.json()["length"], checkpoint.json()["municipality"]) == (2, "142182")
    disclose(audit(client), {"identity": ("consent", "c1")})
    verified = client.get("/views/audit/verify", headers=officer)
    assert verified.json() == {
        "ok": True,
        "checked": 3,
        "first_bad_position": None,
        "problem": None,
        "findings": [],
        "checkpoints": 1,
        "anchored": 2,
        "not_yet_anchored": 1,
        "last_checkpoint": checkpoint.json(),
    }


def test_times_without_an_offset_are_refused(client: TestClient, auth: Auth) -> None:
    response = client.get(
        "/views/audit/persons/p1",
        params={"since": "2025-04-01T09:00:00"},
        headers=auth("zama-jiritsu", "privacy_officer"),
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "since"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_anyone_else_is_refused_and_the_refusal_is_audited(
    client: TestClient, auth: Auth, method: str, path: str
) -> None:
    response = client.request(
        method, path, json={"note": "n"}, headers={**auth(), "X-Request-ID": "req-77"}
    )
    assert response.status_code == 403
    assert "privacy_officer" in response.json()["message"]

    officer = auth("zama-jiritsu", "privacy_officer")
    [denial] = client.get("/views/audit/agencies/zama-jiritsu", headers=officer).json()
    assert denial["kind"] == "access_denied"
    assert (denial["viewer_staff_id"], denial["viewer_roles"]) == ("s001", ["caseworker"])
    assert denial["reason"] == f"{method} {path} needs role 'privacy_officer'"
    assert denial["request_id"] == "req-77"
    assert denial["person_id"] == ("p1" if "/persons/" in path else None)
    assert client.get("/views/audit/verify", headers=officer).json()["ok"]


def test_without_a_token_nothing_is_answered_or_recorded(client: TestClient) -> None:
    assert client.get("/views/audit/verify").status_code == 401
    assert audit(client).verify().checked == 0


def tsunagu(embedded_settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    env["TSUNAGU_VAR_DIR"] = str(embedded_settings.var_dir)
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_verifies_the_chain_and_names_the_tampered_entry(
    client: TestClient, auth: Auth, embedded_settings: Settings
) -> None:
    for _ in range(3):
        client.get("/views/audit/verify", headers=auth())
    sound = tsunagu(embedded_settings, "audit", "verify")
    assert sound.returncode == 0, sound.stderr
    assert json.loads(sound.stdout)["checked"] == 3

    tamper_file(
        embedded_settings.var_dir / "projection-feed.sqlite3",
        lambda raw: raw.execute("UPDATE audit_log SET viewer_staff_id = 's999' WHERE position = 2"),
    )
    tampered = tsunagu(embedded_settings, "audit", "verify")
    assert tampered.returncode == 1
    result = json.loads(tampered.stdout)
    assert (result["ok"], result["first_bad_position"]) == (False, 2)
    assert result["problem"].startswith("altered")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["person", "p1"], [1, 2]),
        (["person", "p1", "--since", "2025-04-01T18:00:01+09:00"], []),
        (["person", "p1", "--until", "2025-04-01T18:00:01+09:00"], [1, 2]),
        (["agency", "zama-shakyo", "--until", "2025-04-01T18:00:00+09:00"], []),
        (["agency", "zama-shakyo", "--since", "2025-04-01T18:00:00+09:00"], [1, 2]),
        (["consent", "c1"], [1]),
        (["pending"], [2]),
    ],
)
def test_the_cli_answers_the_privacy_officers_questions_as_json_lines(
    client: TestClient,
    embedded_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: list[int],
) -> None:
    disclose(audit(client), {"identity": ("consent", "c1")})
    disclose(audit(client), {"health": ("vital_interest", "v1")})
    monkeypatch.setenv("TSUNAGU_VAR_DIR", str(embedded_settings.var_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    parsed = parser().parse_args(["audit", *args])
    assert parsed.handler(parsed, Settings.from_env()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["position"] for line in lines] == expected


def test_the_cli_refuses_times_without_an_offset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["audit", "person", "p1", "--since", "2025-04-01T09:00"])
    assert "UTC offset" in capsys.readouterr().err


def test_the_cli_signs_checkpoints_and_verifies_with_the_public_key_alone(
    client: TestClient, embedded_settings: Settings
) -> None:
    for _ in range(4):
        disclose(audit(client), {"identity": ("consent", "c1")})
    signed = tsunagu(embedded_settings, "audit", "checkpoint")
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["length"] == 4
    # The verifier holds no private key.
    (embedded_settings.var_dir / DEV_KEY_FILE).unlink()
    tamper_file(
        embedded_settings.var_dir / "projection-feed.sqlite3",
        lambda raw: raw.execute("DELETE FROM audit_log WHERE position >= 3"),
    )
    cut = tsunagu(embedded_settings, "audit", "verify")
    assert cut.returncode == 1, cut.stderr
    result = json.loads(cut.stdout)
    assert [f["kind"] for f in result["findings"]] == ["truncated"]
    assert (result["first_bad_position"], result["checked"]) == (3, 2)


def test_the_embedded_app_anchors_what_it_appended_before_it_stops(
    embedded_settings: Settings,
) -> None:
    with TestClient(embedded_app(embedded_settings)) as client:
        disclose(audit(client), {"identity": ("consent", "c1")})
        disclose(audit(client), {"identity": ("consent", "c1")})
    lines = (embedded_settings.var_dir / CHECKPOINT_FILE).read_text().splitlines()
    # Each municipality's chain is anchored: Zama's two entries, Ebina's none yet.
    signed = {json.loads(line)["municipality"]: json.loads(line)["length"] for line in lines}
    assert signed == {"142182": 2, "142158": 0}
    assert len(lines) == 2
