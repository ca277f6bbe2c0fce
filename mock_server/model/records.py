"""The API's resources as frozen dataclasses: what the store keeps and the engines hand back.

Nothing here holds a plain API key or share token: keys and tokens are kept as SHA-256
digests, and a share's token is re-derived from its nonce (``model.ids``). Render status is
not stored: it is derived from the clock (``model.rules.render_state``).
"""

from __future__ import annotations

import marshal
from dataclasses import dataclass, field
from datetime import datetime, timedelta

TYPE_CHECKING = False  # typing is not imported at run time: the model loads in milliseconds
if TYPE_CHECKING:
    from typing import Any, Literal

    RenderStatus = Literal["queued", "rendering", "succeeded", "failed"]
    Channel = Literal["link", "email"]
    EventType = Literal[
        "viewed",
        "downloaded",
        "printed",
        "email_opened",
        "email_sent",
        "share_created",
        "share_revoked",
    ]

RENDER_STATUSES: tuple[RenderStatus, ...] = ("queued", "rendering", "succeeded", "failed")
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed"})
CHANNELS: tuple[Channel, ...] = ("link", "email")
EVENT_TYPES: tuple[EventType, ...] = (
    "viewed",
    "downloaded",
    "printed",
    "email_opened",
    "email_sent",
    "share_created",
    "share_revoked",
)
"""The enumerations as values and, for mypy, as types: tests hold each equal to its type and
to the spec's enumeration (``RenderStatus``, ``Channel``, ``EventType``)."""


def pack(value: Any) -> bytes:
    """A JSON value as compact bytes (marshal: any depth the API accepts, no pickle risks).

    Kept data costs about what its JSON costs, not the tens of bytes per value Python's
    objects take (a 1 MiB body of empty arrays is 24 MiB of lists, and 1.7 MiB packed).
    """
    return marshal.dumps(value, 4)


def unpack(blob: bytes) -> Any:
    """A value ``pack`` made."""
    return marshal.loads(blob)


FAILURE_DATA_KEY = "_mockFailure"
"""A render whose ``data`` holds this key (a string) ends ``failed`` with it as the message."""


@dataclass(frozen=True, slots=True)
class Project:
    """A project: its name, where its share links point, and whether it was deleted."""

    id: str
    name: str
    share_domain: str | None = None
    email_from: str | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Template:
    """A template of a project: its versions, the published one, and each version's manifest."""

    slug: str
    name: str
    versions: tuple[int, ...]
    published_version: int | None
    input_schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Render:
    """A render as submitted, plus any status forced through the control API."""

    id: str
    project_id: str
    template_slug: str
    template_name: str
    version: int
    packed_data: bytes
    """The render's data, packed (``pack``): kept for its PDF, read when it is drawn."""
    created_at: datetime
    queue_for: timedelta
    render_for: timedelta
    failure: str | None = None
    forced_status: RenderStatus | None = None
    forced_at: datetime | None = None
    filename: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The render's data."""
        data: dict[str, Any] = unpack(self.packed_data)
        return data


@dataclass(frozen=True, slots=True)
class RenderState:
    """What a render looks like at one instant."""

    status: RenderStatus
    completed_at: datetime | None
    duration_ms: int | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class Share:
    """A share link. The token itself is not here: only its nonce and digest."""

    id: str
    render_id: str
    project_id: str
    sequence: int
    token_nonce: bytes
    token_digest: str
    channel: Channel
    recipient_email: str | None
    message: str | None
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None


@dataclass(frozen=True, slots=True)
class EngagementEvent:
    """One engagement event of a render."""

    id: str
    event_type: EventType
    share_id: str | None
    created_at: datetime
    packed_metadata: bytes | None = field(default=None, compare=False)
    """What the reporter sent with the event, packed; no answer shows it."""

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The event's metadata, if it has any."""
        return None if self.packed_metadata is None else unpack(self.packed_metadata)


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A composed email, ready for a transport."""

    sender: str
    to: str
    subject: str
    text: str
    html: str
    render_id: str
    share_id: str


@dataclass(frozen=True, slots=True)
class SentEmail:
    """An email as the outbox keeps it."""

    id: str
    email: OutgoingEmail
    sent_at: datetime
