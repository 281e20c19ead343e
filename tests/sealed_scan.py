"""Where a person's data can still be read: in clear, or sealed under a key that still opens.

Crypto-shredding's tests (issue #20) take what each store keeps as bytes, labelled with where
it was found (a table of a PostgreSQL dump, a Kafka record, a file or an SQLite table of the
embedded var dir), and ask two questions of it: is one of the person's values there in clear,
in any spelling a store keeps text in; and does a sealed token in it open, with the key store,
to one of them.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from contracts.names import fold
from services.platform.keys import MISSING, KeyStore
from services.platform.sealing import erased_value, open_with, subject_of

# What was found, and where: ``(place, bytes)``.
Place = tuple[str, bytes]

SEALED = re.compile(rb"sealed:v1:[A-Za-z0-9_-]+")
# A bytea as pg_dump writes it (its backslash is doubled in COPY's text format): \x and hex.
BYTEA = re.compile(rb"\\x((?:[0-9a-f]{2}){4,})")
COPY = re.compile(rb"^COPY ([^ ]+) ")
SQLITE = b"SQLite format 3\x00"


def spellings(value: str) -> set[bytes]:
    """How a store may hold ``value``: as typed, without spaces or folded as names are for
    search (``contracts.names.fold``); each in UTF-8 and in JSON's ``\\u`` escapes, lower case
    (haystacks are lowered too, so that escapes in capitals match)."""
    forms = {f for f in (value, "".join(value.split()), fold(value)) if f}
    escaped = {json.dumps(f)[1:-1] for f in forms}
    return {f.lower().encode() for f in forms | escaped}


def readable(blob: bytes) -> list[bytes]:
    """``blob`` with COPY's doubled backslashes undone, and each bytea in it decoded."""
    text = blob.replace(b"\\\\", b"\\")
    return [text, *(bytes.fromhex(m.group(1).decode()) for m in BYTEA.finditer(text))]


def in_clear(places: Iterable[Place], values: Mapping[str, str]) -> dict[str, list[str]]:
    """Each of ``values`` (by name) found in clear, with the places it was found in."""
    wanted, found = _wanted(values), dict[str, list[str]]()
    for where, blob in places:
        for name in _names_in(blob, wanted):
            found.setdefault(name, []).append(where)
    return found


def sealed_tokens(places: Iterable[Place]) -> dict[str, set[str]]:
    """Every sealed token in ``places``, with where each was found."""
    found: dict[str, set[str]] = {}
    for where, blob in places:
        for text in readable(blob):
            for token in SEALED.findall(text):
                found.setdefault(token.decode(), set()).add(where)
    return found


def opened(tokens: Iterable[str], keys: KeyStore) -> dict[str, Any]:
    """What each token opens to with ``keys``: its value, or the erasure notice for it."""
    subjects = {t: _subject(t) for t in tokens}
    opening = keys.opening_keys({s for s in subjects.values() if s is not None})
    return {
        t: erased_value(MISSING) if s is None else open_with(opening[s], t)
        for t, s in subjects.items()
    }


def erased(value: Any) -> str | None:
    """The reason of an erasure notice (``sealing.erased_value``); None for any other value."""
    if isinstance(value, dict) and value.get("erased") is True:
        return str(value["reason"])
    return None


def decrypting_to(
    places: Iterable[Place], keys: KeyStore, values: Mapping[str, str]
) -> dict[str, list[str]]:
    """Each of ``values`` (by name) a sealed token in ``places`` opens to, with the places of
    those tokens."""
    found = dict[str, list[str]]()
    for name, _, where in _opening_to(places, keys, values):
        found.setdefault(name, []).extend(where)
    return found


def tokens_opening_to(
    places: Iterable[Place], keys: KeyStore, values: Mapping[str, str]
) -> set[str]:
    """The sealed tokens in ``places`` that open to one of ``values``."""
    return {token for _, token, _ in _opening_to(places, keys, values)}


def _opening_to(
    places: Iterable[Place], keys: KeyStore, values: Mapping[str, str]
) -> Iterator[tuple[str, str, list[str]]]:
    """(name, token, where the token is) for each of ``values`` a token opens to."""
    wanted, tokens = _wanted(values), sealed_tokens(places)
    for token, value in opened(tokens, keys).items():
        for name in _names_in(json.dumps(value, ensure_ascii=False).encode(), wanted):
            yield name, token, sorted(tokens[token])


def _subject(token: str) -> UUID | None:
    # A token cut short (a raw file's page ends in it) names no subject: nothing opens it.
    try:
        return subject_of(token)
    except ValueError:
        return None


def _wanted(values: Mapping[str, str]) -> dict[str, set[bytes]]:
    return {name: spellings(value) for name, value in values.items()}


def _names_in(blob: bytes, wanted: Mapping[str, set[bytes]]) -> list[str]:
    texts = [text.lower() for text in readable(blob)]
    return [name for name, forms in wanted.items() if any(f in t for f in forms for t in texts)]


def pg_dump_path() -> str:
    """pg_dump: on the PATH, else Debian's newest (deploy/local/postgres.sh looks alike)."""
    found = shutil.which("pg_dump")
    if found:
        return found
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_dump"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not debian:
        raise FileNotFoundError("pg_dump not found: install PostgreSQL's client (deploy/local)")
    return str(debian[-1])


def postgres_places(database_url: str) -> list[Place]:
    """The whole database as pg_dump writes it, every schema: each table's rows as one place
    (``schema.table``), and the definitions as ``definitions``."""
    dump = subprocess.run(
        [pg_dump_path(), "--no-owner", "--no-privileges", database_url],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    places: dict[str, list[bytes]] = {}
    table = "definitions"
    for line in dump.splitlines():
        if table == "definitions" and (copy := COPY.match(line)):
            table = copy.group(1).decode()
        elif line == b"\\.":
            table = "definitions"
        else:
            places.setdefault(table, []).append(line)
    return [(where, b"\n".join(lines)) for where, lines in places.items()]


class KafkaRecord(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def kafka_places(records: Iterable[KafkaRecord]) -> Iterator[Place]:
    """Each record's key, value and headers as they are on the broker."""
    for r in records:
        at = f"{r.topic}[{r.partition}]@{r.offset}"
        yield f"{at} key", r.key or b""
        yield f"{at} value", r.value or b""
        for name, value in r.headers:
            yield f"{at} header {name}", name.encode() + b"=" + (value or b"")


def file_places(directory: Path) -> list[Place]:
    """Every file under ``directory`` as its bytes (so WAL files and freed pages too), and each
    SQLite database's tables row by row (``file:table``: a value spread over overflow pages
    is whole only there)."""
    places: list[Place] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        where = str(path.relative_to(directory))
        raw = path.read_bytes()
        places.append((where, raw))
        if raw.startswith(SQLITE):
            places += [(f"{where}:{t}", rows) for t, rows in _sqlite_tables(path)]
    return places


def _sqlite_tables(path: Path) -> Iterator[tuple[str, bytes]]:
    # Read-only: closing this connection must not checkpoint, nor remove, the file's WAL.
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            cells = [
                cell if isinstance(cell, bytes) else str(cell).encode()
                for row in connection.execute(f'SELECT * FROM "{table}"')
                for cell in row
            ]
            yield table, b"\n".join(cells)
