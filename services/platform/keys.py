"""Data keys (データ鍵): one per data subject, so that destroying a person's keys erases them.

Crypto-shredding. Every personal field is sealed (``services.platform.sealing``) under the data
key of its subject: a person, or a consultation, referral or meeting that has text of its own
before anyone knows whose it is. A subject is linked to the persons it turns out to be about;
erasing a person destroys the keys of the person and of every subject linked to them, and the
event store, Kafka's topics, the journal and every feed then hold ciphertext nothing opens.

Data keys are kept wrapped (AES-GCM) by one key-encryption key that never enters a database:
given in settings, or made once under the var dir for development. An erased key leaves a
tombstone (when and why, no key), so that what opened to a person's data now says 消去済み,
with its date and reason, instead of nothing. The deployment's own keys (the blind indexes')
are kept wrapped the same way, so that rotating the key-encryption key (``KeyStore.rotate``)
rewraps everything and changes no data key, no token and no sealed value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import queue
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import IntegrityError

from contracts.errors import Conflict
from services.platform.lifecycle import MustRestart
from services.platform.private_files import write_once
from services.platform.settings import Settings
from services.platform.sql import Database, Transaction

KEY_BYTES = 32
NONCE_BYTES = 12
KEK_FILE = "keys/key-encryption.key"
# The key store's schema on PostgreSQL, where an event store on the same database writes the
# keys of the subjects its events create (``GroupCommitRecorder``).
KEY_SCHEMA = "keys"
# Why a person's data may be erased on request: 本人からの消去請求, 保存期間満了 (the retention
# sweeper's).
REQUESTED_ERASURE_REASONS = ("subject_request", "retention")
# Why a person's data was erased. ``key_missing``: this reader has no key and no record of an
# erasure (a replica behind, a key store restored without it): shown as erased all the same,
# a reader's finding, never a request.
ERASURE_REASONS = (*REQUESTED_ERASURE_REASONS, "key_missing")
# Sealing keys kept in memory at most: a command service seals for few subjects at a time.
_CACHED = 10_000
# New keys stored in one transaction at most.
_GROUP = 200

TABLES = (
    """CREATE TABLE IF NOT EXISTS data_key (
        subject TEXT PRIMARY KEY,
        wrapped TEXT,
        created_at TEXT NOT NULL,
        erased_at TEXT,
        reason TEXT
    )""",
    # ``subject``'s data is also about ``about``: a person, or a subject linked to one in turn
    # (a meeting's conclusions are about its cases, each case about its person).
    """CREATE TABLE IF NOT EXISTS subject_link (
        subject TEXT NOT NULL,
        about TEXT NOT NULL,
        PRIMARY KEY (subject, about)
    )""",
    "CREATE INDEX IF NOT EXISTS subject_link_about ON subject_link (about)",
    # A known value wrapped by the key-encryption key the store was made with: a process
    # given another key fails at start, not at its first read.
    "CREATE TABLE IF NOT EXISTS key_check (id INTEGER PRIMARY KEY, wrapped TEXT NOT NULL)",
    # Keys of the deployment rather than of a subject (``DEPLOYMENT_KEYS``), wrapped likewise.
    "CREATE TABLE IF NOT EXISTS deployment_key (name TEXT PRIMARY KEY, wrapped TEXT NOT NULL)",
)


@dataclass(frozen=True)
class Erasure:
    """Why a subject's data can no longer be read: erased on ``at`` for ``reason``."""

    reason: str
    at: datetime | None = None

    def refusal(self) -> Conflict:
        """409 for anything new about an erased subject, saying when and why it was erased."""
        when = f" on {self.at.date().isoformat()}" if self.at else ""
        return Conflict(
            f"this person's data was erased{when} ({self.reason}): nothing new is recorded "
            "about them",
            current={
                "state": "erased",
                "erased_at": self.at.isoformat() if self.at else None,
                "reason": self.reason,
            },
        )


MISSING = Erasure("key_missing")
_CHECK = UUID(int=0)
# Each deployment key by name, with the id its wrapping is bound to (as a subject's is).
DEPLOYMENT_KEYS = {"blind_index": UUID(int=1)}


class WrongKeyEncryptionKey(RuntimeError):
    """The key-encryption key does not open the key store it was given."""


ROTATED = (
    "the key-encryption key was rotated since this process began: it can no longer make or "
    "open data keys; restart it with the new key"
)


