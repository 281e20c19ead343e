"""Retention (保存期間): a person's records go once their support case has been closed longer
than their municipality keeps them.

Meeting owns the case; intake owns the person and the erasure. So intake keeps, in a feed of its
own, what it needs to know from meeting's events (each case of each person: open, or closed on
a date) and from its own (an extension of the retention, an erasure). The retention of a
person's records ends ``retention_years`` (per municipality, ``contracts/reference.yaml``)
after the latest closure, counted as the civil code counts years (民法第140条・第143条: from
the day after the closure, ending on the closure's date that many years later), or on the date a
municipality extended it to, with a recorded reason. From the day after, the sweeper erases
them with the reason ``retention``. A person with a case open is never due, and a case
reopened is open again; a person with no case at all is not erased by retention.

The feed is what lists and sweeps read: one query for the whole municipality. The person
aggregate stays the authority on an extension and an erasure, which the erasure judges on the
person as stored (the feed may be a moment behind intake's own events). A case reopened is
known to the feed alone: the distributed sweep erases nothing while the feed has meeting's or
intake's topics left to read (``services.feeds.lag``).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from contracts.envelope import CloudEvent
from contracts.events import (
    CaseClosed,
    CaseOpened,
    CaseReopened,
    IntegrationEvent,
    PersonErased,
    RetentionExtended,
)
from contracts.reference import reference
from services.feeds.changes import Change, Upsert, ViewState
from services.feeds.store import ViewStore
from services.platform.sql import Row
from services.platform.times import MUNICIPAL_OFFSET

# Which services' events the feed reads: meeting's cases, intake's own extensions and erasures.
SOURCES = ("meeting", "intake")

TABLES = (
    # Each support case of each person: ``closed_at`` (UTC) while closed, NULL while open.
    """CREATE TABLE IF NOT EXISTS retention_case (
        case_id TEXT PRIMARY KEY,
        person_id TEXT NOT NULL,
        municipality TEXT NOT NULL,
        closed_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS retention_case_person ON retention_case (municipality, person_id)",
    # A person's extension (its reason sealed, as it travels) and erasure, once recorded.
    """CREATE TABLE IF NOT EXISTS retention_hold (
        person_id TEXT PRIMARY KEY,
        municipality TEXT NOT NULL,
        extended_until TEXT,
        extension_reason TEXT,
        extended_at TEXT,
        extended_by TEXT,
        erased_at TEXT
    )""",
)


def project_retention(_: ViewState, event: CloudEvent, data: IntegrationEvent) -> Sequence[Change]:
    if isinstance(data, CaseOpened | CaseClosed | CaseReopened):
        closed_at = _utc(data.at) if isinstance(data, CaseClosed) else None
        return [
            Upsert(
                "retention_case",
                key={"case_id": str(data.case_id)},
                values={
                    "person_id": str(data.person_id),
                    "municipality": event.municipality,
                    "closed_at": closed_at,
                },
            )
        ]
    if isinstance(data, RetentionExtended):
        values: dict[str, Any] = {
            "extended_until": data.until.isoformat(),
            "extension_reason": data.reason,
            "extended_at": _utc(data.at),
            "extended_by": data.agency,
        }
    elif isinstance(data, PersonErased):
        values = {"erased_at": _utc(data.at)}
    else:
        return []
    return [
        Upsert(
            "retention_hold",
            key={"person_id": str(data.person_id)},
            values={"municipality": event.municipality, **values},
        )
    ]


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def add_years(day: date, years: int) -> date:
    """The same date ``years`` later; 29 February becomes the 28th in a common year (民法第143条:
    a period ending in a month without the day ends on that month's last day)."""
    year = day.year + years
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


def municipal_date(at: datetime) -> date:
    """The date ``at`` falls on where the municipality is."""
    return at.astimezone(MUNICIPAL_OFFSET).date()


@dataclass(frozen=True)
class Extension:
    """A retention extended to ``until`` by ``agency`` at ``at``, for ``reason`` (sealed)."""

    until: date
    reason: str
    at: datetime
    agency: str


