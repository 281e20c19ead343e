"""The desk's lists, read from the views a keyset page at a time, and whether a person is known.

Each list is sorted by columns that never change once set (the opening instant, the sending
instant, then the row's id), so a page after a cursor is the same whatever arrived meanwhile.
A line names its person as merged now (``merges.named``): the survivor, whose page and reads
answer, and the duplicate's id it was recorded under; an unmerge gives the line back.
"""

from __future__ import annotations

from datetime import date, datetime

from services.platform.pagination import Key, Page
from services.platform.sql import Row, Transaction
from services.projection.merges import named
from services.projection.person_facts import TxReader, utc

CONNECT_ELSEWHERE = "connect_elsewhere"
_CONSULTATIONS = ("opened_at", "consultation_id")
# A box line made by a move that arrived before its slip has no sending instant yet.
_BOX = ("COALESCE(sent_at, '')", "referral_id")


def consultations(
    tx: Transaction,
    agency: str,
    asked: Page,
    *,
    follow_up_due_by: date | None = None,
    opened_since: datetime | None = None,
) -> list[Row]:
    """The agency's consultations, oldest first; with ``follow_up_due_by``, only those connected
    elsewhere whose follow-up falls on or before that day."""
    where, params = ["agency = ?", "opened_at IS NOT NULL"], [agency]
    if follow_up_due_by is not None:
        where += ["triage_outcome = ?", "follow_up_on <= ?"]
        params += [CONNECT_ELSEWHERE, follow_up_due_by.isoformat()]
    if opened_since is not None:
        where.append("opened_at >= ?")
        params.append(utc(opened_since))
    after, values = asked.keyset(_CONSULTATIONS)
    return _named(
        tx,
        tx.fetchall(
            f"SELECT * FROM consultation_view WHERE {' AND '.join(where)} AND {after} "
            f"ORDER BY {', '.join(_CONSULTATIONS)} LIMIT ?",
            (*params, *values, asked.fetch),
        ),
    )


def consultation_key(row: Row) -> Key:
    return (row["opened_at"], row["consultation_id"])


def referral_box(
    tx: Transaction, agency: str, direction: str, asked: Page, state: str | None = None
) -> list[Row]:
    """The agency's inbox (``in``) or outbox (``out``) lines, oldest slip first; only those
    in ``state`` when given."""
    after, values = asked.keyset(_BOX)
    in_state, states = ("state = ?", [state]) if state is not None else ("1 = 1", [])
    return _named(
        tx,
        tx.fetchall(
            f"SELECT * FROM referral_box WHERE agency = ? AND direction = ? AND {in_state} "
            f"AND {after} ORDER BY {', '.join(_BOX)} LIMIT ?",
            (agency, direction, *states, *values, asked.fetch),
        ),
    )


def box_key(row: Row) -> Key:
    return (row["sent_at"] or "", row["referral_id"])


def _named(tx: Transaction, rows: list[Row]) -> list[Row]:
    state = TxReader(tx)
    return [named(state, row) for row in rows]


def municipality_of(tx: Transaction, person_id: str) -> str | None:
    """The municipality that registered the person, once the views have the registration."""
    row = tx.fetchone("SELECT municipality FROM person_index WHERE person_id = ?", (person_id,))
    return str(row["municipality"]) if row is not None and row["municipality"] else None
