"""Rotating the key-encryption key (#20): every data key and the deployment's keys rewrapped in
one transaction, nothing sealed with them changed, the old key opening nothing afterwards."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from services.cli import main
from services.platform.keys import KeyStore, Rotated, WrongKeyEncryptionKey
from services.platform.sealing import Opener, Sealer
from services.platform.settings import Settings
from services.platform.sql import SqliteDatabase
from services.wiring import key_store
from tests.unit.test_sealing import AT

pytestmark = pytest.mark.unit

OLD, NEW = os.urandom(32), os.urandom(32)


def store(path: Path, kek: bytes) -> KeyStore:
    return KeyStore(SqliteDatabase(path), kek)


def wrapped(path: Path) -> dict[str, str | None]:
    with sqlite3.connect(path) as raw:
        rows = raw.execute("SELECT subject, wrapped FROM data_key").fetchall()
        rows += raw.execute("SELECT name, wrapped FROM deployment_key").fetchall()
        rows += raw.execute("SELECT 'check', wrapped FROM key_check").fetchall()
    return dict(rows)


def test_a_rotation_rewraps_every_key_and_nothing_sealed_changes(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite3"
    keys = store(path, OLD)
    kept, erased = uuid4(), uuid4()
    tokens = [Sealer(keys).seal(kept, "志村 けん", AT), Sealer(keys).seal(erased, "相談", AT)]
    keys.erase([erased], "subject_request", AT)
    blind = keys.blind_index_key
    before = wrapped(path)

    assert keys.rotate(NEW) == Rotated(data_keys=1, deployment_keys=1, unopened=0)

    after = wrapped(path)
    assert after[str(erased)] is None  # a tombstone has nothing to rewrap
    changed = [name for name, value in before.items() if value is not None]
    assert changed and all(after[name] != before[name] for name in changed)
    with pytest.raises(WrongKeyEncryptionKey):
        store(path, OLD)
    rotated = store(path, NEW)
    [shown, gone] = Opener(rotated).open(tokens)
    assert shown == "志村 けん"
    assert gone["erased"] is True and gone["reason"] == "subject_request"
    # The same tokens: every blind index made before the rotation still finds its values.
    assert rotated.blind_index_key == blind


def test_a_store_keeps_the_blind_index_key_it_derived_before_the_key_was_kept_wrapped(
    tmp_path: Path,
) -> None:
    """Stores made before the blind indexes' key was kept in them had it derived from the
    key-encryption key: they keep that one, so their tokens still match."""
    derived = hmac.new(OLD, b"tsunagu blind index v1", hashlib.sha256).digest()
    path = tmp_path / "keys.sqlite3"
    store(path, OLD).close()
    with sqlite3.connect(path) as raw:
        raw.execute("DELETE FROM deployment_key")  # as a store from before this change
    assert store(path, OLD).blind_index_key == derived


def test_a_data_key_the_old_key_does_not_open_is_counted_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    path, other = tmp_path / "keys.sqlite3", tmp_path / "other.sqlite3"
    keys, subject = store(path, OLD), uuid4()
    Sealer(keys).seal(subject, "x", AT)
    Sealer(store(other, os.urandom(32))).seal(subject, "y", AT)
    foreign = wrapped(other)[str(subject)]
    with sqlite3.connect(path) as raw:  # restored from the wrong backup, say
        raw.execute("UPDATE data_key SET wrapped = ? WHERE subject = ?", (foreign, str(subject)))
    assert keys.rotate(NEW).unopened == 1
    assert wrapped(path)[str(subject)] == foreign


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "TSUNAGU_KEY_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TSUNAGU_VAR_DIR", str(tmp_path / "var"))
    yield Settings(var_dir=tmp_path / "var")


def test_the_command_rotates_to_a_key_it_makes_readable_by_its_owner_only(
    embedded: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = key_store(embedded)
    subject = uuid4()
    token = Sealer(keys).seal(subject, "座間 花子", AT)
    keys.close()
    new_file = tmp_path / "secrets" / "kek-2027.key"

    assert main(["keys", "rotate", "--new-key-file", str(new_file)]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed["data_keys"] == 1 and printed["key_encryption_key_file"] == str(new_file)
    assert new_file.stat().st_mode & 0o777 == 0o600
    with pytest.raises(WrongKeyEncryptionKey):
        key_store(embedded)
    rotated = key_store(Settings(var_dir=embedded.var_dir, key_encryption_key_file=new_file))
    assert Opener(rotated).open(token) == "座間 花子"


def test_the_command_refuses_a_file_that_holds_no_key_and_changes_nothing(
    embedded: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = key_store(embedded)
    token = Sealer(keys).seal(uuid4(), "名前", AT)
    keys.close()
    for content in (b"not base64 at all!", base64.b64encode(os.urandom(16))):
        bad = tmp_path / "bad.key"
        bad.write_bytes(content)
        assert main(["keys", "rotate", "--new-key-file", str(bad)]) == 2
        assert "not a 32-byte key" in capsys.readouterr().err
    assert Opener(key_store(embedded)).open(token) == "名前"


def test_a_store_opened_before_a_rotation_rotates_makes_and_opens_no_key_after_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.sqlite3"
    running, rotating = store(path, OLD), store(path, OLD)
    token = Sealer(running).seal(uuid4(), "志村 けん", AT)

    rotating.rotate(NEW)

    with pytest.raises(WrongKeyEncryptionKey, match="rotated since"):
        running.rotate(os.urandom(32))
    with pytest.raises(WrongKeyEncryptionKey, match="rotated since"):
        Sealer(running).seal(uuid4(), "新しい相談", AT)
    with pytest.raises(WrongKeyEncryptionKey, match="rotated since"):
        Opener(running).open(token)
    running.close()
    assert Opener(store(path, NEW)).open(token) == "志村 けん"
