"""Lookups an event store cannot answer by id, as index aggregates (any service may keep them).

Each index's id is derived from its key, and it is saved in the same transaction as the
aggregate it points to, so the store's own uniqueness guards it (a local id cannot be linked
twice). Relays do not publish them: they are their service's own.

A key made of personal data (a local id; a duplicate key of folded names and birth date) is a
blind index token of it (``services.platform.blind_index``), never the data nor an unkeyed hash
of it, which anyone could match against a list of names or numbers. Ids made before the blind
index (uuid5 of the local id itself; duplicate keys in clear) are not looked up: ``tsunagu
upgrade`` makes a store's index aggregates again from its persons, as intake makes them now.
"""

from __future__ import annotations

from typing import Annotated
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from contracts.personal import CODE, OF_PERSON, NotPersonal
from services.platform.blind_index import BlindIndex

# A key made of personal data (a duplicate key of names) is a blind index, never the data.
LOOKUP_KEY = NotPersonal("a lookup key: ids, codes, or a blind index of personal data")
_NAMESPACE = uuid5(NAMESPACE_URL, "urn:tsunagu:intake:index")  # kept: ids already stored


class LocalIdIndex(Aggregate):
    """Which person an agency's local id (the tax desk's number, a case number) belongs to,
    found by the local id's token (``local_id_key``)."""

    class Created(Aggregate.Created):
        key: Annotated[str, LOOKUP_KEY]
        agency: Annotated[str, CODE]
        local_id: Annotated[str, OF_PERSON]
        person_id: UUID

    @event(Created)
    def __init__(self, key: str, agency: str, local_id: str, person_id: UUID) -> None:
        self.key, self.agency, self.local_id, self.person_id = key, agency, local_id, person_id

    @staticmethod
    def create_id(key: str) -> UUID:
        return uuid5(_NAMESPACE, f"local:{key}")

    @classmethod
    def of(cls, blind: BlindIndex, agency: str, local_id: str, person_id: UUID) -> LocalIdIndex:
        """``agency``'s ``local_id`` filed for ``person_id``."""
        return cls(local_id_key(blind, agency, local_id), agency, local_id, person_id)


def local_id_key(blind: BlindIndex, agency: str, local_id: str) -> str:
    """The token an agency's local id is looked up by, here and in the views' person index."""
    return blind.token("local_id", agency, local_id)


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


DUPLICATES = "duplicates:"


def duplicates_key(blind: BlindIndex, municipality: str, duplicate_key: str) -> str:
    """The list of persons of ``municipality`` who share ``duplicate_key`` (folded names and
    birth date: ``services.intake.person.duplicate_key``), by its token."""
    return DUPLICATES + blind.token("duplicates", municipality, duplicate_key)


def consents_key(person_id: UUID) -> str:
    return f"consents:{person_id}"
