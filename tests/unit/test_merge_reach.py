"""A merge (PersonsMerged, and its undo) where the views are not: referral's consent replica,
the lines that name a person, and meeting's declarations and applications. Each answer while
merged is the merged person's; an unmerge gives back exactly the answers from before."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.errors import Conflict, Forbidden, Invalid
from contracts.events import ApplicationReceived, IntegrationEvent
from contracts.identity import Staff
from services.feeds.store import ViewStore
from services.meeting.application import DeclareVitalInterest, MeetingApplication, Named, named
from services.meeting.feed import FeedFacts
from services.platform.settings import Settings
from services.platform.sql import SqliteDatabase
from services.projection import merges
from services.referral.application import ReferralApplication, SendReferral
from services.referral.feed import ConsentReplica
from services.wiring import FEEDS
from tests.unit.test_merges import merged, unmerged
from tests.unit.test_person_facts import Views, act, cloudevent, consent, registered

pytestmark = pytest.mark.unit

OFFICE = Staff("s001", "zama-jiritsu", frozenset({"caseworker"}), "142182")
HELLOWORK = Staff("h001", "hellowork-atsugi", frozenset({"caseworker"}), "142182")
SUPERVISOR = Staff("s002", "zama-jiritsu", frozenset({"supervisor"}), "142182")
Feed = Callable[[IntegrationEvent], None]


def feed_of(service: str) -> tuple[ViewStore, Feed]:
    """The service's feed as the composition root wires it, in memory, and a way to feed it."""
    store = ViewStore(SqliteDatabase(":memory:"), FEEDS[service].tables)
    projectors = FEEDS[service].projectors(None)  # type: ignore[arg-type]

    def fed(data: IntegrationEvent) -> None:
        event = cloudevent(data)
        store.apply(
            event.id, event.type, lambda s: [c for p in projectors for c in p(s, event, data)]
        )

    return store, fed


def current_consent(person: UUID, recipients: list[str], categories: list[str]) -> Any:
    now = datetime.now(UTC)
    return consent(person, recipients, categories).model_copy(
        update={
            "purposes": ["referral"],
            "valid_from": now - timedelta(days=1),
            "valid_until": now + timedelta(days=30),
        }
    )


def slip(person: UUID, consent_id: UUID) -> SendReferral:
    return SendReferral(
        kind="use_recommendation",
        to=HELLOWORK.agency,
        reason="就労の相談",
        categories=["identity", "consultation"],
        person_id=person,
        consent_id=consent_id,
    )


def refusal(send: Callable[[], object]) -> dict[str, Any]:
    with pytest.raises(Forbidden) as refused:
        send()
    return {"message": refused.value.message, **refused.value.detail}


def test_referral_decides_on_a_consent_given_under_a_merged_duplicates_id(
    tmp_path: Path,
) -> None:
    store, fed = feed_of("referral")
    replica = ConsentReplica(store)
    referrals = ReferralApplication(Settings(var_dir=tmp_path))
    survivor, duplicate = uuid4(), uuid4()
    given = current_consent(duplicate, [HELLOWORK.agency], ["identity", "consultation"])
    fed(given)
    under_survivor = slip(survivor, given.consent_id)

    def send() -> UUID:
        return referrals.send(OFFICE, under_survivor, replica.consents_of).referral_id

    before = refusal(send)
    assert before["missing_categories"] == ["consultation", "identity"]

    fed(merged(duplicate, survivor))
    # The same human's consent: the slip about the survivor may share what it covers, and the
    # receiver reads it on that consent.
    sent = referrals.referral(send())
    assert (sent.basis, sent.basis_id) == ("consent", str(given.consent_id))
    reading = referrals.slip_reading(HELLOWORK, sent, replica.consents_of)
    assert reading.shown["consultation"] == ("consent", str(given.consent_id))
    assert reading.withheld == {}

    fed(unmerged(duplicate, survivor))
    assert refusal(send) == before
    # The slip sent while merged is the survivor's alone again: its content is withheld.
    withheld = referrals.slip_reading(HELLOWORK, sent, replica.consents_of)
    assert "consultation" not in withheld.shown and "consultation" in withheld.withheld


