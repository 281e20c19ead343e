"""Intake's domain events as integration events (what other services may rely on).

Index aggregates (local ids, duplicate keys, a person's consent list) are intake's own lookups
and are not published.
"""

from __future__ import annotations

from uuid import UUID

from contracts import events as ev
from services.intake.consent import Consent
from services.intake.consultation import Consultation
from services.intake.person import Person
from services.platform.relay import translator

SOURCE = "/tsunagu/intake"


def _translate(e: object) -> tuple[ev.IntakeEvent, str, UUID | None] | None:
    data: ev.IntakeEvent
    match e:
        case Consultation.Opened():
            data = ev.ConsultationOpened(
                consultation_id=e.originator_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.opened_at,
                channel=e.channel,
                route_in=e.route_in,
                caller_kind=e.caller_kind,
                person_id=e.person_id,
                main_complaint=e.main_complaint,
                notes=e.notes,
            )
            return data, e.municipality, e.person_id
        case Consultation.Triaged():
            data = ev.ConsultationTriaged(
                consultation_id=e.originator_id,
                person_id=e.person_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.at,
                outcome=e.outcome,
                target_agency=e.target_agency,
                target_system=e.target_system,
                follow_up_on=e.follow_up_on,
                note=e.note,
            )
            return data, e.municipality, e.person_id
        case Consultation.Attached():
            data = ev.ConsultationAttached(
                consultation_id=e.originator_id,
                person_id=e.person_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.at,
                consultation_opened_at=e.consultation_opened_at,
            )
            return data, e.municipality, e.person_id
        case Consultation.ApplicationReceived():
            data = ev.ApplicationReceived(
                consultation_id=e.originator_id,
                person_id=e.person_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.at,
            )
            return data, e.municipality, e.person_id
        case Person.Registered():
            data = ev.PersonRegistered(
                person_id=e.originator_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.registered_at,
                family_name=e.family_name,
                given_name=e.given_name,
                family_name_kana=e.family_name_kana,
                given_name_kana=e.given_name_kana,
                birth_date=e.birth_date,
                birth_year=e.birth_year,
                sex=e.sex,
                address=e.address,
                phone=e.phone,
            )
            return data, e.municipality, e.originator_id
        case Person.Linked():
            data = ev.PersonLinked(
                person_id=e.originator_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.at,
                local_id=e.local_id,
            )
            return data, e.municipality, e.originator_id
        case Person.MergedInto() | Person.Unmerged():
            kind = ev.PersonsMerged if isinstance(e, Person.MergedInto) else ev.PersonsUnmerged
            data = kind(
                person_id=e.originator_id,
                survivor_id=e.survivor_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.at,
            )
            return data, e.municipality, e.originator_id
        case Consent.Recorded():
            data = ev.ConsentRecorded(
                consent_id=e.originator_id,
                person_id=e.person_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.valid_from,
                given_by=e.given_by,
                representative_relationship=e.representative_relationship,
                recipients=e.recipients,
                categories=e.categories,
                purposes=e.purposes,
                valid_from=e.valid_from,
                valid_until=e.valid_until,
                method=e.method,
                evidence_ref=e.evidence_ref,
            )
            return data, e.municipality, e.person_id
        case Consent.Withdrawn():
            data = ev.ConsentWithdrawn(
                consent_id=e.originator_id,
                person_id=e.person_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.at,
                withdrawal_id=e.withdrawal_id,
                recipients=e.recipients,
                categories=e.categories,
            )
            return data, e.municipality, e.person_id
    return None


to_cloudevent = translator(_translate, SOURCE)
