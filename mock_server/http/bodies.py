"""How records look on the wire: the JSON bodies of openapi.yaml and mock-control.yaml.

Built from the store's records; ``JSONResponse`` serialises them with orjson (several times
faster than the standard library).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from mock_server.engines.interface import EngagementView, JournalEntry, OutboxEntry
from mock_server.model.records import EngagementEvent, Render, RenderState, Share
from mock_server.model.timestamps import format_timestamp
from mock_server.model.webhooks import Delivery, Subscription
from mock_server.operations.store import EmailSent, NewShare, ShareListing
from mock_server.settings import Settings


class JSONResponse(Response):
    """A JSON response serialised with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise the content."""
        return orjson.dumps(content)


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


def created_share(created: NewShare) -> dict[str, Any]:
    """The body of a created share."""
    share = created.share
    return {
        "id": share.id,
        "shareToken": created.token,
        "shareUrl": created.url,
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
        "shareUrl": f"{base}/share/{token}",
    }


def revoked_share(share: Share) -> dict[str, Any]:
    """The body of a revoke."""
    assert share.revoked_at is not None
    return {"id": share.id, "revokedAt": format_timestamp(share.revoked_at)}


def emailed_share(sent: EmailSent) -> dict[str, Any]:
    """The body of ``POST /v1/renders/{id}/email``."""
    return {
        "id": sent.created.share.id,
        "shareToken": sent.created.token,
        "shareUrl": sent.created.url,
        "emailMessageId": sent.message_id,
        "sentAt": format_timestamp(sent.sent_at),
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

    def __init__(self) -> None:
        self._rows: dict[tuple[str, datetime | None, int, str], bytes] = {}

    def body(self, listing: ShareListing) -> bytes:
        """``{"shares": [...]}`` for the listing's rows, in their order."""
        rows_cache = self._rows
        base = listing.base
        encoded = []
        for row in listing.rows:
            share = row.share
            key = (share.id, share.revoked_at, row.clicks, base)
            line = rows_cache.get(key)
            if line is None:
                if len(rows_cache) >= ROW_CACHE_SIZE:
                    rows_cache.clear()
                line = rows_cache[key] = orjson.dumps(
                    listed_share(share, row.token, row.clicks, base)
                )
            encoded.append(line)
        return b'{"shares":[' + b",".join(encoded) + b"]}"


def engagement_body(engagement: EngagementView) -> dict[str, Any]:
    """The body of ``GET /v1/renders/{id}/engagement``."""
    return {
        "counts": engagement.counts,
        "linkOpens": engagement.link_opens,
        "total": engagement.total,
        "recent": [_event(event) for event in engagement.recent],
    }


def _event(event: EngagementEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "eventType": event.event_type,
        "shareId": event.share_id,
        "createdAt": format_timestamp(event.created_at),
    }


def email_body(entry: OutboxEntry) -> dict[str, Any]:
    """One kept email, as the control API shows it."""
    sent = entry.sent
    return {
        "id": sent.id,
        "projectId": entry.project_id,
        "from": sent.email.sender,
        "to": sent.email.to,
        "subject": sent.email.subject,
        "text": sent.email.text,
        "html": sent.email.html,
        "renderId": sent.email.render_id,
        "shareId": sent.email.share_id,
        "sentAt": format_timestamp(sent.sent_at),
    }


def journal_body(entry: JournalEntry) -> dict[str, Any]:
    """One answered request, as the control API shows it."""
    return {
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "time": format_timestamp(entry.at),
    }


def subscription_body(subscription: Subscription) -> dict[str, Any]:
    """A webhook subscription as the control API shows it (never its secret)."""
    return {
        "id": subscription.id,
        "url": subscription.url,
        "events": list(subscription.events),
        "active": subscription.active,
        "createdAt": format_timestamp(subscription.created_at),
    }


def delivery_body(delivery: Delivery) -> dict[str, Any]:
    """A webhook delivery and its attempts, as the control API shows them."""
    return {
        "id": delivery.id,
        "subscriptionId": delivery.subscription_id,
        "event": delivery.event,
        "status": delivery.state,
        "createdAt": format_timestamp(delivery.created_at),
        "nextAttemptAt": _optional_time(delivery.next_attempt_at),
        "payload": orjson.loads(delivery.payload),
        "attempts": [
            {
                "at": format_timestamp(attempt.at),
                "statusCode": attempt.status,
                "latencyMs": attempt.latency_ms,
                "error": attempt.error,
            }
            for attempt in delivery.attempts
        ],
    }
