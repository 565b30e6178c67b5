"""Answers kept under an Idempotency-Key are sealed with the API key of the caller who got them.

The server keeps only a hash of each API key, so a stored answer (which may hold a new API key's
secret, or a customer's address) can be read back only by a request that presents the same key:
a copy of the table reveals nothing. AES-256-GCM with a fresh random nonce per answer, under a
key derived from the API key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12
# Names what the sealed bytes are, so they cannot pass for anything else sealed with the key.
CONTEXT = b"orderflow idempotency answer"


class Unreadable(ValueError):
    """The sealed bytes were not made with this key, or were changed since."""


def _cipher(api_key: str, context: bytes) -> AESGCM:
    return AESGCM(hmac.new(api_key.encode(), context, hashlib.sha256).digest())


def seal(api_key: str, plain: bytes, context: bytes = CONTEXT) -> bytes:
    """`plain` readable only with `api_key`, and only as what `context` names."""
    nonce = secrets.token_bytes(NONCE)
    return nonce + _cipher(api_key, context).encrypt(nonce, plain, context)


def unseal(api_key: str, sealed: bytes, context: bytes = CONTEXT) -> bytes:
    """What `seal` sealed with the same key and context; Unreadable otherwise."""
    if len(sealed) < NONCE + 16:
        raise Unreadable("too short to be a sealed answer")
    try:
        return _cipher(api_key, context).decrypt(sealed[:NONCE], sealed[NONCE:], context)
    except InvalidTag:
        raise Unreadable("sealed with another key, or altered") from None
