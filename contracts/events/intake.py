"""Intake's integration events: consultations, persons and the consent ledger."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from contracts.events import Act, register

__all__ = [
    "ApplicationReceived",
    "ConsentRecorded",
    "ConsentWithdrawn",
    "ConsultationAttached",
    "ConsultationOpened",
    "ConsultationTriaged",
    "IntakeEvent",
    "PersonLinked",
    "PersonRegistered",
    "PersonsMerged",
    "PersonsUnmerged",
]


class IntakeEvent(Act):
    service: ClassVar[str] = "intake"
    version: ClassVar[int] = 1


@register
class ConsultationOpened(IntakeEvent):
    """相談受付. Never refused: the person and the main complaint may be absent."""

    name: ClassVar[str] = "ConsultationOpened"
    summary: ClassVar[str] = "A consultation was opened (相談受付), with or without a known person."

    consultation_id: UUID
    channel: str
    route_in: str
    caller_kind: str
    person_id: UUID | None = None
    main_complaint: str | None = None
    notes: str | None = None


@register
class ConsultationTriaged(IntakeEvent):
    name: ClassVar[str] = "ConsultationTriaged"
    summary: ClassVar[str] = (
        "振り分け: continue here, connect elsewhere (with a follow-up date), or information only."
    )

    consultation_id: UUID
    person_id: UUID | None = None
    outcome: str
    target_agency: str | None = None
    target_system: str | None = None
    follow_up_on: date | None = None
    note: str | None = None


@register
class ConsultationAttached(IntakeEvent):
    name: ClassVar[str] = "ConsultationAttached"
    summary: ClassVar[str] = (
        "A consultation opened without a person was tied to a registered person; the person's "
        "history starts at the consultation's opening."
    )

    consultation_id: UUID
    person_id: UUID
    consultation_opened_at: datetime


@register
class ApplicationReceived(IntakeEvent):
    name: ClassVar[str] = "ApplicationReceived"
    summary: ClassVar[str] = "利用申込: a registered person applied for support."

    consultation_id: UUID
    person_id: UUID


@register
class PersonRegistered(IntakeEvent):
    name: ClassVar[str] = "PersonRegistered"
    summary: ClassVar[str] = (
        "A person was registered. Names, kana and birth date are identity; address and phone "
        "are contact."
    )

    person_id: UUID
    family_name: str | None = None
    given_name: str | None = None
    family_name_kana: str | None = None
    given_name_kana: str | None = None
    birth_date: date | None = None
    birth_year: int | None = None
    sex: str
    address: str | None = None
    phone: str | None = None


@register
class PersonLinked(IntakeEvent):
    name: ClassVar[str] = "PersonLinked"
    summary: ClassVar[str] = (
        "An agency tied its own local id (tax number, case number) to a person."
    )

    person_id: UUID
    local_id: str = Field(min_length=1)


@register
class PersonsMerged(IntakeEvent):
    name: ClassVar[str] = "PersonsMerged"
    summary: ClassVar[str] = (
        "A duplicate person was linked to the surviving one; reversible by PersonsUnmerged."
    )

    person_id: UUID
    survivor_id: UUID


@register
class PersonsUnmerged(IntakeEvent):
    name: ClassVar[str] = "PersonsUnmerged"
    summary: ClassVar[str] = "A merge was undone; both persons stand on their own again."

    person_id: UUID
    survivor_id: UUID


@register
class ConsentRecorded(IntakeEvent):
    name: ClassVar[str] = "ConsentRecorded"
    summary: ClassVar[str] = (
        "本人同意: recipients, data categories, purposes and a validity period, with how it "
        "was collected."
    )

    consent_id: UUID
    person_id: UUID
    given_by: str
    representative_relationship: str | None = None
    recipients: list[str] = Field(min_length=1)
    categories: list[str] = Field(min_length=1)
    purposes: list[str] = Field(min_length=1)
    valid_from: datetime
    valid_until: datetime
    method: str
    evidence_ref: str | None = None


@register
class ConsentWithdrawn(IntakeEvent):
    name: ClassVar[str] = "ConsentWithdrawn"
    summary: ClassVar[str] = (
        "A consent was withdrawn from `at` on: wholly (recipients and categories null) or for "
        "the recipients or categories named."
    )

    consent_id: UUID
    person_id: UUID
    withdrawal_id: UUID
    recipients: list[str] | None = None
    categories: list[str] | None = None