class KeyRotated(WrongKeyEncryptionKey, MustRestart):
    """The key store's key-encryption key was rotated since this process opened it."""

    def __init__(self) -> None:
        super().__init__(ROTATED)


# Taken whole by a rotation, shared by every store of new keys: none is stored wrapped under
# a key that a rotation has just replaced.
KEY_CHECK_TURN = "tsunagu key check"


class DataKeyExists(IntegrityError):
    """A key made for a subject a save creates was not stored: the subject had one already
    (another process's, or an erasure's tombstone). Nothing of the save was stored."""


@dataclass(frozen=True)
class NewKey:
    """A data key made for a subject (wrapped), to be stored with the first event sealed
    under it."""

    subject: UUID
    wrapped: str
    created_at: datetime
    # The key store's check as the key-encryption key that wrapped it made it: stored only
    # while the store's check is still that (``KeyStore.rotate``).
    check: str


class NewKeys:
    """The data keys made during one save for the subjects it creates (its aggregates' first
    events): made in memory, stored in the save's own transaction by the event store. A crash
    then loses both the event and its key, or neither; and making a key costs no transaction
    of its own."""

    def __init__(self, store: KeyStore, fresh: Iterable[UUID]) -> None:
        self.store = store
        self.fresh = frozenset(fresh)
        self.made: dict[UUID, tuple[bytes, NewKey]] = {}

    def rows(self) -> list[NewKey]:
        """The keys to store."""
        return [new for _, new in self.made.values()]


# The save being recorded in this context, whose new subjects' keys are stored with its events.
_saving: ContextVar[NewKeys | None] = ContextVar("saving", default=None)


def key_encryption_key(settings: Settings) -> bytes:
    """The key that wraps every data key: ``TSUNAGU_KEY_ENCRYPTION_KEY`` (32 bytes, base64),
    else a development key made once under the var dir, readable by its owner only."""
    if settings.key_encryption_key:
        key = base64.b64decode(settings.key_encryption_key)
    else:
        path = settings.key_encryption_key_file or settings.var_dir / KEK_FILE
        key = base64.b64decode(
            write_once(Path(path), lambda: base64.b64encode(os.urandom(KEY_BYTES)))
        )
    if len(key) != KEY_BYTES:
        raise ValueError(f"the key-encryption key must be {KEY_BYTES} bytes, base64-encoded")
    return key


