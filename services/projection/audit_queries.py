"""What the privacy officer's routes read from the views: the ViewPurged records of a person,
and whose a consent is. (The chain itself is read through ``audit.AuditLog``.)"""

from __future__ import annotations

import json
from dataclasses import dataclass

from services.platform.sql import Transaction


@dataclass(frozen=True)
class PurgeRecord:
    """A ViewPurged record: categories removed from an agency's view when their basis ended."""

    purge_id: str
    agency: str
    person_id: str
    categories: dict[str, dict[str, str | None]]
    reason: str
    at: str
    published: bool


def purges(tx: Transaction, person_id: str) -> list[PurgeRecord]:
    """What was purged from any agency's view of the person, oldest first."""
    rows = tx.fetchall(
        "SELECT * FROM view_purge WHERE person_id = ? ORDER BY at, purge_id", (person_id,)
    )
    return [
        PurgeRecord(
            **{
                **row,
                "categories": json.loads(row["categories"]),
                "published": bool(row["published"]),
            }
        )
        for row in rows
    ]


def consent_person(tx: Transaction, consent_id: str) -> str | None:
    """The person who gave the consent, once the views have it."""
    row = tx.fetchone("SELECT person_id FROM consent WHERE consent_id = ?", (consent_id,))
    return str(row["person_id"]) if row is not None else None
