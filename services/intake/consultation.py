"""Consultation (相談): one contact with the support office, opened whatever the caller brings.

Zama never refuses a consultation (断らない相談支援): a consultation needs only how the contact
came (channel), by which route (相談経路) and who called. The person and the main complaint
(主訴) may be unknown when it is opened.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts.errors import Invalid
from contracts.reference import reference


class Consultation(Aggregate):
    class Opened(Aggregate.Created):
        municipality: str
        agency: str
        staff_id: str
        opened_at: datetime
        channel: str
        route_in: str
        caller_kind: str
        person_id: UUID | None
        main_complaint: str | None
        notes: str | None

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
