"""Signed checkpoints of the audit chain, kept outside the database that holds the chain.

The hash chain shows an entry altered, removed, reordered or slipped in. But whoever can drop the
triggers can also delete the newest entries, append forged ones with correctly computed hashes,
or change an entry and recompute every later hash: the chain alone stays consistent. A
checkpoint is the chain's (municipality, length, head hash, time), signed with Ed25519 and
written where that person cannot reach: a Kafka topic of its own in distributed mode, an
append-only JSON-lines file in embedded mode. Certificate Transparency's signed tree heads and
SQL Server's ledger digests are the models.

Verifying needs only the public keys. Each checkpoint names its key id (the first 16 hex digits
of sha256 of the raw public key), so a new key can sign new checkpoints while the old public
keys, kept in the list, still verify the old ones.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from contracts.reference import reference
from contracts.topics import Topics
from services.platform.private_files import private_file, write_once
from services.platform.settings import Settings
from services.projection.audit import ZERO_HASH, AuditLog, canonical_json, iso

logger = logging.getLogger(__name__)

# Names what the signature covers, so that a signature over other data cannot pass for one.
FORMAT = "tsunagu.audit.checkpoint.v1"
DEV_KEY_FILE = "dev-checkpoint-key.pem"
PUBLIC_KEYS_FILE = "checkpoint-public-keys.pem"
CHECKPOINT_FILE = "audit-checkpoints.jsonl"
_PEM_PUBLIC = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)
# How long a verifier waits for the checkpoint topic to be read to its end.
READ_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Checkpoint:
    municipality: str
    # The chain had ``length`` entries, the last with hash ``head``, at instant ``at``.
    length: int
    head: str
    at: str
    key_id: str
    signature: str = ""

    def signed_bytes(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        return canonical_json({"format": FORMAT, **fields}).encode()

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """A checkpoint as stored; ValueError saying what is wrong with anything else."""
        value = json.loads(text)
        expected = {
            "municipality": str,
            "length": int,
            "head": str,
            "at": str,
            "key_id": str,
            "signature": str,
        }
        if not isinstance(value, dict) or set(value) != set(expected):
            raise ValueError(f"a checkpoint has exactly the fields {sorted(expected)}")
        for name, kind in expected.items():
            if type(value[name]) is not kind:
                raise ValueError(f"{name} must be {kind.__name__}")
        return cls(**value)


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id(key.public_key())

    def sign(self, municipality: str, length: int, head: str, at: datetime) -> Checkpoint:
        unsigned = Checkpoint(municipality, length, head, iso(at), self.key_id)
        signature = self._key.sign(unsigned.signed_bytes())
        return replace(unsigned, signature=base64.b64encode(signature).decode())

    def public_pem(self) -> bytes:
        return self._key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


class PublicKeys:
    """The keys checkpoints may be signed with, by key id: the current one and every old one."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(key): key for key in keys}

    @classmethod
    def from_pem(cls, bundle: bytes) -> PublicKeys:
        keys = []
        for block in _PEM_PUBLIC.findall(bundle):
            key = load_pem_public_key(block)
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("checkpoint public keys must be Ed25519 keys")
            keys.append(key)
        return cls(keys)

    @classmethod
    def from_file(cls, path: Path) -> PublicKeys:
        return cls.from_pem(path.read_bytes()) if path.exists() else cls(())

    def __contains__(self, key_id: str) -> bool:
        return key_id in self._keys

    def refusal(self, checkpoint: Checkpoint) -> str | None:
        """Why the checkpoint's signature does not hold (``unknown_key``, ``forged_checkpoint``),
        or None when it does."""
        key = self._keys.get(checkpoint.key_id)
        if key is None:
            return "unknown_key"
        try:
            key.verify(
                base64.b64decode(checkpoint.signature, validate=True), checkpoint.signed_bytes()
            )
        except (InvalidSignature, binascii.Error, ValueError):
            return "forged_checkpoint"
        return None


def signer(settings: Settings) -> Signer:
    """The configured signing key, else the development key under the var dir."""
    if settings.checkpoint_key:
        pem = settings.checkpoint_key.encode()
    elif settings.checkpoint_key_file:
        pem = settings.checkpoint_key_file.read_bytes()
    else:
        return _dev_signer(settings.var_dir)
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the checkpoint signing key must be an Ed25519 private key")
    return Signer(key)


def _dev_signer(var_dir: Path) -> Signer:
    """The development key, made on first use (mode 0600), its public key added to the list
    beside it. A configured key's public key is never added by itself: the list is what the
    verifier trusts, and it is the operator's to keep."""
    path = var_dir / DEV_KEY_FILE
    pem = write_once(
        path,
        lambda: Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        ),
    )
    key = load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey), f"{path} holds an Ed25519 key"
    dev = Signer(key)
    listed = var_dir / PUBLIC_KEYS_FILE
    if dev.key_id not in PublicKeys.from_file(listed):
        _append(listed, dev.public_pem())
    return dev


