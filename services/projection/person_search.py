"""Finding a person by name, kana, birth date or an agency's own local id, through blind indexes.

Names and kana are folded (``contracts.names``), so that ﾀｶﾊｼ, たかはし and タカハシ, or 髙橋 and
高橋, find the same person. No folded value is kept: the index holds tokens, keyed hashes of them
(``services.platform.blind_index``), so its tables match a search without holding what it
searches for. A PersonRegistered's values are sealed under the person's data key: the projector
opens them for as long as it takes to make their tokens, and keeps none of them. A person whose
key is missing or destroyed gets no tokens (they stay known to be of their municipality) and
their event fails nothing.

- A name or kana is found by its start, family name first: one token per prefix of the folded
  full name and of the folded full kana (up to ``MAX_PREFIX`` characters; a longer query is
  checked against the whole key once opened).
- Intake's duplicate rule (candidates) matches the whole folded name or kana, and the birth date
  or, for a person known only by year, the year: a token each.
- A local id is one token of the agency and the id.

Results come in kana order (五十音順), as a paper index lists them and as a caseworker scans a
page of namesakes. Tokens carry no order, so each person keeps their folded kana and name sealed
under their own key (``sort_key``); a search opens those of the persons it matched and orders
them, at most ``MAX_MATCHES`` persons (a search matching more asks for more of the name, which
no caseworker would page through anyway). A page's cursor names the last person shown only; the
next page starts after that person's opened key, so a page neither repeats nor loses anyone.

A search answers with person ids, and what each result shows is the caller's own view of that
person, decided and audited as any read of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from contracts.envelope import CloudEvent
from contracts.errors import Invalid
from contracts.events import IntegrationEvent, PersonErased, PersonLinked, PersonRegistered
from contracts.names import fold
from services.feeds.changes import Change, Delete, Projector, Upsert, ViewState
from services.platform.blind_index import BlindIndex
from services.platform.indexes import local_id_key
from services.platform.keys import Erasure, KeyStore
from services.platform.pagination import Key, Page
from services.platform.sealing import Opener, is_sealed, open_with, seal_with
from services.platform.sql import Row, Transaction
from services.projection.agency_view import decided_view
from services.projection.merges import survivor_of
from services.projection.person_facts import TxReader, reader_of

# Tokens per name or kana at most: names are short, a query longer than this is checked
# against the opened key.
MAX_PREFIX = 24
# Persons a search or a duplicate check orders at most (each one's sort key is opened).
MAX_MATCHES = 1000

TABLES = (
    # Written before the blind index: folded names, birth dates and local ids in clear.
    "DROP TABLE IF EXISTS person_search",
    "DROP TABLE IF EXISTS local_id",
    """CREATE TABLE IF NOT EXISTS person_index (
        person_id TEXT PRIMARY KEY,
        municipality TEXT,
        name_token TEXT,
        kana_token TEXT,
        birth_date_token TEXT,
        birth_year_token TEXT,
        sort_key TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS person_index_name ON person_index (name_token)",
    "CREATE INDEX IF NOT EXISTS person_index_kana ON person_index (kana_token)",
    "CREATE INDEX IF NOT EXISTS person_index_born ON person_index (birth_date_token)",
    """CREATE TABLE IF NOT EXISTS person_prefix (
        token TEXT NOT NULL,
        person_id TEXT NOT NULL,
        PRIMARY KEY (token, person_id)
    )""",
    "CREATE INDEX IF NOT EXISTS person_prefix_person ON person_prefix (person_id)",
    """CREATE TABLE IF NOT EXISTS person_local_id (
        token TEXT PRIMARY KEY,
        person_id TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS person_local_id_person ON person_local_id (person_id)",
)


@dataclass(frozen=True)
class PersonIndex:
    """What the index is made and read with: the key store, to open sealed values (a
    registration's at ingest, sort keys when answering), and the blind index's key."""

    keys: KeyStore
    blind: BlindIndex

    def prefix(self, municipality: str, folded: str) -> str:
        return self.blind.token("name_prefix", municipality, folded[:MAX_PREFIX])

    def born(self, municipality: str, birth_date: date) -> tuple[str, str]:
        return (
            self.blind.token("birth_date", municipality, birth_date.isoformat()),
            self.blind.token("birth_year", municipality, str(birth_date.year)),
        )

    def local_id(self, agency: str, local_id: str) -> str:
        return local_id_key(self.blind, agency, local_id)


def full_key(family: str | None, given: str | None) -> str:
    """Family and given name (or kana) folded into one key; empty when neither is known."""
    return fold(family or "") + fold(given or "")


# --- making the index -------------------------------------------------------------------------


def search_keys(index: PersonIndex) -> Projector:
    """The projector of the index: each registered person's tokens and sealed sort key, each
    agency's local id, and none of them left once the person is erased."""
    return _SearchKeys(index)


class _SearchKeys:
    """``search_keys``' projector. The data keys it opens registrations with are read for a
    whole batch at once (``prepare``): a catch-up registers a person every ninth event, and a
    look-up each was a sixth of its time."""

    def __init__(self, index: PersonIndex) -> None:
        self.index = index
        self._keys: dict[UUID, bytes | Erasure] = {}

    def prepare(self, datas: Sequence[IntegrationEvent]) -> None:
        subjects = {d.person_id for d in datas if isinstance(d, PersonRegistered | PersonLinked)}
        self._keys = self.index.keys.opening_keys(subjects)

    def __call__(
        self, view: ViewState, event: CloudEvent, data: IntegrationEvent
    ) -> Sequence[Change]:
        if isinstance(data, PersonRegistered):
            return _registered(self.index, self._key(data.person_id), event.municipality, data)
        if isinstance(data, PersonLinked):
            return _linked(self.index, self._key(data.person_id), data)
        if isinstance(data, PersonErased):
            return _erased(view, str(data.person_id))
        return []

    def _key(self, subject: UUID) -> bytes | Erasure:
        """The batch's key for ``subject``; one read of its own for an event not prepared."""
        key = self._keys.get(subject)
        return key if key is not None else self.index.keys.opening_keys([subject])[subject]


def _opened(key: bytes | Erasure, values: dict[str, Any]) -> tuple[bytes, dict[str, Any]] | None:
    """The key and ``values`` opened with it (plain ones as they are), held only while the
    tokens are made; None when the key is missing or destroyed."""
    if isinstance(key, Erasure):
        return None
    opened = {name: open_with(key, v) if is_sealed(v) else v for name, v in values.items()}
    # A value that does not open under the key (an erasure notice) is no value to index.
    if any(isinstance(v, dict) for v in opened.values()):
        return None
    return key, opened


def _registered(
    index: PersonIndex, key: bytes | Erasure, municipality: str, data: PersonRegistered
) -> list[Change]:
    """Who registered the person is kept whatever else; tokens only for what opens."""
    person = str(data.person_id)
    row: dict[str, Any] = {"municipality": municipality}
    found = _opened(
        key,
        {
            "family_name": data.family_name,
            "given_name": data.given_name,
            "family_name_kana": data.family_name_kana,
            "given_name_kana": data.given_name_kana,
            "birth_date": data.birth_date,
            "birth_year": data.birth_year,
        },
    )
    if found is None:
        return [Upsert("person_index", {"person_id": person}, row)]
    key, opened = found
    name = full_key(opened["family_name"], opened["given_name"])
    kana = full_key(opened["family_name_kana"], opened["given_name_kana"])
    blind = index.blind
    row |= {
        "name_token": blind.token("name", municipality, name) if name else None,
        "kana_token": blind.token("kana", municipality, kana) if kana else None,
        "birth_date_token": None,
        "birth_year_token": None,
        "sort_key": seal_with(key, data.person_id, [kana, name]),
    }
    if opened["birth_date"] is not None:
        row["birth_date_token"], row["birth_year_token"] = index.born(
            municipality, date.fromisoformat(str(opened["birth_date"]))
        )
    elif opened["birth_year"] is not None:
        row["birth_year_token"] = blind.token("birth_year", municipality, str(opened["birth_year"]))
    prefixes = {
        index.prefix(municipality, each[:n])
        for each in (name, kana)
        for n in range(1, min(len(each), MAX_PREFIX) + 1)
    }
    return [
        Upsert("person_index", {"person_id": person}, row),
        *(Upsert("person_prefix", {"token": t, "person_id": person}, {}) for t in sorted(prefixes)),
    ]


def _linked(index: PersonIndex, key: bytes | Erasure, data: PersonLinked) -> list[Change]:
    found = _opened(key, {"local_id": data.local_id})
    if found is None:
        return []
    token = index.local_id(data.agency, str(found[1]["local_id"]))
    return [Upsert("person_local_id", {"token": token}, {"person_id": str(data.person_id)})]


def _erased(view: ViewState, person: str) -> list[Change]:
    """Every token of the person dropped; that they were registered, and where, stays."""
    rows = reader_of(view)
    changes: list[Change] = [
        Upsert(
            "person_index",
            {"person_id": person},
            dict.fromkeys(
                ("name_token", "kana_token", "birth_date_token", "birth_year_token", "sort_key")
            ),
        )
    ]
    for table, key in (("person_prefix", ("token", "person_id")), ("person_local_id", ("token",))):
        for row in rows.rows(table, {"person_id": person}):
            changes.append(Delete(table, {column: row[column] for column in key}))
    return changes


# --- searching --------------------------------------------------------------------------------


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


def _born(index: PersonIndex, municipality: str, birth_date: date) -> tuple[str, list[object]]:
    # A person known only by birth year (an estimate from the desk) may be the one born then.
    return (
        "(s.birth_date_token = ? OR (s.birth_date_token IS NULL AND s.birth_year_token = ?))",
        list(index.born(municipality, birth_date)),
    )


def search(
    tx: Transaction,
    index: PersonIndex,
    agency: str,
    municipality: str,
    criteria: Criteria,
    asked: Page,
    at: datetime,
) -> list[Row]:
    """Persons of ``municipality`` matching ``criteria`` whose identity ``agency``'s view
    shows at ``at``, in kana order."""
    where, params = ["s.municipality = ?"], list[object]([municipality])
    if criteria.name:
        where.append("s.person_id IN (SELECT person_id FROM person_prefix WHERE token = ?)")
        params.append(index.prefix(municipality, criteria.name))
    if criteria.birth_date is not None:
        clause, values = _born(index, municipality, criteria.birth_date)
        where.append(clause)
        params += values
    if criteria.local_id is not None:
        where.append("s.person_id IN (SELECT person_id FROM person_local_id WHERE token = ?)")
        params.append(index.local_id(agency, criteria.local_id))
    wanted = criteria.name

    def starts(sort_key: list[str]) -> bool:
        return wanted is None or any(key.startswith(wanted) for key in sort_key)

    state = TxReader(tx)

    def shown(person: str) -> bool:
        # A duplicate found by its own name is seen as the survivor is.
        view = decided_view(state, agency, survivor_of(state, person), at)
        return any(row["category"] == "identity" for row in view)

    field = "q" if criteria.name else "birth_date" if criteria.birth_date else "local_id"
    return _ordered(tx, index, where, params, asked, field, starts, shown)


def candidates(
    tx: Transaction, index: PersonIndex, municipality: str, candidate: Candidate, asked: Page
) -> list[Row]:
    """Persons registered in ``municipality`` with the same folded kana or name (and birth
    date, when given): intake's duplicate rule, asked before the person is registered."""
    names: list[str] = []
    params: list[object] = [municipality]
    for column, kind, key in (
        ("s.kana_token", "kana", candidate.kana_key),
        ("s.name_token", "name", candidate.name_key),
    ):
        if key:
            names.append(f"{column} = ?")
            params.append(index.blind.token(kind, municipality, key))
    where = ["s.municipality = ?", f"({' OR '.join(names)})"]
    if candidate.birth_date is not None:
        clause, values = _born(index, municipality, candidate.birth_date)
        where.append(clause)
        params += values
    return _ordered(tx, index, where, params, asked, "family_name_kana", lambda _: True, None)


def _ordered(
    tx: Transaction,
    index: PersonIndex,
    where: list[str],
    params: list[object],
    asked: Page,
    field: str,
    keep: Callable[[list[str]], bool],
    shown: Callable[[str], bool] | None,
) -> list[Row]:
    """A page of the persons matching ``where``, in kana order: their sort keys opened and
    ordered here, the page after the cursor's person read as a keyset would. With ``shown``,
    only the persons it holds shown, decided in page order until the page is full."""
    rows = tx.fetchall(
        f"SELECT s.person_id, s.sort_key FROM person_index s "
        f"WHERE s.sort_key IS NOT NULL AND {' AND '.join(where)} LIMIT ?",
        (*params, MAX_MATCHES + 1),
    )
    if len(rows) > MAX_MATCHES:
        raise Invalid(
            field,
            "too_many_matches",
            f"more than {MAX_MATCHES} persons match: give more of the name, or the birth date",
        )
    after = asked.after_key(1)
    if after is not None:
        [person] = after
        stored = tx.fetchone("SELECT sort_key FROM person_index WHERE person_id = ?", (person,))
        rows.append({"person_id": person, "sort_key": stored and stored["sort_key"]})
    keys = Opener(index.keys).open([row["sort_key"] for row in rows])
    ordered = {
        row["person_id"]: (*key, row["person_id"])
        for row, key in zip(rows, keys, strict=True)
        if isinstance(key, list)
    }
    start: tuple[str, ...] | None = None
    if after is not None:
        start = ordered.pop(after[0], None)
        if start is None:
            raise Invalid(
                "cursor",
                "cursor",
                "the person this page starts after is no longer in the index (erased): "
                "start again without a cursor",
            )
    following = sorted(
        key for key in ordered.values() if keep(list(key[:-1])) and (start is None or key > start)
    )
    persons: Iterable[str] = (key[-1] for key in following)
    if shown is not None:
        persons = filter(shown, persons)
    return [{"person_id": person} for person in itertools.islice(persons, asked.fetch)]


def by_local_id(tx: Transaction, index: PersonIndex, agency: str, local_id: str) -> str | None:
    """The person ``agency`` filed under ``local_id``."""
    row = tx.fetchone(
        "SELECT person_id FROM person_local_id WHERE token = ?", (index.local_id(agency, local_id),)
    )
    return str(row["person_id"]) if row is not None else None


def result_key(row: Row) -> Key:
    return (row["person_id"],)
