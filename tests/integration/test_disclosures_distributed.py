"""Distributed mode: a read served by intake, recorded in intake's own database, relayed by
``tsunagu relay intake`` to the audit topic on real Kafka, and appended to the municipality's
chain on PostgreSQL by ``tsunagu audit ingest``, once however often it is delivered."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from services.platform.settings import Settings
from services.wiring import audit_chains, disclosure_outbox, service_app, view_store
from tests.conftest import TokenFactory
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Cleanup

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
ZAMA = "142182"


def test_a_read_reaches_the_chain_through_the_outbox_once(
    distributed_settings: Settings, spawn: Spawn, token: TokenFactory, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    intake = cleanup.client(service_app(settings, "intake"))
    headers = {"Authorization": f"Bearer {token()}"}
    shakyo = {"Authorization": f"Bearer {token('zama-shakyo')}"}
    person = intake.post("/persons", json={"family_name": "志村"}, headers=headers).json()["id"]
    now = datetime.now(UTC)
    consent = {
        "person_id": person,
        "recipients": ["zama-shakyo"],
        "categories": ["identity"],
        "purposes": ["support_coordination"],
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat(),
    }
    assert intake.post("/consents", json=consent, headers=headers).status_code == 201
    assert intake.get(f"/persons/{person}", headers=shakyo).status_code == 200
    spawn(["relay", "intake"], settings)
    spawn(["audit", "ingest"], settings)
    chain = audit_chains(settings, cleanup.store(view_store(settings))).of(ZAMA)

    def entries() -> list[str]:
        return [r.viewer_agency for r in chain.seen_person(person)]

    wait_for(lambda: entries() == ["zama-shakyo"], 90, "the read in the chain")
    [read] = chain.seen_person(person)
    assert list(read.bases) == ["identity"] and read.bases["identity"]["basis"] == "consent"
    assert read.view_request == {"route": f"GET /persons/{person}"}

    # The same entry published again (a relay that crashed before marking it) is not appended
    # again: a later read of the same person, behind it on the same partition, is.
    outbox = disclosure_outbox(settings, "intake")
    with outbox.database.transaction() as tx:
        tx.execute("UPDATE disclosure_outbox SET published = 0")
    assert intake.get(f"/persons/{person}", headers=headers).status_code == 200
    wait_for(lambda: len(entries()) == 2, 90, "the second read in the chain")
    assert entries() == ["zama-shakyo", "zama-jiritsu"]
    assert chain.verify().ok
    outbox.database.close()
