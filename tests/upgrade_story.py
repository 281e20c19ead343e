"""A small deployment as it was before #20, for ``tsunagu upgrade``'s tests (#20).

A person with a recognisable name (each value found nowhere else), a consultation, a referral
whose slip holds a provisional identity, a meeting, a likely duplicate, and intake's index
aggregates as intake made them before the blind index. Played by services that store their
events as given, as they did before they sealed personal fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEvent

from contracts.names import fold
from services import wiring
from services.platform.eventstore import TracingApplication
from services.platform.indexes import DUPLICATES, ListIndex, LocalIdIndex
from services.platform.settings import Settings
from services.scenarios import Scenario

LOCAL_ID = "ZJ-0427731"
PERSON = {
    "family_name": "鵺塚",
    "given_name": "灯之介",
    "family_name_kana": "ヌエヅカ",
    "given_name_kana": "トウノスケ",
    "birth_date": "1961-05-23",
    "sex": "male",
    "address": "座間市相模が丘十丁目77番地 鵺塚荘",
    "phone": "080-4421-7789",
}
VALUES = {
    **{k: v for k, v in PERSON.items() if k != "sex"},
    "local_id": LOCAL_ID,
    "referral_reason": "鵺塚荘の家賃が三か月払えない",
    "main_complaint": "鵺塚荘を追い出されそうだ",
    "strength": "鵺沼で毎朝釣りをする",
    "goal": "鵺塚荘から市営住宅へ移る",
    "conclusion": "鵺塚荘の大家と退去日を話し合う",
}
STORY = Scenario(
    "upgrade",
    PERSON,
    [
        # Sent before anyone registered him: the slip carries his names as given.
        {
            "at": "2025-05-01T10:00",
            "by": "oneaid",
            "do": "send_referral",
            "to": "zama-jiritsu",
            "kind": "connect_to_office",
            "reason": VALUES["referral_reason"],
            "categories": ["identity", "housing"],
            "basis": "consent_verbal_recorded_by_sender",
        },
        {"at": "2025-05-01T13:00", "by": "zama-jiritsu", "do": "accept"},
        {
            "at": "2025-05-01T13:05",
            "by": "zama-jiritsu",
            "do": "open_consultation",
            "channel": "accompanied_by_staff",
            "route_in": "real_estate_agent",
            "main_complaint": VALUES["main_complaint"],
        },
        {
            "at": "2025-05-01T13:30",
            "by": "zama-jiritsu",
            "do": "register_person",
            "local_id": {"agency": "zama-jiritsu", "id": LOCAL_ID},
        },
        {
            "at": "2025-05-01T13:35",
            "by": "zama-jiritsu",
            "do": "attach_consultations",
            "consultations": ["first"],
        },
        {
            "at": "2025-05-01T13:41",
            "by": "zama-jiritsu",
            "do": "record_consent",
            "recipients": ["zama-jiritsu", "oneaid"],
            "categories": ["identity", "contact", "consultation", "housing", "plan"],
            "purpose": "support_coordination",
            "until": "2026-04-30",
        },
        {
            "at": "2025-05-02T10:00",
            "by": "zama-jiritsu",
            "do": "record_assessment",
            "issues": ["unstable_housing"],
            "strengths": [VALUES["strength"]],
        },
        {
            "at": "2025-05-08T10:00",
            "by": "zama-jiritsu",
            "do": "draft_plan",
            "goal": VALUES["goal"],
            "services": [{"program": "housing_support", "provider": "oneaid", "class": "A"}],
        },
        {
            "at": "2025-05-09T10:00",
            "by": "zama-jiritsu",
            "do": "hold_meeting",
            "kind": "individual_coordination",
            "attendees": ["zama-jiritsu", "oneaid"],
            "person_attended": True,
            "conclusions": [VALUES["conclusion"]],
        },
    ],
    [],
)
# Registered again by another desk: a likely duplicate (same names and birth date).
TWIN = {**PERSON, "address": "海老名市中央一丁目1番1号", "phone": "046-000-0001"}


def unsealed(settings: Settings, service: str, _: object) -> TracingApplication:
    """A command service as it was before #20: storing personal fields as given."""
    return wiring.COMMAND_SERVICES[service].application(settings, None)


def legacy_indexes(intake: TracingApplication, person_id: UUID, twin_id: UUID) -> None:
    """Intake's index aggregates as intake made them before the blind index: the local id's
    aggregate under an id derived from the local id itself, the likely duplicates under their
    folded names and birth date."""
    folded = f"{fold(PERSON['family_name_kana'])}|{fold(PERSON['given_name_kana'])}"
    duplicates = ListIndex(f"{DUPLICATES}{folded}|{PERSON['birth_date']}")
    duplicates.add(person_id)
    duplicates.add(twin_id)
    intake.save(duplicates)
    namespace = uuid5(NAMESPACE_URL, "urn:tsunagu:intake:index")
    linked = DomainEvent.__new__(LocalIdIndex.Created)
    # The event as it was then: no token of the local id, which the id was made of.
    linked.__dict__.update(
        originator_id=uuid5(namespace, f"local:zama-jiritsu:{LOCAL_ID}"),
        originator_version=1,
        timestamp=datetime(2025, 5, 1, 4, 30, tzinfo=UTC),
        originator_topic="services.platform.indexes:LocalIdIndex",
        agency="zama-jiritsu",
        local_id=LOCAL_ID,
        person_id=person_id,
    )
    intake.recorder.insert_events([intake.mapper.to_stored_event(linked)])


def history(settings: Settings, service: str) -> list[tuple[Any, ...]]:
    """Each stored event of the live store in notification order, but intake's index
    aggregates: its originator id, version, class and timestamp."""
    app = wiring.COMMAND_SERVICES[service].application(settings, None)
    try:
        events = [
            app.mapper.to_domain_event(n)
            for n in app.recorder.select_notifications(start=None, limit=10_000)
        ]
    finally:
        app.close()
    indexes = {
        e.originator_id
        for e in events
        if isinstance(e, LocalIdIndex.Created)
        or (isinstance(e, ListIndex.Created) and e.key.startswith(DUPLICATES))
    }
    return [
        (e.originator_id, e.originator_version, type(e).__qualname__, e.timestamp)
        for e in events
        if isinstance(e, DomainEvent) and e.originator_id not in indexes
    ]
