"""Real servers for tests: the mock in a thread or as a process, and ``redis-server``.

For partners' Python test suites as much as for ours::

    with serve(create_app()) as base_url:
        requests.get(f"{base_url}/health")

The server listens on loopback, on a free port the OS picks, and is stopped on exit. It
runs with the mock's HTTP edge (``mock_server.http.protocol``): the settings' header limits and read
deadlines, and malformed requests answered in the envelope. ``MockProcess`` runs
``craftkit-mock`` itself (several workers, several mocks on one Redis, a restart), and
``RedisServer`` a ``redis-server`` on a free loopback port with nothing on disk.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence

import uvicorn
from starlette.types import ASGIApp

from mock_server.http.protocol import http_protocol
from mock_server.settings import Settings


class _PromptServer(uvicorn.Server):
    """uvicorn's server, woken the moment it is asked to stop.

    uvicorn looks at ``should_exit`` on a tick every 0.1 s; a suite that serves a mock per
    test waited for that tick at every stop.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._asked = asyncio.Event()

    async def main_loop(self) -> None:
        """Tick as uvicorn does (the Date header, ``should_exit``); a stop request ends a wait."""
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self._asked.wait()

    def ask_to_stop(self) -> None:
        """From any thread: stop serving (at once if the loop is running, else at its start)."""
        self.should_exit = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._asked.set)


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
        self._server = _PromptServer(config)
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
        self._server.ask_to_stop()
        self._thread.join(timeout=10)


@contextlib.contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` for the duration of the block; yields its base URL."""
    server = ThreadedServer(app)
    try:
        yield server.start()
    finally:
        server.stop()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for servers that cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A real ``redis-server`` on loopback and a free port, for tests; no data on disk.

    ``stop`` and ``start`` again keep the port, so a test can take Redis away and bring it
    back; ``pause`` and ``resume`` (SIGSTOP/SIGCONT) make it hang instead of refuse.
    """

    def __init__(self, executable: str = "redis-server", arguments: Sequence[str] = ()) -> None:
        self._executable = shutil.which(executable) or executable
        self._arguments = list(arguments)
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it accepts connections; its URL."""
        self._process = subprocess.Popen(
            [
                self._executable,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
                *self._arguments,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self.url
            except OSError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (its data goes with it)."""
        if self._process is not None:
            self.resume()
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def pause(self) -> None:
        """Freeze the server: connections stay open and nothing answers."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run on."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill_group(process: subprocess.Popen[str], drain: threading.Thread | None) -> None:
    """Kill a process started in a session of its own and its whole group; close its output.

    ``drain`` reads the output until it ends, which it does once every writer is gone.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    if drain is not None:
        drain.join(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


class MockProcess:
    """``craftkit-mock --port 0 ARGS`` in a process of its own; its URL once it listens.

    For tests of what only separate processes show: several workers, several mocks on one
    Redis, a restart.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self._command = [sys.executable, "-m", "mock_server", "--port", "0", *args]
        self._env = {**os.environ, **(env or {})}
        self._process: subprocess.Popen[str] | None = None
        self._lines: collections.deque[str] = collections.deque(maxlen=200)
        self.url = ""

    def start(self, timeout: float = 30.0) -> str:
        """Start it; the base URL from its banner, once ``/health`` answers.

        It runs in a process group of its own (with ``--workers``, the supervisor and its
        workers), which is killed whole if it does not come up, if it does not stop when
        asked, and at the latest when this interpreter exits: a test that fails or is torn
        down early never leaves a mock behind.
        """
        self._process = subprocess.Popen(
            self._command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self._env,
            start_new_session=True,
        )
        # Until the output is drained by a thread, a reaper of the process alone.
        self._reaper = weakref.finalize(self, _kill_group, self._process, None)
        try:
            return self._wait_until_up(timeout)
        except BaseException:
            self._reaper()
            raise

    def _wait_until_up(self, timeout: float) -> str:
        assert self._process is not None
        assert self._process.stdout is not None
        # Up to the banner (a log line may come first: uvicorn's, at --log-level info); a
        # mock that exits before printing it did not start.
        for line in self._process.stdout:
            self._lines.append(line)
            if line.startswith("Craftkit mock:"):
                self.url = line.split()[2]
                break
        else:
            self._process.wait(timeout=timeout)
            raise RuntimeError(f"the mock did not start: {self.output()}")
        # Keep reading what it prints, or a full pipe would stop it mid-request.
        drain = threading.Thread(
            target=self._lines.extend, args=(self._process.stdout,), daemon=True
        )
        drain.start()
        self._reaper.detach()
        self._reaper = weakref.finalize(self, _kill_group, self._process, drain)
        deadline = time.monotonic() + timeout
        last = "nothing yet"
        while True:
            try:
                host, port = self.url.rsplit("/", 1)[1].rsplit(":", 1)
                with socket.create_connection((host, int(port)), 1) as conn:
                    conn.sendall(b"GET /health HTTP/1.1\r\nHost: mock\r\n\r\n")
                    answer = conn.recv(16)
                    if answer.startswith(b"HTTP/1.1 200"):
                        return self.url
                    last = f"{answer!r}"
            except OSError as exc:
                last = repr(exc)
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the mock did not answer /health (last: {last}); it printed:\n{self.output()}"
                )
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        """The process's id (with ``--workers``, the supervisor's: the workers are its children)."""
        assert self._process is not None, "not started"
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self._process is not None and self._process.poll() is None

    def output(self) -> str:
        """The last 200 lines it printed."""
        return "".join(self._lines)

    def stop(self) -> None:
        """Stop it as Ctrl-C would, and wait (workers included); kill what does not stop."""
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=20)
            self._reaper()  # workers that outlived their supervisor too
            self._process = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
