"""The person projectors as pure functions: facts by category, and each agency's lawful view."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.envelope import CloudEvent
from contracts.events import (
    AssessmentRecorded,
    ConsentRecorded,
    ConsentWithdrawn,
    ConsultationAttached,
    ConsultationOpened,
    ConsultationTriaged,
    IntegrationEvent,
    MeetingHeld,
    MeetingScheduled,
    PersonRegistered,
    ReferralAccepted,
    ReferralSent,
)
from contracts.events.meeting import Attendee, DiscussedPlan, Membership
from services.feeds.changes import Change, Upsert
from services.projection.agency_view import decided_view, person_views
from services.projection.person_facts import KEYS, facts_of, record_from, utc

pytestmark = pytest.mark.unit

T0 = datetime(2025, 4, 9, 5, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)


class Views:
    """The stored rows, in memory: what the view store would hold after applying changes."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        self.now = NOW

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        found = self.rows(table, key)
        return found[0] if found else None

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self.tables.get(table, {}).values()
            if all(row.get(c) == v for c, v in where.items())
        ]

    def apply(self, changes: Sequence[Change]) -> None:
        for change in changes:
            table = self.tables.setdefault(change.table, {})
            key = tuple(change.key[c] for c in KEYS[change.table])
            if isinstance(change, Upsert):
                table[key] = {**table.get(key, {}), **change.key, **change.values}
            else:
                table.pop(key, None)

    def feed(
        self, data: IntegrationEvent, now: datetime = NOW, recorded: datetime = NOW
    ) -> list[Change]:
        """One event, recorded at ``recorded``, through the projection feed's person
        projector at ``now``; the changes, applied together."""
        self.now = now
        changes = list(person_views(lambda: now)(self, cloudevent(data, recorded), data))
        self.apply(changes)
        return changes

    def seen(self, agency: str, person: UUID) -> dict[str, str]:
        """Category -> basis of what ``agency``'s view shows of ``person`` at the last event."""
        return {
            row["category"]: row["basis"]
            for row in decided_view(self, agency, str(person), self.now)
        }


def cloudevent(data: IntegrationEvent, time: datetime = NOW) -> CloudEvent:
    return CloudEvent.model_validate(
        dict(
            id=str(uuid4()),
            source=f"/tsunagu/{data.service}",
            type=data.cloudevent_type(),
            time=time,
            municipality="142182",
            partitionkey="k",
            eventversion=data.version,
            data=data.model_dump(mode="json"),
        )
    )


def act(agency: str = "zama-jiritsu", at: datetime = T0) -> dict[str, Any]:
    return {"agency": agency, "staff_id": "s1", "at": at}


def registered(person: UUID, agency: str = "zama-jiritsu") -> PersonRegistered:
    return PersonRegistered(
        **act(agency), person_id=person, family_name="仮名", sex="male", phone="046-000-0000"
    )


def consent(person: UUID, recipients: list[str], categories: list[str]) -> ConsentRecorded:
    return ConsentRecorded(
        **act(),
        consent_id=uuid4(),
        person_id=person,
        given_by="self",
        recipients=recipients,
        categories=categories,
        purposes=["support_coordination"],
        valid_from=T0,
        valid_until=T0 + timedelta(days=365),
        method="written_application_form",
    )


def facts(views: Views, person: UUID) -> dict[str, str]:
    return {row["field"]: row["category"] for row in facts_of(views, str(person))}


def every_fact(views: Views) -> list[dict[str, Any]]:
    persons = sorted({row["person_id"] for row in views.rows("category_facts", {})})
    return [fact for person in persons for fact in facts_of(views, person)]


def test_registration_splits_identity_from_contact() -> None:
    views, person = Views(), uuid4()
    views.feed(registered(person))
    found = facts(views, person)
    assert found["person.family_name"] == "identity"
    assert found["person.phone"] == found["person.address"] == "contact"


