"""A replica of the consent ledger, built from intake's events, for any service that decides.

Services never read intake's database: referral, meeting and the views each keep these two
tables in their own schema, fed by the same projector, and read them back as the disclosure
policy's ``Consent`` values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from contracts import disclosure
from contracts.envelope import CloudEvent
from contracts.events import ConsentRecorded, ConsentWithdrawn, IntegrationEvent
from services.feeds.changes import Change, Upsert, ViewState
from services.platform.sql import Row, Transaction

TABLES = (
    """CREATE TABLE IF NOT EXISTS consent (
        consent_id TEXT PRIMARY KEY,
        person_id TEXT NOT NULL,
        recorded_by TEXT NOT NULL,
        recipients TEXT NOT NULL,
        categories TEXT NOT NULL,
        purposes TEXT NOT NULL,
        valid_from TEXT NOT NULL,
        valid_until TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS consent_person ON consent (person_id)",
    """CREATE TABLE IF NOT EXISTS consent_withdrawal (
        withdrawal_id TEXT PRIMARY KEY,
        consent_id TEXT NOT NULL,
        person_id TEXT NOT NULL,
        at TEXT NOT NULL,
        recipients TEXT,
        categories TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS consent_withdrawal_person ON consent_withdrawal (person_id)",
)


def _names(values: list[str] | None) -> str | None:
    return json.dumps(sorted(values)) if values is not None else None


def project_consents(_: ViewState, event: CloudEvent, data: IntegrationEvent) -> Sequence[Change]:
    if isinstance(data, ConsentRecorded):
        return [
            Upsert(
                "consent",
                key={"consent_id": str(data.consent_id)},
                values={
                    "person_id": str(data.person_id),
                    "recorded_by": data.agency,
                    "recipients": _names(data.recipients),
                    "categories": _names(data.categories),
                    "purposes": _names(data.purposes),
                    "valid_from": data.valid_from.isoformat(),
                    "valid_until": data.valid_until.isoformat(),
                },
            )
        ]
    if isinstance(data, ConsentWithdrawn):
        return [
            Upsert(
                "consent_withdrawal",
                key={"withdrawal_id": str(data.withdrawal_id)},
                values={
                    "consent_id": str(data.consent_id),
                    "person_id": str(data.person_id),
                    "at": data.at.isoformat(),
                    "recipients": _names(data.recipients),
                    "categories": _names(data.categories),
                },
            )
        ]
    return []


def consents_of(tx: Transaction, person_id: str) -> tuple[disclosure.Consent, ...]:
    """The person's consents, with their withdrawals, as the disclosure policy reads them."""
    return consents_of_rows(
        tx.fetchall("SELECT * FROM consent WHERE person_id = ?", (person_id,)),
        tx.fetchall("SELECT * FROM consent_withdrawal WHERE person_id = ?", (person_id,)),
    )


def consents_of_rows(
    consent_rows: Sequence[Row], withdrawal_rows: Sequence[Row]
) -> tuple[disclosure.Consent, ...]:
    """``consents_of`` over rows already read (the person views read through pending changes)."""
    withdrawals: dict[str, list[disclosure.Withdrawal]] = {}
    for row in withdrawal_rows:
        withdrawals.setdefault(row["consent_id"], []).append(
            disclosure.Withdrawal(
                withdrawal_id=row["withdrawal_id"],
                at=datetime.fromisoformat(row["at"]),
                recipients=_set(row["recipients"]),
                categories=_set(row["categories"]),
            )
        )
    return tuple(
        disclosure.Consent(
            consent_id=row["consent_id"],
            person_id=row["person_id"],
            recipients=frozenset(json.loads(row["recipients"])),
            categories=frozenset(json.loads(row["categories"])),
            purposes=frozenset(json.loads(row["purposes"])),
            valid_from=datetime.fromisoformat(row["valid_from"]),
            valid_until=datetime.fromisoformat(row["valid_until"]),
            withdrawals=tuple(withdrawals.get(row["consent_id"], ())),
        )
        for row in consent_rows
    )


def _set(names: str | None) -> frozenset[str] | None:
    return frozenset(json.loads(names)) if names is not None else None