def _first_blind_index_key(kek: bytes) -> bytes:
    """The blind indexes' key a key store is first given: derived from the key-encryption key
    it was made with (as every store made before the key was kept wrapped had it), then kept
    as it is, whatever key-encryption key later wraps it."""
    return hmac.new(kek, b"tsunagu blind index v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class Rotated:
    """What a rotation of the key-encryption key rewrapped: data keys, and the deployment's;
    ``unopened``: data keys the old key did not open either (left as they were, still shown
    as ``key_missing``)."""

    data_keys: int
    deployment_keys: int
    unopened: int


class KeyStore:
    """The data keys of one deployment, in the database every service reaches (its ``keys``
    schema on PostgreSQL, ``keys.sqlite3`` embedded)."""

    def __init__(self, database: Database, kek: bytes) -> None:
        self.database = database
        self._wrapping = AESGCM(kek)
        self._sealing: dict[UUID, bytes] = {}
        self._linked: set[tuple[UUID, UUID]] = set()
        self._lock = threading.Lock()
        with database.transaction() as tx:
            for statement in TABLES:
                tx.execute(statement)
            tx.execute(
                "INSERT INTO key_check (id, wrapped) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                (self._wrap(_CHECK, _CHECK.bytes),),
            )
            check = tx.fetchone("SELECT wrapped FROM key_check WHERE id = 1")
        assert check is not None
        # Unique to this store (a random nonce): whoever reads the same value reaches it.
        self.check: str = check["wrapped"]
        self._maker = _KeyMaker(database, self.check)
        if self._unwrap(_CHECK, {"erased_at": None, "wrapped": self.check}) is MISSING:
            raise WrongKeyEncryptionKey(
                "the key-encryption key given does not open this key store: every process "
                "of a deployment needs the one it was made with (TSUNAGU_KEY_ENCRYPTION_KEY "
                "or TSUNAGU_KEY_ENCRYPTION_KEY_FILE)"
            )
        # Only once the key is known to be this store's: a first key wrapped by a wrong one
        # would stand for ever.
        with database.transaction() as tx:
            tx.execute(
                "INSERT INTO deployment_key (name, wrapped) VALUES (?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (
                    "blind_index",
                    self._wrap(DEPLOYMENT_KEYS["blind_index"], _first_blind_index_key(kek)),
                ),
            )
            stored = tx.fetchone("SELECT wrapped FROM deployment_key WHERE name = 'blind_index'")
        assert stored is not None
        blind = self._unwrap(DEPLOYMENT_KEYS["blind_index"], {"erased_at": None, **stored})
        if not isinstance(blind, bytes):
            raise WrongKeyEncryptionKey("the blind indexes' key is not wrapped by this store's key")
        # The key of the blind indexes (keyed hashes of folded names and numbers): without it,
        # a stolen index cannot be matched to a list of names.
        self.blind_index_key = blind

    def sealing_key(self, subject: UUID, at: datetime) -> bytes | Erasure:
        """The data key to seal ``subject``'s data with, made on first use; the erasure if
        the subject was erased (nothing new is sealed for it). A key made on first use is
        stored at once, unless the subject is one the save being recorded creates
        (``stored_with_events``)."""
        with self._lock:
            cached = self._sealing.get(subject)
        if cached is not None:
            return cached
        saving = _saving.get()
        if saving is not None and saving.store is self and subject in saving.fresh:
            made = saving.made.get(subject)
            if made is None:
                key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
                made = saving.made[subject] = (
                    key,
                    NewKey(subject, self._wrap(subject, key), at, self.check),
                )
            return made[0]
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        asked = _Asked(subject, self._wrap(subject, key), at)
        self._maker.put(asked)
        asked.done.wait()
        if asked.error is not None:
            raise asked.error
        assert asked.row is not None
        found = self._unwrap(subject, asked.row)
        if isinstance(found, bytes):
            self._remember(subject, found)
        return found

    @contextmanager
    def stored_with_events(self, fresh: Iterable[UUID]) -> Iterator[NewKeys]:
        """Within it, this context's sealing makes the key of a ``fresh`` subject (one its
        save creates) in memory only, into the ``NewKeys`` yielded: the caller stores them in
        the transaction of the events sealed under them. Used once they are stored (the block
        ended without an error); forgotten otherwise."""
        saving = NewKeys(self, fresh)
        token = _saving.set(saving)
        try:
            yield saving
        finally:
            _saving.reset(token)
        for subject, (key, _) in saving.made.items():
            self._remember(subject, key)

    def opening_keys(self, subjects: Collection[UUID]) -> dict[UUID, bytes | Erasure]:
        """Each subject's data key, or why there is none. Read afresh each time: an erasure
        in any process counts from the next read on."""
        if not subjects:
            return {}
        wanted = sorted({str(s) for s in subjects})
        with self.database.reading() as tx:
            # However many: a retention sweep asks after every person erased in a municipality.
            rows = tx.select_in("data_key", "subject", "text", wanted)
            found = {
                subject: self._unwrap(subject, row)
                for row in rows
                for subject in [UUID(row["subject"])]
            }
            if any(row["wrapped"] is not None for row in rows) and MISSING in found.values():
                # A key stored but not opened by this process's key-encryption key: shown as
                # missing if the store's key is still this one, an error if it was rotated.
                _refuse_if_rotated(tx, self.check)
        return {subject: found.get(subject, MISSING) for subject in subjects}

    def link(self, subject: UUID, about: UUID) -> None:
        """``subject``'s data is (also) about ``about`` (a person, or a subject linked to
        one): erasing that person erases it. Nothing new is tied to an erased one: 409."""
        if subject == about or (subject, about) in self._linked:
            return
        with self.database.transaction() as tx:
            # An erasure in progress reads the links about what it erases in the same turn:
            # this link is either seen by it or sees the erasure (``erase``).
            tx.take_turn(_subject_turn(about))
            erased = tx.fetchone(
                "SELECT * FROM data_key WHERE subject = ? AND erased_at IS NOT NULL",
                (str(about),),
            )
            if erased is not None:
                found = self._unwrap(about, erased)
                assert isinstance(found, Erasure)
                raise found.refusal()
            tx.execute(
                "INSERT INTO subject_link (subject, about) VALUES (?, ?) "
                "ON CONFLICT (subject, about) DO NOTHING",
                (str(subject), str(about)),
            )
        with self._lock:
            if len(self._linked) >= _CACHED:
                self._linked.clear()
            self._linked.add((subject, about))

    def erase(self, persons: Collection[UUID], reason: str, at: datetime) -> list[UUID]:
        """Destroy the keys of ``persons`` and of every subject linked to them; the subjects
        erased now (one erased before keeps its first date and reason)."""
        if reason not in ERASURE_REASONS:
            raise ValueError(f"unknown erasure reason {reason!r}")
        with self.database.transaction() as tx:
            # One erasure at a time: each then takes its subjects' turns as it finds them, in
            # no fixed order, and two erasures could otherwise wait on each other.
            tx.take_turn("erasure")
            subjects = _linked_to(tx, {str(p) for p in persons})
            erased: list[UUID] = []
            for subject in sorted(subjects):
                # A subject erased before it ever had a key still gets its tombstone.
                tx.execute(
                    "INSERT INTO data_key (subject, created_at) VALUES (?, ?) "
                    "ON CONFLICT (subject) DO NOTHING",
                    (subject, at.isoformat()),
                )
                if tx.execute(
                    "UPDATE data_key SET wrapped = NULL, erased_at = ?, reason = ? "
                    "WHERE subject = ? AND erased_at IS NULL",
                    (at.isoformat(), reason, subject),
                ):
                    erased.append(UUID(subject))
        self.database.scrub()
        with self._lock:
            for each in erased:
                self._sealing.pop(each, None)
        return erased

    def unerased(self, subjects: Collection[UUID]) -> list[UUID]:
        """Those of ``subjects`` whose keys were not destroyed."""
        found = self.opening_keys(subjects)
        return [s for s, key in found.items() if not isinstance(key, Erasure) or key is MISSING]

    def erasure(self, subject: UUID) -> Erasure | None:
        """Whether ``subject`` was erased, when and why."""
        found = self.opening_keys([subject])[subject]
        return found if isinstance(found, Erasure) and found is not MISSING else None

    def close(self) -> None:
        self._maker.stop()
        self.database.close()

    def _remember(self, subject: UUID, key: bytes) -> None:
        with self._lock:
            if len(self._sealing) >= _CACHED:
                self._sealing.clear()
            self._sealing[subject] = key

    def rotate(self, new_kek: bytes) -> Rotated:
        """Wrap every data key, the deployment's keys and the check under ``new_kek``, in one
        transaction: a crash leaves the store wholly under one key or the other. The keys
        themselves do not change, so no sealed value, token or backup of the data does.

        Every other process must be stopped first (each wraps the keys it makes under the key
        it started with) and started again with ``new_kek``; one started with the old key
        fails at start. This store is closed afterwards: it knew the old key."""
        if len(new_kek) != KEY_BYTES:
            raise ValueError(f"the key-encryption key must be {KEY_BYTES} bytes")
        new = AESGCM(new_kek)
        with self.database.transaction() as tx:
            tx.take_turn(KEY_CHECK_TURN)  # before the table: as a store of new keys takes them
            tx.lock_for_append("data_key")
            _refuse_if_rotated(tx, self.check)
            rewrapped: list[tuple[str, str, str]] = []
            unopened = 0
            for row in tx.fetchall("SELECT * FROM data_key WHERE wrapped IS NOT NULL"):
                subject = UUID(row["subject"])
                key = self._unwrap(subject, row)
                if isinstance(key, bytes):
                    rewrapped.append(
                        (row["subject"], _wrapped(new, subject, key), row["created_at"])
                    )
                else:
                    unopened += 1
            tx.upsert_many("data_key", ("subject",), ("wrapped", "created_at"), rewrapped)
            deployment = tx.fetchall("SELECT * FROM deployment_key")
            for row in deployment:
                bound = DEPLOYMENT_KEYS[row["name"]]
                key = self._unwrap(bound, {"erased_at": None, **row})
                assert isinstance(key, bytes), "opened when this store began"
                tx.execute(
                    "UPDATE deployment_key SET wrapped = ? WHERE name = ?",
                    (_wrapped(new, bound, key), row["name"]),
                )
            tx.execute(
                "UPDATE key_check SET wrapped = ? WHERE id = 1",
                (_wrapped(new, _CHECK, _CHECK.bytes),),
            )
        self.close()
        return Rotated(len(rewrapped), len(deployment), unopened)

    def _wrap(self, subject: UUID, key: bytes) -> str:
        return _wrapped(self._wrapping, subject, key)

    def _unwrap(self, subject: UUID, row: Mapping[str, object]) -> bytes | Erasure:
        if row["erased_at"] is not None:
            return Erasure(str(row["reason"]), datetime.fromisoformat(str(row["erased_at"])))
        if row["wrapped"] is None:
            return MISSING
        sealed = base64.b64decode(str(row["wrapped"]))
        try:
            return self._wrapping.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], subject.bytes)
        except InvalidTag:
            # Not wrapped by this key-encryption key (a row copied from elsewhere): no key.
            return MISSING