def test_each_category_of_a_person_is_one_record_of_its_fields_with_their_provenance() -> None:
    views, person, consultation = Views(), uuid4(), uuid4()
    views.feed(registered(person))
    common: dict[str, Any] = {"consultation_id": consultation, "person_id": person}
    views.feed(
        ConsultationOpened(**act(), **common, channel="phone", route_in="self", caller_kind="self")
    )
    views.feed(
        ConsultationTriaged(**act(at=T0 + timedelta(hours=1)), **common, outcome="continue_here")
    )
    records = [(row["person_id"], row["category"]) for row in views.rows("category_facts", {})]
    assert sorted(records) == [(str(person), c) for c in ("consultation", "contact", "identity")]
    fact = {row["field"]: row for row in facts_of(views, str(person))}
    channel, outcome = (
        fact[f"consultation:{consultation}.channel"],
        fact[f"consultation:{consultation}.outcome"],
    )
    assert (channel["category"], outcome["category"]) == ("consultation", "consultation")
    assert outcome["value"] == "continue_here"
    # Each field keeps the provenance of the event that set it, in the one record.
    assert channel["event_id"] != outcome["event_id"]
    assert outcome["at"] == utc(T0 + timedelta(hours=1))


def test_assessment_issues_land_in_their_own_categories() -> None:
    views, person, case = Views(), uuid4(), uuid4()
    issues = ["released_offender", "illness", "job_search_difficulty", "no_kin"]
    views.feed(
        AssessmentRecorded(
            **act(), case_id=case, person_id=person, assessment_number=1, issues=issues
        )
    )
    by_category = {
        row["category"]: row["value"]
        for row in facts_of(views, str(person))
        if row["field"].endswith(".issues")
    }
    assert by_category == {
        "criminal_record": ["released_offender"],
        "health": ["illness"],
        "employment": ["job_search_difficulty"],
        "consultation": ["no_kin"],
    }


def test_an_anonymous_consultation_joins_the_person_from_its_opening() -> None:
    views, person, consultation = Views(), uuid4(), uuid4()
    opened = T0 - timedelta(days=7)
    views.feed(
        ConsultationOpened(
            **act(at=opened),
            consultation_id=consultation,
            channel="phone",
            route_in="public_relations_bulletin",
            caller_kind="anonymous",
            notes="広報を見た",
        )
    )
    assert every_fact(views) == []
    views.feed(registered(person))
    views.feed(
        ConsultationAttached(
            **act(), consultation_id=consultation, person_id=person, consultation_opened_at=opened
        )
    )
    timeline = sorted(r["at"] for r in views.rows("timeline", {"person_id": str(person)}))
    assert timeline[0] == opened.isoformat(timespec="microseconds")
    assert facts(views, person)[f"consultation:{consultation}.notes"] == "consultation"


class NewestFirst(Views):
    """Stored rows read back in the opposite order to the one they were written in: a read
    promises no order of its own."""

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        return super().rows(table, where)[::-1]


def test_an_attached_consultation_has_the_facts_it_would_have_had_from_the_start() -> None:
    person, consultation = uuid4(), uuid4()
    # The later triage, recorded an hour after the first, is back-dated before it.
    triages = [
        (T0, NOW - timedelta(hours=2), "continue_here"),
        (T0 - timedelta(days=1), NOW - timedelta(hours=1), "connect_elsewhere"),
    ]
    known, attached = Views(), NewestFirst()
    for at, recorded, outcome in triages:
        for views, whose in ((known, person), (attached, None)):
            triaged = ConsultationTriaged(
                **act(at=at), consultation_id=consultation, person_id=whose, outcome=outcome
            )
            views.feed(triaged, recorded=recorded)
    for views in (known, attached):
        views.feed(
            ConsultationAttached(
                **act(), consultation_id=consultation, person_id=person, consultation_opened_at=T0
            )
        )

    def current(views: Views) -> dict[str, tuple[str, str]]:
        return {row["field"]: (row["value"], row["at"]) for row in every_fact(views)}

    assert current(attached) == current(known)
    latest = current(attached)[f"consultation:{consultation}.outcome"]
    assert latest == ("connect_elsewhere", utc(T0 - timedelta(days=1)))


