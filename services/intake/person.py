"""Person (本人): one human being, known to many agencies under their own local ids.

Names, kana, birth date, sex, address and phone are personal data: they live in this
aggregate's events and in no log line. Duplicates are merged as a reversible link
(PersonsMerged, PersonsUnmerged); nothing recorded about either person is rewritten.

An erasure (PersonErased) is recorded, and then the person's data keys are destroyed: its event
says why and when, and holds nothing of the person. From then on nothing new is recorded
about them: no local id, no merge either way.

A retention extension (RetentionExtended) keeps the person's records past the end of their
retention (``services.intake.retention``), until a later date, for a reason recorded with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts.errors import Conflict, Invalid
from contracts.names import fold
from contracts.personal import CODE
from services.platform.acts import OF_AGGREGATE, Act, Founding

SEXES = ("female", "male", "other", "unknown")


class Person(Aggregate):
    class Registered(Founding):
        registered_at: datetime
        family_name: str | None
        given_name: str | None
        family_name_kana: str | None
        given_name_kana: str | None
        birth_date: date | None
        birth_year: int | None
        sex: str
        address: str | None
        phone: str | None

    class Linked(Act):
        local_id: str

    class MergedInto(Act):
        survivor_id: UUID
        reason: Annotated[str, OF_AGGREGATE]

    class Unmerged(Act):
        survivor_id: UUID
        reason: Annotated[str, OF_AGGREGATE]

    class Erased(Act):
        reason: Annotated[str, CODE]
        # A duplicate merged into the person named in the request is erased with them.
        erased_with: UUID | None

    class RetentionExtended(Act):
        until: date
        reason: str

    @event(Registered)
    def __init__(
        self,
        *,
        municipality: str,
        agency: str,
        staff_id: str,
        registered_at: datetime,
        family_name: str | None,
        given_name: str | None,
        family_name_kana: str | None,
        given_name_kana: str | None,
        birth_date: date | None,
        birth_year: int | None,
        sex: str,
        address: str | None,
        phone: str | None,
    ) -> None:
        self.municipality = municipality
        self.agency = agency
        self.registered_at = registered_at
        self.family_name = family_name
        self.given_name = given_name
        self.family_name_kana = family_name_kana
        self.given_name_kana = given_name_kana
        self.birth_date = birth_date
        self.birth_year = birth_year
        self.sex = sex
        self.address = address
        self.phone = phone
        self.local_ids: dict[str, str] = {}
        self.merged_into: UUID | None = None
        self.erased: PersonErasure | None = None
        # The last day a retention extension keeps the records (保存期限), if one was recorded.
        self.retention_extended_until: date | None = None

    def link(self, agency: str, local_id: str, staff_id: str, at: datetime) -> None:
        self.refuse_if_erased()
        existing = self.local_ids.get(agency)
        if existing is not None:
            raise Conflict(
                f"this person already has {agency!r} local id {existing!r}",
                current=existing,
            )
        self._link(
            municipality=self.municipality,
            agency=agency,
            at=at,
            local_id=local_id,
            staff_id=staff_id,
        )

    @event(Linked)
    def _link(
        self, municipality: str, agency: str, at: datetime, local_id: str, staff_id: str
    ) -> None:
        self.local_ids[agency] = local_id

    def merge_into(
        self, survivor_id: UUID, agency: str, staff_id: str, reason: str, at: datetime
    ) -> None:
        self.refuse_if_erased()
        if survivor_id == self.id:
            raise Conflict("a person cannot be merged into themself")
        if self.merged_into is not None:
            raise Conflict(
                f"already merged into {self.merged_into}; unmerge first",
                current=str(self.merged_into),
            )
        self._merge(
            municipality=self.municipality,
            agency=agency,
            at=at,
            survivor_id=survivor_id,
            staff_id=staff_id,
            reason=reason,
        )

    @event(MergedInto)
    def _merge(
        self,
        municipality: str,
        agency: str,
        at: datetime,
        survivor_id: UUID,
        staff_id: str,
        reason: str,
    ) -> None:
        self.merged_into = survivor_id

    def unmerge(self, agency: str, staff_id: str, reason: str, at: datetime) -> None:
        self.refuse_if_erased()
        if self.merged_into is None:
            raise Conflict("this person is not merged into anyone")
        self._unmerge(
            municipality=self.municipality,
            agency=agency,
            at=at,
            survivor_id=self.merged_into,
            staff_id=staff_id,
            reason=reason,
        )

    @event(Unmerged)
    def _unmerge(
        self,
        municipality: str,
        agency: str,
        at: datetime,
        survivor_id: UUID,
        staff_id: str,
        reason: str,
    ) -> None:
        self.merged_into = None

    def erase(
        self,
        agency: str,
        staff_id: str,
        reason: str,
        at: datetime,
        erased_with: UUID | None = None,
    ) -> None:
        self.refuse_if_erased()
        self._erase(
            municipality=self.municipality,
            agency=agency,
            at=at,
            staff_id=staff_id,
            reason=reason,
            erased_with=erased_with,
        )

    @event(Erased)
    def _erase(
        self,
        municipality: str,
        agency: str,
        at: datetime,
        staff_id: str,
        reason: str,
        erased_with: UUID | None,
    ) -> None:
        self.erased = PersonErasure(reason, at)

    def extend_retention(
        self, agency: str, staff_id: str, until: date, reason: str, at: datetime, floor: date
    ) -> None:
        """Keep the records until ``until``: after ``floor`` (today, or the retention's end as
        it stands, whichever is later) and after any extension before; else 422."""
        self.refuse_if_erased()
        floor = max(floor, self.retention_extended_until or floor)
        if until <= floor:
            raise Invalid(
                "until",
                "extends_retention",
                f"{until.isoformat()} extends nothing: give a day after {floor.isoformat()}",
            )
        self._extend_retention(
            municipality=self.municipality,
            agency=agency,
            at=at,
            staff_id=staff_id,
            until=until,
            reason=reason,
        )

    @event(RetentionExtended)
    def _extend_retention(
        self, municipality: str, agency: str, at: datetime, staff_id: str, until: date, reason: str
    ) -> None:
        self.retention_extended_until = until

    def refuse_if_erased(self) -> None:
        """409 with when and why, once the person's data was erased."""
        if self.erased is not None:
            raise Conflict(
                f"person {self.id}'s data was erased on {self.erased.at.date().isoformat()} "
                f"({self.erased.reason}): nothing new is recorded about them",
                current=self.erased.state(),
            )

    @property
    def duplicate_fields(self) -> tuple[Any, Any, Any, Any]:
        """What ``duplicate_key`` is made of: family and given kana (else names), birth date
        and year, as the aggregate holds them (sealed, once read back from the store)."""
        return (
            self.family_name_kana or self.family_name,
            self.given_name_kana or self.given_name,
            self.birth_date,
            self.birth_year,
        )

    @property
    def duplicate_key(self) -> str | None:
        return duplicate_key(*self.duplicate_fields)


@dataclass(frozen=True)
class PersonErasure:
    """When and why the person's data was erased."""

    reason: str
    at: datetime

    def shown(self) -> dict[str, str]:
        return {"erased_at": self.at.isoformat(), "reason": self.reason}

    def state(self) -> dict[str, str]:
        return {"state": "erased", **self.shown()}


def duplicate_key(
    family: str | None, given: str | None, birth_date: date | str | None, birth_year: int | None
) -> str | None:
    """The key under which likely duplicates meet; None when too little is known to compare.
    A birth date may be given as its ISO text (as a sealed one opens)."""
    born = str(birth_date) if birth_date else (str(birth_year) if birth_year else None)
    if not family or not given or born is None:
        return None
    return f"{fold(family)}|{fold(given)}|{born}"
