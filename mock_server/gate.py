"""The HTTP gate in front of the public API: rate limits, the request journal, store outages.

Rate limits and the journal are about requests, not about the API's resources, so the gate
owns them and the store's operations never touch them (the engine keeps their data, so all
mock processes on one Redis share them). A request made with a project's key (whatever it
asks for), or to one of its share links, belongs to that project: it counts against the
project's rate limit, on the project's clock, and goes into the project's journal, so a
test reading its sandbox's journal sees only its own traffic. Other requests are counted per
address against the shared limit. Share tokens never reach the journal in plain text.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from datetime import datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server import errors
from mock_server.engine import JournalEntry, StoreUnavailable
from mock_server.ids import redact_tokens
from mock_server.settings import CONTROL_TOKEN_HEADER
from mock_server.store import Sandbox, Store
from mock_server.wire import LINK_STATE, SANDBOX_STATE, JSONResponse, bearer_key

CONTROL_PREFIX = "/_mock"


def store_unreachable(store: Store, exc: StoreUnavailable) -> errors.ApiError:
    """The answer to any request while the store cannot be reached: it names the store."""
    return errors.Internal(
        f"The mock's store ({store.engine.description}) is unreachable: {exc}. "
        "The mock retries on every request and recovers by itself once the store is back."
    )


class RequestGate:
    """ASGI middleware: refuse over-limit requests with 429, journal every answered one."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self._app = app
        self._store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit or refuse the request, then journal its answer under its project."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send)
        except StoreUnavailable as exc:
            await self._answer(scope, receive, send, store_unreachable(self._store, exc))

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"].startswith(CONTROL_PREFIX):
            if self._control_allowed(scope):
                await self._app(scope, receive, send)
            else:
                refused = errors.Unauthorized(
                    f"The control API needs the {CONTROL_TOKEN_HEADER} header "
                    "(this mock runs with CRAFTKIT_MOCK_CONTROL_TOKEN)"
                )
                await self._answer(scope, receive, send, refused)
            return
        box = await self._sandbox(scope)
        engine = self._store.engine
        if box is not None:
            now, limit, project_id = box.now(), box.faults.rate_limit_per_minute, box.project.id
        else:
            shared = await self._store.shared()
            now = shared.clock.current()
            limit = (await self._store.shared_faults(shared)).rate_limit_per_minute
            project_id = None
        if limit is not None:
            peer = scope.get("client")
            address = peer[0] if peer else "unknown"
            retry_after = await engine.admit(project_id, address, limit, now)
            if retry_after is not None:
                limited = errors.RateLimited(
                    f"Too many requests; retry after {retry_after} seconds",
                    headers={"Retry-After": str(retry_after)},
                )
                await self._note(scope, limited.status, box, now)
                await self._answer(scope, receive, send, limited)
                return

        async def journalled_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._note(scope, message["status"], box, now)
            await send(message)

        await self._app(scope, receive, journalled_send)

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send, error: errors.ApiError) -> None:
        response = JSONResponse(error.envelope(), error.status, error.headers)
        await response(scope, receive, send)

    def _control_allowed(self, scope: Scope) -> bool:
        """Whether a control request may pass: always, unless the mock has a control token."""
        expected = self._store.settings.control_token
        if expected is None:
            return True
        wanted = CONTROL_TOKEN_HEADER.lower().encode("latin-1")
        given = next((value for name, value in scope["headers"] if name == wanted), b"")
        return hmac.compare_digest(given, expected.encode("utf-8"))

    async def _sandbox(self, scope: Scope) -> Sandbox | None:
        """The live sandbox the request belongs to: by its key, else by its share link.

        The key's lookup is left in the scope, so the endpoint does not repeat it.
        """
        box: Sandbox | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                key = bearer_key(value.decode("latin-1"))
                if key:
                    box = await self._store.sandbox_of_key(key)
                    scope.setdefault("state", {})[SANDBOX_STATE] = (key, box)
                break
        else:
            parts = scope["path"].split("/", 3)
            if len(parts) > 2 and parts[1] == "share":
                link = await self._store.link(parts[2])
                scope.setdefault("state", {})[LINK_STATE] = (parts[2], link)
                box = None if link is None else link.box
        return box if box is not None and not box.project.deleted else None

    async def _note(self, scope: Scope, status: int, box: Sandbox | None, at: datetime) -> None:
        """Journal the answer, at the instant the request arrived on its clock."""
        entry = JournalEntry(
            scope["method"],
            redact_tokens(scope["path"]),
            status,
            at,
            None if box is None else box.project.id,
            time.time(),
        )
        # While the store is down the answer says so; the journal cannot keep it.
        with contextlib.suppress(StoreUnavailable):
            await self._store.engine.journal_record(entry)
