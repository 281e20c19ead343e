"""Times as the desk's APIs show them: RFC 3339 at the municipality's own UTC offset.

The views store instants as UTC text (one text order for every instant); a response gives them
back at the offset the staff and the person live in, so that ``2027-12-31T00:00+09:00`` typed at
the desk reads back as ``2027-12-31T00:00:00+09:00``, not as the evening before in UTC.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

# Japan keeps no summer time: one fixed offset serves every municipality Tsunagu knows.
MUNICIPAL_OFFSET = timezone(timedelta(hours=9))
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")


def municipal(at: datetime | str) -> str:
    """``at`` (an aware datetime, or its ISO text) at the municipality's offset, to the second."""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    if moment.tzinfo is None:
        raise ValueError("an instant needs its UTC offset")
    return moment.astimezone(MUNICIPAL_OFFSET).isoformat(timespec="seconds")


def municipal_or_none(at: str | None) -> str | None:
    """``municipal`` of a time that may be unknown."""
    return municipal(at) if at is not None else None


def municipal_times(value: Any) -> Any:
    """``value`` (parsed JSON) with every instant in it at the municipality's offset; calendar
    dates and other text as they are."""
    if isinstance(value, str):
        return municipal(value) if _INSTANT.fullmatch(value) else value
    if isinstance(value, list):
        return [municipal_times(item) for item in value]
    if isinstance(value, dict):
        return {key: municipal_times(item) for key, item in value.items()}
    return value
