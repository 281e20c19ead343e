"""The scanner the crypto-shredding tests look through stores with (tests/sealed_scan.py):
it must find a value however a store spells it, and every sealed token wherever it lies."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from services.platform.keys import KeyStore
from services.platform.sealing import seal_with
from services.platform.sql import SqliteDatabase
from tests.sealed_scan import (
    decrypting_to,
    erased,
    file_places,
    in_clear,
    opened,
    postgres_places,
    sealed_tokens,
    tokens_opening_to,
)

pytestmark = pytest.mark.unit

AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
VALUES = {"family_name": "鴫原", "kana": "シギハラ", "phone": "080-7316-2954"}


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyStore]:
    store = KeyStore(SqliteDatabase(tmp_path / "keys.sqlite3"), os.urandom(32))
    yield store
    store.close()


def copy_line(*cells: str) -> bytes:
    """A row as pg_dump's COPY writes it: tab-separated, each backslash doubled."""
    return "\t".join(cells).replace("\\", "\\\\").encode()


def test_a_value_is_found_however_a_store_spells_it() -> None:
    # JSON's escapes, in capitals, inside a bytea; a kana folded to hiragana; digits as typed.
    escaped = json.dumps({"family_name": "鴫原"}).upper()
    bytea = "\\x" + escaped.encode().hex()
    places = [
        ("intake.stored_events", copy_line("1", bytea)),
        ("projection.person_search", copy_line("p1", "しぎはら")),
        ("kafka value", b'{"phone": "080-7316-2954"}'),
        ("elsewhere", "鴫 原 ではない".encode()),
    ]
    assert in_clear(places, VALUES) == {
        "family_name": ["intake.stored_events"],
        "kana": ["projection.person_search"],
        "phone": ["kafka value"],
    }
    assert in_clear([("elsewhere", "鴫 と 原".encode())], VALUES) == {}


def test_sealed_tokens_are_found_in_bytea_and_text_and_open_to_what_was_sealed(
    keys: KeyStore,
) -> None:
    person, other = uuid4(), uuid4()
    key = keys.sealing_key(person, AT)
    assert isinstance(key, bytes)
    name, phone = seal_with(key, person, "鴫原"), seal_with(key, person, "080-7316-2954")
    other_key = keys.sealing_key(other, AT)
    assert isinstance(other_key, bytes)
    stranger = seal_with(other_key, other, "後藤")
    state = json.dumps({"family_name": name, "phone": phone}).encode()
    places = [
        ("intake.stored_events", copy_line("1", "\\x" + state.hex())),
        ("kafka value", json.dumps({"data": {"family_name": stranger}}).encode()),
    ]
    assert sealed_tokens(places) == {
        name: {"intake.stored_events"},
        phone: {"intake.stored_events"},
        stranger: {"kafka value"},
    }
    assert in_clear(places, VALUES) == {}
    assert decrypting_to(places, keys, VALUES) == {
        "family_name": ["intake.stored_events"],
        "phone": ["intake.stored_events"],
    }
    assert tokens_opening_to(places, keys, VALUES) == {name, phone}

    keys.erase([person], "subject_request", AT)
    assert decrypting_to(places, keys, VALUES) == {}
    reasons = {token: erased(value) for token, value in opened(sealed_tokens(places), keys).items()}
    assert reasons == {name: "subject_request", phone: "subject_request", stranger: None}


def test_a_token_cut_short_opens_to_nothing(keys: KeyStore) -> None:
    person = uuid4()
    key = keys.sealing_key(person, AT)
    assert isinstance(key, bytes)
    token = seal_with(key, person, "鴫原")
    cut = [token[:13], token[:-5]]
    assert {erased(v) for v in opened(cut, keys).values()} == {"key_missing"}


def test_files_are_read_raw_and_sqlite_tables_row_by_row(tmp_path: Path) -> None:
    # Longer than a page: in the raw file the value is split over overflow pages.
    long_note = "鴫原" + "あ" * 3000 + "080-7316-2954"
    with sqlite3.connect(tmp_path / "feed.sqlite3") as connection:
        connection.execute("CREATE TABLE note (body TEXT)")
        connection.execute("INSERT INTO note VALUES (?)", (long_note,))
    connection.close()
    (tmp_path / "dead-letters.jsonl").write_text('{"kana": "シギハラ"}\n', encoding="utf-8")
    found = in_clear(file_places(tmp_path), VALUES)
    assert found["family_name"] == ["feed.sqlite3", "feed.sqlite3:note"]
    assert "feed.sqlite3:note" in found["phone"]
    assert found["kana"] == ["dead-letters.jsonl"]


def test_a_postgres_dump_is_cut_into_its_tables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dump = tmp_path / "pg_dump"
    dump.write_text(
        "#!/bin/sh\ncat <<'EOF'\nCREATE TABLE projection.person_search (name_key text);\n"
        "COPY projection.person_search (name_key) FROM stdin;\nしぎはら\n\\.\n"
        "COPY keys.data_key (subject) FROM stdin;\nk1\n\\.\nEOF\n",
        encoding="utf-8",
    )
    dump.chmod(0o700)
    monkeypatch.setenv("PATH", str(tmp_path), prepend=os.pathsep)
    places = dict(postgres_places("postgresql://nowhere/none"))
    assert places["projection.person_search"] == "しぎはら".encode()
    assert places["keys.data_key"] == b"k1"
    assert b"CREATE TABLE" in places["definitions"]
