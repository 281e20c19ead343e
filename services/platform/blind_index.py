"""Blind indexes: lookups on personal values that keep only keyed hashes of them.

A value is folded as its comparison needs (``contracts.names.fold`` for a name), then hashed
with HMAC-SHA-256 under the blind index key, kept in the key store wrapped by the key-encryption
key (``KeyStore.blind_index_key``) and so never in a database in clear. The same value gives
the same token, so a lookup by equality (or, with a token per prefix, by prefix) still works;
a stolen index cannot be matched against a list of names or numbers without the key.

What a token does reveal is which rows share a value, as any equality index does. Each token is
bound to its kind and scope (a municipality, an agency), so tokens of one never equal another's.
Whoever holds the key can test a guess against a token: a person's tokens go when they are
erased (the views drop them at PersonErased; a rebuild finds their values sealed under a
destroyed key and makes none).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from services.platform.keys import KeyStore

# 128 bits: no two values meet by chance, at half the width of the whole digest.
TOKEN_HEX = 32
_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class BlindIndex:
    """Tokens for one deployment's blind indexes."""

    key: bytes = field(repr=False)

    def token(self, kind: str, *parts: str) -> str:
        """The token of ``parts`` (folded already) as a ``kind`` lookup key."""
        message = _SEPARATOR.join((kind, *parts)).encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:TOKEN_HEX]


def blind_index(keys: KeyStore) -> BlindIndex:
    """The deployment's blind index, under the key its key store keeps."""
    return BlindIndex(keys.blind_index_key)
