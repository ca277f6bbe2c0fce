"""How records look on the wire: the JSON bodies of openapi.yaml, built from store records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from mock_server.domain import EngagementEvent, Render, RenderState, Share, format_timestamp
from mock_server.engine import EngagementView
from mock_server.settings import Settings


def _optional_time(value: Any) -> str | None:
    return None if value is None else format_timestamp(value)


def download_url(
    render: Render, state: RenderState, api_origin: str, settings: Settings
) -> str | None:
    """``null`` until succeeded; then the public object URL or the authenticated route."""
    if state.status != "succeeded":
        return None
    if settings.s3_public_url:
        return f"{settings.s3_public_url}/{render.project_id}/{render.id}.pdf"
    return f"{api_origin}/v1/renders/{render.id}/download"


def render_submission(
    render: Render, state: RenderState, api_origin: str, settings: Settings
) -> dict[str, Any]:
    """The body of a render submission (new or replayed)."""
    return {
        "id": render.id,
        "status": state.status,
        "pollUrl": f"{api_origin}/v1/renders/{render.id}",
        "downloadUrl": download_url(render, state, api_origin, settings),
        "errorMessage": state.error_message,
        "createdAt": format_timestamp(render.created_at),
    }


def render_body(
    render: Render, state: RenderState, api_origin: str, settings: Settings
) -> dict[str, Any]:
    """The body of ``GET /v1/renders/{id}``."""
    return render_submission(render, state, api_origin, settings) | {
        "completedAt": _optional_time(state.completed_at),
        "durationMs": state.duration_ms,
    }


def share_url(base: str, token: str) -> str:
    """``{shareBase}/share/{shareToken}``."""
    return f"{base}/share/{token}"


def created_share(share: Share, token: str, base: str) -> dict[str, Any]:
    """The body of a created share."""
    return {
        "id": share.id,
        "shareToken": token,
        "shareUrl": share_url(base, token),
        "channel": share.channel,
        "recipientEmail": share.recipient_email,
        "message": share.message,
        "expiresAt": _optional_time(share.expires_at),
        "revokedAt": None,
        "createdAt": format_timestamp(share.created_at),
    }


def listed_share(share: Share, token: str, click_count: int, base: str) -> dict[str, Any]:
    """One row of the share list."""
    return {
        "id": share.id,
        "channel": share.channel,
        "recipientEmail": share.recipient_email,
        "message": share.message,
        "revokedAt": _optional_time(share.revoked_at),
        "revokedReason": share.revoked_reason,
        "expiresAt": _optional_time(share.expires_at),
        "createdAt": format_timestamp(share.created_at),
        "shareToken": token,
        "clickCount": click_count,
        "shareUrl": share_url(base, token),
    }


ROW_CACHE_SIZE = 65_536
"""Encoded share-list rows kept per mock process (the cache is dropped when full)."""


class ShareListEncoder:
    """Share lists as JSON bytes, each row encoded once per state it is shown in.

    A row is a function of the share (whose only changing fields are its revocation), its
    click count and the share base, so those are the cache key: nothing needs invalidating.
    A list of 100 unchanged rows is then 100 lookups and one join, where building and
    serialising the rows took most of the request.
    """

    def __init__(self, token: Callable[[Share], str]) -> None:
        self._token = token
        self._rows: dict[tuple[str, datetime | None, int, str], bytes] = {}

    def body(self, rows: list[tuple[Share, int]], base: str) -> bytes:
        """``{"shares": [...]}`` for rows of (share, click count), in their order."""
        rows_cache = self._rows
        encoded = []
        for share, clicks in rows:
            key = (share.id, share.revoked_at, clicks, base)
            row = rows_cache.get(key)
            if row is None:
                if len(rows_cache) >= ROW_CACHE_SIZE:
                    rows_cache.clear()
                row = rows_cache[key] = orjson.dumps(
                    listed_share(share, self._token(share), clicks, base)
                )
            encoded.append(row)
        return b'{"shares":[' + b",".join(encoded) + b"]}"


def engagement_body(view: EngagementView) -> dict[str, Any]:
    """The body of ``GET /v1/renders/{id}/engagement``."""
    return {
        "counts": view.counts,
        "linkOpens": view.link_opens,
        "total": view.total,
        "recent": [_event(event) for event in view.recent],
    }


def _event(event: EngagementEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "eventType": event.event_type,
        "shareId": event.share_id,
        "createdAt": format_timestamp(event.created_at),
    }