def test_a_consent_opens_exactly_its_categories_until_it_ends() -> None:
    views, person = Views(), uuid4()
    views.feed(registered(person))
    recorded = consent(person, ["hellowork-atsugi"], ["identity"])
    views.feed(recorded)
    assert views.seen("hellowork-atsugi", person) == {"identity": "consent"}
    assert views.seen("zama-jiritsu", person) == {"identity": "own_record", "contact": "own_record"}
    [row, *_] = decided_view(views, "hellowork-atsugi", str(person), NOW)
    assert row["basis_id"] == str(recorded.consent_id)
    assert row["valid_until"] == recorded.valid_until.isoformat(timespec="microseconds")
    assert views.seen("oneaid", person) == {}


def consent_withdrawn(at: datetime) -> tuple[Views, UUID, ConsentRecorded, ConsentWithdrawn]:
    """A person whose consent to Hello Work (identity and contact) is withdrawn for contact,
    taking effect at ``at``."""
    views, person = Views(), uuid4()
    views.feed(registered(person))
    recorded = consent(person, ["hellowork-atsugi"], ["identity", "contact"])
    views.feed(recorded)
    withdrawn = ConsentWithdrawn(
        **act(at=at),
        consent_id=recorded.consent_id,
        person_id=person,
        withdrawal_id=uuid4(),
        categories=["contact"],
    )
    views.feed(withdrawn)
    return views, person, recorded, withdrawn


def test_a_withdrawal_takes_its_categories_out_of_the_view_and_records_the_purge() -> None:
    views, person, recorded, withdrawn = consent_withdrawn(NOW - timedelta(hours=1))
    assert views.seen("hellowork-atsugi", person) == {"identity": "consent"}
    [purge] = views.rows("view_purge", {"person_id": str(person)})
    assert purge["agency"] == "hellowork-atsugi"
    assert json.loads(purge["categories"]) == {
        "contact": {"basis": "consent", "basis_id": str(recorded.consent_id)}
    }
    assert str(withdrawn.withdrawal_id) in purge["reason"]


def test_an_article9_member_sees_all_but_tax_while_a_member() -> None:
    views, person, meeting = Views(), uuid4(), uuid4()
    views.feed(registered(person, "zama-shuno"))
    views.feed(
        ReferralSent(
            **act("zama-shuno"),
            referral_id=uuid4(),
            sender="zama-shuno",
            receiver="zama-jiritsu",
            person_id=person,
            kind="use_recommendation",
            reason="滞納",
            categories=["identity", "tax"],
            basis="consent",
            provisional=False,
        )
    )
    member = Membership(agency="seikatsuclub", valid_from=T0, valid_until=NOW + timedelta(days=1))
    views.feed(
        MeetingScheduled(
            **act(),
            meeting_id=meeting,
            kind="article9_support_meeting",
            person_id=person,
            scheduled_for=T0,
            members=[member],
        )
    )
    assert views.seen("seikatsuclub", person) == {
        "identity": "article9_meeting",
        "contact": "article9_meeting",
        "plan": "article9_meeting",
    }
    assert views.seen("zama-shuno", person)["tax"] == "own_record"
    record = record_from(views, str(person))
    assert [m.meeting_id for m in record.memberships] == [str(meeting)]
    # The membership ends with time alone: the sweep is told when.
    [end] = views.rows("basis_end", {"end_id": f"meeting_membership|{meeting}|seikatsuclub"})
    assert (end["ends_at"], end["swept"]) == (utc(member.valid_until), 0)


def test_a_consent_s_expiry_and_a_withdrawal_dated_ahead_are_noted_for_the_sweep() -> None:
    ahead = NOW + timedelta(days=7)
    views, person, recorded, withdrawn = consent_withdrawn(ahead)
    # Nothing left the view yet: the withdrawal takes effect a week from now.
    assert views.seen("hellowork-atsugi", person) == {"identity": "consent", "contact": "consent"}
    assert views.rows("view_purge", {}) == []
    ends = {row["end_id"]: (row["ends_at"], row["swept"]) for row in views.rows("basis_end", {})}
    assert ends == {
        f"consent|{recorded.consent_id}": (utc(recorded.valid_until), 0),
        f"consent_withdrawal|{withdrawn.withdrawal_id}": (utc(ahead), 0),
    }


