"""Intake's integration events: consultations, persons and the consent ledger."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field

from contracts.events import Act, IntegrationEvent, register
from contracts.personal import CODE, OF_PERSON, Personal, Sealed

# A consultation may be opened before anyone knows who called: what is said in it is the
# consultation's own, tied to the person when one is attached.
OF_CONSULTATION = Personal(subject="consultation_id")

__all__ = [
    "ApplicationReceived",
    "ConsentRecorded",
    "ConsentWithdrawn",
    "ConsultationAttached",
    "ConsultationOpened",
    "ConsultationTriaged",
    "IntakeEvent",
    "PersonErased",
    "PersonLinked",
    "PersonRegistered",
    "PersonRegisteredV1",
    "PersonsMerged",
    "PersonsUnmerged",
    "RetentionExtended",
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
    channel: Annotated[str, CODE]
    route_in: Annotated[str, CODE]
    caller_kind: Annotated[str, CODE]
    person_id: UUID | None = None
    main_complaint: Annotated[str | None, OF_CONSULTATION] = None
    notes: Annotated[str | None, OF_CONSULTATION] = None


@register
class ConsultationTriaged(IntakeEvent):
    name: ClassVar[str] = "ConsultationTriaged"
    summary: ClassVar[str] = (
        "振り分け: continue here, connect elsewhere (with a follow-up date), or information only."
    )

    consultation_id: UUID
    person_id: UUID | None = None
    outcome: Annotated[str, CODE]
    target_agency: Annotated[str | None, CODE] = None
    target_system: Annotated[str | None, CODE] = None
    follow_up_on: date | None = None
    note: Annotated[str | None, OF_CONSULTATION] = None


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
class PersonRegisteredV1(IntakeEvent):
    """Superseded by v2 (personal fields sealed); kept so that old messages still read."""

    name: ClassVar[str] = "PersonRegistered"
    summary: ClassVar[str] = (
        "A person was registered. Names, kana and birth date are identity; address and phone "
        "are contact."
    )

    person_id: UUID
    family_name: Annotated[str | None, OF_PERSON] = None
    given_name: Annotated[str | None, OF_PERSON] = None
    family_name_kana: Annotated[str | None, OF_PERSON] = None
    given_name_kana: Annotated[str | None, OF_PERSON] = None
    birth_date: Annotated[date | None, OF_PERSON] = None
    birth_year: Annotated[int | None, OF_PERSON] = None
    sex: Annotated[str, OF_PERSON]
    address: Annotated[str | None, OF_PERSON] = None
    phone: Annotated[str | None, OF_PERSON] = None


@register
class PersonRegistered(IntakeEvent):
    name: ClassVar[str] = "PersonRegistered"
    version: ClassVar[int] = 2
    summary: ClassVar[str] = (
        "A person was registered. Names, kana and birth date are identity; address and phone "
        "are contact. Each is sealed under the person's data key (a birth date or year too, "
        "hence v2)."
    )

    person_id: UUID
    family_name: Annotated[str | None, OF_PERSON] = None
    given_name: Annotated[str | None, OF_PERSON] = None
    family_name_kana: Annotated[str | None, OF_PERSON] = None
    given_name_kana: Annotated[str | None, OF_PERSON] = None
    birth_date: Annotated[date | Sealed | None, OF_PERSON] = None
    birth_year: Annotated[int | Sealed | None, OF_PERSON] = None
    sex: Annotated[str, OF_PERSON]
    address: Annotated[str | None, OF_PERSON] = None
    phone: Annotated[str | None, OF_PERSON] = None

    @classmethod
    def upcast(cls, previous: IntegrationEvent) -> IntegrationEvent:
        # v1 held them in clear: read as they are (the upgrade command seals old stores).
        assert isinstance(previous, PersonRegisteredV1)
        return cls.model_validate(previous.model_dump())


@register
class PersonLinked(IntakeEvent):
    name: ClassVar[str] = "PersonLinked"
    summary: ClassVar[str] = (
        "An agency tied its own local id (tax number, case number) to a person."
    )

    person_id: UUID
    # A tax or case number is the person's own number at that agency.
    local_id: Annotated[str, OF_PERSON] = Field(min_length=1)


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
class PersonErased(IntakeEvent):
    name: ClassVar[str] = "PersonErased"
    summary: ClassVar[str] = (
        "A person's data was erased: their data keys, and those of every record about them, "
        "were destroyed, so what was sealed under them opens to 消去済み. Holds no personal "
        "data; views drop whatever they derived from the person, counts stay."
    )

    person_id: UUID
    # 本人からの消去請求 (subject_request) or 保存期間満了 (retention)
    reason: Annotated[str, CODE]
    # A duplicate merged into the person named in the request is erased with them.
    erased_with: UUID | None = None


@register
class RetentionExtended(IntakeEvent):
    name: ClassVar[str] = "RetentionExtended"
    summary: ClassVar[str] = (
        "保存期間の延長: the person's records are kept until `until` (inclusive) rather than "
        "erased when their retention ends, for the reason recorded."
    )

    person_id: UUID
    until: date
    reason: Annotated[str, OF_PERSON] = Field(min_length=1)


@register
class ConsentRecorded(IntakeEvent):
    name: ClassVar[str] = "ConsentRecorded"
    summary: ClassVar[str] = (
        "本人同意: recipients, data categories, purposes and a validity period, with how it "
        "was collected."
    )

    consent_id: UUID
    person_id: UUID
    given_by: Annotated[str, CODE]
    representative_relationship: Annotated[str | None, OF_PERSON] = None
    recipients: Annotated[list[str], CODE] = Field(min_length=1)
    categories: Annotated[list[str], CODE] = Field(min_length=1)
    purposes: Annotated[list[str], CODE] = Field(min_length=1)
    valid_from: datetime
    valid_until: datetime
    method: Annotated[str, CODE]
    # Free text on one line: where the signed form is kept may well name the person.
    evidence_ref: Annotated[str | None, OF_PERSON] = None


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
    recipients: Annotated[list[str] | None, CODE] = None
    categories: Annotated[list[str] | None, CODE] = None
