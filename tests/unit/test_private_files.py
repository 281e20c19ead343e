"""Files under the var dir are made, and kept, readable by their owner only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.platform.private_files import (
    private_database,
    private_dir,
    private_file,
    write_once,
)
from services.platform.sql import SqliteDatabase

pytestmark = pytest.mark.unit


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """As a shell with ``umask 000`` would start Tsunagu: nothing is left to the umask."""
    before = os.umask(0)
    yield
    os.umask(before)


def test_a_file_and_every_directory_made_for_it_are_the_owner_s(tmp_path: Path) -> None:
    made = private_file(tmp_path / "var" / "deep" / "letters.jsonl")
    assert made.read_bytes() == b""
    assert mode(made) == 0o600
    assert mode(tmp_path / "var") == mode(tmp_path / "var" / "deep") == 0o700


def test_what_an_earlier_version_left_open_is_narrowed(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    old = var / "intake-feed.sqlite3"
    old.write_bytes(b"")
    old.chmod(0o644)
    stale_wal = var / "intake-feed.sqlite3-wal"
    stale_wal.write_bytes(b"")
    stale_wal.chmod(0o664)
    runnable = var / "tool"
    runnable.write_bytes(b"")
    runnable.chmod(0o755)

    private_database(old)
    private_file(runnable)

    assert (mode(var), mode(old), mode(stale_wal)) == (0o700, 0o600, 0o600)
    assert mode(runnable) == 0o700  # others lose their rights; the owner keeps theirs


def test_sqlite_s_wal_and_shm_are_made_with_the_database_s_mode(tmp_path: Path) -> None:
    path = tmp_path / "var" / "views.sqlite3"
    database = SqliteDatabase(path)
    with database.transaction() as tx:
        tx.execute("CREATE TABLE t (x TEXT)")
        tx.execute("INSERT INTO t VALUES ('志村')")
    try:
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == ["views.sqlite3", "views.sqlite3-shm", "views.sqlite3-wal"]
        assert {mode(p) for p in path.parent.iterdir()} == {0o600}
    finally:
        database.close()


def test_a_key_is_written_once_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "dev-key"
    assert write_once(path, lambda: b"first") == b"first"
    assert write_once(path, lambda: b"second") == b"first"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["dev-key"]  # no draft left behind


def test_a_directory_already_there_is_narrowed_not_remade(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    (var / "kept").write_text("x")
    assert private_dir(var) == var
    assert mode(var) == 0o700 and (var / "kept").read_text() == "x"
