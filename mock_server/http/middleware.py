"""The middleware in front of every route: one lookup per request, its rate limit, its journal.

For a public request it reads the ``Authorization`` header (or the share link in the path)
once, asks the store once, and leaves the typed answer on the request for the endpoint
(``requests.caller``); the request then belongs to that project, whose clock and rate limit
it meets and whose journal it joins. Every answer is journalled, an unexpected crash's
``500`` too, which this middleware answers itself (Starlette's own handler for it sits
outside user middleware). A store outage is answered in the envelope, naming the store.
Control calls pass only as ``control_guard`` allows (the token, and no web page).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.engines.interface import JournalEntry, StoreUnavailable
from mock_server.http.bodies import JSONResponse
from mock_server.http.control_guard import ControlGuard
from mock_server.http.recording import Recording
from mock_server.http.requests import CALLER, LINK, bearer_key
from mock_server.model import errors
from mock_server.model.clock import real_now
from mock_server.model.ids import Pseudonyms, redact_secrets
from mock_server.operations.callers import (
    Caller,
    Link,
    MalformedKey,
    NoKey,
    ProjectView,
    project_of,
)
from mock_server.operations.store import Store
from mock_server.operations.traffic import Traffic
from mock_server.settings import Settings

CONTROL_PREFIX = "/_mock"
_log = logging.getLogger("mock_server")


def store_unreachable(description: str, exc: StoreUnavailable) -> errors.ApiError:
    """The answer to any request while the store cannot be reached: it names the store."""
    return errors.Internal(
        f"The mock's store ({description}) is unreachable: {exc}. "
        "The mock retries on every request and recovers by itself once the store is back."
    )


class RequestGate:
    """ASGI middleware: look the caller up, refuse over-limit requests, journal every answer."""

    def __init__(
        self,
        app: ASGIApp,
        store: Store,
        traffic: Traffic,
        settings: Settings,
        pseudonym_key: bytes,
    ) -> None:
        self._app = app
        self._store = store
        self._traffic = traffic
        self._control = ControlGuard(settings)
        self._pseudonyms = Pseudonyms(pseudonym_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit or refuse the request, then journal its answer under its project."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        refusal = self._store.refusal
        if refusal is not None:
            await _answer(scope, receive, send, errors.Internal(refusal))
            return
        if scope["path"].startswith(CONTROL_PREFIX):
            refused = self._control.refusal(scope)
            if refused is None:
                await self._guarded(scope, receive, send, None)
            else:
                await _answer(scope, receive, send, refused)
            return
        try:
            view, now, retry_after = await self._admit(scope)
        except StoreUnavailable as exc:
            await _answer(scope, receive, send, store_unreachable(self._store.description, exc))
            return
        if retry_after is not None:
            limited = errors.RateLimited(
                f"Too many requests; retry after {retry_after} seconds",
                headers={"Retry-After": str(retry_after)},
            )
            await self._note(scope, limited.status, view, now)
            await _answer(scope, receive, send, limited)
            return
        await self._guarded(scope, receive, send, (view, now))

    async def _admit(self, scope: Scope) -> tuple[ProjectView | None, datetime, int | None]:
        """The request's project (looked up once, left on the scope) and its arrival time.

        The last value is the seconds to wait when its client is over the rate limit.
        """
        caller, link = await self._lookup(scope)
        scope.setdefault("state", {})[CALLER] = caller
        view = project_of(caller, link)
        if view is not None:
            now, limit, project_id = view.now(), view.faults.rate_limit_per_minute, view.project.id
        else:
            try:
                shared = await self._store.shared()
            except StoreUnavailable:
                # Nothing to count it against: the endpoint meets the outage itself (/health
                # asks the store directly, so it turns green the moment the store is back).
                return None, real_now(), None
            now = shared.clock.current()
            limit = (await self._store.shared_faults(shared)).rate_limit_per_minute
            project_id = None
        if limit is None:
            return view, now, None
        peer = scope.get("client")
        address = peer[0] if peer else "unknown"
        return view, now, await self._traffic.admit(project_id, address, limit, now)

    async def _lookup(self, scope: Scope) -> tuple[Caller, Link | None]:
        """The request's caller by its key, and its share link's lookup (left on the scope)."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                key = bearer_key(value.decode("latin-1"))
                if key is None:
                    return MalformedKey(), None
                return await self._store.caller_of_key(key), None
        parts = scope["path"].split("/", 3)
        if len(parts) > 2 and parts[1] == "share":
            link = await self._store.link(parts[2])
            scope.setdefault("state", {})[LINK] = (parts[2], link)
            return NoKey(), link
        return NoKey(), None

    async def _guarded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        journal: tuple[ProjectView | None, datetime] | None,
    ) -> None:
        """Run the app, journalling its answer; an unexpected crash answers 500 here.

        A project's request is journalled with the exchange itself (``Recording``), once
        its answer's last chunk is ready and before it is sent; any other at its start.
        """
        started = False
        noted = False
        recording = (
            Recording(scope, self._pseudonyms)
            if journal is not None and journal[0] is not None
            else None
        )

        async def recorded_receive() -> Message:
            message = await receive()
            if recording is not None:
                recording.received(message)
            return message

        async def journalled_send(message: Message) -> None:
            nonlocal started, noted
            if recording is not None:
                recording.sent(message)
            if message["type"] == "http.response.start":
                started = True
                if journal is not None and recording is None:
                    noted = True
                    await self._note(scope, message["status"], *journal)
            elif (
                journal is not None
                and recording is not None
                and message["type"] == "http.response.body"
                and not message.get("more_body", False)
            ):
                noted = True
                await self._note(scope, recording.status, *journal, recording.record())
            await send(message)

        try:
            await self._app(scope, recorded_receive, journalled_send)
        except Exception:
            _log.exception("Unexpected error answering %s %s", scope["method"], scope["path"])
            if started:
                if journal is not None and not noted and recording is not None:
                    await self._note(scope, recording.status, *journal, recording.record())
                raise
            crash = errors.Internal()
            if journal is not None:
                await self._note(scope, crash.status, *journal)
            await _answer(scope, receive, send, crash)

    async def _note(
        self,
        scope: Scope,
        status: int,
        view: ProjectView | None,
        at: datetime,
        exchange: bytes | None = None,
    ) -> None:
        """Journal the answer, at the instant the request arrived on its clock."""
        await self._traffic.record(
            JournalEntry(
                scope["method"],
                redact_secrets(scope["path"]),
                status,
                at,
                None if view is None else view.project.id,
                time.time(),
                exchange,
            )
        )


async def _answer(scope: Scope, receive: Receive, send: Send, error: errors.ApiError) -> None:
    response = JSONResponse(error.envelope(), error.status, error.headers)
    await response(scope, receive, send)
