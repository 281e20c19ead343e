"""A service's reads on their way to the audit chain: kept in its own database until the bus
has them, appended once to their municipality's chain however often delivered."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.events.audit import RecordViewed, ShownBasis
from contracts.topics import Topics
from services.feeds.runner import REASON_HEADER
from services.platform.bus import InProcessBus, Message, Publisher
from services.platform.disclosure_outbox import DisclosureOutbox
from services.platform.sql import SqliteDatabase
from services.projection.chains import Chains
from services.projection.disclosure_ingest import AuditIngest
from services.wiring import feed_one

pytestmark = pytest.mark.unit

TOPICS = Topics("t")
ZAMA, EBINA = "142182", "142158"


class Failing(Publisher):
    def publish(self, messages: Sequence[Message]) -> None:
        raise ConnectionError("the broker is away")


def read(person: str = "p1", agency: str = "zama-shakyo") -> RecordViewed:
    return RecordViewed(
        disclosure_id=uuid.uuid4(),
        kind="record_viewed",
        agency=agency,
        staff_id="s1",
        roles=["caseworker"],
        at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        person_id=person,
        shown={"identity": ShownBasis(basis="consent", basis_id="c1")},
        disclosed_by=["zama-jiritsu"],
        response_hash="a" * 64,
    )


@pytest.fixture
def chains(tmp_path: Path) -> Chains:
    return Chains(
        SqliteDatabase(tmp_path / "views.sqlite3"),
        lambda code: SqliteDatabase(tmp_path / f"audit-{code}.sqlite3"),
    )


def wired(tmp_path: Path, chains: Chains) -> tuple[InProcessBus, list[Message]]:
    bus, letters = InProcessBus(), list[Message]()
    bus.subscribe(TOPICS.events("audit"), AuditIngest(chains, bus, TOPICS.dead_letter).consume)
    bus.subscribe(TOPICS.dead_letter, letters.append)
    return bus, letters


def test_an_entry_waits_in_the_outbox_until_the_bus_takes_it_then_is_appended_once(
    tmp_path: Path, chains: Chains
) -> None:
    bus, _ = wired(tmp_path, chains)
    outbox = DisclosureOutbox(
        SqliteDatabase(tmp_path / "intake.sqlite3"), "intake", TOPICS.events("audit")
    )
    outbox.record(ZAMA, [read("p1"), read("p2")])
    assert chains.of(ZAMA).head()[0] == 0
    with pytest.raises(ConnectionError):
        outbox.publish(Failing())
    assert outbox.publish(bus) == 2
    assert outbox.publish(bus) == 0
    [first, second] = chains.of(ZAMA).seen_by_agency("zama-shakyo")
    assert (first.person_id, second.person_id) == ("p1", "p2")
    assert first.disclosed_by == ["zama-jiritsu"]
    assert first.bases == {"identity": {"basis": "consent", "basis_id": "c1"}}


def test_a_redelivered_entry_is_appended_once(tmp_path: Path, chains: Chains) -> None:
    bus, _ = wired(tmp_path, chains)
    delivered: list[Message] = []
    bus.subscribe(TOPICS.events("audit"), delivered.append)
    outbox = DisclosureOutbox(
        SqliteDatabase(tmp_path / "referral.sqlite3"), "referral", TOPICS.events("audit")
    )
    outbox.record(ZAMA, [read()])
    outbox.publish(bus)
    bus.publish(list(delivered))  # the batch again, as after a crash before the offsets moved
    assert chains.of(ZAMA).head()[0] == 1
    assert chains.of(ZAMA).verify().ok


def test_each_municipalitys_reads_go_to_its_own_chain(tmp_path: Path, chains: Chains) -> None:
    bus, _ = wired(tmp_path, chains)
    outbox = DisclosureOutbox(
        SqliteDatabase(tmp_path / "meeting.sqlite3"), "meeting", TOPICS.events("audit"), bus
    )
    outbox.record(EBINA, [read("e1", "ebina-shakyo")])
    outbox.record(ZAMA, [read("z1")])
    assert [r.person_id for r in chains.of(EBINA).seen_by_agency("ebina-shakyo")] == ["e1"]
    assert chains.of(ZAMA).seen_person("e1") == []
    assert (chains.of(ZAMA).head()[0], chains.of(EBINA).head()[0]) == (1, 1)


def test_an_unreadable_or_foreign_entry_goes_to_the_dead_letters(
    tmp_path: Path, chains: Chains
) -> None:
    bus, letters = wired(tmp_path, chains)
    outbox = DisclosureOutbox(
        SqliteDatabase(tmp_path / "intake.sqlite3"), "intake", TOPICS.events("audit"), bus
    )
    outbox.record("131016", [read()])  # no such municipality in this deployment
    bus.publish([Message(TOPICS.events("audit"), "k", b"not a cloudevent")])
    assert [m.header(REASON_HEADER) is not None for m in letters] == [True, True]
    assert chains.of(ZAMA).head()[0] == 0


def test_an_entry_that_fails_each_time_it_is_appended_is_quarantined_and_the_rest_appended(
    tmp_path: Path, chains: Chains
) -> None:
    bus, letters = InProcessBus(), list[Message]()
    ingest = AuditIngest(chains, bus, TOPICS.dead_letter)
    bus.subscribe(TOPICS.events("audit"), functools.partial(feed_one, ingest))
    bus.subscribe(TOPICS.dead_letter, letters.append)
    with chains.of(ZAMA).database.transaction() as tx:
        # A chain that refuses one person's entry, every time: what a poison entry does.
        tx.execute(
            "CREATE TRIGGER refuse AFTER INSERT ON audit_log WHEN NEW.person_id = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    outbox = DisclosureOutbox(
        SqliteDatabase(tmp_path / "intake.sqlite3"), "intake", TOPICS.events("audit"), bus
    )
    outbox.record(ZAMA, [read("poison"), read("p2")])
    assert [m.header(REASON_HEADER) for m in letters] == ["IntegrityError: refused"]
    assert [r.person_id for r in chains.of(ZAMA).seen_by_agency("zama-shakyo")] == ["p2"]
    assert chains.of(ZAMA).verify().ok
