"""A merge (PersonsMerged, and its undo) in the person projectors: the survivor is read with
what was recorded under the duplicate, the duplicate has no picture of its own, and an unmerge
gives both back exactly as they were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.envelope import CloudEvent
from contracts.errors import Conflict, NotFound
from contracts.events import (
    ApplicationReceived,
    ConsultationOpened,
    IntegrationEvent,
    PersonRegistered,
    PersonsMerged,
    PersonsUnmerged,
)
from contracts.identity import Staff
from services.feeds.changes import Change
from services.feeds.store import ViewStore
from services.meeting.application import MeetingApplication
from services.meeting.feed import FeedFacts
from services.platform.sql import SqliteDatabase
from services.projection.agency_view import decided_view, decided_views, person_views
from services.projection.merges import merged_into, survivor_of
from services.projection.person_documents import case_as_of, person_view
from services.projection.person_facts import record_from
from services.wiring import FEEDS
from tests.unit.test_person_facts import NOW, T0, Views, act, cloudevent, consent, registered

pytestmark = pytest.mark.unit

HELLOWORK = "hellowork-atsugi"


class Feed(Views):
    """The stored rows, fed through the projection's person projector (``person_views``)."""

    def feed(
        self, data: IntegrationEvent, now: datetime = NOW, recorded: datetime = NOW
    ) -> list[Change]:
        return self.feed_event(cloudevent(data, recorded), data, now)

    def feed_event(
        self, event: CloudEvent, data: IntegrationEvent, now: datetime = NOW
    ) -> list[Change]:
        changes = list(person_views(lambda: now)(self, event, data))
        self.apply(changes)
        return changes

    def view(self, agency: str, person: UUID) -> dict[tuple[str, str], tuple[str, str, str]]:
        return {
            (row["category"], row["field"]): (row["value"], row["basis"], row["basis_id"])
            for row in decided_view(self, agency, str(person), NOW)
        }

    def picture(self, person: UUID) -> dict[str, Any]:
        """Everything a reader gets of the person: each agency's view and the timeline."""
        return {
            agency: (
                self.view(agency, person),
                person_view(self, agency, str(person), NOW).document,
            )
            for agency in ("zama-jiritsu", HELLOWORK)
        } | {"as_of": case_as_of(self, "zama-jiritsu", str(person), NOW, NOW).document}


def opened(person: UUID, complaint: str = "家賃が払えない") -> ConsultationOpened:
    return ConsultationOpened(
        **act(at=T0 + timedelta(hours=1)),
        consultation_id=uuid4(),
        channel="phone",
        route_in="self",
        caller_kind="self",
        person_id=person,
        main_complaint=complaint,
    )


def merged(duplicate: UUID, survivor: UUID) -> PersonsMerged:
    return PersonsMerged(
        **act(at=T0 + timedelta(days=1)), person_id=duplicate, survivor_id=survivor
    )


def unmerged(duplicate: UUID, survivor: UUID) -> PersonsUnmerged:
    return PersonsUnmerged(
        **act(at=T0 + timedelta(days=2)), person_id=duplicate, survivor_id=survivor
    )


def two_records() -> tuple[Feed, UUID, UUID, ConsultationOpened]:
    """A survivor known by name, and a duplicate with a consultation and Hello Work's consent
    to see identity and consultation."""
    views, survivor, duplicate = Feed(), uuid4(), uuid4()
    views.feed(registered(survivor))
    views.feed(PersonRegistered(**act(), person_id=duplicate, family_name="仮名ダブり", sex="male"))
    consultation = opened(duplicate)
    views.feed(consultation)
    views.feed(consent(duplicate, [HELLOWORK], ["identity", "consultation"]))
    return views, survivor, duplicate, consultation


def test_the_survivor_is_read_with_the_duplicates_records_and_their_provenance() -> None:
    views, survivor, duplicate, consultation = two_records()
    assert views.view(HELLOWORK, survivor) == {}
    views.feed(merged(duplicate, survivor))

    complaint = f"consultation:{consultation.consultation_id}.main_complaint"
    own = views.view("zama-jiritsu", survivor)
    assert ("consultation", complaint) in own
    # The consent given under the duplicate's id is the same human's: it opens its scope of the
    # merged person, the survivor's identity too, and nothing more (not their contact).
    hellowork = views.view(HELLOWORK, survivor)
    assert {category for category, _ in hellowork} == {"identity", "consultation"}
    assert {basis for _, basis, _ in hellowork.values()} == {"consent"}
    # Where both records hold a field, the survivor's value stands.
    assert own[("identity", "person.family_name")][0] == "仮名"
    # The duplicate has no picture of its own, and nothing left anyone's view.
    assert decided_views(views, str(duplicate), NOW) == {}
    assert views.rows("view_purge", {}) == []

    timeline = case_as_of(views, "zama-jiritsu", str(survivor), NOW, NOW).document
    [entry] = [e for e in timeline["timeline"] if e["event"] == "ConsultationOpened"]
    assert entry["recorded_under"] == str(duplicate)
    assert entry["agency"] == "zama-jiritsu" and entry["event_id"]
    assert timeline["merged_from"] == [str(duplicate)]
    own_entries = [e for e in timeline["timeline"] if "recorded_under" not in e]
    assert {e["event"] for e in own_entries} == {"PersonRegistered"}
    record = record_from(views, str(survivor))
    assert {c.person_id for c in record.consents} == {str(survivor)}


