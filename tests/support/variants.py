"""Deliberately broken variants of the mock, each one contract violation, for the suite to catch.

Each variant is the real mock with one thing changed, by replacing a method on its own store
instance or by rewriting its answers in a wrapper: the shipped mock has no switch for any of
them. ``breaks`` names the rule the suite must report as failed.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import craftkit_spec
from mock_server import Settings, create_app
from mock_server.engines.memory import MemoryEngine
from mock_server.model import errors, rules
from mock_server.model.ids import digest
from mock_server.model.records import Render, Share
from mock_server.model.timestamps import format_timestamp
from mock_server.operations.callers import DeletedProject, ProjectView, UnknownKey
from mock_server.operations.store import NewShare, ShareListing, ShareRow, Store

Rewrite = Callable[[str, str, int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


@dataclass(frozen=True)
class Variant:
    """One broken mock."""

    name: str
    breaks: str
    build: Callable[[], ASGIApp]


def _store(app: Starlette) -> Store:
    store: Store = app.state.store
    return store


class _Rewriter:
    """Buffers each answer and lets a function change its status, headers or body."""

    def __init__(self, app: ASGIApp, rewrite: Rewrite) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    headers = {k.decode(): v.decode() for k, v in start["headers"]}
                    status, headers, body = self.rewrite(
                        scope["method"], scope["path"], start["status"], headers, b"".join(chunks)
                    )
                    if "content-length" in headers:
                        headers["content-length"] = str(len(body))
                    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
                    await send({"type": "http.response.start", "status": status, "headers": raw})
                    await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def _rewritten(rewrite: Rewrite) -> Callable[[], ASGIApp]:
    return lambda: _Rewriter(create_app(), rewrite)


def _patched(
    patch: Callable[[Store], None], settings: Settings | None = None
) -> Callable[[], ASGIApp]:
    def build() -> ASGIApp:
        app = create_app(settings)
        patch(_store(app))
        return app

    return build


# ---- store-level variants --------------------------------------------------------------
# Each replaces one async method of the app's own store, or of its in-memory engine.

MESSAGE_MAX: int = craftkit_spec.fact("CreateShareRequest", "message", "maxLength")
REVOKE_REASON = craftkit_spec.revoke_reason()


def _engine(store: Store) -> MemoryEngine:
    engine = store._engine
    assert isinstance(engine, MemoryEngine)
    return engine


def _revoke_twice(store: Store) -> None:
    engine = _engine(store)

    async def revoke(
        project_id: str, render_id: str, share_id: str, at: Any, reason: str, event: Any
    ) -> Share | None:
        data = engine._projects[project_id]
        share = data.shares.get(share_id)
        if share is None:
            return None
        revoked = data.shares[share_id] = rules.revoke(share, at, reason)
        return revoked

    setattr(engine, "revoke_share", revoke)  # noqa: B010  # a method replaced on one instance


def _filtered_list(store: Store, keep: Callable[[list[ShareRow]], list[ShareRow]]) -> None:
    original = store.list_shares

    async def list_shares(view: ProjectView, render_id: str, origin: str) -> ShareListing:
        listing = await original(view, render_id, origin)
        return replace(listing, rows=keep(listing.rows))

    store.list_shares = list_shares  # type: ignore[method-assign]


def _oldest_first(store: Store) -> None:
    _filtered_list(store, lambda rows: list(reversed(rows)))


def _hide_revoked(store: Store) -> None:
    _filtered_list(store, lambda rows: [row for row in rows if row.share.revoked_at is None])


def _hide_email_shares(store: Store) -> None:
    _filtered_list(store, lambda rows: [row for row in rows if row.share.channel != "email"])


def _resolver(store: Store, ignores: Callable[[Share, ProjectView], bool]) -> None:
    """Replace the link resolver: let through the shares ``ignores`` says not to refuse."""

    async def resolve(token: str, looked_up: Any = None) -> tuple[ProjectView, Share, Render]:
        share = await store._engine.share_of_token(digest(token))
        view = None if share is None else await store._view(share.project_id)
        if share is None or view is None:
            raise errors.NotFound("Share link not found")
        if not (rules.share_resolves(share, view.now()) or ignores(share, view)):
            raise errors.NotFound("Share link not found")
        render = await store._engine.render(view.project.id, share.render_id)
        assert render is not None
        return view, share, render

    setattr(store, "resolve_share", resolve)  # noqa: B010  # a method replaced on one instance


def _resolve_revoked(store: Store) -> None:
    _resolver(store, lambda share, view: share.expires_at is None or view.now() < share.expires_at)


def _resolve_expired(store: Store) -> None:
    _resolver(store, lambda share, view: share.revoked_at is None)


def _share_unfinished(store: Store) -> None:
    async def create(view: ProjectView, render_id: str, **kw: Any) -> NewShare:
        render = await store._render(view, render_id)
        return await store._add_share(
            view,
            render,
            kw["channel"],
            kw["recipient_email"],
            kw["message"],
            kw["expires_at"],
            kw["origin"],
        )

    store.create_share = create  # type: ignore[method-assign]


def _unknown_key_403(store: Store) -> None:
    original = store.caller_of_key

    async def caller_of_key(api_key: str) -> Any:
        found = await original(api_key)
        return DeletedProject("unknown") if isinstance(found, UnknownKey) else found

    store.caller_of_key = caller_of_key  # type: ignore[method-assign]


def _cross_project(store: Store) -> None:
    engine = _engine(store)

    async def render(view: ProjectView, render_id: str) -> Render:
        for each in engine._projects.values():
            if render_id in each.renders:
                return each.renders[render_id]
        raise errors.NotFound("Render not found")

    store._render = render  # type: ignore[method-assign]


def _count_every_view(store: Store) -> None:
    async def record(
        view: ProjectView,
        share: Share,
        render: Any,
        event_type: Any,
        source_ip: str,
        user_agent: str | None = None,
    ) -> bool:
        event = store._event(event_type, share.id, view.now())
        await store._engine.record_event(view.project.id, share.render_id, event)
        return True

    store.record_share_event = record  # type: ignore[method-assign]


def _count_no_view(store: Store) -> None:
    async def record(
        view: ProjectView,
        share: Share,
        render: Any,
        event_type: Any,
        source_ip: str,
        user_agent: str | None = None,
    ) -> bool:
        return False

    store.record_share_event = record  # type: ignore[method-assign]


def _email_as_link(store: Store) -> None:
    original = store._add_share

    async def add(view: ProjectView, render: Render, channel: Any, *rest: Any) -> NewShare:
        return await original(view, render, "link", *rest)

    setattr(store, "_add_share", add)  # noqa: B010  # a method replaced on one instance


def _ignore_idempotency(store: Store) -> None:
    original = store.submit_render

    async def submit(view: ProjectView, **kw: Any) -> Any:
        return await original(view, **{**kw, "idempotency_key": None})

    store.submit_render = submit  # type: ignore[method-assign]


def _unknown_render_crashes(store: Store) -> None:
    original = store._render

    async def render(view: ProjectView, render_id: str) -> Render:
        if await store._engine.render(view.project.id, render_id) is None:
            raise RuntimeError("boom")
        return await original(view, render_id)

    store._render = render  # type: ignore[method-assign]


def _failed_send_drops_share(store: Store) -> None:
    original = store._add_share
    engine = _engine(store)

    async def add(view: ProjectView, render: Render, channel: Any, *rest: Any) -> NewShare:
        created = await original(view, render, channel, *rest)
        if channel == "email" and view.faults.email_send_fails:
            engine._projects[view.project.id].shares_by_render[render.id].remove(created.share.id)
        return created

    setattr(store, "_add_share", add)  # noqa: B010  # a method replaced on one instance


def _conflict_without_status(store: Store) -> None:
    original = store.download

    async def download(view: ProjectView, render_id: str) -> Any:
        try:
            return await original(view, render_id)
        except errors.Conflict:
            raise errors.Conflict("Render cannot be downloaded") from None

    store.download = download  # type: ignore[method-assign]


def _sloppy_message_limit(store: Store) -> None:
    """Off by one: a message of exactly the limit is refused."""
    original = store.create_share

    async def create(view: ProjectView, render_id: str, **kw: Any) -> NewShare:
        if kw.get("message") and len(kw["message"]) >= MESSAGE_MAX:
            raise errors.InvalidRequest(
                issues={"formErrors": [], "fieldErrors": {"message": ["Too long"]}}
            )
        return await original(view, render_id, **kw)

    store.create_share = create  # type: ignore[method-assign]


# ---- answer-level variants -------------------------------------------------------------


def _is(method: str, pattern: str, m: str, path: str) -> bool:
    return m == method and re.fullmatch(pattern, path) is not None


def _no_content_length(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    if _is("GET", r"/v1/renders/[^/]+/download", m, p):
        h.pop("content-length", None)
        h["transfer-encoding"] = "chunked"
    return s, h, b


def _inline_disposition(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    if "content-disposition" in h:
        h["content-disposition"] = h["content-disposition"].replace("attachment", "inline")
    return s, h, b


def _truncated_pdf(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    if _is("GET", r"/v1/renders/[^/]+/download", m, p) and s == 200:
        return s, h, b[: len(b) // 2]
    return s, h, b


def _unnormalised_expiry(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    if _is("POST", r"/v1/renders/[^/]+/shares", m, p) and s == 201:
        body = orjson.loads(b)
        if body.get("expiresAt"):
            body["expiresAt"] = body["expiresAt"].replace(".000Z", "Z")
        return s, h, orjson.dumps(body)
    return s, h, b


def _flat_errors(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    if s >= 400 and h.get("content-type", "").startswith("application/json"):
        body = orjson.loads(b)
        if isinstance(body.get("error"), dict):
            return s, h, orjson.dumps(body["error"])
    return s, h, b


def _no_retry_after(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    h.pop("retry-after", None)
    return s, h, b


def _engagement_missing_key(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    if _is("GET", r"/v1/renders/[^/]+/engagement", m, p) and s == 200:
        body = orjson.loads(b)
        body["counts"].pop("email_opened")
        return s, h, orjson.dumps(body)
    return s, h, b


def _no_greeting_mail(store: Store) -> None:
    engine = _engine(store)
    original = engine.keep_email

    async def keep(project_id: str, sent: Any) -> Any:
        email = sent.email
        email = replace(
            email, text=email.text.split("\n", 1)[1], html=email.html.split("</p>", 1)[1]
        )
        return await original(project_id, replace(sent, email=email))

    setattr(engine, "keep_email", keep)  # noqa: B010  # a method replaced on one instance


# ---- variants that need their own ASGI behaviour ----------------------------------------


class _ValidationBeforeAuth:
    """Answers invalid JSON with 400 before looking at the key."""

    def __init__(self) -> None:
        self.app = create_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError:
                error = orjson.dumps({"error": {"code": "invalid_json", "message": "bad"}})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": error})
                return

            async def replay() -> Message:
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


class _RacyRevoke:
    """Checks a revoke, yields to the event loop, then writes: a check-then-act race."""

    def __init__(self) -> None:
        self.app = create_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = re.fullmatch(r"/v1/renders/([^/]+)/shares/([^/]+)", scope.get("path", ""))
        if scope["type"] == "http" and scope["method"] == "DELETE" and match:
            store = _store(self.app)
            engine = _engine(store)
            owner = next(
                (data for data in engine._projects.values() if match.group(1) in data.renders),
                None,
            )
            share = owner.shares.get(match.group(2)) if owner is not None else None
            if (
                owner is not None
                and share is not None
                and share.render_id == match.group(1)
                and share.revoked_at is None
            ):
                view = await store._view(owner.project.id)
                assert view is not None
                await asyncio.sleep(0.05)  # the window another request slips through
                owner.shares[share.id] = rules.revoke(share, view.now(), REVOKE_REASON)
                body = orjson.dumps({"id": share.id, "revokedAt": format_timestamp(view.now())})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def more_fields(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    """A deployment that adds fields of its own to every object with an id: an id and a time.

    No object of the spec is closed, so this departs from nothing: neither the suite nor
    differential mode may fail it.
    """

    def widened(value: object) -> object:
        if isinstance(value, list):
            return [widened(item) for item in value]
        if not isinstance(value, dict):
            return value
        more = {
            "ownerId": "0193c2c3-0000-7000-8000-0000000000aa",
            "syncedAt": "2020-01-01T00:00:00.000Z",
        }
        return {k: widened(v) for k, v in value.items()} | (more if "id" in value else {})

    if s < 400 and h.get("content-type", "").startswith("application/json"):
        return s, h, orjson.dumps(widened(orjson.loads(b)))
    return s, h, b


class LiveLike:
    """The correct mock with its control API hidden, as a real deployment looks.

    A test may set a deployment up through the control API with ``backdoor``: a request
    that carries it in ``X-Test-Backdoor`` still reaches the control API.
    """

    def __init__(self, app: ASGIApp | None = None, backdoor: str | None = None) -> None:
        self.app = app or create_app()
        self.backdoor = backdoor.encode() if backdoor else None

    def _hidden(self, scope: Scope) -> bool:
        if scope["type"] != "http" or not scope["path"].startswith("/_mock"):
            return False
        return self.backdoor is None or (b"x-test-backdoor", self.backdoor) not in scope["headers"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._hidden(scope):
            body = orjson.dumps({"error": {"code": "not_found", "message": "No route"}})
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _make(cls: Callable[[], Any]) -> Callable[[], ASGIApp]:
    return lambda: cls()


VARIANTS: list[Variant] = [
    Variant("second revoke answers 200", "SHARE-REVOKE-ONCE", _patched(_revoke_twice)),
    Variant("list oldest first", "SHARE-LIST-ORDER", _patched(_oldest_first)),
    Variant("revoked rows left out of the list", "SHARE-LIST-ORDER", _patched(_hide_revoked)),
    Variant("email shares left out of the list", "STATE-MODEL", _patched(_hide_email_shares)),
    Variant("revoked link still resolves", "LINK-REVOKED-404", _patched(_resolve_revoked)),
    Variant("expired link still resolves", "LINK-EXPIRED-404", _patched(_resolve_expired)),
    Variant(
        "unfinished render shared (201, not 409)", "SHARE-NOT-READY", _patched(_share_unfinished)
    ),
    Variant("unknown key answers 403", "AUTH-UNKNOWN-KEY", _patched(_unknown_key_403)),
    Variant("another project's render is readable", "ISOLATION-RENDERS", _patched(_cross_project)),
    Variant("views not de-duplicated", "LINK-CLICK-COUNT", _patched(_count_every_view)),
    Variant("views not counted", "LINK-CLICK-COUNT", _patched(_count_no_view)),
    Variant("email makes a link-channel share", "EMAIL-SEND", _patched(_email_as_link)),
    Variant("idempotency key ignored", "RENDER-IDEMPOTENT", _patched(_ignore_idempotency)),
    Variant(
        "unknown render crashes (500)", "UNKNOWN-RENDER-404", _patched(_unknown_render_crashes)
    ),
    Variant("failed send drops the share", "EMAIL-SEND-FAILED", _patched(_failed_send_drops_share)),
    Variant(
        "409 conflict without the status", "DOWNLOAD-NOT-READY", _patched(_conflict_without_status)
    ),
    Variant(
        "2000-character message refused", "SHARE-MESSAGE-LIMIT", _patched(_sloppy_message_limit)
    ),
    Variant("mail without the greeting", "EMAIL-CONTENT", _patched(_no_greeting_mail)),
    Variant(
        "bodies over 1 MiB accepted",
        "PAYLOAD-TOO-LARGE",
        _patched(lambda store: None, Settings(max_body_bytes=8 * craftkit_spec.body_limit())),
    ),
    Variant("download without Content-Length", "DOWNLOAD-PDF", _rewritten(_no_content_length)),
    Variant("download inline, not attachment", "DOWNLOAD-PDF", _rewritten(_inline_disposition)),
    Variant("download truncated", "DOWNLOAD-PDF", _rewritten(_truncated_pdf)),
    Variant(
        "expiresAt echoed without milliseconds", "SHARE-ECHO", _rewritten(_unnormalised_expiry)
    ),
    Variant("errors not in the envelope", "AUTH-MISSING-KEY", _rewritten(_flat_errors)),
    Variant("429 without Retry-After", "FAULT-RATE-LIMIT", _rewritten(_no_retry_after)),
    Variant("engagement misses a count", "ENGAGEMENT-COUNTS", _rewritten(_engagement_missing_key)),
    Variant("body validated before the key", "AUTH-FIRST", _make(_ValidationBeforeAuth)),
    Variant("concurrent revokes both win", "SHARE-REVOKE-CONCURRENT", _make(_RacyRevoke)),
]


class _BodyRewriter:
    """Lets a function see (and replace) each POST body, or answer it itself."""

    def __init__(self, app: ASGIApp, rewrite: Callable[[str, bytes, str], Any]) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode()
        outcome = self.rewrite(scope["path"], body, content_type)
        if isinstance(outcome[0], int):  # (status, envelope): answered here
            status, envelope = outcome
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": orjson.dumps(envelope)})
            return
        new_body, new_type = outcome
        headers = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")
        ]
        headers += [
            (b"content-type", new_type.encode()),
            (b"content-length", str(len(new_body)).encode()),
        ]

        async def replay() -> Message:
            return {"type": "http.request", "body": new_body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


def _lenient_body_parser(path: str, body: bytes, content_type: str) -> Any:
    """Reads a body that is not sent as JSON as ``{}``, the slip of a type-sniffing server."""
    if not content_type.startswith("application/json"):
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            return b"{}", "application/json"
    return body, content_type or "application/json"


_ZOD_EMAIL = re.compile(
    r"(?!\.)(?!.*\.\.)[A-Za-z0-9_'+\-.]*[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}"
)
"""Zod 3's email() regex: no digit in the last label, no dot at either end of the name."""
_SPECIAL_USE = ("test", "example", "invalid", "localhost", "local", "onion", "arpa")
"""What email-validator refuses as a last label (Pydantic's EmailStr)."""


