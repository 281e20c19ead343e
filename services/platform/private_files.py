"""Files Tsunagu keeps under its var dir are its owner's alone: 0600, in directories 0700.

They hold personal data (the SQLite stores, their -wal and -shm, the dead letters) and keys
(the development JWT, session and checkpoint keys). Each is created with that mode before
anything is written to it, whatever the umask, so it is never readable by others, not even for
a moment; one left looser by an earlier version is narrowed when Tsunagu next opens it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
_OTHERS = 0o077


def private_dir(path: Path) -> Path:
    """``path``, a directory only its owner may enter: every missing level made 0700."""
    missing = [level for level in (path, *path.parents) if not level.exists()]
    for level in reversed(missing):
        # Another process may make it at the same moment: it makes it as this one would.
        level.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
    _narrow(path)
    return path


def private_file(path: Path) -> Path:
    """``path``, a file only its owner may read or write: made empty if missing."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    _narrow(path)
    return path


def private_database(path: Path) -> Path:
    """An SQLite file only its owner may read. SQLite gives its -wal and -shm the main file's
    mode; ones left behind (by a crash) with a looser one are narrowed too."""
    for suffix in ("-wal", "-shm"):
        _narrow(path.with_name(path.name + suffix))
    return private_file(path)


def write_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of the private file ``path``, made by ``make`` if there is none yet.

    Written whole under another name, then linked: another process starting at the same moment
    sees either no file or the whole of one, and only one wins."""
    if not path.exists():
        private_dir(path.parent)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(descriptor, "wb") as file:
            file.write(make())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    _narrow(path)
    return path.read_bytes()


def _narrow(path: Path) -> None:
    """Take away what others may do with ``path``, if it is ours (another's is left alone)."""
    with contextlib.suppress(FileNotFoundError):
        status = path.stat()
        if status.st_mode & _OTHERS and status.st_uid == os.geteuid():
            path.chmod(stat.S_IMODE(status.st_mode) & ~_OTHERS)
