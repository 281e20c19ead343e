"""Intake's domain events as integration events (what other services may rely on).

Index aggregates (local ids, duplicate keys, a person's consent list) are intake's own lookups
and are not published.
"""

from __future__ import annotations

from contracts import events as ev
from services.intake.consent import Consent
from services.intake.consultation import Consultation
from services.intake.person import Person
from services.platform.publishing import Published, translation
from services.platform.relay import translator

SOURCE = "/tsunagu/intake"

PUBLISHED = (
    Published(Consultation.Opened, ev.ConsultationOpened, "consultation_id", {"at": "opened_at"}),
    Published(Consultation.Triaged, ev.ConsultationTriaged, "consultation_id"),
    Published(Consultation.Attached, ev.ConsultationAttached, "consultation_id"),
    Published(Consultation.ApplicationReceived, ev.ApplicationReceived, "consultation_id"),
    Published(Person.Registered, ev.PersonRegistered, "person_id", {"at": "registered_at"}),
    Published(Person.Linked, ev.PersonLinked, "person_id"),
    Published(Person.MergedInto, ev.PersonsMerged, "person_id"),
    Published(Person.Unmerged, ev.PersonsUnmerged, "person_id"),
    Published(Person.Erased, ev.PersonErased, "person_id"),
    Published(Person.RetentionExtended, ev.RetentionExtended, "person_id"),
    # A consent speaks from the start of its validity.
    Published(Consent.Recorded, ev.ConsentRecorded, "consent_id", {"at": "valid_from"}),
    Published(Consent.Withdrawn, ev.ConsentWithdrawn, "consent_id"),
)

to_cloudevent = translator(translation(PUBLISHED), SOURCE)
