"""Finding a person by name, kana, birth date or an agency's own local id.

``person_search`` keeps each registered person's names and kana folded (``contracts.names``),
so that ﾀｶﾊｼ, たかはし and タカハシ, or 髙橋 and 高橋, find the same person. It holds keys to
match on, not data to show: a search answers with person ids, and what each result shows is the
caller's own view of that person, decided and audited as any read of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from contracts.envelope import CloudEvent
from contracts.events import IntegrationEvent, PersonRegistered
from contracts.names import fold
from services.platform.pagination import Key, Page
from services.platform.sql import Row, Transaction
from services.projection.changes import Change, Upsert, ViewState

TABLES = (
    """CREATE TABLE IF NOT EXISTS person_search (
        person_id TEXT PRIMARY KEY,
        name_key TEXT NOT NULL,
        kana_key TEXT NOT NULL,
        birth_date TEXT,
        birth_year INTEGER,
        municipality TEXT
    )""",
    # Results come in kana order (五十音順), as a paper index would list them.
    "CREATE INDEX IF NOT EXISTS person_search_kana ON person_search (kana_key, name_key)",
)
_ORDER = ("s.kana_key", "s.name_key", "s.person_id")
# A page's cursor names the last person only; their keys (folded names) stay out of URLs.
_KEY_OF = "SELECT kana_key, name_key, person_id FROM person_search WHERE person_id = ?"
# The caller may be shown the person's identity: its own view holds identity rows now.
_IDENTITY_SHOWN = (
    "EXISTS (SELECT 1 FROM agency_view v WHERE v.agency = ? AND v.person_id = s.person_id "
    "AND v.category = 'identity')"
)


def full_key(family: str | None, given: str | None) -> str:
    """Family and given name (or kana) folded into one key; empty when neither is known."""
    return fold(family or "") + fold(given or "")


def project_search_keys(
    _: ViewState, event: CloudEvent, data: IntegrationEvent
) -> Sequence[Change]:
    """Each registered person's keys, with the municipality that registered them: no search
    or duplicate check ever finds another municipality's person."""
    if not isinstance(data, PersonRegistered):
        return []
    return [
        Upsert(
            "person_search",
            {"person_id": str(data.person_id)},
            {
                "name_key": full_key(data.family_name, data.given_name),
                "kana_key": full_key(data.family_name_kana, data.given_name_kana),
                "birth_date": data.birth_date.isoformat()
                if isinstance(data.birth_date, date)
                else None,
                "birth_year": data.birth_year if isinstance(data.birth_year, int) else None,
                "municipality": event.municipality,
            },
        )
    ]


@dataclass(frozen=True)
class Criteria:
    """What a search matches on; every criterion given must match."""

    name: str | None = None  # folded: a prefix of the name or the kana, family name first
    birth_date: date | None = None
    local_id: str | None = None  # the searching agency's own


@dataclass(frozen=True)
class Candidate:
    """A person about to be registered: folded name and kana keys, and the birth date."""

    name_key: str | None
    kana_key: str | None
    birth_date: date | None


def _born(birth_date: date) -> tuple[str, list[object]]:
    # A person known only by birth year (an estimate from the desk) may be the one born then.
    return (
        "(s.birth_date = ? OR (s.birth_date IS NULL AND s.birth_year = ?))",
        [birth_date.isoformat(), birth_date.year],
    )


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _page(tx: Transaction, where: list[str], params: list[object], asked: Page) -> list[Row]:
    after, values = asked.keyset(_ORDER, by_id=_KEY_OF)
    return tx.fetchall(
        f"SELECT s.person_id FROM person_search s "
        f"WHERE {' AND '.join(where)} AND {after} ORDER BY {', '.join(_ORDER)} LIMIT ?",
        (*params, *values, asked.fetch),
    )


def search(
    tx: Transaction, agency: str, municipality: str, criteria: Criteria, asked: Page
) -> list[Row]:
    """Persons of ``municipality`` matching ``criteria`` whose identity ``agency``'s view
    shows, in kana order."""
    where, params = ["s.municipality = ?", _IDENTITY_SHOWN], list[object]([municipality, agency])
    if criteria.name:
        where.append("(s.kana_key LIKE ? ESCAPE '\\' OR s.name_key LIKE ? ESCAPE '\\')")
        params += [_like_prefix(criteria.name)] * 2
    if criteria.birth_date is not None:
        clause, values = _born(criteria.birth_date)
        where.append(clause)
        params += values
    if criteria.local_id is not None:
        where.append(
            "s.person_id IN (SELECT person_id FROM local_id WHERE agency = ? AND local_id = ?)"
        )
        params += [agency, criteria.local_id]
    return _page(tx, where, params, asked)


def candidates(tx: Transaction, municipality: str, candidate: Candidate, asked: Page) -> list[Row]:
    """Persons registered in ``municipality`` with the same folded kana or name (and birth
    date, when given): intake's duplicate rule, asked before the person is registered."""
    names: list[str] = []
    params: list[object] = []
    for column, key in (("s.kana_key", candidate.kana_key), ("s.name_key", candidate.name_key)):
        if key:
            names.append(f"{column} = ?")
            params.append(key)
    where = ["s.municipality = ?", f"({' OR '.join(names)})"]
    params.insert(0, municipality)
    if candidate.birth_date is not None:
        clause, values = _born(candidate.birth_date)
        where.append(clause)
        params += values
    return _page(tx, where, params, asked)


def result_key(row: Row) -> Key:
    return (row["person_id"],)
