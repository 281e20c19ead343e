"""Vital interest (生命・身体の保護): a supervisor's emergency declaration about one person.

When the person's life or body is at risk and their consent cannot be obtained, a supervisor
names who may see which categories, and why, for at most 72 hours. Every declaration is flagged
for the privacy officer's review. Tax is never among the categories: 地方税法第22条 admits no
such exception, so the policy would not honour it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts import disclosure
from contracts.errors import Invalid
from contracts.reference import reference
from services.platform.acts import Founding

MAX_HOURS = 72


class VitalInterestDeclaration(Aggregate):
    class Declared(Founding):
        at: datetime
        person_id: UUID
        recipients: list[str]
        categories: list[str]
        reason: str
        valid_from: datetime
        valid_until: datetime

    @event(Declared)
    def __init__(
        self,
        *,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        recipients: list[str],
        categories: list[str],
        reason: str,
        valid_from: datetime,
        valid_until: datetime,
    ) -> None:
        self.municipality = municipality
        self.agency = agency
        self.staff_id = staff_id
        self.declared_at = at
        self.person_id = person_id
        self.recipients = recipients
        self.categories = categories
        self.reason = reason
        self.valid_from = valid_from
        self.valid_until = valid_until

    @property
    def flagged_for_review(self) -> bool:
        """Always: no declaration escapes the privacy officer's review."""
        return True

    def as_policy(self) -> disclosure.VitalInterest:
        return disclosure.VitalInterest(
            declaration_id=str(self.id),
            recipients=frozenset(self.recipients),
            categories=frozenset(self.categories),
            valid_from=self.valid_from,
            valid_until=self.valid_until,
        )


def check_declaration(
    recipients: list[str], categories: list[str], reason: str, hours: float, municipality: str
) -> timedelta:
    """The window a declaration opens, once its terms are lawful; its recipients are agencies
    of the declaring ``municipality``."""
    ref = reference()
    local = tuple(a.id for a in ref.agencies.values() if a.municipality == municipality)
    if not 0 < hours <= MAX_HOURS:
        raise Invalid(
            "hours",
            "at_most_72_hours",
            f"a declaration lasts more than 0 and at most {MAX_HOURS} h",
        )
    if not reason.strip():
        raise Invalid("reason", "not_empty", "a declaration gives its reason")
    for field, values, allowed in (
        ("recipients", recipients, local),
        ("categories", categories, ref.data_categories),
    ):
        if not values:
            raise Invalid(field, "not_empty", f"name at least one of {field}", allowed)
        for value in values:
            if value not in allowed:
                raise Invalid(field, "reference_code", f"unknown {field} {value!r}", allowed)
    if disclosure.TAX in categories:
        raise Invalid(
            "categories",
            "no_tax",
            "地方税法第22条: tax information is shared only with the person's consent, never on a "
            "vital-interest declaration",
        )
    return timedelta(hours=hours)
