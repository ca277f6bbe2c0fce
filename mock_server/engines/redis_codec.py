"""Records as bytes for the Redis engine: compact JSON, instants as integer milliseconds.

The mock's clock has millisecond resolution, so an instant survives the round trip exactly;
a share's token nonce is hex (the token itself is never written, only its digest).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import orjson

from mock_server.engines.interface import JournalEntry, OutboxEntry
from mock_server.model.clock import EARLIEST, ClockState
from mock_server.model.records import (
    EngagementEvent,
    OutgoingEmail,
    Project,
    Render,
    SentEmail,
    Share,
    pack,
)


def millis(instant: datetime) -> int:
    """Milliseconds since 1970 (the clock never goes earlier)."""
    delta = instant - EARLIEST
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def instant(ms: int) -> datetime:
    """The instant ``ms`` milliseconds after 1970, UTC."""
    return EARLIEST + timedelta(milliseconds=ms)


def _opt_millis(value: datetime | None) -> int | None:
    return None if value is None else millis(value)


def _opt_instant(value: int | None) -> datetime | None:
    return None if value is None else instant(value)


def _load(raw: bytes | str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(raw)
    return loaded


def encode_project(project: Project) -> bytes:
    """A project record (without its ``deleted`` mark, which the engine keeps apart)."""
    return orjson.dumps([project.id, project.name, project.share_domain, project.email_from])


def decode_project(raw: bytes | str, deleted: bool) -> Project:
    """A project record back."""
    project_id, name, share_domain, email_from = orjson.loads(raw)
    return Project(project_id, name, share_domain, email_from, deleted)


def encode_clock(clock: ClockState) -> bytes:
    """A clock's offset and frozen instant."""
    return orjson.dumps([clock.offset_ms, clock.frozen_at_ms])


def decode_clock(raw: bytes | str) -> ClockState:
    """A clock back."""
    offset, frozen = orjson.loads(raw)
    return ClockState(offset, frozen)


def _packed_data(r: dict[str, Any]) -> bytes:
    if "packed" in r:
        return base64.b64decode(r["packed"])
    if "deepData" in r:  # kept before renders were packed: the same marshal, in base64
        return base64.b64decode(r["deepData"])
    return pack(r["data"])


def encode_render(render: Render) -> bytes:
    """A render.

    The data stays packed as the model keeps it (marshal, version 4: stable across Python
    releases, and any depth the API accepts), in base64.
    """
    fields = {
        "id": render.id,
        "project": render.project_id,
        "slug": render.template_slug,
        "name": render.template_name,
        "version": render.version,
        "packed": base64.b64encode(render.packed_data).decode("ascii"),
        "created": millis(render.created_at),
        "queue": render.queue_for // timedelta(milliseconds=1),
        "render": render.render_for // timedelta(milliseconds=1),
        "failure": render.failure,
        "forced": render.forced_status,
        "forcedAt": _opt_millis(render.forced_at),
        "filename": render.filename,
    }
    return orjson.dumps(fields)


def decode_render(raw: bytes | str) -> Render:
    """A render back."""
    r = _load(raw)
    return Render(
        id=r["id"],
        project_id=r["project"],
        template_slug=r["slug"],
        template_name=r["name"],
        version=r["version"],
        packed_data=_packed_data(r),
        created_at=instant(r["created"]),
        queue_for=timedelta(milliseconds=r["queue"]),
        render_for=timedelta(milliseconds=r["render"]),
        failure=r["failure"],
        forced_status=r["forced"],
        forced_at=_opt_instant(r["forcedAt"]),
        filename=r["filename"],
    )


def encode_share(share: Share) -> bytes:
    """A share as created (its revocation is kept apart, so one write can decide it)."""
    return orjson.dumps(
        {
            "id": share.id,
            "render": share.render_id,
            "project": share.project_id,
            "nonce": share.token_nonce.hex(),
            "digest": share.token_digest,
            "channel": share.channel,
            "to": share.recipient_email,
            "message": share.message,
            "expires": _opt_millis(share.expires_at),
            "created": millis(share.created_at),
        }
    )


def decode_share(raw: bytes | str, revoked: bytes | str | None) -> Share:
    """A share back, with its number and, if revoked, when and why.

    The number is written into the record by the script that keeps the share.
    """
    s = _load(raw)
    revoked_at, reason = (None, None) if revoked is None else orjson.loads(revoked)
    return Share(
        id=s["id"],
        render_id=s["render"],
        project_id=s["project"],
        sequence=s["seq"],
        token_nonce=bytes.fromhex(s["nonce"]),
        token_digest=s["digest"],
        channel=s["channel"],
        recipient_email=s["to"],
        message=s["message"],
        expires_at=_opt_instant(s["expires"]),
        created_at=instant(s["created"]),
        revoked_at=_opt_instant(revoked_at),
        revoked_reason=reason,
    )


def encode_revocation(share: Share) -> bytes:
    """When and why a share was revoked."""
    return orjson.dumps([_opt_millis(share.revoked_at), share.revoked_reason])


def encode_event(event: EngagementEvent) -> bytes:
    """An engagement event."""
    metadata = event.packed_metadata
    return orjson.dumps(
        [
            event.id,
            event.event_type,
            event.share_id,
            millis(event.created_at),
            None if metadata is None else base64.b64encode(metadata).decode("ascii"),
        ]
    )


def decode_event(raw: bytes | str) -> EngagementEvent:
    """An engagement event back."""
    event_id, event_type, share_id, at, metadata = orjson.loads(raw)
    if isinstance(metadata, dict):  # kept before metadata was packed
        packed: bytes | None = pack(metadata)
    else:
        packed = None if metadata is None else base64.b64decode(metadata)
    return EngagementEvent(event_id, event_type, share_id, instant(at), packed)


def encode_outbox(entry: OutboxEntry) -> bytes:
    """A kept email."""
    mail = entry.sent.email
    return orjson.dumps(
        [
            entry.sequence,
            entry.project_id,
            entry.sent.id,
            millis(entry.sent.sent_at),
            [
                mail.sender,
                mail.to,
                mail.subject,
                mail.text,
                mail.html,
                mail.render_id,
                mail.share_id,
            ],
        ]
    )


def decode_outbox(raw: bytes | str) -> OutboxEntry:
    """A kept email back."""
    sequence, project_id, sent_id, sent_at, mail = orjson.loads(raw)
    return OutboxEntry(
        sequence, project_id, SentEmail(sent_id, OutgoingEmail(*mail), instant(sent_at))
    )


def encode_journal(entry: JournalEntry) -> bytes:
    """An answered request."""
    fields = [
        entry.method, entry.path, entry.status, millis(entry.at), entry.project_id, entry.recorded
    ]  # fmt: skip
    if entry.exchange is not None:
        fields.append(base64.b64encode(entry.exchange).decode("ascii"))
    return orjson.dumps(fields)


def decode_journal(raw: bytes | str) -> JournalEntry:
    """An answered request back (one journalled before exchanges were kept has none)."""
    method, path, status, at, project_id, recorded, *exchange = orjson.loads(raw)
    kept = base64.b64decode(exchange[0]) if exchange else None
    return JournalEntry(method, path, status, instant(at), project_id, recorded, kept)
