"""Referral on PostgreSQL and Kafka: the consent arrives over Kafka, the loop's events in order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from contracts.envelope import CloudEvent
from contracts.events import parse
from contracts.topics import Topics
from services.platform.bus import KafkaPublisher, ensure_topics
from services.platform.settings import Settings
from services.wiring import feed_store, relay, service_app
from tests.conftest import TokenFactory
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Cleanup
from tests.integration.kafka_tools import read_topic

Spawn = Callable[[list[str], Settings], Process]

pytestmark = pytest.mark.integration


def test_a_referral_decided_on_the_replicated_consent_publishes_its_loop_in_order(
    distributed_settings: Settings,
    spawn: Spawn,
    token: TokenFactory,
    cleanup: Cleanup,
) -> None:
    settings = distributed_settings
    bootstrap = settings.kafka_bootstrap_servers or ""
    topics = Topics(settings.topic_prefix)
    ensure_topics(bootstrap, [topics.events("intake"), topics.events("referral")], 2)
    spawn(["relay", "intake"], settings)
    feed = spawn(["project", "referral"], settings)
    intake = cleanup.client(service_app(settings, "intake"))
    referral_app = service_app(settings, "referral")
    referral = cleanup.client(referral_app)

    def as_(agency: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(agency)}"}

    person = intake.post(
        "/persons", json={"family_name": "佐藤", "local_id": "T-000123"}, headers=as_("zama-shuno")
    ).json()["id"]
    now = datetime.now(UTC)
    consent = intake.post(
        "/consents",
        json={
            "person_id": person,
            "recipients": ["zama-jiritsu"],
            "categories": ["identity", "contact", "tax"],
            "purposes": ["referral"],
            "valid_from": (now - timedelta(minutes=5)).isoformat(),
            "valid_until": (now + timedelta(days=90)).isoformat(),
            "method": "written_tsunagu_sheet",
        },
        headers=as_("zama-shuno"),
    ).json()["id"]
    slip = {
        "kind": "use_recommendation",
        "to": "zama-jiritsu",
        "reason": "失業のため支払えない",
        "categories": ["identity", "contact", "tax"],
        "person_id": person,
        "consent_id": consent,
    }

    replica = cleanup.store(feed_store(settings, "referral"))

    def consent_replicated() -> bool:
        with replica.database.transaction() as tx:
            found = tx.fetchone("SELECT 1 AS found FROM consent WHERE consent_id = ?", (consent,))
        return found is not None

    wait_for(consent_replicated, 90, lambda: f"the consent in referral's feed\n{feed.output()}")
    sent = referral.post("/referrals", json=slip, headers=as_("zama-shuno"))
    assert sent.status_code == 201, sent.text
    url = f"/referrals/{sent.json()['id']}"
    for move, body in (
        ("acknowledge", {}),
        ("accept", {}),
        ("start", {}),
        ("complete", {"outcome": "分納相談へ"}),
    ):
        moved = referral.post(f"{url}/{move}", json=body, headers=as_("zama-jiritsu"))
        assert moved.status_code == 200, moved.text
    status = referral.get(url, headers=as_("zama-shuno")).json()
    assert status["state"] == "completed" and "outcome" not in status

    publisher = KafkaPublisher(bootstrap)
    cleanup.relay(relay(settings, "referral", referral_app.state.application, publisher)).drain()
    publisher.close()
    records = read_topic(bootstrap, topics.events("referral"), expect=5)
    events = [CloudEvent.from_bytes(r.value) for r in records]  # type: ignore[attr-defined]
    assert [e.name for e in events] == [
        "ReferralSent",
        "ReferralAcknowledged",
        "ReferralAccepted",
        "ReferralStarted",
        "ReferralCompleted",
    ]
    assert {r.key.decode() for r in records} == {person}  # type: ignore[attr-defined]
    assert len({r.partition for r in records}) == 1  # type: ignore[attr-defined]
    offsets = [r.offset for r in records]  # type: ignore[attr-defined]
    assert offsets == sorted(offsets)
    for event in events:
        data = parse(event)
        assert data.person_id is not None and str(data.person_id) == person  # type: ignore[attr-defined]
