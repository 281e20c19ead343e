"""Sealed fields: a personal value encrypted under its subject's data key, as one string.

A sealed value is ``sealed:v1:`` and, base64url, the subject's id (16 bytes), a nonce and the
AES-GCM ciphertext of the value's JSON, bound to the subject. It travels as any string would:
in the event store, in Kafka's messages, in the journal and the feeds. Only an answer to a
lawful read opens it (``Opener``, used by the one disclosure mechanism); a value whose key was
destroyed opens to an erasure notice (``erased_value``) instead, and no reader fails on it.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.platform.keys import MISSING, NONCE_BYTES, Erasure, KeyStore

PREFIX = "sealed:v1:"
_SUBJECT = 16


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def subject_of(token: str) -> UUID:
    return UUID(bytes=_decode(token)[:_SUBJECT])


def _subject_if_sealed(text: str) -> UUID | None:
    """The subject of a sealed value; None for text that only looks like one (a note that
    begins with the prefix, say), which is shown as it is."""
    raw = _decoded_if_sealed(text)
    return UUID(bytes=raw[:_SUBJECT]) if raw is not None else None


def _decoded_if_sealed(text: str) -> bytes | None:
    """A sealed value's bytes (its subject first); None for text that only looks like one."""
    try:
        raw = _decode(text)
    except ValueError:  # binascii.Error is one
        return None
    return raw if len(raw) >= _SUBJECT else None


