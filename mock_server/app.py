"""The application factory: routes, error handlers, middleware and state, built from plain data.

Nothing is created at import time; ``create_app`` builds a fresh app (with its own store,
clock and validators) from injected settings and a seed, so tests run many independent mocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

import craftkit_spec
from mock_server.engines.interface import Engine, Limits, StoreUnavailable
from mock_server.engines.memory import MemoryEngine
from mock_server.http.bodies import ShareListEncoder
from mock_server.http.control import control_routes
from mock_server.http.handlers import exception_handlers
from mock_server.http.middleware import RequestGate
from mock_server.http.routes import api_routes
from mock_server.model.ids import ShareTokenMinter
from mock_server.operations import background
from mock_server.operations.store import MisconfiguredError, Store
from mock_server.operations.traffic import Traffic
from mock_server.operations.validation import RequestValidator
from mock_server.seed import Seed, default_seed_path, load_seed
from mock_server.settings import Settings


def make_engine(settings: Settings) -> Engine:
    """The engine the settings name: in memory (the default), or Redis."""
    limits = Limits(
        recent_events=craftkit_spec.fact("Engagement", "recent", "maxItems"),
        idempotency_keys=settings.idempotency_keys,
        dedup_keys=settings.dedup_keys,
        outbox=settings.outbox_size,
        journal=settings.journal_size,
        idle_seconds=settings.sandbox_idle_seconds,
        renders=settings.max_renders,
        projects=settings.max_projects,
        subscriptions=settings.max_subscriptions,
        deliveries=settings.delivery_log_size,
    )
    if settings.store_url is None:
        return MemoryEngine(limits)
    from mock_server.engines.redis import RedisEngine  # redis-py is imported only when used

    return RedisEngine(settings.store_url, settings.store_prefix, limits)


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
    minter = ShareTokenMinter(settings.token_secret)
    store = Store(settings=settings, seed=seed, engine=engine, minter=minter)
    traffic = Traffic(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # A store that cannot be reached, or that another secret claimed, never stops the
        # process from starting (with several workers the supervisor would give up): it
        # serves the envelope saying so, and the keeper puts things right once it can.
        with contextlib.suppress(StoreUnavailable, MisconfiguredError):
            await store.keep()
        keeper = asyncio.create_task(store.keep_running())
        dispatcher = asyncio.create_task(store.webhooks.run())
        try:
            yield
        finally:
            await background.stop([keeper, dispatcher])
            await store.aclose()

    app = Starlette(
        routes=[*api_routes(), *control_routes()],
        middleware=[
            Middleware(
                RequestGate,
                store=store,
                traffic=traffic,
                settings=settings,
                pseudonym_key=minter.derived_key(b"recorded exchanges"),
            )
        ],
        exception_handlers=dict(exception_handlers()),
        lifespan=lifespan,
    )
    # Unknown paths are 404 envelopes, a trailing slash included: no redirect whose Location
    # a Host header could name, and no POST re-sent elsewhere.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.store = store
    app.state.traffic = traffic
    app.state.validator = RequestValidator(craftkit_spec.load_resolved())
    app.state.control_validator = RequestValidator(
        craftkit_spec.load_resolved(craftkit_spec.spec_path("mock-control.yaml"))
    )
    app.state.share_lists = ShareListEncoder()
    return app
