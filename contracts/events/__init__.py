"""Integration events: the schema of each event's ``data``, by name and version.

A schema, once published, never changes; a new shape is a new version, and readers upcast old
versions to the newest (``parse``) rather than anyone rewriting stored messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.envelope import TYPE_PREFIX, CloudEvent
from contracts.personal import CODE, STAFF


class UnknownEvent(ValueError):
    """The envelope names an event type or version this platform does not know."""


class InvalidEventData(ValueError):
    """The event's data does not match the schema of its type and version."""


class IntegrationEvent(BaseModel):
    """Base of every event's data. ``name``, ``version`` and ``service`` identify the schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    version: ClassVar[int]
    service: ClassVar[str]
    summary: ClassVar[str]

    @classmethod
    def cloudevent_type(cls) -> str:
        return TYPE_PREFIX + cls.name

    @classmethod
    def schema_id(cls) -> str:
        return f"urn:tsunagu:schema:{cls.name}:v{cls.version}"

    @classmethod
    def upcast(cls, previous: IntegrationEvent) -> IntegrationEvent:
        """This version's reading of the data of the version before it (v2 and later)."""
        raise NotImplementedError(f"{cls.name} v{cls.version} has no upcast from an older version")


CATALOGUE: dict[tuple[str, int], type[IntegrationEvent]] = {}


def register(cls: type[IntegrationEvent]) -> type[IntegrationEvent]:
    key = (cls.name, cls.version)
    if key in CATALOGUE:
        raise ValueError(f"{cls.name} v{cls.version} is registered twice")
    CATALOGUE[key] = cls
    return cls


def latest_versions() -> list[type[IntegrationEvent]]:
    newest: dict[str, type[IntegrationEvent]] = {}
    for (name, _version), cls in sorted(CATALOGUE.items()):
        newest[name] = cls
    return list(newest.values())


def parse(event: CloudEvent) -> IntegrationEvent:
    """The data of ``event``, validated under its own version and upcast to the newest.

    Old messages stay as they were published; readers see one shape per event name.
    """
    schema = CATALOGUE.get((event.name, event.eventversion))
    if schema is None:
        raise UnknownEvent(f"unknown event type {event.type!r} version {event.eventversion}")
    try:
        data = schema.model_validate(event.data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise InvalidEventData(f"{event.name} v{event.eventversion}: {problems}") from error
    version = event.eventversion
    while (newer := CATALOGUE.get((event.name, version + 1))) is not None:
        data, version = newer.upcast(data), version + 1
    return data


class Act(IntegrationEvent):
    """Who did it and when (business time: a past contact may be entered later)."""

    agency: Annotated[str, CODE] = Field(min_length=1)
    staff_id: Annotated[str, STAFF] = Field(min_length=1)
    at: datetime


# Each service's events register themselves on import; importing them here makes the catalogue
# complete for every reader of this package.
from contracts.events.audit import *  # noqa: E402, F403
from contracts.events.intake import *  # noqa: E402, F403
from contracts.events.meeting import *  # noqa: E402, F403
from contracts.events.projection import *  # noqa: E402, F403
from contracts.events.referral import *  # noqa: E402, F403
