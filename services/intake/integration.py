"""Intake's domain events as integration events (what other services may rely on)."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import DomainEvent, DomainEventProtocol

from contracts.envelope import CloudEvent, event_id
from contracts.events import ConsultationOpened, IntegrationEvent
from services.intake.consultation import Consultation

SOURCE = "/tsunagu/intake"


def to_cloudevent(domain_event: DomainEventProtocol[UUID]) -> CloudEvent | None:
    if isinstance(domain_event, Consultation.Opened):
        e = domain_event
        data = ConsultationOpened(
            consultation_id=e.originator_id,
            opened_at=e.opened_at,
            opened_by_agency=e.agency,
            opened_by_staff=e.staff_id,
            channel=e.channel,
            route_in=e.route_in,
            caller_kind=e.caller_kind,
            person_id=e.person_id,
            main_complaint=e.main_complaint,
            notes=e.notes,
        )
        return envelope(e, data, e.municipality, e.person_id, e.originator_id)
    return None


def envelope(
    domain_event: DomainEvent,
    data: IntegrationEvent,
    municipality: str,
    person_id: UUID | None,
    subject: UUID,
) -> CloudEvent:
    """Wrap ``data``; keyed by the person, else the subject, so their events keep their order."""
    return CloudEvent(
        id=event_id(domain_event.originator_id, domain_event.originator_version),
        source=SOURCE,
        type=data.cloudevent_type(),
        time=domain_event.timestamp,
        subject=str(subject),
        dataschema=data.schema_id(),
        municipality=municipality,
        personid=str(person_id) if person_id else None,
        partitionkey=str(person_id or subject),
        eventversion=data.version,
        data=data.model_dump(mode="json"),
    )
