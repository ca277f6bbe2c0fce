"""The fault switches: which failure paths the mock takes, for the whole mock or one project.

The switches are the properties of mock-control.yaml's ``Faults`` schema; a test holds this
record and that schema to the same fields (named in snake case here, camel case on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    EmailTransportName = Literal["outbox", "resend", "none"]

EMAIL_TRANSPORTS: tuple[EmailTransportName, ...] = ("outbox", "resend", "none")


@dataclass(frozen=True, slots=True)
class Faults:
    """What the control API can switch: email transport, injected failures, rate limit."""

    email_transport: EmailTransportName = "outbox"
    email_send_fails: bool = False
    storage_fails: bool = False
    queue_unavailable: bool = False
    rate_limit_per_minute: int | None = None


FAULT_NAMES: frozenset[str] = frozenset(f.name for f in fields(Faults))


def wire_name(name: str) -> str:
    """A switch's name on the wire: ``email_send_fails`` is ``emailSendFails``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def from_wire(body: dict[str, object]) -> dict[str, object]:
    """A control body's switches (``{"emailSendFails": true}``) by their record names."""
    by_wire = {wire_name(name): name for name in FAULT_NAMES}
    return {by_wire[key]: value for key, value in body.items() if key in by_wire}


def to_wire(faults: Faults) -> dict[str, object]:
    """The switches in force, as the control API shows them."""
    return {wire_name(f.name): getattr(faults, f.name) for f in fields(Faults)}
