"""The application factory: routes, error handlers, middleware and state, built from plain data.

Nothing is created at import time; ``create_app`` builds a fresh app (with its own store,
clock and validators) from injected settings and a seed, so tests run many independent mocks.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import craftkit_spec
from mock_server import errors
from mock_server.clock import MockClock
from mock_server.control import control_routes
from mock_server.delivery import EmailDispatcher
from mock_server.ids import ShareTokenMinter, digest
from mock_server.routes import api_routes
from mock_server.seed import Seed, default_seed_path, load_seed
from mock_server.settings import Settings
from mock_server.store import Store
from mock_server.validation import RequestValidator
from mock_server.wire import JSONResponse

CONTROL_PREFIX = "/_mock"


def _error_response(error: errors.ApiError) -> Response:
    return JSONResponse(error.envelope(), status_code=error.status, headers=error.headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ApiError)
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method), in the API's envelope."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error: errors.ApiError = errors.MethodNotAllowed(
            f"{request.method} is not allowed here", headers=dict(exc.headers or {})
        )
    elif exc.status_code == 404:
        error = errors.NotFound(f"No route for {request.url.path}")
    else:
        error = errors.ApiError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]  # an instance-level override
    return _error_response(error)


async def _unexpected(request: Request, exc: Exception) -> Response:
    """Anything else: the envelope with 500, never a stack trace."""
    return _error_response(errors.Internal())


class RequestGate:
    """Rate limiting and the request journal, for the public API only (not ``/_mock``)."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self._app = app
        self._store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse over-limit requests with 429; journal every answered one."""
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self._app(scope, receive, send)
            return
        store = self._store
        retry_after = store.admit(self._client(scope))
        if retry_after is not None:
            limited = errors.RateLimited(
                f"Too many requests; retry after {retry_after} seconds",
                headers={"Retry-After": str(retry_after)},
            )
            store.journal_request(scope["method"], scope["path"], limited.status)
            await _error_response(limited)(scope, receive, send)
            return

        async def journalled_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                store.journal_request(scope["method"], scope["path"], message["status"])
            await send(message)

        await self._app(scope, receive, journalled_send)

    @staticmethod
    def _client(scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return "key:" + digest(value.decode("latin-1"))
        client = scope.get("client")
        return f"ip:{client[0]}" if client else "ip:unknown"


def create_app(
    settings: Settings | None = None,
    seed: Seed | None = None,
    *,
    clock: MockClock | None = None,
) -> Starlette:
    """Build a mock: its own store, clock, validators and email dispatcher."""
    settings = settings or Settings()
    seed = seed or load_seed(default_seed_path())
    store = Store(
        settings=settings,
        seed=seed,
        clock=clock or MockClock(),
        minter=ShareTokenMinter(settings.token_secret),
    )
    dispatcher = EmailDispatcher(store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await dispatcher.aclose()

    app = Starlette(
        routes=[*api_routes(), *control_routes()],
        middleware=[Middleware(RequestGate, store=store)],
        exception_handlers={
            errors.ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.validator = RequestValidator(craftkit_spec.load_resolved())
    app.state.control_validator = RequestValidator(
        craftkit_spec.load_resolved(craftkit_spec.spec_path("mock-control.yaml"))
    )
    app.state.email = dispatcher
    return app