def public_keys_file(settings: Settings) -> Path:
    return settings.checkpoint_public_keys or settings.var_dir / PUBLIC_KEYS_FILE


def _append(path: Path, data: bytes) -> None:
    """One write on a descriptor opened for appending: whole, after whatever is there."""
    descriptor = os.open(private_file(path), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class CheckpointStore(Protocol):
    def append(self, checkpoint: Checkpoint) -> None: ...

    def records(self) -> Iterator[tuple[str, str]]:
        """Every stored record, oldest first, with where it was found."""
        ...

    def close(self) -> None: ...


@dataclass
class FileCheckpoints:
    """Embedded mode: JSON lines, appended to and never rewritten."""

    path: Path

    def append(self, checkpoint: Checkpoint) -> None:
        _append(self.path, (checkpoint.to_json() + "\n").encode())

    def records(self) -> Iterator[tuple[str, str]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    yield f"{self.path.name} line {number}", line

    def close(self) -> None:
        """Nothing is held open between appends."""


@dataclass
class KafkaCheckpoints:
    """Distributed mode: a topic of one partition (checkpoints in the order they were signed),
    kept for ever, created as the other topics are rather than by the broker on first use."""

    bootstrap_servers: str
    topic: str
    _publisher: Any = field(default=None, init=False, repr=False)
    _created: bool = field(default=False, init=False, repr=False)

    def _ensure_topic(self) -> None:
        from services.platform.bus import ensure_topics

        if not self._created:
            ensure_topics(self.bootstrap_servers, [self.topic], 1, {"retention.ms": "-1"})
            self._created = True

    def append(self, checkpoint: Checkpoint) -> None:
        from services.platform.bus import KafkaPublisher, Message

        self._ensure_topic()
        if self._publisher is None:
            self._publisher = KafkaPublisher(self.bootstrap_servers)
        message = Message(self.topic, checkpoint.municipality, checkpoint.to_json().encode())
        self._publisher.publish([message])

    def records(self) -> Iterator[tuple[str, str]]:
        from kafka import KafkaConsumer, TopicPartition

        self._ensure_topic()
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, group_id=None
        )
        try:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            consumer.seek_to_beginning(partition)
            end = consumer.end_offsets([partition])[partition]
            deadline = time.monotonic() + READ_TIMEOUT_SECONDS
            while consumer.position(partition) < end:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.topic} was not read to offset {end} in time")
                for batch in consumer.poll(timeout_ms=500).values():
                    for record in batch:
                        if record.offset < end:
                            text = record.value.decode("utf-8", errors="replace")
                            yield f"{self.topic} offset {record.offset}", text
        finally:
            consumer.close()

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None


def checkpoint_store(settings: Settings) -> CheckpointStore:
    if settings.database_url and settings.kafka_bootstrap_servers:
        topic = Topics(settings.topic_prefix).audit_checkpoints
        return KafkaCheckpoints(settings.kafka_bootstrap_servers, topic)
    return FileCheckpoints(settings.var_dir / CHECKPOINT_FILE)


@dataclass(frozen=True)
class Finding:
    """One way the chain or its checkpoints were tampered with, and the entries it concerns."""

    kind: str
    message: str
    first_position: int | None = None
    last_position: int | None = None


@dataclass(frozen=True)
class AnchoredVerification:
    """The chain checked link by link, then against every signed checkpoint."""

    ok: bool
    # Entries sound from the first by their hashes and links.
    checked: int
    first_bad_position: int | None
    problem: str | None
    findings: list[Finding]
    # Signed checkpoints of this municipality whose signature holds.
    checkpoints: int
    # Entries 1..anchored lead to the head a signed checkpoint names.
    anchored: int
    # Entries after the last checkpoint: sound by their links, not yet signed for.
    not_yet_anchored: int
    last_checkpoint: Checkpoint | None


