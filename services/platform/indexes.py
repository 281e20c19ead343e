"""Lookups an event store cannot answer by id, as index aggregates (any service may keep them).

Each index's id is derived from its key, and it is saved in the same transaction as the
aggregate it points to, so the store's own uniqueness guards it (a local id cannot be linked
twice). Relays do not publish them: they are their service's own.
"""

from __future__ import annotations

from typing import Annotated
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from contracts.personal import CODE, OF_PERSON, NotPersonal

# A key made of personal data (a duplicate key of names) is a blind index, never the data.
LOOKUP_KEY = NotPersonal("a lookup key: ids, codes, or a blind index of personal data")
_NAMESPACE = uuid5(NAMESPACE_URL, "urn:tsunagu:intake:index")  # kept: ids already stored


class LocalIdIndex(Aggregate):
    """Which person an agency's local id (the tax desk's number, a case number) belongs to."""

    class Created(Aggregate.Created):
        agency: Annotated[str, CODE]
        local_id: Annotated[str, OF_PERSON]
        person_id: UUID

    @event(Created)
    def __init__(self, agency: str, local_id: str, person_id: UUID) -> None:
        self.agency, self.local_id, self.person_id = agency, local_id, person_id

    @staticmethod
    def create_id(agency: str, local_id: str) -> UUID:
        return uuid5(_NAMESPACE, f"local:{agency}:{local_id}")


class ListIndex(Aggregate):
    """Ids gathered under one key: likely duplicates, a person's consents, an agency's inbox."""

    class Created(Aggregate.Created):
        key: Annotated[str, LOOKUP_KEY]

    @event(Created)
    def __init__(self, key: str) -> None:
        self.key = key
        self.ids: list[UUID] = []

    @staticmethod
    def create_id(key: str) -> UUID:
        return uuid5(_NAMESPACE, key)

    @event("Added")
    def add(self, member: UUID) -> None:
        self.ids.append(member)


def duplicates_key(duplicate_key: str) -> str:
    return f"duplicates:{duplicate_key}"


def consents_key(person_id: UUID) -> str:
    return f"consents:{person_id}"
