"""The audit log on real PostgreSQL: triggers, tampering caught (against checkpoints on their own
Kafka topic), concurrent appends in one chain."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from contracts.topics import Topics
from services.platform.settings import Settings
from services.projection.audit import AuditLog
from services.projection.checkpoint import KafkaCheckpoints, anchoring
from services.wiring import service_app
from tests.audit_tampering import (
    SEVEN,
    Named,
    PostgresRaw,
    Tamper,
    alter,
    anchored_chain,
    assert_named,
    delete,
    insert_forged,
    swap,
    viewed,
)
from tests.conftest import TokenFactory

pytestmark = pytest.mark.integration

Connection = psycopg.Connection[dict[str, Any]]


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


@pytest.mark.parametrize(
    ("change", "kind"),
    [(alter, "altered"), (delete, "deleted"), (swap, "reordered"), (insert_forged, "inserted")],
    ids=["altered", "deleted", "reordered", "inserted"],
)
def test_the_verifier_names_the_first_tampered_entry(
    log: AuditLog, raw: Connection, change: Tamper, kind: str
) -> None:
    for n in range(8):
        log.append(viewed(n))
    assert log.verify(batch_size=3).ok
    change(PostgresRaw(raw))
    verification = log.verify(batch_size=3)
    assert (verification.ok, verification.first_bad_position, verification.kind) == (
        False,
        4,
        kind,
    )


@pytest.mark.parametrize(("change", "named"), SEVEN, ids=[change.__name__ for change, _ in SEVEN])
def test_each_tampering_is_named_against_the_checkpoints_on_the_topic(
    log: AuditLog,
    raw: Connection,
    distributed_settings: Settings,
    change: Tamper,
    named: Named,
) -> None:
    anchor = anchoring(distributed_settings, signing=True)
    assert isinstance(anchor.store, KafkaCheckpoints)
    anchored_chain(log, anchor)
    change(PostgresRaw(raw))
    assert_named(anchor.verify(log), named)
    anchor.store.close()


def test_checkpoints_have_a_topic_of_their_own_kept_for_ever(
    log: AuditLog, distributed_settings: Settings
) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    anchor = anchoring(distributed_settings, signing=True)
    anchor.checkpoint(log)
    anchor.store.close()
    topic = Topics(distributed_settings.topic_prefix).audit_checkpoints
    bootstrap = distributed_settings.kafka_bootstrap_servers
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        [described] = admin.describe_topics([topic])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    assert len(described["partitions"]) == 1
    assert configs["topic"][topic]["retention.ms"]["value"] == "-1"


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
        signed = client.post("/audit/checkpoints", headers=officer)
        assert signed.status_code == 201, signed.text
        verified = client.get("/audit/verify", headers=officer).json()
        assert (verified["ok"], verified["checkpoints"], verified["anchored"]) == (True, 1, 1)
