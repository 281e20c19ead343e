"""Consultation (相談): one contact with the support office, opened whatever the caller brings.

Zama never refuses a consultation (断らない相談支援): a consultation needs only how the contact
came (channel), by which route (相談経路) and who called. The person and the main complaint
(主訴) may be unknown when it is opened.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts.errors import Conflict, Invalid
from contracts.reference import reference
from services.platform.acts import Act, Founding

# 振り分け: go on here, connect elsewhere (with whom, and when to check it worked), or inform.
TRIAGE_OUTCOMES = ("continue_here", "connect_elsewhere", "information_only")


class Consultation(Aggregate):
    class Opened(Founding):
        opened_at: datetime
        channel: str
        route_in: str
        caller_kind: str
        person_id: UUID | None
        main_complaint: str | None
        notes: str | None

    class Triaged(Act):
        person_id: UUID | None
        outcome: str
        target_agency: str | None
        target_system: str | None
        follow_up_on: date | None
        note: str | None

    class Attached(Act):
        consultation_opened_at: datetime
        person_id: UUID

    class ApplicationReceived(Act):
        person_id: UUID

    @event(Opened)
    def __init__(
        self,
        *,
        municipality: str,
        agency: str,
        staff_id: str,
        opened_at: datetime,
        channel: str,
        route_in: str,
        caller_kind: str,
        person_id: UUID | None,
        main_complaint: str | None,
        notes: str | None,
    ) -> None:
        self.municipality = municipality
        self.agency = agency
        self.staff_id = staff_id
        self.opened_at = opened_at
        self.channel = channel
        self.route_in = route_in
        self.caller_kind = caller_kind
        self.person_id = person_id
        self.main_complaint = main_complaint
        self.notes = notes
        self.triage: str | None = None
        self.application_at: datetime | None = None

    def attach(self, person_id: UUID, staff_id: str, at: datetime) -> None:
        """Tie a consultation opened without a person to the person, once it is known."""
        if self.person_id == person_id:
            return
        if self.person_id is not None:
            raise Conflict(
                f"consultation is already attached to person {self.person_id}",
                current=str(self.person_id),
            )
        self._attach(
            municipality=self.municipality,
            agency=self.agency,
            consultation_opened_at=self.opened_at,
            person_id=person_id,
            staff_id=staff_id,
            at=at,
        )

    @event(Attached)
    def _attach(
        self,
        municipality: str,
        agency: str,
        consultation_opened_at: datetime,
        person_id: UUID,
        staff_id: str,
        at: datetime,
    ) -> None:
        self.person_id = person_id

    def triage_as(
        self,
        outcome: str,
        *,
        target_agency: str | None,
        target_system: str | None,
        follow_up_on: date | None,
        note: str | None,
        staff_id: str,
        at: datetime,
    ) -> None:
        if outcome not in TRIAGE_OUTCOMES:
            raise Invalid(
                "outcome", "reference_code", f"unknown outcome {outcome!r}", allowed=TRIAGE_OUTCOMES
            )
        if outcome == "connect_elsewhere":
            if not (target_agency or target_system):
                raise Invalid(
                    "target_agency",
                    "required",
                    "connecting elsewhere names the agency or system connected to",
                )
            if target_agency is not None and reference().agency(target_agency) is None:
                raise Invalid(
                    "target_agency",
                    "reference_code",
                    f"unknown agency {target_agency!r}",
                    allowed=tuple(reference().agencies),
                )
            if follow_up_on is None:
                # No たらい回し: whoever is passed on is followed up.
                raise Invalid(
                    "follow_up_on", "required", "connecting elsewhere keeps a follow-up date"
                )
        self._triage(
            municipality=self.municipality,
            agency=self.agency,
            person_id=self.person_id,
            outcome=outcome,
            target_agency=target_agency,
            target_system=target_system,
            follow_up_on=follow_up_on,
            note=note,
            staff_id=staff_id,
            at=at,
        )

    @event(Triaged)
    def _triage(
        self,
        municipality: str,
        agency: str,
        person_id: UUID | None,
        outcome: str,
        target_agency: str | None,
        target_system: str | None,
        follow_up_on: date | None,
        note: str | None,
        staff_id: str,
        at: datetime,
    ) -> None:
        self.triage = outcome

    def receive_application(self, staff_id: str, at: datetime) -> None:
        """利用申込: the person applies for support; only a known person can apply."""
        if self.person_id is None:
            raise Conflict("attach the consultation to a registered person before the application")
        if self.application_at is not None:
            raise Conflict(f"the application was received at {self.application_at.isoformat()}")
        self._receive_application(
            municipality=self.municipality,
            agency=self.agency,
            person_id=self.person_id,
            staff_id=staff_id,
            at=at,
        )

    @event(ApplicationReceived)
    def _receive_application(
        self, municipality: str, agency: str, person_id: UUID, staff_id: str, at: datetime
    ) -> None:
        self.application_at = at


def check_codes(channel: str, route_in: str, caller_kind: str) -> None:
    """Each code must come from the reference data; the error lists the allowed values."""
    ref = reference()
    for field, value, allowed in (
        ("channel", channel, ref.channels),
        ("route_in", route_in, ref.routes_in),
        ("caller_kind", caller_kind, ref.caller_kinds),
    ):
        if value not in allowed:
            raise Invalid(field, "reference_code", f"unknown {field} {value!r}", allowed=allowed)
