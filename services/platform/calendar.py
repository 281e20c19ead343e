"""Business time and calendar dates, as the command services record them.

A step is dated when it happened, which may be before it is entered (a past contact typed in
later), never in the future. Calendar dates (a plan's period, a follow-up deadline) are stored
as ISO strings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from eventsourcing.persistence import Transcoding

from contracts.errors import Invalid


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


def past_or_now(field: str, moment: datetime | None) -> datetime:
    """Business time of a step: given (for back-office entry of a past contact) or now."""
    now = datetime.now(UTC)
    if moment is None:
        return now
    if moment.tzinfo is None:
        raise Invalid(field, "timezone_required", f"{field} needs a UTC offset")
    if moment > now:
        raise Invalid(field, "not_in_future", f"{field} cannot be in the future")
    return moment
