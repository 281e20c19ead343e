"""Search, duplicate candidates and local ids over HTTP in embedded mode, while no file of the
var dir (SQLite databases, their -wal files, the journal) holds the person's folded name or
kana, birth date or local id in clear: the lookups are blind indexes (issue #20)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.wiring import embedded_app
from tests.e2e.answers import ok
from tests.sealed_scan import file_places, in_clear

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
PERSON = {
    "family_name": "髙嶋",
    "given_name": "瑠璃子",
    "family_name_kana": "タカシマ",
    "given_name_kana": "ルリコ",
    "birth_date": "1953-07-19",
    "sex": "female",
}
LOCAL_ID = "ZJ-58213"
SECRETS = {
    "name": "髙嶋瑠璃子",
    "kana": "タカシマルリコ",
    "birth date": "1953-07-19",
    "local id": LOCAL_ID,
}


def found(client: TestClient, auth: Auth, query: str) -> list[str]:
    rows = ok(client.get(f"/views/persons/search?{query}", headers=auth()))
    return [row["person_id"] for row in rows]


def tokens_of(settings: Settings, person: str) -> int:
    path = settings.var_dir / "projection-feed.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as views:
        [(count,)] = views.execute(
            "SELECT (SELECT COUNT(*) FROM person_prefix WHERE person_id = ?) "
            "+ (SELECT COUNT(*) FROM person_local_id WHERE person_id = ?)",
            (person, person),
        ).fetchall()
    return int(count)


def test_a_person_is_found_by_name_birth_date_and_local_id_with_none_of_them_in_clear(
    embedded_settings: Settings, auth: Auth
) -> None:
    client = TestClient(embedded_app(embedded_settings))
    person = ok(client.post("/intake/persons", json=PERSON, headers=auth()), 201)["id"]
    link = {"local_id": LOCAL_ID}
    ok(client.post(f"/intake/persons/{person}/links", json=link, headers=auth()))

    for query in ("q=ﾀｶｼﾏ ﾙﾘｺ", "q=たかしま", "q=高嶋瑠璃", "birth_date=1953-07-19"):
        assert found(client, auth, query) == [person], query
    assert found(client, auth, f"local_id={LOCAL_ID}") == [person]
    candidates = "family_name_kana=たかしま&given_name_kana=るりこ&birth_date=1953-07-19"
    rows = ok(client.get(f"/views/persons/candidates?{candidates}", headers=auth()))
    assert [row["person_id"] for row in rows] == [person]
    by_views = f"/views/persons/by-local-id?local_id={LOCAL_ID}"
    assert ok(client.get(by_views, headers=auth()))["person_id"] == person
    by_intake = f"/intake/persons/by-local-id?local_id={LOCAL_ID}"
    assert ok(client.get(by_intake, headers=auth()))["person_id"] == person
    again = ok(client.post("/intake/persons", json=PERSON, headers=auth()), 201)["id"]
    duplicates = ok(client.get(f"/intake/persons/{again}/duplicates", headers=auth()))
    assert duplicates["candidates"] == [person]

    assert in_clear(file_places(embedded_settings.var_dir), SECRETS) == {}

    # Erased: the person's tokens go too, and no lookup finds them any more.
    assert tokens_of(embedded_settings, person) > 0
    erasure = {"reason": "subject_request"}
    ok(client.post(f"/intake/persons/{person}/erasure", json=erasure, headers=auth()), 201)
    assert tokens_of(embedded_settings, person) == 0
    assert found(client, auth, "q=たかしま") == [again]
    assert found(client, auth, f"local_id={LOCAL_ID}") == []
    assert client.get(by_views, headers=auth()).status_code == 404