@dataclass(frozen=True)
class Anchoring:
    """Where one municipality's checkpoints are kept, and what signs and verifies them."""

    store: CheckpointStore
    public_keys: Path
    municipality: str
    # None where a process only verifies: that needs the public keys alone.
    signer: Signer | None = None

    def checkpoint(self, log: AuditLog, at: datetime | None = None) -> Checkpoint:
        if self.signer is None:
            raise RuntimeError("this process verifies checkpoints and holds no signing key")
        length, head = log.head()
        signed = self.signer.sign(self.municipality, length, head, at or datetime.now(UTC))
        self.store.append(signed)
        logger.info("audit checkpoint signed", extra={"length": length, "key_id": signed.key_id})
        return signed

    def verify(self, log: AuditLog) -> AnchoredVerification:
        store_findings, signed = self._signed_checkpoints()
        # The checkpoints are read first: each then covers no more than the walk will find.
        chain = log.verify()
        findings: list[Finding] = []
        if not chain.ok:
            assert chain.kind is not None and chain.problem is not None
            bad = chain.first_bad_position
            findings.append(Finding(chain.kind, chain.problem, bad, bad))
        sound = chain.checked
        anchored, rewritten = _anchored(log, signed, sound)
        if rewritten is not None:
            findings.append(rewritten)
        last = signed[-1] if signed else None
        if chain.ok and last is not None and last.length > sound:
            findings.append(
                Finding(
                    "truncated",
                    f"truncated: the chain ends at entry {sound}, but the checkpoint signed at "
                    f"{last.at} (key {last.key_id}) says it had {last.length}: "
                    f"entries {sound + 1}..{last.length} were deleted",
                    sound + 1,
                    last.length,
                )
            )
        findings += store_findings
        entries = sound if chain.ok else log.head()[0]
        first = findings[0] if findings else None
        return AnchoredVerification(
            ok=not findings,
            checked=sound,
            first_bad_position=first.first_position if first else None,
            problem=first.message if first else None,
            findings=findings,
            checkpoints=len(signed),
            anchored=anchored,
            not_yet_anchored=max(entries - (last.length if last else 0), 0),
            last_checkpoint=last,
        )

    def _signed_checkpoints(self) -> tuple[list[Finding], list[Checkpoint]]:
        """This municipality's checkpoints whose signature holds, by length; and what is
        wrong with the others."""
        keys = PublicKeys.from_file(self.public_keys)
        findings: list[Finding] = []
        signed: list[Checkpoint] = []
        for where, text in self.store.records():
            try:
                checkpoint = Checkpoint.parse(text)
            except ValueError as error:
                message = f"unreadable checkpoint: {where} is not a checkpoint ({error})"
                findings.append(Finding("unreadable_checkpoint", message))
                continue
            if checkpoint.municipality != self.municipality:
                continue
            refusal = keys.refusal(checkpoint)
            if refusal == "unknown_key":
                message = (
                    f"unknown key: {where} is signed with key {checkpoint.key_id}, which is not "
                    f"in the public key list {self.public_keys}"
                )
                findings.append(Finding(refusal, message))
            elif refusal is not None:
                message = (
                    f"forged checkpoint: {where} (length {checkpoint.length}, at "
                    f"{checkpoint.at}) does not verify with key {checkpoint.key_id}"
                )
                findings.append(Finding(refusal, message))
            else:
                signed.append(checkpoint)
        signed.sort(key=lambda c: (c.length, c.at))
        return findings, signed


def _anchored(log: AuditLog, signed: list[Checkpoint], sound: int) -> tuple[int, Finding | None]:
    """How many entries from the first lead to a signed head, and the first checkpoint whose
    head the sound chain no longer leads to (the chain was rewritten up to it)."""
    heads = {0: ZERO_HASH, **log.hashes_at(c.length for c in signed if 0 < c.length <= sound)}
    anchored = 0
    for checkpoint in signed:
        if checkpoint.length > sound:
            break
        found = heads[checkpoint.length]
        if found != checkpoint.head:
            at = checkpoint.length
            return anchored, Finding(
                "rewritten",
                f"rewritten: entry {at} has hash {found[:16]}…, but the checkpoint signed at "
                f"{checkpoint.at} (key {checkpoint.key_id}) says the head at {at} was "
                f"{checkpoint.head[:16]}…: entries {anchored + 1}..{at} were changed and "
                "every later hash recomputed, or replaced by forged ones",
                anchored + 1,
                at,
            )
        anchored = checkpoint.length
    return anchored, None


def anchoring(settings: Settings, *, signing: bool, municipality: str | None = None) -> Anchoring:
    """A municipality's anchoring (the deployment's first by default). ``signing``: this
    process also signs checkpoints (it then needs the private key)."""
    # The signer first: a development key exports its public key into the list it is read from.
    sign = signer(settings) if signing else None
    code = municipality or reference().municipality_code
    return Anchoring(checkpoint_store(settings), public_keys_file(settings), code, sign)


class Checkpointer:
    """Signs a checkpoint when the chain has grown since the last one this process signed."""

    def __init__(self, anchoring: Anchoring, log: AuditLog) -> None:
        self._anchoring, self._log = anchoring, log
        self._signed_length: int | None = None

    def tick(self) -> Checkpoint | None:
        length, _ = self._log.head()
        if length == self._signed_length:
            return None
        checkpoint = self._anchoring.checkpoint(self._log)
        self._signed_length = checkpoint.length
        return checkpoint

    def run(self, every: float, stop: threading.Event) -> None:
        """The distributed mode's checkpointer process."""
        while not stop.is_set():
            self._tick_or_log()
            stop.wait(every)

    async def run_inside(self, every: float) -> None:
        """The embedded app's checkpointer, until cancelled."""
        while True:
            await asyncio.sleep(every)
            await asyncio.to_thread(self._tick_or_log)

    def _tick_or_log(self) -> None:
        try:
            self.tick()
        except Exception:
            logger.exception("checkpoint failed; retrying at the next tick")
