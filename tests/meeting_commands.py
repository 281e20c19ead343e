"""Meeting's commands written briefly in tests: members and attendees as tuples."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.meeting.application import Attendee, HoldMeeting, Member, ScheduleMeeting


def schedule(
    kind: str,
    when: datetime,
    case_ids: list[UUID] | None = None,
    *,
    members: list[tuple[str, datetime | None, datetime]] | None = None,
    **rest: Any,
) -> ScheduleMeeting:
    """A meeting to schedule; each member as (agency, from or None, until)."""
    return ScheduleMeeting(
        kind=kind,
        scheduled_for=when,
        case_ids=case_ids or [],
        members=[Member(agency=a, valid_from=f, valid_until=u) for a, f, u in members or []],
        **rest,
    )


def hold(attendees: list[tuple[str, str]], **rest: Any) -> HoldMeeting:
    """A meeting held; each attendee as (agency, role)."""
    return HoldMeeting(attendees=[Attendee(agency=a, role=r) for a, r in attendees], **rest)
