"""The HTTP gate in front of the public API: rate limits and the request journal.

Both are about requests, not about the API's resources, so they live here at the edge and
not in the store's operations. A request made with a project's key (whatever it asks for),
or to one of its share links, belongs to that project: it counts against the project's rate
limit, on the project's clock, and goes into the project's journal, so a test reading its
sandbox's journal sees only its own traffic. Other requests are counted per address against
the shared limit. Share tokens never reach the journal in plain text.
"""

from __future__ import annotations

import collections
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server import errors
from mock_server.ids import redact_tokens
from mock_server.settings import CONTROL_TOKEN_HEADER
from mock_server.store import Project, Store
from mock_server.wire import JSONResponse, bearer_key

CONTROL_PREFIX = "/_mock"

_WINDOW = timedelta(minutes=1)
_SWEEP_AT = 10_000


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request the mock answered."""

    method: str
    path: str
    status: int
    at: datetime
    project_id: str | None


class RequestJournal:
    """The newest answered requests: all of them, and each project's own, each bounded."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._all: collections.deque[JournalEntry] = collections.deque(maxlen=size)
        self._by_project: dict[str, collections.deque[JournalEntry]] = {}

    def record(self, entry: JournalEntry) -> None:
        """Keep one entry (the oldest go first once a journal is full)."""
        self._all.appendleft(entry)
        if entry.project_id is not None:
            own = self._by_project.get(entry.project_id)
            if own is None:
                own = self._by_project[entry.project_id] = collections.deque(maxlen=self._size)
            own.appendleft(entry)

    def entries(self, project_id: str | None = None) -> list[JournalEntry]:
        """Newest first: every request, or one project's."""
        if project_id is None:
            return list(self._all)
        return list(self._by_project.get(project_id, ()))

    def forget(self, project_id: str) -> None:
        """Drop a project's requests (from its own journal and the shared one)."""
        self._by_project.pop(project_id, None)
        self._all = collections.deque(
            (e for e in self._all if e.project_id != project_id), maxlen=self._size
        )

    def clear(self) -> None:
        """Drop everything."""
        self._all.clear()
        self._by_project.clear()


class RateLimiter:
    """Sliding one-minute windows per client: a project, or an address without a key."""

    def __init__(self) -> None:
        self._windows: dict[str, collections.deque[datetime]] = {}
        self._swept: datetime | None = None

    def admit(self, client: str, limit: int | None, now: datetime) -> int | None:
        """Count one request; the seconds to wait when the client is over ``limit``."""
        if limit is None:
            return None
        # Sweep at most once a minute: many active clients must not make every request a scan.
        if len(self._windows) >= _SWEEP_AT and (
            self._swept is None or now - self._swept >= _WINDOW
        ):
            self._sweep(now)
            self._swept = now
        window = self._windows.setdefault(client, collections.deque())
        while window and now - window[0] >= _WINDOW:
            window.popleft()
        if len(window) >= limit:
            wait = _WINDOW - (now - window[0])
            return max(1, int(wait.total_seconds() + 0.999))
        window.append(now)
        return None

    def _sweep(self, now: datetime) -> None:
        """Forget clients whose last request is older than a minute."""
        stale = [c for c, w in self._windows.items() if not w or now - w[-1] >= _WINDOW]
        for client in stale:
            del self._windows[client]

    def forget(self, client: str) -> None:
        """Start one client's minute afresh."""
        self._windows.pop(client, None)

    def clear(self) -> None:
        """Start every client's minute afresh."""
        self._windows.clear()


def project_client(project_id: str) -> str:
    """The rate limiter's name for a project."""
    return f"project:{project_id}"


class RequestGate:
    """ASGI middleware: refuse over-limit requests with 429, journal every answered one."""

    def __init__(
        self, app: ASGIApp, store: Store, journal: RequestJournal, limiter: RateLimiter
    ) -> None:
        self._app = app
        self._store = store
        self._journal = journal
        self._limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit or refuse the request, then journal its answer under its project."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if scope["path"].startswith(CONTROL_PREFIX):
            if self._control_allowed(scope):
                await self._app(scope, receive, send)
            else:
                refused = errors.Unauthorized(
                    f"The control API needs the {CONTROL_TOKEN_HEADER} header "
                    "(this mock runs with CRAFTKIT_MOCK_CONTROL_TOKEN)"
                )
                response = JSONResponse(refused.envelope(), refused.status)
                await response(scope, receive, send)
            return
        project = self._project(scope)
        store = self._store
        if project is not None:
            now = store.clock_of(project).now()
            limit = store.faults_of(project).rate_limit_per_minute
            client = project_client(project.id)
        else:
            now = store.clock.now()
            limit = store.faults.rate_limit_per_minute
            peer = scope.get("client")
            client = f"ip:{peer[0] if peer else 'unknown'}"
        retry_after = self._limiter.admit(client, limit, now)
        if retry_after is not None:
            limited = errors.RateLimited(
                f"Too many requests; retry after {retry_after} seconds",
                headers={"Retry-After": str(retry_after)},
            )
            self._note(scope, limited.status, project)
            response = JSONResponse(limited.envelope(), limited.status, limited.headers)
            await response(scope, receive, send)
            return

        async def journalled_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._note(scope, message["status"], project)
            await send(message)

        await self._app(scope, receive, journalled_send)

    def _control_allowed(self, scope: Scope) -> bool:
        """Whether a control request may pass: always, unless the mock has a control token."""
        expected = self._store.settings.control_token
        if expected is None:
            return True
        wanted = CONTROL_TOKEN_HEADER.lower().encode("latin-1")
        given = next((value for name, value in scope["headers"] if name == wanted), b"")
        return hmac.compare_digest(given, expected.encode("utf-8"))

    def _project(self, scope: Scope) -> Project | None:
        """The live project the request belongs to: by its key, else by its share link."""
        project: Project | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                key = bearer_key(value.decode("latin-1"))
                project = self._store.project_of_key(key) if key else None
                break
        else:
            parts = scope["path"].split("/", 3)
            if len(parts) > 2 and parts[1] == "share":
                project = self._store.project_of_token(parts[2])
        return project if project is not None and not project.deleted else None

    def _note(self, scope: Scope, status: int, project: Project | None) -> None:
        store = self._store
        at = (store.clock if project is None else store.clock_of(project)).now()
        project_id = None if project is None else project.id
        self._journal.record(
            JournalEntry(scope["method"], redact_tokens(scope["path"]), status, at, project_id)
        )