def test_a_slip_about_the_duplicate_is_decided_and_named_as_the_merged_person() -> None:
    store, fed = feed_of("referral")
    replica = ConsentReplica(store)
    survivor, duplicate = uuid4(), uuid4()
    own = current_consent(survivor, [HELLOWORK.agency], ["identity"])
    fed(own)

    def answers() -> tuple[Any, ...]:
        return (
            [replica.named(p) for p in (survivor, duplicate, None)],
            [replica.consents_of(p) for p in (survivor, duplicate)],
        )

    before = answers()
    assert replica.named(duplicate) == {"person_id": str(duplicate), "recorded_under": None}

    fed(merged(duplicate, survivor))
    assert replica.named(duplicate) == {
        "person_id": str(survivor),
        "recorded_under": str(duplicate),
    }
    assert replica.named(survivor) == {"person_id": str(survivor), "recorded_under": None}
    # A slip kept under the duplicate's id is decided on the survivor's consent, read as the
    # person the slip names.
    [read] = replica.consents_of(duplicate)
    assert (read.consent_id, read.person_id) == (str(own.consent_id), str(duplicate))

    fed(unmerged(duplicate, survivor))
    assert answers() == before


def test_a_line_names_the_survivor_through_a_chain_and_its_own_id_when_unmerged() -> None:
    views, survivor, duplicate, third = Views(), uuid4(), uuid4(), uuid4()
    line = {"consultation_id": "c1", "person_id": str(third)}
    for data in (merged(third, duplicate), merged(duplicate, survivor)):
        views.apply(merges.project_merges(views, cloudevent(data), data))
    assert merges.named(views, line) == {
        "consultation_id": "c1",
        "person_id": str(survivor),
        "recorded_under": str(third),
    }
    assert merges.named(views, {"person_id": None}) == {"person_id": None, "recorded_under": None}
    undone = unmerged(third, duplicate)
    views.apply(merges.project_merges(views, cloudevent(undone), undone))
    assert merges.named(views, line) == line | {"recorded_under": None}


def test_meeting_reads_the_merged_persons_declarations_and_applications_as_one() -> None:
    store, fed = feed_of("meeting")
    facts = FeedFacts(store)
    meetings = MeetingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    survivor, duplicate, consultation = uuid4(), uuid4(), uuid4()
    for person in (survivor, duplicate):
        fed(registered(person))
    fed(ApplicationReceived(**act(), consultation_id=consultation, person_id=duplicate))
    declared = meetings.declare_vital_interest(
        SUPERVISOR,
        facts,
        DeclareVitalInterest(
            person_id=duplicate,
            recipients=["zama-kodomo"],
            categories=["family"],
            reason="安否確認",
            hours=24,
        ),
    )

    def answers() -> dict[UUID, tuple[Any, Any]]:
        def asked(
            read: Callable[[Staff, FeedFacts, UUID], list[Any]], staff: Staff, p: UUID
        ) -> Any:
            try:
                return [getattr(found, "id", found) for found in read(staff, facts, p)]
            except Conflict as pointer:
                return pointer.detail

        return {
            p: (
                asked(meetings.vital_interests, SUPERVISOR, p),
                asked(meetings.applications, OFFICE, p),
            )
            for p in (survivor, duplicate)
        }

    before = answers()
    assert before[survivor] == ([], [])

    fed(merged(duplicate, survivor))
    during = answers()
    [application] = meetings.applications(OFFICE, facts, survivor)
    assert during[survivor] == ([declared], [application])
    assert during[duplicate] == ({"survivor_id": str(survivor)},) * 2
    assert named(facts, duplicate) == Named(survivor, duplicate)

    fed(unmerged(duplicate, survivor))
    assert answers() == before
    assert named(facts, duplicate) == Named(duplicate, None)


def test_a_case_is_opened_for_the_survivor_from_the_duplicates_application_once() -> None:
    store, fed = feed_of("meeting")
    facts = FeedFacts(store)
    meetings = MeetingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    survivor, duplicate, theirs, its = uuid4(), uuid4(), uuid4(), uuid4()
    fed(ApplicationReceived(**act(), consultation_id=theirs, person_id=duplicate))
    fed(ApplicationReceived(**act(), consultation_id=its, person_id=survivor))
    with pytest.raises(Invalid):
        meetings.open_case(OFFICE, facts, theirs, survivor)

    fed(merged(duplicate, survivor))
    case = meetings.open_case(OFFICE, facts, theirs, survivor)
    assert meetings.case_of_person(OFFICE, facts, survivor).id == case
    # One case per human: a second, under the duplicate's id or from another application, is
    # refused naming the one there is.
    for consultation, person in ((its, survivor), (theirs, duplicate)):
        with pytest.raises(Conflict) as refused:
            meetings.open_case(OFFICE, facts, consultation, person)
        assert refused.value.detail["case_id"] == str(case)
