"""Identifiers and secrets: UUIDv7 ids, API keys and share tokens.

Share tokens must be re-shown in share lists yet never be held in plain form by the store.
A token is therefore derived, ``cks_`` + keyed-BLAKE2b(secret, nonce), from a random 128-bit
nonce kept in the store and a process secret kept here, outside it; the store looks tokens
up by their SHA-256 digest. A dump of the store alone cannot produce a working link.
"""

from __future__ import annotations

import binascii
import hashlib
import random
import re
import secrets
import uuid
from datetime import datetime
from urllib.parse import unquote

SHARE_TOKEN_PREFIX = "cks_"
_URLSAFE = bytes.maketrans(b"+/", b"-_")
NONCE_BYTES = 16
TOKEN_CACHE_SIZE = 65_536
"""Derived share tokens a minter keeps (about 8 MB at most)."""


_SECRET = re.compile(
    r"(cks_|ck_(?:test|live)_)[A-Za-z0-9_-]*?([A-Za-z0-9_-]{0,4})(?![A-Za-z0-9_-])"
)
"""A share token or an API key, as far as its alphabet goes, whatever follows it."""
_WHOLE_SECRET = re.compile(r"(cks_|ck_(?:test|live)_)[A-Za-z0-9_-]*")
"""The same, greedy and without its last four apart: ten times faster over a long list."""


def redact_secrets(text: str) -> str:
    """The text with every share token and API key cut to its last four characters.

    ``cks_…Ab3x`` and ``ck_test_…9xQz``. For anything that shows paths (the request
    journal, access logs): a token that can be read there opens the document. Whatever
    follows a token (a ``.`` or ``)`` a mail client added, a ``%2E``) does not shield it, and
    percent-encoded text is decoded first, so an encoded token is found too.
    """
    if "%" in text:
        text = unquote(text)
    return _SECRET.sub(lambda m: f"{m.group(1)}\u2026{m.group(2)}", text)


class Pseudonyms:
    """Every share token and API key in a text replaced by a stand-in of its shape.

    A stand-in keeps the prefix, the length and the alphabet, and is the same for the same
    secret (a keyed digest of it): recorded traffic then still tells one key or token from
    another and still matches the API's patterns, yet opens nothing. Percent-encoded
    secrets are found as ``redact_secrets`` finds them. Stand-ins are kept once made (a list
    of 100 shares shows 200 tokens on every read), up to ``TOKEN_CACHE_SIZE``.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._made: dict[str, str] = {}

    def apply(self, text: str) -> str:
        """The text with its secrets stood in for."""
        if "%" in text and _WHOLE_SECRET.search(unquote(text)) is not None:
            text = unquote(text)
        return _WHOLE_SECRET.sub(self._stand_in, text)

    def _stand_in(self, found: re.Match[str]) -> str:
        secret = found.group(0)
        made = self._made.get(secret)
        if made is None:
            if len(self._made) >= TOKEN_CACHE_SIZE:
                self._made.clear()
            prefix = found.group(1)
            length = len(secret) - len(prefix)
            mac = hashlib.blake2b(secret.encode(), key=self._key, digest_size=48).digest()
            alphabet = binascii.b2a_base64(mac, newline=False).translate(_URLSAFE).decode()
            made = self._made[secret] = prefix + (alphabet * (1 + length // len(alphabet)))[:length]
        return made


def uuid7(at: datetime) -> str:
    """A UUIDv7 string whose timestamp is ``at`` (RFC 9562 layout, 74 random bits).

    The bits only need to be unique, not secret (an id opens nothing without its key; share
    tokens are MACs under the secret), so they come from the fast generator rather than a
    system call per id.
    """
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    random_bits = random.getrandbits(80)
    rand_a = random_bits >> 68 & 0xFFF
    rand_b = random_bits & ((1 << 62) - 1)
    value = millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def digest(secret: str) -> str:
    """The SHA-256 hex digest under which a key or token is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_api_key(environment: str = "test") -> str:
    """A fresh project key, ``ck_test_…`` or ``ck_live_…``, with 192 random bits."""
    return f"ck_{environment}_{secrets.token_urlsafe(24)}"


class ShareTokenMinter:
    """Derives share tokens from per-share nonces with a secret the store never sees."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)
        # Share lists show every row's token on every request, so derived tokens are kept
        # here, beside the secret that derives them (the store still holds none). Bounded:
        # the whole cache is dropped when it is full.
        self._derived: dict[bytes, str] = {}

    @staticmethod
    def new_nonce() -> bytes:
        """128 random bits for one share."""
        return secrets.token_bytes(NONCE_BYTES)

    def derived_key(self, purpose: bytes) -> bytes:
        """A key of its own for another use of the secret (sealing webhook secrets)."""
        return hashlib.blake2b(purpose, key=self._secret, digest_size=32).digest()

    def fingerprint(self) -> str:
        """A digest that tells two secrets apart without revealing either."""
        return hashlib.blake2b(b"craftkit-mock secret check", key=self._secret).hexdigest()

    def token(self, nonce: bytes) -> str:
        """The share token for a nonce: ``cks_`` + 43 URL-safe characters."""
        token = self._derived.get(nonce)
        if token is None:
            if len(self._derived) >= TOKEN_CACHE_SIZE:
                self._derived.clear()
            token = self._derived[nonce] = self._derive(nonce)
        return token

    def _derive(self, nonce: bytes) -> str:
        # Keyed BLAKE2b is a MAC in its own right and, here, twice as fast as HMAC-SHA256:
        # a list of 100 shares derives 100 tokens per request.
        mac = hashlib.blake2b(nonce, key=self._secret, digest_size=32).digest()
        # 32 bytes encode to 43 characters and one "=" of padding, which is dropped.
        return SHARE_TOKEN_PREFIX + binascii.b2a_base64(mac, newline=False).translate(_URLSAFE)[
            :43
        ].decode("ascii")