def _zod_like_checks(path: str, body: bytes, content_type: str) -> Any:
    """Refuses what Zod's and Pydantic's defaults refuse.

    Offsets in timestamps; unusual addresses (a digit in the last label, special-use names,
    dots out of place); and a body not sent as JSON (FastAPI parses only JSON content
    types: 400 invalid_request).
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        if not content_type.startswith("application/json"):
            return 400, {"error": {"code": "invalid_request", "message": "Expected JSON"}}
        return body, content_type
    if isinstance(data, dict):
        expiry = data.get("expiresAt")
        bad = isinstance(expiry, str) and not expiry.endswith("Z")
        for field in ("to", "recipientEmail"):
            value = data.get(field)
            if isinstance(value, str):
                unusual = not _ZOD_EMAIL.fullmatch(value)
                bad = bad or unusual or value.rsplit(".", 1)[-1].lower() in _SPECIAL_USE
        if bad:
            issues = {"formErrors": [], "fieldErrors": {"body": ["Invalid"]}}
            return 400, {
                "error": {"code": "invalid_request", "message": "Invalid", "issues": issues}
            }
    return body, content_type


def _no_echo_and_email_off_first(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    """No Idempotency-Key echo (notes B.15), and email off answered first (notes B.14).

    With email off, POST …/email answers 503 before it looks at the render: a 404 or 409 of
    the email route becomes the 503.
    """
    h.pop("idempotency-key", None)
    if m == "POST" and p.endswith("/email") and s in (404, 409):
        envelope = {"error": {"code": "email_not_configured", "message": "Email is off"}}
        return 503, h, orjson.dumps(envelope)
    return s, h, b


class PartBLiberties:
    """A correct deployment that decides every Part B point the other way it may.

    No email (503 email_not_configured, notes B.11), answered before the render is looked at
    (B.14); 404 for an unknown method (B.10); offsets and unusual addresses refused as Zod's
    and Pydantic's defaults refuse them (B.8, B.9); a body not sent as JSON refused as
    invalid_request (B.13); no Idempotency-Key echo (B.15); and the control API hidden: the
    suite must pass it, reporting the differences as deviations.
    """

    def __init__(self) -> None:
        inner = _BodyRewriter(create_app(Settings(email_transport="none")), _zod_like_checks)
        answers = _Rewriter(_Rewriter(inner, _no_405), _no_echo_and_email_off_first)
        self.app = LiveLike(answers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _no_405(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    if s == 405:
        h.pop("allow", None)
        return 404, h, orjson.dumps({"error": {"code": "not_found", "message": "Not found"}})
    return s, h, b


VARIANTS.append(
    Variant(
        "a non-JSON body not sent as JSON read as {}",
        "SHARE-BAD-BODY",
        lambda: _BodyRewriter(create_app(), _lenient_body_parser),
    )
)


def _revoked_at_drifts(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    if _is("DELETE", r"/v1/renders/[^/]+/shares/[^/]+", m, p) and s == 200:
        body = orjson.loads(b)
        body["revokedAt"] = "2000-01-01T00:00:00.000Z"
        return s, h, orjson.dumps(body)
    return s, h, b


def _revoke_through_any_render(store: Store) -> None:
    engine = _engine(store)

    async def revoke(view: ProjectView, render_id: str, share_id: str) -> Share:
        await store._render(view, render_id)  # the render must exist, but need not be the parent
        shares = engine._projects[view.project.id].shares
        share = shares.get(share_id)
        if share is None or share.revoked_at is not None:
            raise errors.NotFound("Share not found")
        revoked = shares[share_id] = rules.revoke(share, view.now(), REVOKE_REASON)
        return revoked

    store.revoke_share = revoke  # type: ignore[method-assign]


class _HeadAsGet:
    """Hands HEAD requests on share links to the app as GET: they count as visits."""

    def __init__(self) -> None:
        self.app = create_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)


VARIANTS += [
    Variant(
        "revoke answers another revokedAt than the list",
        "VALUES-AGREE",
        _rewritten(_revoked_at_drifts),
    ),
    Variant(
        "a share revoked through any render of its project",
        "WRONG-PARENT-404",
        _patched(_revoke_through_any_render),
    ),
    Variant("HEAD on a link counts a view", "LINK-HEAD-NOT-COUNTED", _make(_HeadAsGet)),
]


# ---- blind spots the suite once waved through (issue #20), each the bug as seen in the wild --


def _dedup_ignores_the_address(store: Store) -> None:
    original = store.record_share_event

    async def record(
        view: ProjectView,
        share: Share,
        render: Any,
        event_type: Any,
        source_ip: str,
        user_agent: str | None = None,
    ) -> bool:
        return await original(view, share, render, event_type, "everyone", user_agent)

    store.record_share_event = record  # type: ignore[method-assign]


def _list_holds_the_projects_shares(store: Store) -> None:
    engine = _engine(store)
    original = store.list_shares

    async def list_shares(view: ProjectView, render_id: str, origin: str) -> ShareListing:
        listing = await original(view, render_id, origin)
        data = engine._projects[view.project.id]
        every = sorted(data.shares.values(), key=lambda s: (s.created_at, s.sequence), reverse=True)
        rows = [ShareRow(s, store._minter.token(s.token_nonce), data.clicks[s.id]) for s in every]
        return replace(listing, rows=rows)

    store.list_shares = list_shares  # type: ignore[method-assign]


def _email_drops_the_expiry(store: Store) -> None:
    original = store.email_render

    async def email(view: ProjectView, render_id: str, **kw: Any) -> Any:
        return await original(view, render_id, **{**kw, "expires_at": None})

    store.email_render = email  # type: ignore[method-assign]


def _limits_in_bytes(store: Store) -> None:
    original = store.create_share

    async def create(view: ProjectView, render_id: str, **kw: Any) -> NewShare:
        message = kw.get("message")
        if message is not None and len(message.encode("utf-8")) > MESSAGE_MAX:
            raise errors.InvalidRequest(
                issues={"formErrors": [], "fieldErrors": {"message": ["Too long"]}}
            )
        return await original(view, render_id, **kw)

    store.create_share = create  # type: ignore[method-assign]


def _idempotency_keys_across_projects(store: Store) -> None:
    engine = _engine(store)
    keys: dict[str, Render] = {}
    original = store.submit_render

    async def submit(view: ProjectView, **kw: Any) -> Any:
        key = kw.get("idempotency_key")
        if key is not None and key in keys:
            render = keys[key]
            return render, rules.render_state(render, view.now()), False
        made = await original(view, **kw)
        if key is not None:
            keys[key] = made[0]
        return made

    del engine  # the keys live beside the engine, as a global cache would
    store.submit_render = submit  # type: ignore[method-assign]


def _lenient_expiry(path: str, body: bytes, content_type: str) -> Any:
    """A deployment whose validator takes any expiresAt and stores what it can make of it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body, content_type
    if isinstance(data, dict) and path.endswith("/shares") and "expiresAt" in data:
        # Whatever it was (a number, a date, a space for T, no zone, out of range): a date.
        value = data["expiresAt"]
        wellformed = isinstance(value, str) and "T" in value and value.endswith("Z")
        if not wellformed or value.startswith("0001"):
            data["expiresAt"] = "2027-01-01T00:00:00Z"
        return orjson.dumps(data), "application/json"
    return body, content_type


