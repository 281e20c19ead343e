"""Issue 15's municipality matrix on PostgreSQL: intake, referral, meeting and the views each as
its own service on the test's own database, their events and their recorded reads carried by
the in-process bus (the relays' and the audit ingest's work done in this process), each
municipality's audit chain in a store of its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.topics import Topics
from services.platform.bus import InProcessBus
from services.platform.settings import Settings
from services.projection.disclosure_ingest import AuditIngest
from services.wiring import (
    COMMAND_SERVICES,
    FEEDS,
    audit_chains,
    close_app,
    declare_topics,
    disclosure_outbox,
    feed_runner,
    feed_store,
    key_store,
    relay,
    service_app,
)
from tests.municipality_matrix import (
    EBINA,
    ZAMA,
    Answer,
    build,
    check,
    check_counts_and_chains,
)

pytestmark = pytest.mark.integration


class Services:
    def __init__(self, settings: Settings) -> None:
        bus, topics = InProcessBus(), Topics(settings.topic_prefix)
        self.stores = {service: feed_store(settings, service) for service in FEEDS}
        self.keys = key_store(settings)
        for service, store in self.stores.items():
            runner = feed_runner(settings, service, store, bus, keys=self.keys)
            for source in FEEDS[service].sources:
                bus.subscribe(topics.events(source), runner.consume)
        self.chains = audit_chains(settings, self.stores["projection"])
        ingest = AuditIngest(self.chains, bus, topics.dead_letter)
        bus.subscribe(topics.events("audit"), ingest.consume)
        names = (*COMMAND_SERVICES, "projection")
        self.apps = {name: service_app(settings, name) for name in names}
        self.relays = [
            relay(settings, name, self.apps[name].state.application, bus)
            for name in COMMAND_SERVICES
        ]
        self.outboxes = [disclosure_outbox(settings, name) for name in COMMAND_SERVICES]
        self.clients = {name: TestClient(app) for name, app in self.apps.items()}
        self.bus = bus

    def call(
        self, service: str, method: str, path: str, token: str, body: Any | None = None
    ) -> Answer:
        client = self.clients["projection" if service == "views" else service]
        return client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})

    def settle(self) -> None:
        """What the relays do in their own processes: events, then recorded reads, until
        nothing more moves."""
        while sum(r.drain() for r in self.relays) + sum(o.publish(self.bus) for o in self.outboxes):
            pass

    def close(self) -> None:
        for app in self.apps.values():
            close_app(app)
        for each in self.relays:
            each.close()
        for outbox in self.outboxes:
            outbox.database.close()
        self.chains.close()
        for store in self.stores.values():
            store.database.close()
        self.keys.close()


@pytest.fixture
def platform(distributed_settings: Settings) -> Iterator[Services]:
    declare_topics(distributed_settings)  # the checkpoints' topic, which verify reads
    services = Services(distributed_settings)
    for municipality in (ZAMA, EBINA):
        municipality.ids.clear()
        build(services, municipality)
    yield services
    services.close()


def test_staff_of_one_municipality_never_see_count_or_audit_the_others(
    platform: Services,
) -> None:
    for this, other in ((ZAMA, EBINA), (EBINA, ZAMA)):
        assert check(platform, this, other) > 90
        platform.settle()
        check_counts_and_chains(platform, this, other)


def test_each_municipalitys_chain_is_kept_apart_and_verifies(platform: Services) -> None:
    zama, ebina = platform.chains.of(ZAMA.code), platform.chains.of(EBINA.code)
    assert zama.database is not ebina.database
    for chain, municipality in ((zama, ZAMA), (ebina, EBINA)):
        assert chain.verify().ok
        persons = {r.person_id for r in chain.seen_by_agency(municipality.shakyo)}
        assert persons == {municipality.ids["person"]}
