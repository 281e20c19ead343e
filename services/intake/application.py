"""The intake application: commands on consultations, stored with `eventsourcing`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from contracts.errors import Forbidden, Invalid, NotFound
from contracts.identity import Staff
from contracts.reference import reference
from services.intake.consultation import Consultation, check_codes
from services.platform.eventstore import TracingApplication

INTAKE_ROLE = "self_reliance_office"


@dataclass(frozen=True)
class OpenConsultation:
    channel: str
    route_in: str
    caller_kind: str
    person_id: UUID | None = None
    main_complaint: str | None = None
    notes: str | None = None
    opened_at: datetime | None = None


class IntakeApplication(TracingApplication):
    name = "intake"

    def open_consultation(self, staff: Staff, command: OpenConsultation) -> UUID:
        agency = reference().agency(staff.agency)
        if agency is None or agency.role != INTAKE_ROLE:
            raise Forbidden(
                f"agency {staff.agency!r} does not run a consultation desk; "
                "refer the person to the self-reliance support office instead",
                allowed_agencies=list(reference().agencies_with_role(INTAKE_ROLE)),
            )
        check_codes(command.channel, command.route_in, command.caller_kind)
        now = datetime.now(UTC)
        opened_at = command.opened_at or now
        if opened_at.tzinfo is None:
            raise Invalid("opened_at", "timezone_required", "opened_at needs a UTC offset")
        if opened_at > now:
            raise Invalid("opened_at", "not_in_future", "a consultation cannot open in the future")
        consultation = Consultation(
            municipality=staff.municipality,
            agency=staff.agency,
            staff_id=staff.staff_id,
            opened_at=opened_at,
            channel=command.channel,
            route_in=command.route_in,
            caller_kind=command.caller_kind,
            person_id=command.person_id,
            main_complaint=_blank_to_none(command.main_complaint),
            notes=_blank_to_none(command.notes),
        )
        self.save(consultation)
        return consultation.id

    def consultation(self, consultation_id: UUID) -> Consultation:
        from eventsourcing.application import AggregateNotFoundError

        try:
            found: object = self.repository.get(consultation_id)
        except AggregateNotFoundError as error:
            raise NotFound(f"no consultation {consultation_id}") from error
        assert isinstance(found, Consultation)
        return found


def _blank_to_none(text: str | None) -> str | None:
    return text if text and text.strip() else None
