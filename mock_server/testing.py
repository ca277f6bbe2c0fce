"""Run an ASGI app (the mock, or a test's stand-in) on uvicorn in a thread, for tests.

For partners' Python test suites as much as for ours::

    with serve(create_app()) as base_url:
        requests.get(f"{base_url}/health")

The server listens on loopback, on a free port the OS picks, and is stopped on exit. It
runs with the mock's HTTP edge (``mock_server.edge``): the settings' header limits and read
deadlines, and malformed requests answered in the envelope.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from mock_server.edge import http_protocol
from mock_server.settings import Settings


class ThreadedServer:
    """A uvicorn server on 127.0.0.1 in a daemon thread."""

    def __init__(
        self, app: ASGIApp, host: str = "127.0.0.1", settings: Settings | None = None
    ) -> None:
        app_state = getattr(app, "state", None)
        settings = settings or getattr(app_state, "settings", None) or Settings()
        config = uvicorn.Config(
            app,
            host=host,
            port=0,
            http=http_protocol(settings),
            log_level="warning",
            access_log=False,
            lifespan="on",
            proxy_headers=False,  # the mock decides whether to trust X-Forwarded-For
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="mock-server", daemon=True)
        self.base_url = ""

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; return the base URL once the socket is listening."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    def stop(self) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)


@contextlib.contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` for the duration of the block; yields its base URL."""
    server = ThreadedServer(app)
    try:
        yield server.start()
    finally:
        server.stop()
