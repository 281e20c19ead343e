"""What referral keeps from intake's events: the consent ledger and which persons intake merged
(``services.projection.merges``).

A slip shares its categories only under a consent of the person it is about, checked when it is
sent and each time the receiver reads it. Once intake merged two records of one human, a consent
given under either id is that human's (``merges.United`` gives the reasoning), as in the views
and in meeting: it still answers only for its own recipients, categories, purposes and period,
and an unmerge ends that at once. A slip about a merged person names the survivor, the person
every read of them answers, and the id it was recorded under.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from contracts import disclosure
from services.feeds import consents
from services.feeds.changes import Projector
from services.feeds.store import ViewStore
from services.projection import merges
from services.projection.person_facts import TxReader

TABLES = consents.TABLES + merges.TABLES
PROJECTORS: tuple[Projector, ...] = (consents.project_consents, merges.project_merges)


class ConsentReplica:
    """The application's questions about intake, answered from referral's feed tables."""

    def __init__(self, store: ViewStore) -> None:
        self._store = store

    def consents_of(self, person_id: UUID) -> tuple[disclosure.Consent, ...]:
        """The consents of the person ``person_id`` is one of now, each read as theirs: those
        recorded under every record merged with it, with their withdrawals."""
        person = str(person_id)
        with self._store.database.transaction() as tx:
            state = merges.as_one(TxReader(tx), person)
            return consents.consents_of_rows(
                state.rows("consent", {"person_id": person}),
                state.rows("consent_withdrawal", {"person_id": person}),
            )

    def named(self, person_id: UUID | None) -> dict[str, Any]:
        """How a slip recorded under ``person_id`` names its person now (``merges.named``)."""
        with self._store.database.transaction() as tx:
            return merges.named(TxReader(tx), {"person_id": str(person_id) if person_id else None})
