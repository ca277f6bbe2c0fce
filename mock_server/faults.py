"""The fault switches: which failure paths the mock takes, for the whole mock or one project."""

from __future__ import annotations

from dataclasses import dataclass, fields

from mock_server.settings import EmailTransportName


@dataclass(frozen=True, slots=True)
class Faults:
    """What the control API can switch: email transport, injected failures, rate limit."""

    email_transport: EmailTransportName = "outbox"
    email_send_fails: bool = False
    storage_fails: bool = False
    queue_unavailable: bool = False
    rate_limit_per_minute: int | None = None


FAULT_NAMES: frozenset[str] = frozenset(f.name for f in fields(Faults))
