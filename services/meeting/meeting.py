"""Meetings: 支援調整会議 (coordination, individual or regular) and 支援会議 (法9条).

An individual coordination meeting (個別支援調整会議) discusses one person's plan, and the person
may attend. A regular one (定例支援調整会議, about quarterly) reviews several cases and lists the
resource gaps noted since the last one. A 支援会議 (生活困窮者自立支援法第9条) is on one person:
its members are bound by confidentiality, so what one shares there the others may see without
the person's consent, for as long as their membership lasts — except tax information, which
地方税法第22条 keeps secret unless the person consented.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts import disclosure
from contracts.errors import Conflict, Forbidden, Invalid, not_before
from contracts.reference import reference
from services.platform.acts import Act, Founding

INDIVIDUAL = "individual_coordination"
REGULAR = "regular_coordination"
ARTICLE9 = "article9_support_meeting"
COORDINATION = (INDIVIDUAL, REGULAR)
# Tax shared at a 支援会議 needs consent for this purpose (seed 004, section 5).
MEETING_PURPOSE = "meeting"


class Meeting(Aggregate):
    class Scheduled(Founding):
        at: datetime
        kind: str
        scheduled_for: datetime
        person_id: UUID | None
        case_ids: list[UUID]
        members: list[dict[str, Any]]

    class Held(Act):
        person_id: UUID | None
        kind: str
        attendees: list[dict[str, str]]
        person_attended: bool
        conclusions: list[str]
        plans_discussed: list[dict[str, Any]]
        resource_gaps: list[dict[str, Any]]

    class InformationShared(Act):
        person_id: UUID
        item_id: UUID
        categories: list[str]
        note: str | None

    @event(Scheduled)
    def __init__(
        self,
        *,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        kind: str,
        scheduled_for: datetime,
        person_id: UUID | None,
        case_ids: list[UUID],
        members: list[dict[str, Any]],
    ) -> None:
        self.municipality = municipality
        self.agency = agency
        self.kind = kind
        self.scheduled_for = scheduled_for
        self.person_id = person_id
        self.case_ids = case_ids
        self.members = members
        self.held_at: datetime | None = None
        self.attendees: list[dict[str, str]] = []
        self.person_attended = False
        self.conclusions: list[str] = []
        self.plans_discussed: list[dict[str, Any]] = []
        self.resource_gaps: list[dict[str, Any]] = []
        self.shared: list[dict[str, Any]] = []

    def moves(self) -> tuple[str, ...]:
        if self.held_at is None:
            return ("hold",)
        return ("share_information",) if self.kind == ARTICLE9 else ()

    def memberships(self) -> tuple[disclosure.MeetingMembership, ...]:
        """The 支援会議's members as the disclosure policy reads them (none for coordination)."""
        return tuple(
            disclosure.MeetingMembership(
                str(self.id), m["agency"], m["valid_from"], m["valid_until"]
            )
            for m in self.members
        )

    def is_member(self, agency: str, at: datetime | None = None) -> bool:
        """Whether ``agency`` is (at ``at``: was then) a member."""
        return any(m.agency == agency and (at is None or m.active(at)) for m in self.memberships())

    def hold(
        self,
        *,
        agency: str,
        staff_id: str,
        at: datetime,
        attendees: list[dict[str, str]],
        person_attended: bool,
        conclusions: list[str],
        plans_discussed: list[dict[str, Any]],
        resource_gaps: list[dict[str, Any]],
    ) -> None:
        if self.held_at is not None:
            raise Conflict(
                f"the meeting was already held at {self.held_at.isoformat()}",
                allowed=list(self.moves()),
            )
        known = tuple(reference().agencies)
        if not attendees:
            raise Invalid("attendees", "not_empty", "a held meeting has attendees", known)
        for number, attendee in enumerate(attendees):
            if attendee["agency"] not in known:
                raise Invalid(
                    f"attendees.{number}.agency",
                    "reference_code",
                    f"unknown agency {attendee['agency']!r}",
                    known,
                )
            if self.kind == ARTICLE9 and not self.is_member(attendee["agency"], at):
                raise Invalid(
                    f"attendees.{number}.agency",
                    "article9_member",
                    f"{attendee['agency']} is not a member of this 支援会議; only members, bound "
                    "by confidentiality, attend",
                    [m["agency"] for m in self.members],
                )
        if person_attended and not reference().meeting_kinds[self.kind].get("person_attends"):
            raise Invalid(
                "person_attended", "person_attends", f"the person does not attend a {self.kind}"
            )
        self._hold(
            municipality=self.municipality,
            agency=agency,
            staff_id=staff_id,
            at=at,
            person_id=self.person_id,
            kind=self.kind,
            attendees=attendees,
            person_attended=person_attended,
            conclusions=conclusions,
            plans_discussed=plans_discussed,
            resource_gaps=resource_gaps,
        )

    @event(Held)
    def _hold(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID | None,
        kind: str,
        attendees: list[dict[str, str]],
        person_attended: bool,
        conclusions: list[str],
        plans_discussed: list[dict[str, Any]],
        resource_gaps: list[dict[str, Any]],
    ) -> None:
        self.held_at = at
        self.attendees = attendees
        self.person_attended = person_attended
        self.conclusions = conclusions
        self.plans_discussed = plans_discussed
        self.resource_gaps = resource_gaps

    def share(
        self,
        *,
        agency: str,
        staff_id: str,
        at: datetime,
        item_id: UUID,
        categories: list[str],
        note: str | None,
        consents: tuple[disclosure.Consent, ...],
    ) -> None:
        """A member shares information; ``consents`` are the person's, for the tax rule."""
        shared = self.check_share(agency, at, categories, consents)
        assert self.person_id is not None
        self._share(
            municipality=self.municipality,
            agency=agency,
            staff_id=staff_id,
            at=at,
            person_id=self.person_id,
            item_id=item_id,
            categories=shared,
            note=note,
        )

    def check_share(
        self,
        agency: str,
        at: datetime,
        categories: list[str],
        consents: tuple[disclosure.Consent, ...],
    ) -> list[str]:
        """Whether ``agency`` may share ``categories`` at ``at`` (raises why not): the categories
        as they would be recorded. A preview runs it without sharing."""
        if self.kind != ARTICLE9 or self.held_at is None:
            raise Conflict(
                "information is shared at a held 支援会議 (法9条)", allowed=list(self.moves())
            )
        not_before("at", at, "the meeting was held", self.held_at)
        if not self.is_member(agency, at):
            raise Forbidden(f"{agency} is not a member of this 支援会議 at {at.isoformat()}")
        allowed = reference().data_categories
        if not categories:
            raise Invalid("categories", "not_empty", "name what is shared", allowed)
        for category in categories:
            if category not in allowed:
                raise Invalid(
                    "categories", "reference_code", f"unknown category {category!r}", allowed
                )
        if disclosure.TAX in categories:
            unconsented = self.members_without_tax_consent(agency, at, consents)
            if unconsented:
                raise Forbidden(
                    "地方税法第22条: tax information is not shared at a 支援会議 without the "
                    "person's consent; no consent covers tax for " + ", ".join(unconsented),
                    members_without_consent=unconsented,
                    law="地方税法第22条",
                )
        return list(dict.fromkeys(categories))

    def members_without_tax_consent(
        self, sharer: str, at: datetime, consents: tuple[disclosure.Consent, ...]
    ) -> list[str]:
        """Members other than ``sharer`` whom no consent in force lets see tax at ``at``."""
        return sorted(
            {
                m.agency
                for m in self.memberships()
                if m.agency != sharer
                and m.active(at)
                and not any(
                    c.person_id == str(self.person_id)
                    and c.covers(m.agency, disclosure.TAX, MEETING_PURPOSE, at)
                    for c in consents
                )
            }
        )

    @event(InformationShared)
    def _share(
        self,
        municipality: str,
        agency: str,
        staff_id: str,
        at: datetime,
        person_id: UUID,
        item_id: UUID,
        categories: list[str],
        note: str | None,
    ) -> None:
        self.shared.append(
            {"item_id": item_id, "agency": agency, "at": at, "categories": categories, "note": note}
        )