def _wrong_disposition(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    if "content-disposition" in h:
        h["content-disposition"] = 'attachment; filename="00000000-0000-7000-8000-000000000000.pdf"'
    return s, h, b


VARIANTS += [
    Variant(
        "views de-duplicated whatever the address",
        "LINK-CLICK-PER-ADDRESS",
        _patched(_dedup_ignores_the_address),
    ),
    Variant(
        "a render's list holds the whole project's shares",
        "SHARE-LIST-OWN-RENDER",
        _patched(_list_holds_the_projects_shares),
    ),
    Variant(
        "an emailed share drops its expiresAt", "EMAIL-EXPIRY", _patched(_email_drops_the_expiry)
    ),
    Variant(
        "the message limit counted in UTF-8 bytes",
        "SHARE-LIMITS-IN-CHARACTERS",
        _patched(_limits_in_bytes),
    ),
    Variant(
        "Idempotency-Key looked up across projects",
        "RENDER-IDEMPOTENT-PER-PROJECT",
        _patched(_idempotency_keys_across_projects),
    ),
    Variant(
        "expiresAt taken in any form",
        "SHARE-EXPIRY-NOT-ISO",
        lambda: _BodyRewriter(create_app(), _lenient_expiry),
    ),
    Variant(
        "Content-Disposition names another file",
        "DOWNLOAD-PDF",
        _rewritten(_wrong_disposition),
    ),
]


# ---- deployments that take the decisions about a share's life otherwise (notes B.3, B.4) --


def _expired_shares_are_gone(store: Store) -> None:
    """Expired rows left out of the list, and an expired share not revocable (notes B.4)."""
    engine = _engine(store)
    list_original, revoke_original = store.list_shares, store.revoke_share

    def expired(share: Share, view: ProjectView) -> bool:
        return share.expires_at is not None and share.expires_at <= view.now()

    async def list_shares(view: ProjectView, render_id: str, origin: str) -> ShareListing:
        listing = await list_original(view, render_id, origin)
        return replace(listing, rows=[r for r in listing.rows if not expired(r.share, view)])

    async def revoke(view: ProjectView, render_id: str, share_id: str) -> Share:
        share = engine._projects[view.project.id].shares.get(share_id)
        if share is not None and share.revoked_at is None and expired(share, view):
            raise errors.NotFound("Share not found")
        return await revoke_original(view, render_id, share_id)

    store.list_shares = list_shares  # type: ignore[method-assign]
    store.revoke_share = revoke  # type: ignore[method-assign]


_SHARE_FIELDS = frozenset(
    craftkit_spec.declared_properties(craftkit_spec.component("CreateShareRequest"))
)


def _already_past(expiry: object) -> bool:
    """Whether an ``expiresAt`` the mock would take is before now (a deployment's clock)."""
    try:
        instant = datetime.fromisoformat(str(expiry))
    except ValueError:
        return False  # not a timestamp: the mock refuses it itself
    return instant.tzinfo is not None and instant <= datetime.now(UTC)


def _strict_share_bodies(path: str, body: bytes, content_type: str) -> Any:
    """Unknown fields and an expiry already past refused with a 400 (notes B.3)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body, content_type
    if not (re.fullmatch(r"/v1/renders/[^/]+/shares", path) and isinstance(data, dict)):
        return body, content_type
    unknown = sorted(set(data) - _SHARE_FIELDS)
    past = _already_past(data.get("expiresAt"))
    if unknown or past:
        field = unknown[0] if unknown else "expiresAt"
        issues = {"formErrors": [], "fieldErrors": {field: ["Not allowed"]}}
        return 400, {"error": {"code": "invalid_request", "message": "Invalid", "issues": issues}}
    return body, content_type


class ExpiredSharesGone:
    """A correct deployment that drops expired shares from the list and will not revoke them."""

    def __init__(self) -> None:
        self.app = LiveLike(_patched(_expired_shares_are_gone)())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class StrictShareBodies:
    """A correct deployment that refuses unknown fields and a past expiry on a new share."""

    def __init__(self) -> None:
        self.app = LiveLike(_BodyRewriter(create_app(), _strict_share_bodies))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


# ---- webhooks (issue #22): deliveries as a broken deployment might send them -------------


def _signs_with_another_key(store: Store) -> None:
    hooks = store.webhooks
    sealer = hooks._sealer
    original = sealer.open

    def opened(nonce: bytes, sealed: bytes) -> bytes | None:
        secret = original(nonce, sealed)
        return None if secret is None else secret + b"!"

    sealer.open = opened  # type: ignore[method-assign]


def _drops_the_timestamp_header(store: Store) -> None:
    async def drop(request: httpx.Request) -> None:
        del request.headers["x-craftkit-timestamp"]

    store.webhooks._client = httpx.AsyncClient(
        follow_redirects=False, trust_env=False, event_hooks={"request": [drop]}
    )


def _retries_under_a_new_delivery_id(store: Store) -> None:
    hooks = store.webhooks
    original = hooks._send

    async def send(delivery: Any, subscription: Any, at: datetime) -> Any:
        if delivery.attempts:
            delivery = replace(delivery, id=str(uuid.uuid4()))
        return await original(delivery, subscription, at)

    hooks._send = send  # type: ignore[method-assign]


def _no_delivery_for(event_type: str) -> Callable[[Store], None]:
    """A patch under which the one kind of engagement event is never delivered."""

    def patch(store: Store) -> None:
        hooks = store.webhooks
        original = hooks.document_event

        async def document_event(
            view: ProjectView, render: Render, event: Any, **more: Any
        ) -> None:
            if event.event_type != event_type:
                await original(view, render, event, **more)

        hooks.document_event = document_event  # type: ignore[method-assign]

    return patch


def _every_project_delivers_to_every_subscription(store: Store) -> None:
    hooks = store.webhooks
    ledger = hooks._ledger
    original = ledger.subscriptions
    engine = _engine(store)

    async def subscriptions(project_id: str) -> list[Any]:
        return [s for each in list(engine._projects) for s in await original(each)]

    ledger.subscriptions = subscriptions  # type: ignore[method-assign]


VARIANTS += [
    Variant(
        "webhooks signed with another key",
        "WEBHOOK-SHARE-EVENTS",
        _patched(_signs_with_another_key),
    ),
    Variant(
        "webhooks without x-craftkit-timestamp",
        "WEBHOOK-SHARE-EVENTS",
        _patched(_drops_the_timestamp_header),
    ),
    Variant(
        "a webhook retry under a new delivery id",
        "WEBHOOK-RETRY-SAME-ID",
        _patched(_retries_under_a_new_delivery_id),
    ),
    Variant(
        "no webhook for a revoke",
        "WEBHOOK-SHARE-EVENTS",
        _patched(_no_delivery_for("share_revoked")),
    ),
    Variant(
        "no webhook for an email sent",
        "WEBHOOK-EMAIL-EVENTS",
        _patched(_no_delivery_for("email_sent")),
    ),
    Variant(
        "webhooks of every project sent to every subscription",
        "WEBHOOK-OWN-PROJECT",
        _patched(_every_project_delivers_to_every_subscription),
    ),
]
