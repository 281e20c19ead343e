"""The audit's integration event: a read of a person's data served by a service other than the
one that keeps the audit chain, on its way to that chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.events import IntegrationEvent, register

__all__ = ["RecordViewed", "ShownBasis"]


class ShownBasis(BaseModel):
    """The basis one category was shown on: ``decide``'s (own_record, consent, article9_meeting,
    vital_interest) or a slip's (verbal_consent, community_concern), with its id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    basis: str = Field(min_length=1)
    basis_id: str | None = None


@register
class RecordViewed(IntegrationEvent):
    """``agency``'s staff member ``staff_id`` was answered (or refused) at ``at``."""

    service: ClassVar[str] = "audit"
    version: ClassVar[int] = 1
    name: ClassVar[str] = "RecordViewed"
    summary: ClassVar[str] = (
        "A service answered a read of a person's data (or refused it): who read, with which "
        "roles, each data category shown with its legal basis, whose records were shown, the "
        "request, trace and view asked, and the sha256 of the exact body served. Appended, once, "
        "to the audit chain of the event's municipality."
    )

    disclosure_id: UUID
    kind: Literal["record_viewed", "access_denied"]
    agency: str = Field(min_length=1)
    staff_id: str = Field(min_length=1)
    roles: list[str]
    at: datetime
    person_id: str | None = None
    shown: dict[str, ShownBasis] = Field(default_factory=dict)
    disclosed_by: list[str] = Field(default_factory=list)
    request_id: str | None = None
    trace_id: str | None = None
    view: dict[str, Any] | None = None
    # The views' journal position the response was built from (what a replay starts from);
    # None from services that keep no journal.
    state_position: int | None = None
    response_hash: str | None = None
    reason: str | None = None
