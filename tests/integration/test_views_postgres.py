"""An agency's view on PostgreSQL, fed over Kafka: a consent opens it, a withdrawal purges it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.envelope import CloudEvent
from contracts.events import ViewPurged, parse
from contracts.topics import Topics
from services.feeds.store import ViewStore
from services.platform.settings import Settings
from services.wiring import view_store
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Cleanup, intake_and_views
from tests.integration.kafka_tools import read_topic

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
Auth = Callable[..., dict[str, str]]


def test_a_withdrawn_consent_takes_its_categories_out_of_the_view_and_the_purge_is_published(
    distributed_settings: Settings, spawn: Spawn, auth: Auth, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    feed, intake, views = intake_and_views(settings, spawn, cleanup)
    store = cleanup.store(view_store(settings))

    person = intake.post(
        "/persons", json={"family_name": "試験", "sex": "female"}, headers=auth()
    ).json()["id"]
    now = datetime.now(UTC)
    consent = intake.post(
        "/consents",
        json={
            "person_id": person,
            "recipients": ["hellowork-atsugi"],
            "categories": ["identity"],
            "purposes": ["support_coordination"],
            "valid_from": (now - timedelta(hours=1)).isoformat(),
            "valid_until": (now + timedelta(days=30)).isoformat(),
            "method": "written_application_form",
        },
        headers=auth(),
    )
    assert consent.status_code == 201, consent.text
    consent_id = consent.json()["id"]

    def hellowork_sees() -> dict[str, Any]:
        response = views.get(f"/persons/{person}", headers=auth("hellowork-atsugi"))
        assert response.status_code == 200, response.text
        return {entry["category"]: entry for entry in response.json()["categories"]}

    def projected() -> bool:  # until then, the views know of no such person: 404
        return views.get(f"/persons/{person}", headers=auth()).status_code == 200

    wait_for(projected, 90, lambda: f"the person in the views\n{feed.output()}")
    wait_for(
        lambda: "identity" in hellowork_sees(), 90, lambda: f"the consented view\n{feed.output()}"
    )
    assert hellowork_sees()["identity"]["basis"]["id"] == consent_id
    assert "contact" not in hellowork_sees()

    withdrawn = intake.post(
        f"/consents/{consent_id}/withdrawals",
        json={"at": datetime.now(UTC).isoformat()},
        headers=auth(),
    )
    assert withdrawn.status_code in (200, 201), withdrawn.text

    def purged() -> bool:
        with store.database.transaction() as tx:
            return bool(tx.fetchall("SELECT 1 FROM view_purge WHERE person_id = ?", (person,)))

    wait_for(purged, 90, lambda: f"the purge\n{feed.output()}")
    with store.database.transaction() as tx:
        [purge] = tx.fetchall("SELECT * FROM view_purge WHERE person_id = ?", (person,))
    assert purge["agency"] == "hellowork-atsugi" and consent_id in purge["categories"]
    assert hellowork_sees() == {}

    # The sweeper process publishes the purge as ViewPurged on the projection's topic.
    sweeper = spawn(["views", "sweep", "--every", "0.5"], settings)
    projection_topic = Topics(settings.topic_prefix).events("projection")
    [record] = read_topic(settings.kafka_bootstrap_servers or "", projection_topic, 1)
    event = CloudEvent.from_bytes(record.value)  # type: ignore[attr-defined]
    data = parse(event)
    assert isinstance(data, ViewPurged), sweeper.output()
    assert (str(data.person_id), data.agency, data.categories) == (
        person,
        "hellowork-atsugi",
        ["identity"],
    )
    wait_for(lambda: published(store, person), 30, lambda: f"the purge marked\n{sweeper.output()}")


def published(store: ViewStore, person: str) -> bool:
    with store.database.transaction() as tx:
        row = tx.fetchone("SELECT published FROM view_purge WHERE person_id = ?", (person,))
    return bool(row and row["published"])