def test_what_the_duplicate_records_after_the_merge_joins_the_survivor() -> None:
    views, survivor, duplicate, _ = two_records()
    views.feed(merged(duplicate, survivor))
    later = opened(duplicate, "仕事が見つからない")
    views.feed(later)
    field = f"consultation:{later.consultation_id}.main_complaint"
    assert ("consultation", field) in views.view(HELLOWORK, survivor)
    assert decided_views(views, str(duplicate), NOW) == {}


def test_an_unmerge_gives_both_pictures_back_exactly() -> None:
    views, survivor, duplicate, _ = two_records()
    before = (views.picture(survivor), views.picture(duplicate))
    views.feed(merged(duplicate, survivor))
    assert views.picture(survivor) != before[0]
    views.feed(unmerged(duplicate, survivor))
    assert (views.picture(survivor), views.picture(duplicate)) == before
    # What each agency saw of the survivor from the duplicate's records left its view, and the
    # audit says why.
    purges = views.rows("view_purge", {"person_id": str(survivor)})
    assert {p["agency"] for p in purges} == {HELLOWORK, "zama-jiritsu"}
    assert {p["reason"] for p in purges} == {f"person {duplicate} unmerged from {survivor}"}


def test_a_merge_delivered_twice_changes_nothing_more() -> None:
    views, survivor, duplicate, _ = two_records()
    data = merged(duplicate, survivor)
    event = cloudevent(data)
    views.feed_event(event, data)
    once = (views.picture(survivor), views.rows("person_merge", {}))
    views.feed_event(event, data)
    assert (views.picture(survivor), views.rows("person_merge", {})) == once


def test_a_chain_of_merges_reads_as_one_person() -> None:
    views, survivor, duplicate, _ = two_records()
    third = uuid4()
    views.feed(registered(third))
    views.feed(merged(third, duplicate))
    views.feed(merged(duplicate, survivor))
    assert survivor_of(views, str(third)) == str(survivor)
    assert merged_into(views, str(survivor)) == sorted([str(duplicate), str(third)])
    assert decided_views(views, str(third), NOW) == {}


def test_meeting_reads_the_merged_persons_case_and_bases_as_one() -> None:
    """Meeting's feed keeps the merges too: the survivor's case is the one opened under the
    duplicate, the duplicate's id points to the survivor, and the duplicate's consent counts."""
    feed = ViewStore(SqliteDatabase(":memory:"), FEEDS["meeting"].tables)
    facts = FeedFacts(feed)
    survivor, duplicate, consultation = uuid4(), uuid4(), uuid4()

    def fed(data: IntegrationEvent) -> None:
        event = cloudevent(data)
        projectors = FEEDS["meeting"].projectors(None)  # type: ignore[arg-type]
        feed.apply(
            event.id, event.type, lambda s: [c for p in projectors for c in p(s, event, data)]
        )

    fed(ApplicationReceived(**act(), consultation_id=consultation, person_id=duplicate))
    now = datetime.now(UTC)
    given = consent(duplicate, ["zama-shakyo"], ["plan"]).model_copy(
        update={"valid_from": now - timedelta(days=1), "valid_until": now + timedelta(days=30)}
    )
    fed(given)
    meetings = MeetingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    office = Staff("s001", "zama-jiritsu", frozenset({"caseworker"}), "142182")
    case = meetings.open_case(office, facts, consultation, duplicate, T0)
    shakyo = Staff("s002", "zama-shakyo", frozenset({"caseworker"}), "142182")
    with pytest.raises(NotFound):
        meetings.case_of_person(office, facts, survivor)
    assert "plan" not in meetings.visibility(shakyo, facts, survivor)

    fed(merged(duplicate, survivor))
    assert meetings.case_of_person(office, facts, survivor).id == case
    with pytest.raises(Conflict) as pointer:
        meetings.case_of_person(office, facts, duplicate)
    assert pointer.value.detail["survivor_id"] == str(survivor)
    _, allow = meetings.visibility(shakyo, facts, survivor)["plan"]
    assert (allow.basis, allow.basis_id) == ("consent", str(given.consent_id))

    fed(unmerged(duplicate, survivor))
    with pytest.raises(NotFound):
        meetings.case_of_person(office, facts, survivor)
    assert meetings.case_of_person(office, facts, duplicate).id == case