def _json(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot seal a {type(value).__name__}")


def _decode(token: str) -> bytes:
    text = token[len(PREFIX) :]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal_with(key: bytes, subject: UUID, value: object) -> str:
    plaintext = json.dumps(value, ensure_ascii=False, default=_json).encode()
    nonce = os.urandom(NONCE_BYTES)
    sealed = subject.bytes + nonce + AESGCM(key).encrypt(nonce, plaintext, subject.bytes)
    return PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")


def open_with(key: bytes | Erasure, token: str) -> Any:
    """The value sealed in ``token``, or the erasure notice that stands for it."""
    return _opened(key if isinstance(key, Erasure) else AESGCM(key), token)


def erased_value(erasure: Erasure) -> dict[str, Any]:
    """What stands for an erased value in an answer: that it was erased, when and why."""
    return {
        "erased": True,
        "erased_at": erasure.at.isoformat() if erasure.at else None,
        "reason": erasure.reason,
    }


def is_erased(value: object) -> bool:
    """Whether ``value`` is what stands for an erased value (``erased_value``)."""
    return isinstance(value, Mapping) and value.keys() == {"erased", "erased_at", "reason"}


def erasures(document: Any) -> Iterator[Mapping[str, Any]]:
    """The erasure notices an opened ``document`` holds, in document order."""
    return _matching(document, is_erased)


class Sealer:
    """Seals values for the command services, each under its subject's data key."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def seal(self, subject: UUID, value: Any, at: datetime) -> Any:
        """``value`` sealed (None, and a value sealed already, stay as they are)."""
        if value is None or is_sealed(value):
            return value
        key = self.keys.sealing_key(subject, at)
        if isinstance(key, Erasure):
            raise key.refusal()
        return seal_with(key, subject, value)


# A sealed value as a JSON string: a token is base64url after the prefix, so it is never
# escaped, and a quote right after its last character can only end the string.
_SEALED_JSON = re.compile(r'("' + re.escape(PREFIX) + r'[A-Za-z0-9_-]+")')


class Opener:
    """Opens every sealed value in an answer with one look-up of the keys it needs."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def open(self, document: Any) -> Any:
        subjects: dict[str, UUID] = {}
        _collect(document, subjects)
        if not subjects:
            return document
        return _replace(document, self._opened(subjects))

    def open_json(self, texts: Sequence[str]) -> list[str]:
        """Each of ``texts`` (a JSON document) with each sealed string replaced by the JSON of
        its value, as ``json.dumps(..., ensure_ascii=False, sort_keys=True)`` writes it: the
        same bytes as that of ``open(json.loads(text))``. The keys of them all are looked up
        at once (a page of persons is an answer of twenty documents).

        An as-of answer (B4) holds tens of thousands of values: walking them in Python twice,
        to find the tokens and to rebuild the document, cost more than opening them. Each
        token is decoded once, and a text's plaintext (most are) is already the JSON it is
        served as."""
        # Text and tokens in turn (a token at each odd index): one scan of each text.
        split = [_SEALED_JSON.split(text) for text in texts]
        decoded = {
            quoted: raw
            for quoted in {quoted for parts in split for quoted in parts[1::2]}
            for raw in [_decoded_if_sealed(quoted[1:-1])]
            if raw is not None
        }
        if not decoded:
            return list(texts)
        subjects: dict[bytes, UUID] = {}
        for raw in decoded.values():
            if raw[:_SUBJECT] not in subjects:
                subjects[raw[:_SUBJECT]] = UUID(bytes=raw[:_SUBJECT])
        ciphers = self._ciphers(set(subjects.values()))
        values = {
            quoted: _opened_json(ciphers[subjects[raw[:_SUBJECT]]], raw)
            for quoted, raw in decoded.items()
        }
        for parts in split:
            parts[1::2] = [values.get(quoted, quoted) for quoted in parts[1::2]]
        return ["".join(parts) for parts in split]

    def _ciphers(self, subjects: Collection[UUID]) -> dict[UUID, AESGCM | Erasure]:
        """A cipher for each subject's data key, or the erasure that stands for it."""
        return {
            subject: key if isinstance(key, Erasure) else AESGCM(key)
            for subject, key in self.keys.opening_keys(subjects).items()
        }

    def _opened(self, subjects: Mapping[str, UUID]) -> dict[str, Any]:
        """Each token's value (or erasure notice): a value repeated in many places is opened
        once, and each key made a cipher once."""
        ciphers = self._ciphers(set(subjects.values()))
        return {token: _opened(ciphers[subject], token) for token, subject in subjects.items()}


# What a JSON document's leaves are, besides text: nothing to look into (and the Mapping check
# below, an ABC's, is slow enough to matter over thousands of them).
_LEAVES = (int, float, type(None))


def _collect(value: Any, subjects: dict[str, UUID]) -> None:
    """Each distinct sealed value in ``value``, with its subject."""
    if isinstance(value, str):
        if value.startswith(PREFIX) and value not in subjects:
            subject = _subject_if_sealed(value)
            if subject is not None:
                subjects[value] = subject
    elif isinstance(value, _LEAVES):
        return
    elif isinstance(value, dict | Mapping):
        for each in value.values():
            _collect(each, subjects)
    elif isinstance(value, list | tuple):
        for each in value:
            _collect(each, subjects)


def _replace(value: Any, opened: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return opened.get(value, value) if value.startswith(PREFIX) else value
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, dict | Mapping):
        return {key: _replace(each, opened) for key, each in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(each, opened) for each in value]
    return value


def _opened(cipher: AESGCM | Erasure, token: str) -> Any:
    return _value(_plaintext(cipher, _decoded_if_sealed(token)))


def _opened_json(cipher: AESGCM | Erasure, raw: bytes) -> str:
    """The JSON of the value sealed in ``raw`` (a decoded token), as ``json.dumps(...,
    ensure_ascii=False, sort_keys=True)`` writes it."""
    plaintext = _plaintext(cipher, raw)
    if isinstance(plaintext, bytes) and plaintext.startswith(b'"'):
        # ``seal_with`` wrote a text's JSON as these same arguments write it (key order
        # matters only to objects): decoding it only to encode it again is wasted.
        return plaintext.decode()
    return json.dumps(_value(plaintext), ensure_ascii=False, sort_keys=True)


def _value(plaintext: bytes | dict[str, Any]) -> Any:
    return json.loads(plaintext) if isinstance(plaintext, bytes) else plaintext


def _plaintext(cipher: AESGCM | Erasure, raw: bytes | None) -> bytes | dict[str, Any]:
    """The JSON sealed in ``raw`` (None: a token that decodes to no sealed value), or the
    erasure notice that stands for it."""
    if isinstance(cipher, Erasure):
        return erased_value(cipher)
    if raw is None:
        return erased_value(MISSING)
    subject, nonce = raw[:_SUBJECT], raw[_SUBJECT : _SUBJECT + NONCE_BYTES]
    try:
        return cipher.decrypt(nonce, raw[_SUBJECT + NONCE_BYTES :], subject)
    except (InvalidTag, ValueError):  # forged, or cut short: no key opens it
        return erased_value(MISSING)


def _matching(document: Any, matches: Callable[[Any], bool]) -> Iterator[Any]:
    if matches(document):
        yield document
    elif isinstance(document, Mapping):
        for value in document.values():
            yield from _matching(value, matches)
    elif isinstance(document, list | tuple):
        for value in document:
            yield from _matching(value, matches)
