"""Person (本人): one human being, known to many agencies under their own local ids.

Names, kana, birth date, sex, address and phone are personal data: they live in this
aggregate's events and in no log line. Duplicates are merged as a reversible link
(PersonsMerged, PersonsUnmerged); nothing recorded about either person is rewritten.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts.errors import Conflict
from contracts.names import fold
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

    def link(self, agency: str, local_id: str, staff_id: str, at: datetime) -> None:
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

    @property
    def duplicate_key(self) -> str | None:
        return duplicate_key(
            self.family_name_kana or self.family_name,
            self.given_name_kana or self.given_name,
            self.birth_date,
            self.birth_year,
        )


def duplicate_key(
    family: str | None, given: str | None, birth_date: date | None, birth_year: int | None
) -> str | None:
    """The key under which likely duplicates meet; None when too little is known to compare."""
    born = birth_date.isoformat() if birth_date else (str(birth_year) if birth_year else None)
    if not family or not given or born is None:
        return None
    return f"{fold(family)}|{fold(given)}|{born}"
