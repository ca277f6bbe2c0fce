"""The application factory: routes, error handlers, middleware and state, built from plain data.

Nothing is created at import time; ``create_app`` builds a fresh app (with its own store,
clock and validators) from injected settings and a seed, so tests run many independent mocks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

import craftkit_spec
from mock_server import errors
from mock_server.clock import MockClock
from mock_server.control import control_routes
from mock_server.delivery import EmailDispatcher
from mock_server.gate import RateLimiter, RequestGate, RequestJournal
from mock_server.ids import ShareTokenMinter
from mock_server.routes import api_routes
from mock_server.seed import Seed, default_seed_path, load_seed
from mock_server.settings import Settings
from mock_server.store import Store
from mock_server.validation import RequestValidator
from mock_server.wire import JSONResponse


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


def create_app(
    settings: Settings | None = None,
    seed: Seed | None = None,
    *,
    clock: MockClock | None = None,
) -> Starlette:
    """Build a mock: its own store, clock, validators and email dispatcher.

    Without ``settings`` they are read from the environment, as ``craftkit-mock`` reads them.
    """
    settings = settings or Settings.from_env(os.environ)
    seed = seed or load_seed(default_seed_path())
    store = Store(
        settings=settings,
        seed=seed,
        clock=clock or MockClock(),
        minter=ShareTokenMinter(settings.token_secret),
    )
    dispatcher = EmailDispatcher(settings)
    journal = RequestJournal(settings.journal_size)
    limiter = RateLimiter()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await dispatcher.aclose()

    app = Starlette(
        routes=[*api_routes(), *control_routes()],
        middleware=[Middleware(RequestGate, store=store, journal=journal, limiter=limiter)],
        exception_handlers={
            errors.ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.journal = journal
    app.state.limiter = limiter
    app.state.validator = RequestValidator(craftkit_spec.load_resolved())
    app.state.control_validator = RequestValidator(
        craftkit_spec.load_resolved(craftkit_spec.spec_path("mock-control.yaml"))
    )
    app.state.email = dispatcher
    return app