def _wrapped(kek: AESGCM, subject: UUID, key: bytes) -> str:
    """``key`` wrapped by ``kek``, bound to ``subject``: it opens for no other."""
    nonce = os.urandom(NONCE_BYTES)
    return base64.b64encode(nonce + kek.encrypt(nonce, key, subject.bytes)).decode("ascii")


def _linked_to(tx: Transaction, persons: set[str]) -> set[str]:
    """``persons`` and every subject linked to them, directly or through another subject."""
    found, frontier = set(persons), set(persons)
    while frontier:
        for subject in sorted(frontier):
            tx.take_turn(_subject_turn(subject))
        rows = tx.select_in("subject_link", "about", "text", sorted(frontier))
        frontier = {row["subject"] for row in rows} - found
        found |= frontier
    return found


def _refuse_if_rotated(tx: Transaction, check: str) -> None:
    """WrongKeyEncryptionKey if the store's check is no longer ``check``: its key was rotated."""
    stored = tx.fetchone("SELECT wrapped FROM key_check WHERE id = 1")
    if stored is None or stored["wrapped"] != check:
        raise KeyRotated()


def _subject_turn(subject: UUID | str) -> str:
    """The turn a link to ``subject`` and an erasure of it take (``Transaction.take_turn``)."""
    return f"data_key:{subject}"


