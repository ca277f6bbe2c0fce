"""Domain rules of the Shares & delivery API, pure and framework-free.

Records are frozen dataclasses; rules are functions of a record and the current instant.
Render status is derived from the clock rather than advanced by background tasks, so a test
that moves the clock sees exactly the state the rules imply, with nothing to wait for.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

RenderStatus = Literal["queued", "rendering", "succeeded", "failed"]
RENDER_STATUSES: tuple[RenderStatus, ...] = get_args(RenderStatus)
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed"})

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
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
RECIPIENT_EVENTS: frozenset[str] = frozenset({"viewed", "downloaded", "printed"})

DEDUP_WINDOW = timedelta(minutes=5)
REVOKED_BY_PARTNER = "revoked_by_partner"

FAILURE_DATA_KEY = "_mockFailure"
"""A render whose ``data`` holds this key (a string) ends ``failed`` with it as the message."""


@functools.lru_cache(maxsize=65536)
def format_timestamp(instant: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``: ``2026-12-31T23:59:59.000Z``.

    Cached: a share list formats the same few instants on every request.
    """
    utc = instant.astimezone(UTC)
    # Not strftime: its %Y does not zero-pad years before 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def parse_timestamp(text: str) -> datetime:
    """Parse an input timestamp (already checked against the spec) to UTC milliseconds.

    The zone is ``Z`` or an offset (``+02:00``); fractional seconds of any precision are
    truncated to milliseconds, as a JavaScript ``Date`` would hold them. ``ValueError`` for
    an instant that has no UTC counterpart a ``datetime`` can hold.
    """
    match = _INPUT_TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO 8601 date-time with a zone: {text!r}")
    head, fraction, zone = match.groups()
    try:
        parsed = datetime.fromisoformat(head + ("+00:00" if zone == "Z" else zone))
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None
    millis = int((fraction[1:] + "000")[:3]) if fraction else 0
    return utc.replace(microsecond=millis * 1000)


_INPUT_TIMESTAMP = re.compile(r"(.+?)(\.\d+)?(Z|[+-]\d{2}:\d{2})")


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
    data: dict[str, Any]
    created_at: datetime
    queue_for: timedelta
    render_for: timedelta
    failure: str | None = None
    forced_status: RenderStatus | None = None
    forced_at: datetime | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class RenderState:
    """What a render looks like at one instant."""

    status: RenderStatus
    completed_at: datetime | None
    duration_ms: int | None
    error_message: str | None


def render_failure(data: dict[str, Any]) -> str | None:
    """The failure a render's data asks for, if any."""
    failure = data.get(FAILURE_DATA_KEY)
    return failure if isinstance(failure, str) and failure else None


def render_state(render: Render, now: datetime) -> RenderState:
    """The render's status at ``now``: queued → rendering → succeeded | failed on the clock."""
    if render.forced_status is not None:
        status = render.forced_status
        if status in TERMINAL_STATUSES:
            completed = render.forced_at or now
            duration = int((completed - render.created_at).total_seconds() * 1000)
            message = (render.failure or "Render failed") if status == "failed" else None
            return RenderState(status, completed, max(duration, 0), message)
        return RenderState(status, None, None, None)
    started = render.created_at + render.queue_for
    completed = started + render.render_for
    if now < started:
        return RenderState("queued", None, None, None)
    if now < completed:
        return RenderState("rendering", None, None, None)
    duration = int(render.render_for.total_seconds() * 1000)
    if render.failure is not None:
        return RenderState("failed", completed, duration, render.failure)
    return RenderState("succeeded", completed, duration, None)


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


def share_resolves(share: Share, now: datetime) -> bool:
    """Whether the public link works: not revoked, and not at or past its expiry."""
    if share.revoked_at is not None:
        return False
    return share.expires_at is None or now < share.expires_at


def revoke(share: Share, now: datetime) -> Share:
    """The share revoked by its partner at ``now``."""
    return replace(share, revoked_at=now, revoked_reason=REVOKED_BY_PARTNER)


def newest_first(shares: list[Share]) -> list[Share]:
    """Order shares newest first; creation order breaks ties of equal timestamps."""
    return sorted(shares, key=lambda s: (s.created_at, s.sequence), reverse=True)


def share_base(
    *,
    custom_domain: str | None,
    share_base_url: str | None,
    app_url: str | None,
    request_origin: str,
) -> str:
    """The base of share URLs: custom domain, else SHARE_BASE_URL, else APP_URL, else origin."""
    for candidate in (custom_domain, share_base_url, app_url):
        if candidate:
            return candidate.rstrip("/")
    return request_origin.rstrip("/")


def counts_again(last_counted: datetime | None, now: datetime) -> bool:
    """Whether a recipient event counts: none counted for its key within the last 5 minutes."""
    return last_counted is None or now - last_counted >= DEDUP_WINDOW


@dataclass(frozen=True, slots=True)
class EngagementEvent:
    """One engagement event of a render."""

    id: str
    event_type: EventType
    share_id: str | None
    created_at: datetime
    metadata: dict[str, Any] | None = field(default=None, compare=False)
