"""What meeting keeps from intake's events: the persons registered, the applications received,
the consent ledger and which persons intake merged (``services.projection.merges``).

A case is opened only from an application (利用申込) that intake published in the office's own
municipality; a 支援会議 or a vital-interest declaration is only about a person intake registered
there; tax is shared at a 支援会議 only under a consent in intake's ledger. All of it arrives
over Kafka into meeting's own schema, never from intake's database. Of a person, only the id and
the municipality are kept: meeting needs to know that the person exists, not who they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from contracts import disclosure
from contracts.envelope import CloudEvent
from contracts.events import (
    ApplicationReceived,
    IntegrationEvent,
    PersonErased,
    PersonRegistered,
)
from services.feeds import consents
from services.feeds.changes import Change, Upsert, ViewState
from services.feeds.store import ViewStore
from services.meeting.application import Applicant, KnownApplication, MergedPerson
from services.platform.keys import Erasure
from services.projection import merges
from services.projection.person_facts import TxReader

TABLES = (
    """CREATE TABLE IF NOT EXISTS known_application (
        consultation_id TEXT PRIMARY KEY,
        person_id TEXT NOT NULL,
        agency TEXT NOT NULL,
        received_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS known_application_person ON known_application (person_id)",
    """CREATE TABLE IF NOT EXISTS known_person (
        person_id TEXT PRIMARY KEY,
        municipality TEXT NOT NULL
    )""",
    # Whom intake erased (PersonErased), when and why: no case is offered for them.
    """CREATE TABLE IF NOT EXISTS erased_person (
        person_id TEXT PRIMARY KEY,
        erased_at TEXT NOT NULL,
        reason TEXT NOT NULL
    )""",
    *merges.TABLES,
)


def project_applications(
    _: ViewState, event: CloudEvent, data: IntegrationEvent
) -> Sequence[Change]:
    if isinstance(data, PersonRegistered):
        return [
            Upsert(
                "known_person",
                key={"person_id": str(data.person_id)},
                values={"municipality": event.municipality},
            )
        ]
    if isinstance(data, PersonErased):
        return [
            Upsert(
                "erased_person",
                key={"person_id": str(data.person_id)},
                values={"erased_at": data.at.isoformat(), "reason": data.reason},
            )
        ]
    if not isinstance(data, ApplicationReceived):
        return []
    return [
        Upsert(
            "known_application",
            key={"consultation_id": str(data.consultation_id)},
            values={
                "person_id": str(data.person_id),
                "agency": data.agency,
                "received_at": data.at.isoformat(),
            },
        )
    ]


class FeedFacts:
    """The application's questions about intake, answered from meeting's feed tables."""

    def __init__(self, store: ViewStore) -> None:
        self._store = store

    def applicant(self, consultation_id: UUID) -> Applicant | None:
        with self._store.database.transaction() as tx:
            row = tx.fetchone(
                "SELECT person_id, agency FROM known_application WHERE consultation_id = ?",
                (str(consultation_id),),
            )
        return Applicant(UUID(row["person_id"]), row["agency"]) if row else None

    def applications_of(self, person_id: UUID) -> list[KnownApplication]:
        with self._store.database.transaction() as tx:
            rows = tx.fetchall(
                "SELECT consultation_id, agency, received_at FROM known_application "
                "WHERE person_id = ? ORDER BY received_at, consultation_id",
                (str(person_id),),
            )
        return [
            KnownApplication(
                UUID(row["consultation_id"]),
                row["agency"],
                datetime.fromisoformat(row["received_at"]),
            )
            for row in rows
        ]

    def erasure(self, person_id: UUID) -> Erasure | None:
        with self._store.database.transaction() as tx:
            row = tx.fetchone(
                "SELECT erased_at, reason FROM erased_person WHERE person_id = ?",
                (str(person_id),),
            )
        if row is None:
            return None
        return Erasure(row["reason"], datetime.fromisoformat(row["erased_at"]))

    def knows_person(self, person_id: UUID, municipality: str) -> bool:
        with self._store.database.transaction() as tx:
            row = tx.fetchone(
                "SELECT person_id FROM known_person WHERE person_id = ? AND municipality = ?",
                (str(person_id), municipality),
            )
        return row is not None

    def consents_of(self, person_id: UUID) -> tuple[disclosure.Consent, ...]:
        with self._store.database.transaction() as tx:
            return consents.consents_of(tx, str(person_id))

    def merged(self, person_id: UUID) -> MergedPerson:
        with self._store.database.transaction() as tx:
            records = merges.records_of(TxReader(tx), str(person_id))
        return MergedPerson(UUID(records[0]), tuple(map(UUID, records)))