@dataclass
class _Asked:
    """A data key to store for ``subject`` (wrapped), and the row stored for it."""

    subject: UUID
    wrapped: str
    at: datetime
    row: Mapping[str, object] | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class _KeyMaker:
    """Stores new data keys, those asked for meanwhile in one transaction: a command service
    makes a key for each new record, and one transaction each cost B1 half its rate."""

    def __init__(self, database: Database, check: str) -> None:
        self._database = database
        self._check = check
        self._asked: queue.SimpleQueue[_Asked | None] = queue.SimpleQueue()
        # Started by the first key asked for: a process that only opens keys (the views, a
        # rebuild, the CLI) runs no thread for it.
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def put(self, asked: _Asked) -> None:
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="data-keys", daemon=True)
                self._thread.start()
        self._asked.put(asked)

    def stop(self) -> None:
        with self._starting:
            thread = self._thread
        if thread is not None:
            self._asked.put(None)
            thread.join()

    def _run(self) -> None:
        while (first := self._asked.get()) is not None:
            group = [first]
            stopping = False
            while len(group) < _GROUP and not self._asked.empty():
                more = self._asked.get()
                if more is None:
                    stopping = True
                    break
                group.append(more)
            try:
                rows = self._store(group)
                for asked in group:
                    asked.row = rows[str(asked.subject)]
            except Exception as error:  # every caller waiting on it hears of it
                for asked in group:
                    asked.error = error
            for asked in group:
                asked.done.set()
            if stopping:
                return

    def _store(self, group: Sequence[_Asked]) -> dict[str, Mapping[str, object]]:
        first = {str(a.subject): a for a in reversed(group)}
        values = [v for a in first.values() for v in (str(a.subject), a.wrapped, a.at.isoformat())]
        marks = ", ".join("(?, ?, ?)" for _ in first)
        with self._database.transaction() as tx:
            tx.share_turn(KEY_CHECK_TURN)
            _refuse_if_rotated(tx, self._check)
            # Two processes may make one at once: the first stored wins, both use it.
            rows = tx.fetchall(
                f"INSERT INTO data_key (subject, wrapped, created_at) VALUES {marks} "
                "ON CONFLICT (subject) DO NOTHING RETURNING *",
                values,
            )
            found = {str(row["subject"]): row for row in rows}
            missing = [s for s in first if s not in found]
            if missing:
                wanted = ", ".join("?" * len(missing))
                for row in tx.fetchall(
                    f"SELECT * FROM data_key WHERE subject IN ({wanted})", missing
                ):
                    found[str(row["subject"])] = row
        return found
