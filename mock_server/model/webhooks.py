"""Outgoing webhooks as data: subscriptions, deliveries and their attempts, and the rules.

A delivery is decided once (its id, its body, the subscription it goes to) and then
attempted until a receiver acknowledges it or the retry schedule runs out; every attempt is
kept with it, so the project's delivery log shows what each receiver got. The schedule runs
on the project's clock, so a test that moves the clock makes the next attempt due at once.

A subscription's secret is needed in full to sign, and nowhere else: it is kept sealed
(``SecretSealer``) under the process secret, as share tokens are derived under it, so a dump
of the store alone holds no secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mock_server.model.addresses import is_loopback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    DeliveryState = Literal["pending", "delivered", "abandoned"]

USER_AGENT = "Craftkit-Webhook/1.0"
SEAL_NONCE_BYTES = 16


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where a project's events go: a URL, the events it names, and its sealed secret."""

    id: str
    project_id: str
    url: str
    events: tuple[str, ...]
    active: bool
    created_at: datetime
    sealed_secret: bytes
    seal_nonce: bytes

    def wants(self, event: str) -> bool:
        """Whether a delivery of ``event`` goes to this subscription now."""
        return self.active and event in self.events


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at a delivery: when (the project's clock), what came back, how long it took."""

    at: datetime
    status: int | None
    latency_ms: int
    error: str | None

    @property
    def acknowledged(self) -> bool:
        """Any 2xx acknowledges a delivery."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one subscription, with every attempt made so far."""

    id: str
    project_id: str
    subscription_id: str
    event: str
    payload: bytes
    """The JSON body, exactly as signed and sent on every attempt."""
    created_at: datetime
    state: DeliveryState
    next_attempt_at: datetime | None
    attempts: tuple[Attempt, ...] = ()
    round_start: int = 0
    """Attempts before the last resend: the retry budget counts from there."""


@dataclass(frozen=True, slots=True)
class RetryRule:
    """The contract's schedule: the delays after each failed attempt, and the attempt cap."""

    delays: tuple[timedelta, ...]
    max_attempts: int


def after_attempt(delivery: Delivery, attempt: Attempt, rule: RetryRule) -> Delivery:
    """The delivery once ``attempt`` is made: delivered, due again, or abandoned."""
    attempts = (*delivery.attempts, attempt)
    if attempt.acknowledged:
        return replace(delivery, attempts=attempts, state="delivered", next_attempt_at=None)
    made = len(attempts) - delivery.round_start
    if made >= rule.max_attempts or made > len(rule.delays):
        return replace(delivery, attempts=attempts, state="abandoned", next_attempt_at=None)
    due = attempt.at + rule.delays[made - 1]
    return replace(delivery, attempts=attempts, state="pending", next_attempt_at=due)


def resent(delivery: Delivery, at: datetime) -> Delivery:
    """The delivery due again at once, with a fresh retry budget (its id and body kept)."""
    return replace(
        delivery, state="pending", next_attempt_at=at, round_start=len(delivery.attempts)
    )


def signature(secret: bytes, body: bytes) -> str:
    """HMAC-SHA256 of the raw body keyed with the secret, lowercase hex, no prefix."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def receiver_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Loopback always; another host only when the operator listed it (or ``*``)."""
    return is_loopback(host) or "*" in allowed or host.strip("[]").lower() in allowed


class SecretSealer:
    """Seals subscription secrets under the process secret, and opens them to sign.

    The keystream is HMAC-SHA256(key, nonce ‖ block number), a pseudorandom function in
    counter mode, with a fresh random nonce per sealing; a tag over the nonce and the sealed
    bytes tells a wrong key (another process's secret) from a right one.
    """

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"craftkit-mock webhook secrets|" + key).digest()

    def _stream(self, nonce: bytes, length: int) -> bytes:
        blocks = (length + 31) // 32
        return b"".join(
            hmac.new(self._key, nonce + block.to_bytes(4, "big"), hashlib.sha256).digest()
            for block in range(blocks)
        )[:length]

    def _tag(self, nonce: bytes, sealed: bytes) -> bytes:
        return hmac.new(self._key, b"tag|" + nonce + sealed, hashlib.sha256).digest()[:16]

    def seal(self, secret: str) -> tuple[bytes, bytes]:
        """``(nonce, sealed)`` for a secret: the sealed bytes end with their tag."""
        plain = secret.encode("utf-8")
        nonce = secrets.token_bytes(SEAL_NONCE_BYTES)
        sealed = bytes(a ^ b for a, b in zip(plain, self._stream(nonce, len(plain)), strict=True))
        return nonce, sealed + self._tag(nonce, sealed)

    def open(self, nonce: bytes, sealed: bytes) -> bytes | None:
        """The secret's bytes; ``None`` when sealed under another key or tampered with."""
        body, tag = sealed[:-16], sealed[-16:]
        if not hmac.compare_digest(tag, self._tag(nonce, body)):
            return None
        return bytes(a ^ b for a, b in zip(body, self._stream(nonce, len(body)), strict=True))
