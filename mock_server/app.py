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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

import craftkit_spec
from mock_server import errors
from mock_server.control import control_routes
from mock_server.delivery import EmailDispatcher
from mock_server.engine import Engine, Limits, StoreUnavailable
from mock_server.gate import RequestGate, store_unreachable
from mock_server.ids import ShareTokenMinter
from mock_server.memory_engine import MemoryEngine
from mock_server.present import ShareListEncoder
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


async def _store_down(request: Request, exc: Exception) -> Response:
    """The store cannot be reached: the envelope, naming the store, within its timeout."""
    assert isinstance(exc, StoreUnavailable)
    return _error_response(store_unreachable(request.app.state.store, exc))


def make_engine(settings: Settings) -> Engine:
    """The engine the settings name: in memory (the default), or Redis."""
    limits = Limits(
        recent_events=craftkit_spec.fact("Engagement", "recent", "maxItems"),
        idempotency_keys=settings.idempotency_keys,
        dedup_keys=settings.dedup_keys,
        outbox=settings.outbox_size,
        journal=settings.journal_size,
        idle_seconds=settings.sandbox_idle_seconds,
    )
    if settings.store_url is None:
        return MemoryEngine(limits)
    from mock_server.redis_engine import RedisEngine  # redis-py is imported only when used

    return RedisEngine(settings.store_url, settings.store_prefix, limits)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client left before its body arrived: nobody to answer, nothing to log."""
    return Response(status_code=400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    """Anything else: the envelope with 500, never a stack trace."""
    return _error_response(errors.Internal())


def create_app(
    settings: Settings | None = None,
    seed: Seed | None = None,
) -> Starlette:
    """Build a mock: its own store, clock, validators and email dispatcher.

    Without ``settings`` they are read from the environment, as ``craftkit-mock`` reads them.
    """
    settings = settings or Settings.from_env(os.environ)
    seed = seed or load_seed(default_seed_path())
    engine = make_engine(settings)
    store = Store(
        settings=settings,
        seed=seed,
        engine=engine,
        minter=ShareTokenMinter(settings.token_secret),
    )
    dispatcher = EmailDispatcher(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await store.start()
            yield
        finally:
            await dispatcher.aclose()
            await engine.aclose()

    app = Starlette(
        routes=[*api_routes(), *control_routes()],
        middleware=[Middleware(RequestGate, store=store)],
        exception_handlers={
            errors.ApiError: _api_error,
            StoreUnavailable: _store_down,
            ClientDisconnect: _client_gone,
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
    app.state.share_lists = ShareListEncoder(store.share_token)
    return app
