"""Fixtures shared by every test module: the spec, and a live mock with a client for it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import settings
from starlette.applications import Starlette

import craftkit_spec
from mock_server import create_app
from mock_server.engines.interface import OutboxEntry
from mock_server.engines.memory import MemoryEngine
from mock_server.model.records import Share
from mock_server.seed import default_seed_path, load_seed
from mock_server.settings import Settings
from mock_server.testing import RedisServer, ThreadedServer
from mock_server.testing.sandbox import shared_tls
from tests.support.response_checker import ResponseChecker
from tests.support.spec_oracle import load_validated

# Fixed, derandomized profiles: a CI run is reproducible, and the volume is chosen by
# CRAFTKIT_PROFILE (quick, default, thorough), never edited in test code.
settings.register_profile("quick", max_examples=15, derandomize=True, database=None, deadline=None)
settings.register_profile(
    "default", max_examples=60, derandomize=True, database=None, deadline=None
)
settings.register_profile("thorough", max_examples=500, derandomize=False, deadline=None)
settings.load_profile(os.environ.get("CRAFTKIT_PROFILE", "default"))

SEED = load_seed(default_seed_path())
ACME, GLOBEX = SEED.projects
ACME_KEY, GLOBEX_KEY = ACME.api_key, GLOBEX.api_key
SUCCEEDED_RENDER = ACME.renders[0].id
QUEUED_RENDER = ACME.renders[1].id
GLOBEX_RENDER = GLOBEX.renders[0].id


def all_shares(app: Starlette) -> list[Share]:
    """Every share an in-memory app holds, in every project (for tests that inspect state)."""
    engine: MemoryEngine = app.state.store._engine
    return [share for data in engine._projects.values() for share in data.shares.values()]


def all_emails(app: Starlette) -> list[OutboxEntry]:
    """Every email an in-memory app keeps."""
    engine: MemoryEngine = app.state.store._engine
    return [entry for data in engine._projects.values() for entry in data.outbox]


BACKENDS = ("memory", "redis")
"""The store engines every behaviour test runs against."""

AppFactory = Callable[..., Starlette]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server for this test process (each app takes a prefix of its own)."""
    with RedisServer() as server:
        yield server.url


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store engine: each test that builds a mock runs once per engine."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def make_app(backend: str, request: pytest.FixtureRequest) -> AppFactory:
    """Build a mock on this run's engine: ``make_app(outbox_size=3)``.

    Redis apps each get a prefix of their own: they share one server, never their state.
    """
    store: dict[str, Any] = {}
    if backend == "redis":
        store["store_url"] = request.getfixturevalue("redis_url")
        store["token_secret"] = bytes(range(32))

    def build(**settings: Any) -> Starlette:
        prefix = {"store_prefix": f"t{uuid.uuid4().hex[:12]}"} if store else {}
        return create_app(Settings(**{**store, **prefix, **settings}))

    return build


@pytest.fixture(scope="session")
def raw_spec() -> dict[str, Any]:
    """The spec as written, with its ``$ref`` s."""
    return craftkit_spec.load_raw()


@pytest.fixture(scope="session")
def resolved_spec() -> dict[str, Any]:
    """The spec validated and with every ``$ref`` inlined."""
    return load_validated()


@pytest.fixture(scope="session")
def mock_url(make_app: AppFactory) -> Iterator[str]:
    """One mock server per engine for the session, with default settings; tests reset it."""
    server = ThreadedServer(make_app())
    yield server.start()
    server.stop()


class Api:
    """A client of the mock with a project key, and the flows tests repeat."""

    def __init__(self, base_url: str, key: str = ACME_KEY) -> None:
        self.checker = ResponseChecker(base_url)
        self.http = httpx.Client(
            base_url=base_url,
            timeout=10,
            event_hooks={"response": [self.checker]},
            verify=shared_tls(),
        )
        self.key = key

    def auth(self, key: str | None = None) -> dict[str, str]:
        """The Authorization header for a key (this client's by default)."""
        return {"Authorization": f"Bearer {key or self.key}"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, headers={**self.auth(), **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, headers={**self.auth(), **kwargs.pop("headers", {})}, **kwargs)

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(path, headers=self.auth())

    def create_share(self, render_id: str = SUCCEEDED_RENDER, **body: Any) -> dict[str, Any]:
        response = self.post(f"/v1/renders/{render_id}/shares", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def shares(self, render_id: str = SUCCEEDED_RENDER) -> list[dict[str, Any]]:
        response = self.get(f"/v1/renders/{render_id}/shares")
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["shares"]
        return rows

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A control API call (no key)."""
        return self.http.request(method, f"/_mock{path}", **kwargs)

    def new_render(self, status: str = "succeeded", key: str | None = None, **body: Any) -> str:
        response = self.control(
            "POST", "/renders", json={"apiKey": key or self.key, "status": status, **body}
        )
        assert response.status_code == 201, response.text
        render_id: str = response.json()["id"]
        return render_id

    def advance(self, seconds: float) -> None:
        response = self.control("POST", "/clock", json={"advanceSeconds": seconds})
        assert response.status_code == 200, response.text


@pytest.fixture
def api(mock_url: str) -> Iterator[Api]:
    """A client of the session's mock, reset to the seed first."""
    client = Api(mock_url)
    assert client.control("POST", "/reset").status_code == 204
    yield client
    client.http.close()