@dataclass(frozen=True)
class Retention:
    """How long a person's records are kept: from the latest closure of their cases (None while
    one is open, or none was ever closed), and any extension."""

    person_id: UUID
    municipality: str
    closed_on: date | None
    extension: Extension | None

    @property
    def retained_until(self) -> date | None:
        """The last day the records are kept (保存期限); None while no end is known."""
        if self.closed_on is None:
            return None
        end = add_years(
            self.closed_on, reference().municipalities[self.municipality].retention_years
        )
        return max(end, self.extension.until) if self.extension else end

    @property
    def erasure_on(self) -> date | None:
        """The day the sweeper erases them (消去予定日): the day after the retention ends."""
        end = self.retained_until
        return end + timedelta(days=1) if end else None

    def order(self) -> tuple[str, str]:
        """Soonest erasure first; also the key a page of the list starts after."""
        return (str(self.erasure_on), str(self.person_id))

    def document(self) -> dict[str, Any]:
        """The person's retention as an answer shows it (the extension's reason still sealed:
        the disclosure opens it)."""
        extension = self.extension
        return {
            "person_id": str(self.person_id),
            "closed_on": _iso(self.closed_on),
            "retention_years": reference().municipalities[self.municipality].retention_years,
            "retained_until": _iso(self.retained_until),
            "erasure_on": _iso(self.erasure_on),
            "extension": None
            if extension is None
            else {
                "until": extension.until.isoformat(),
                "reason": extension.reason,
                "extended_at": extension.at.isoformat(),
                "extended_by": extension.agency,
            },
        }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


class RetentionBook:
    """The retention of persons' records, read from intake's retention feed."""

    def __init__(self, store: ViewStore) -> None:
        self._store = store

    def of(self, person_id: UUID, municipality: str) -> Retention:
        """The person's retention as the feed knows it now (no closure: no end yet)."""
        with self._store.database.transaction() as tx:
            cases = tx.fetchall(
                "SELECT closed_at FROM retention_case WHERE person_id = ? AND municipality = ?",
                (str(person_id), municipality),
            )
            hold = tx.fetchone(
                "SELECT * FROM retention_hold WHERE person_id = ? AND municipality = ?",
                (str(person_id), municipality),
            )
        closures = [row["closed_at"] for row in cases]
        closed = max(closures) if closures and None not in closures else None
        return _retention(str(person_id), municipality, closed, hold)

    def due(self, municipality: str, by: date) -> list[Retention]:
        """Every person of ``municipality`` not erased, with no case open, whose records the
        sweeper erases on ``by`` or before, soonest first."""
        years = reference().municipalities[municipality].retention_years
        # Closures that may end by ``by``: a day's margin either side of the offset and of
        # 29 February; each is then judged exactly below.
        latest = datetime.combine(add_years(by, -years) + timedelta(days=2), time(), UTC)
        with self._store.database.transaction() as tx:
            rows = tx.fetchall(
                "SELECT c.person_id, c.closed_at, h.extended_until, h.extension_reason, "
                "h.extended_at, h.extended_by FROM ("
                " SELECT person_id, MAX(closed_at) AS closed_at FROM retention_case"
                " WHERE municipality = ? GROUP BY person_id"
                " HAVING COUNT(*) = COUNT(closed_at) AND MAX(closed_at) < ?"
                ") AS c LEFT JOIN retention_hold AS h ON h.person_id = c.person_id "
                "WHERE h.erased_at IS NULL",
                (municipality, latest.isoformat()),
            )
        found = [_retention(row["person_id"], municipality, row["closed_at"], row) for row in rows]
        due = [r for r in found if r.erasure_on is not None and r.erasure_on <= by]
        return sorted(due, key=Retention.order)

    def erased(self, municipality: str) -> list[UUID]:
        """Every person of ``municipality`` whose erasure the feed has seen."""
        with self._store.database.transaction() as tx:
            rows = tx.fetchall(
                "SELECT person_id FROM retention_hold "
                "WHERE municipality = ? AND erased_at IS NOT NULL",
                (municipality,),
            )
        return [UUID(row["person_id"]) for row in rows]


def _retention(
    person_id: str, municipality: str, closed_at: str | None, hold: Row | None
) -> Retention:
    extension = None
    if hold is not None and hold["extended_until"] is not None:
        extension = Extension(
            date.fromisoformat(hold["extended_until"]),
            hold["extension_reason"],
            datetime.fromisoformat(hold["extended_at"]),
            hold["extended_by"],
        )
    closed_on = municipal_date(datetime.fromisoformat(closed_at)) if closed_at else None
    return Retention(UUID(person_id), municipality, closed_on, extension)
