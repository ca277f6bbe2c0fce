"""The API's rules as pure functions of a record and an instant.

Render status is derived from the clock rather than advanced by background tasks, so a test
that moves the clock sees exactly the state the rules imply, with nothing to wait for. The
spec's facts a rule needs (the de-duplication window, the revoke reason) are its arguments:
the operations read them from openapi.yaml, so no number or word of the contract is typed
here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from mock_server.model.records import (
    FAILURE_DATA_KEY,
    TERMINAL_STATUSES,
    Render,
    RenderState,
    Share,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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


def share_resolves(share: Share, now: datetime) -> bool:
    """Whether the public link works: not revoked, and not at or past its expiry."""
    if share.revoked_at is not None:
        return False
    return share.expires_at is None or now < share.expires_at


def revoke(share: Share, now: datetime, reason: str) -> Share:
    """The share revoked at ``now`` for ``reason`` (the spec's ``revokedReason``)."""
    return replace(share, revoked_at=now, revoked_reason=reason)


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


def counts_again(last_counted: datetime | None, now: datetime, window: timedelta) -> bool:
    """Whether a recipient event counts: none counted for its key within the last ``window``."""
    return last_counted is None or now - last_counted >= window
