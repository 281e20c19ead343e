"""The audit log on real PostgreSQL: triggers, tampering caught, concurrent appends in one chain."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.projection.audit import RECORD_VIEWED, AuditEntry, AuditLog, entry_hash
from services.wiring import service_app
from tests.conftest import TokenFactory

pytestmark = pytest.mark.integration

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
Connection = psycopg.Connection[dict[str, Any]]


def viewed(n: int) -> AuditEntry:
    return AuditEntry(
        kind=RECORD_VIEWED,
        viewer_staff_id=f"s{n:03}",
        viewer_agency="zama-shakyo",
        viewer_roles=("caseworker",),
        recorded_at=T0 + timedelta(seconds=n),
        person_id=f"p{n}",
        shown={"identity": ("consent", "c1")},
    )


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET person_id = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"],
)
def test_stored_entries_can_be_neither_changed_nor_removed(
    log: AuditLog, raw: Connection, statement: str
) -> None:
    log.append(viewed(1))
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        raw.execute(statement)
    AuditLog(log.database)  # declaring again keeps the triggers
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        raw.execute(statement)
    assert log.verify().checked == 1


def move(raw: Connection, first: int, by: int) -> None:
    raw.execute("UPDATE audit_log SET position = position + 1000000 WHERE position >= %s", (first,))
    raw.execute(
        "UPDATE audit_log SET position = position - 1000000 + %s WHERE position >= 1000000", (by,)
    )


def alter(raw: Connection) -> None:
    raw.execute("UPDATE audit_log SET categories = '[\"health\"]' WHERE position = 4")


def delete(raw: Connection) -> None:
    raw.execute("DELETE FROM audit_log WHERE position = 4")


def swap(raw: Connection) -> None:
    raw.execute("UPDATE audit_log SET position = -1 WHERE position = 4")
    raw.execute("UPDATE audit_log SET position = 4 WHERE position = 5")
    raw.execute("UPDATE audit_log SET position = 5 WHERE position = -1")


def insert_forged(raw: Connection) -> None:
    third = raw.execute("SELECT * FROM audit_log WHERE position = 3").fetchone()
    assert third is not None
    forged = {**third, "position": 4, "person_id": "invented", "previous_hash": third["entry_hash"]}
    forged["entry_hash"] = entry_hash(third["entry_hash"], forged)
    move(raw, 4, 1)
    columns = ", ".join(forged)
    marks = ", ".join(["%s"] * len(forged))
    raw.execute(f"INSERT INTO audit_log ({columns}) VALUES ({marks})", tuple(forged.values()))


@pytest.mark.parametrize(
    ("change", "kind"),
    [(alter, "altered"), (delete, "deleted"), (swap, "reordered"), (insert_forged, "inserted")],
    ids=["altered", "deleted", "reordered", "inserted"],
)
def test_the_verifier_names_the_first_tampered_entry(
    log: AuditLog, raw: Connection, change: Callable[[Connection], None], kind: str
) -> None:
    for n in range(8):
        log.append(viewed(n))
    assert log.verify(batch_size=3).ok
    raw.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    change(raw)
    verification = log.verify(batch_size=3)
    assert (verification.ok, verification.first_bad_position) == (False, 4)
    assert verification.problem is not None and verification.problem.startswith(kind)


def test_concurrent_appends_make_one_gapless_chain(log: AuditLog) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        records = list(pool.map(lambda n: log.append(viewed(n)), range(200)))
    assert sorted(r.position for r in records) == list(range(1, 201))
    verification = log.verify(batch_size=64)
    assert (verification.ok, verification.checked) == (True, 200)


def test_the_projection_service_answers_the_privacy_officer(
    distributed_settings: Settings, token: TokenFactory
) -> None:
    with TestClient(service_app(distributed_settings, "projection")) as client:
        caseworker = {"Authorization": f"Bearer {token()}"}
        assert client.get("/audit/verify", headers=caseworker).status_code == 403
        officer = {"Authorization": f"Bearer {token(role='privacy_officer')}"}
        response = client.get("/audit/agencies/zama-jiritsu", headers=officer)
        assert [entry["kind"] for entry in response.json()] == ["access_denied"]
        assert client.get("/audit/verify", headers=officer).json()["ok"]