def check_schedule(
    organiser: str,
    kind: str,
    person_id: UUID | None,
    case_ids: list[UUID],
    members: list[dict[str, Any]],
) -> None:
    """What each kind of meeting needs; the error names the field and what is allowed."""
    ref = reference()
    if kind not in ref.meeting_kinds:
        raise Invalid(
            "kind", "reference_code", f"unknown meeting kind {kind!r}", tuple(ref.meeting_kinds)
        )
    if kind == INDIVIDUAL and len(case_ids) != 1:
        raise Invalid("case_ids", "one_case", "an individual coordination meeting is on one case")
    if kind != ARTICLE9:
        if members:
            raise Invalid("members", "article9_only", "members are named for a 支援会議 only")
        return
    if person_id is None:
        raise Invalid("person_id", "required", "a 支援会議 is on one person")
    # Members come from the organiser's own municipality: a 支援会議 never reaches another's.
    home = ref.agencies[organiser].municipality
    known = tuple(a.id for a in ref.agencies.values() if a.municipality == home)
    if not members:
        raise Invalid("members", "not_empty", "a 支援会議 has member agencies", known)
    for number, member in enumerate(members):
        if member["agency"] not in known:
            raise Invalid(
                f"members.{number}.agency",
                "reference_code",
                f"unknown agency {member['agency']!r}",
                known,
            )
        if member["valid_until"] <= member["valid_from"]:
            raise Invalid(
                f"members.{number}.valid_until",
                "after_valid_from",
                "a membership must end after it starts",
            )
    if organiser not in {m["agency"] for m in members}:
        raise Invalid("members", "organiser_member", f"the organiser {organiser} must be a member")
