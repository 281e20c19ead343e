"""A consent's revocation impact: what left under it, and what its withdrawal could not call back.

A withdrawal stops disclosures from its instant on; it cannot unsee what was shown or unsend
what was sent. The person who withdraws (and the privacy officer answering them) needs, for one
consent:
- the disclosures the audit log recorded under it, before the withdrawal that ended each (and
  any after, which would be a defect to investigate);
- what was purged from whose view when the consent stopped covering it (ViewPurged);
- what was sent onward under it: referral slips naming it, and 支援会議 shares whose members
  saw a category under it at the time of the share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from contracts import disclosure
from contracts.envelope import CloudEvent
from contracts.errors import NotFound
from contracts.events import InformationShared, IntegrationEvent, ReferralSent, parse
from services.feeds.store import ViewStore
from services.platform.sql import Transaction
from services.projection.audit import AuditLog, AuditRecord
from services.projection.person_facts import TxReader, record_from

CONSENT = "consent"
# The purpose a 支援会議 member reads a shared item for (as the meeting service decides it).
MEETING = "meeting"
# Event ids per journal query: well under SQLite's limit of bound parameters.
EVENTS_PER_QUERY = 500
E = TypeVar("E", bound=IntegrationEvent)


@dataclass(frozen=True)
class WithdrawalRecord:
    withdrawal_id: str
    at: str
    # None: every recipient (or category) of the consent.
    recipients: list[str] | None
    categories: list[str] | None


@dataclass(frozen=True)
class PurgedUnder:
    """A ViewPurged record, narrowed to the categories whose ended basis was this consent."""

    purge_id: str
    agency: str
    categories: list[str]
    reason: str
    at: str


@dataclass(frozen=True)
class Slip:
    """A referral slip sent under the consent: its categories went to the receiver on paper."""

    referral_id: str
    sender: str
    receiver: str
    categories: list[str]
    at: str


@dataclass(frozen=True)
class Share:
    """An item shared at a 支援会議: each member that saw categories of it under the consent."""

    meeting_id: str
    item_id: str
    shared_by: str
    at: str
    received: dict[str, list[str]]


@dataclass(frozen=True)
class RevocationImpact:
    consent_id: str
    person_id: str
    recipients: list[str]
    categories: list[str]
    purposes: list[str]
    valid_from: str
    valid_until: str
    withdrawals: list[WithdrawalRecord]
    disclosed_before: list[AuditRecord]
    disclosed_after: list[AuditRecord]
    purged: list[PurgedUnder]
    slips: list[Slip]
    shares: list[Share]


def after_withdrawal(entry: AuditRecord, consent: disclosure.Consent) -> bool:
    """Whether any category the entry showed under ``consent`` was already withdrawn from its
    viewer's agency when it was shown (``decide`` should have made that impossible)."""
    at = datetime.fromisoformat(entry.recorded_at)
    return any(
        withdrawal.at <= at and withdrawal.matches(entry.viewer_agency, category)
        for category, basis in entry.bases.items()
        if basis["basis"] == CONSENT and basis["basis_id"] == consent.consent_id
        for withdrawal in consent.withdrawals
    )


def impact_of(log: AuditLog, views: ViewStore, consent_id: str) -> RevocationImpact:
    with views.database.transaction(snapshot=True) as tx:
        row = tx.fetchone("SELECT person_id FROM consent WHERE consent_id = ?", (consent_id,))
        if row is None:
            raise NotFound(f"the views know of no consent {consent_id}")
        person_id = str(row["person_id"])
        record = record_from(TxReader(tx), person_id)
        [consent] = [c for c in record.consents if c.consent_id == consent_id]
        purged = _purged(tx, person_id, consent_id)
        slips = [
            _slip(data)
            for data in _events(tx, person_id, ReferralSent)
            if data.basis == CONSENT and data.basis_id == consent_id
        ]
        shares = [
            share
            for data in _events(tx, person_id, InformationShared)
            if (share := _share(record, data, consent_id)).received
        ]
    disclosed = log.under_consent(consent_id)
    return RevocationImpact(
        consent_id=consent_id,
        person_id=person_id,
        recipients=sorted(consent.recipients),
        categories=sorted(consent.categories),
        purposes=sorted(consent.purposes),
        valid_from=consent.valid_from.isoformat(),
        valid_until=consent.valid_until.isoformat(),
        withdrawals=[
            WithdrawalRecord(
                w.withdrawal_id,
                w.at.isoformat(),
                sorted(w.recipients) if w.recipients is not None else None,
                sorted(w.categories) if w.categories is not None else None,
            )
            for w in sorted(consent.withdrawals, key=lambda w: (w.at, w.withdrawal_id))
        ],
        disclosed_before=[e for e in disclosed if not after_withdrawal(e, consent)],
        disclosed_after=[e for e in disclosed if after_withdrawal(e, consent)],
        purged=purged,
        slips=slips,
        shares=shares,
    )


def _purged(tx: Transaction, person_id: str, consent_id: str) -> list[PurgedUnder]:
    found = []
    for row in tx.fetchall(
        "SELECT * FROM view_purge WHERE person_id = ? ORDER BY at, purge_id", (person_id,)
    ):
        ended = json.loads(row["categories"])
        under = [c for c, basis in ended.items() if basis.get("basis_id") == consent_id]
        if under:
            found.append(
                PurgedUnder(row["purge_id"], row["agency"], under, row["reason"], row["at"])
            )
    return found


def _events(tx: Transaction, person_id: str, kind: type[E]) -> list[E]:
    """The person's events of one kind, from the journal the views were built from, in the
    order they were applied (the timeline finds them, the journal holds them whole)."""
    ids = [
        row["event_id"]
        for row in tx.fetchall(
            "SELECT DISTINCT event_id FROM timeline WHERE person_id = ? AND event = ?",
            (person_id, kind.name),
        )
    ]
    rows = []
    for start in range(0, len(ids), EVENTS_PER_QUERY):
        chunk = ids[start : start + EVENTS_PER_QUERY]
        rows += tx.fetchall(
            "SELECT seq, body FROM event_journal WHERE event_id IN "
            f"({', '.join('?' for _ in chunk)})",
            chunk,
        )
    found = []
    for row in sorted(rows, key=lambda row: int(row["seq"])):
        data = parse(CloudEvent.from_bytes(str(row["body"]).encode("utf-8")))
        assert isinstance(data, kind), f"event {row['seq']} is not a {kind.name}"
        found.append(data)
    return found


def _slip(data: ReferralSent) -> Slip:
    return Slip(
        str(data.referral_id),
        data.sender,
        data.receiver,
        list(data.categories),
        data.at.isoformat(),
    )


def _share(record: disclosure.PersonRecord, data: InformationShared, consent_id: str) -> Share:
    """Which members of the meeting at the time saw which categories of the item under the
    consent: the item as the meeting's policy reads it, recorded by its sharer."""
    meeting = str(data.meeting_id)
    item = replace(
        record,
        recorded_by={c: frozenset({data.agency}) for c in data.categories},
        memberships=tuple(m for m in record.memberships if m.meeting_id == meeting),
    )
    received: dict[str, list[str]] = {}
    for member in item.memberships:
        if member.agency == data.agency or not member.active(data.at):
            continue
        viewer = disclosure.Viewer(member.agency, "")
        for category in data.categories:
            decision = disclosure.decide(viewer, item, category, MEETING, data.at)
            if isinstance(decision, disclosure.Allow) and decision.basis_id == consent_id:
                received.setdefault(member.agency, []).append(category)
    return Share(meeting, str(data.item_id), data.agency, data.at.isoformat(), received)
