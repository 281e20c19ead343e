"""The projection's own integration events: what the views did with a person's data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field

from contracts.events import IntegrationEvent, register
from contracts.personal import CODE, NotPersonal

__all__ = ["ViewPurged"]


@register
class ViewPurged(IntegrationEvent):
    """No staff member acts here: the projection purges when a basis ends, at ``at``."""

    service: ClassVar[str] = "projection"
    version: ClassVar[int] = 1
    name: ClassVar[str] = "ViewPurged"
    summary: ClassVar[str] = (
        "An agency's view of a person was purged of the data categories whose basis (consent, "
        "支援会議 membership, vital-interest declaration) ended, with the reason."
    )

    person_id: UUID
    agency: Annotated[str, CODE] = Field(min_length=1)
    categories: Annotated[list[str], CODE] = Field(min_length=1)
    reason: Annotated[str, NotPersonal("the basis that ended, in the projection's words")] = Field(
        min_length=1
    )
    at: datetime