def test_a_referrals_status_is_for_its_two_ends_only() -> None:
    views, person, referral = Views(), uuid4(), uuid4()
    ends: dict[str, Any] = {"sender": "zama-jiritsu", "receiver": "oneaid", "person_id": person}
    views.feed(registered(person))
    views.feed(
        ReferralSent(
            **act(),
            referral_id=referral,
            **ends,
            kind="service_request",
            reason="保証人なし",
            categories=["identity", "housing"],
            basis="consent",
            provisional=False,
        )
    )
    views.feed(ReferralAccepted(**act("oneaid"), referral_id=referral, **ends))
    views.feed(
        MeetingScheduled(
            **act(),
            meeting_id=uuid4(),
            kind="article9_support_meeting",
            person_id=person,
            scheduled_for=T0,
            members=[
                Membership(
                    agency="seikatsuclub", valid_from=T0, valid_until=NOW + timedelta(days=1)
                )
            ],
        )
    )
    assert views.seen("oneaid", person)["referral_status"] == "own_record"
    assert "referral_status" not in views.seen("seikatsuclub", person)
    # The slip's reason speaks of what it shares beyond whom it is about.
    slip = [
        fact
        for fact in every_fact(views)
        if (fact["field"], fact["category"]) == (f"referral:{referral}.reason", "housing")
    ]
    assert [r["value"] for r in slip] == ["保証人なし"]
    [inbox] = views.rows("referral_box", {"agency": "oneaid"})
    assert (inbox["direction"], inbox["state"]) == ("in", "accepted")


def test_a_regular_meeting_tells_each_person_only_that_it_took_place() -> None:
    views, person, case = Views(), uuid4(), uuid4()
    views.feed(
        AssessmentRecorded(
            **act(), case_id=case, person_id=person, assessment_number=1, issues=["debt"]
        )
    )
    views.feed(
        MeetingHeld(
            **act(),
            meeting_id=uuid4(),
            kind="regular_coordination",
            attendees=[Attendee(agency="zama-jiritsu", role="organiser")],
            person_attended=False,
            conclusions=["別の人の話"],
            plans_discussed=[DiscussedPlan(case_id=case, plan_version=1)],
        )
    )
    [row] = [
        r for r in views.rows("timeline", {"person_id": str(person)}) if r["event"] == "MeetingHeld"
    ]
    assert "別の人の話" not in row["summary"]


def test_a_lapsed_declaration_grants_nothing_at_projection_time() -> None:
    from contracts.events import VitalInterestDeclared

    views, person, case = Views(), uuid4(), uuid4()
    views.feed(
        AssessmentRecorded(
            **act(),
            case_id=case,
            person_id=person,
            assessment_number=1,
            issues=["family_relations"],
        )
    )
    declared = VitalInterestDeclared(
        **act(),
        declaration_id=uuid4(),
        person_id=person,
        recipients=["zama-kodomo"],
        categories=["family"],
        reason="緊急",
        valid_from=NOW - timedelta(hours=1),
        valid_until=NOW + timedelta(hours=71),
        flagged_for_review=True,
    )
    views.feed(declared)
    assert views.seen("zama-kodomo", person) == {"family": "vital_interest"}
    second = declared.model_copy(update={"declaration_id": uuid4()})
    views.feed(second, now=NOW + timedelta(hours=72))
    assert views.seen("zama-kodomo", person) == {}
    # Nothing was shown just before this event: what the first declaration's end took out of
    # the view is the sweep's to record, and the second one ended before it was known.
    assert views.rows("view_purge", {}) == []
    ends = {row["end_id"]: row["swept"] for row in views.rows("basis_end", {})}
    assert ends == {
        f"vital_interest|{declared.declaration_id}": 0,
        f"vital_interest|{second.declaration_id}": 1,
    }
