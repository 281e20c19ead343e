"""The audit's integration event: a read of a person's data served by a service other than the
one that keeps the audit chain, on its way to that chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.events import IntegrationEvent, register
from contracts.personal import CODE, IDENTIFIER, STAFF, NotPersonal

__all__ = ["RecordViewed", "ShownBasis"]


class ShownBasis(BaseModel):
    """The basis one category was shown on: ``decide``'s (own_record, consent, article9_meeting,
    vital_interest) or a slip's (verbal_consent, community_concern), with its id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    basis: Annotated[str, CODE] = Field(min_length=1)
    basis_id: Annotated[str | None, IDENTIFIER] = None


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
    agency: Annotated[str, CODE] = Field(min_length=1)
    staff_id: Annotated[str, STAFF] = Field(min_length=1)
    roles: Annotated[list[str], CODE]
    at: datetime
    # The audit answers for every read for ever, an erased person's too: it keeps whose
    # records were read by id, never what they said.
    person_id: Annotated[str | None, IDENTIFIER] = None
    shown: Annotated[dict[str, ShownBasis], CODE] = Field(default_factory=dict)
    disclosed_by: Annotated[list[str], CODE] = Field(default_factory=list)
    request_id: Annotated[str | None, IDENTIFIER] = None
    trace_id: Annotated[str | None, IDENTIFIER] = None
    view: Annotated[
        dict[str, Any] | None, NotPersonal("the view asked and its parameters: ids, codes, times")
    ] = None
    # The views' journal position the response was built from (what a replay starts from);
    # None from services that keep no journal.
    state_position: int | None = None
    response_hash: Annotated[str | None, NotPersonal("a sha256 of the body served")] = None
    reason: Annotated[
        str | None, NotPersonal("why a read was refused or withheld, in the service's own words")
    ] = None
