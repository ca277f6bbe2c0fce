"""Everything that grows is bounded: the oldest entries go first, and the mock stays correct."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import craftkit_spec
from mock_server import Settings, create_app
from mock_server.engines.interface import Limits
from mock_server.engines.memory import MemoryEngine
from mock_server.operations import pdf, store
from mock_server.testing import MockProcess, Sandbox, serve
from tests.conftest import AppFactory


@pytest.fixture
def small(make_app: AppFactory) -> Iterator[Sandbox]:
    """A sandbox on a mock (of each engine) that keeps three of everything it bounds."""
    app = make_app(outbox_size=3, journal_size=3, idempotency_keys=3, dedup_keys=3)
    with serve(app) as base_url, Sandbox.create(base_url) as sandbox:
        yield sandbox


def test_the_outbox_keeps_the_newest_emails(small: Sandbox) -> None:
    path = f"{small.base_url}/v1/renders/{small.render_id}/email"
    for n in range(5):
        sent = httpx.post(path, headers=small.headers, json={"to": f"r{n}@example.com"})
        assert sent.status_code == 201
    assert [mail["to"] for mail in small.emails()] == [f"r{n}@example.com" for n in (2, 3, 4)]


def test_the_journal_keeps_the_newest_requests(small: Sandbox) -> None:
    for n in range(5):
        httpx.get(f"{small.base_url}/v1/renders/r{n}", headers=small.headers)
    assert [e["path"] for e in small.requests()] == [f"/v1/renders/r{n}" for n in (4, 3, 2)]


def test_idempotency_keys_past_the_cap_are_forgotten_oldest_first(small: Sandbox) -> None:
    path = f"{small.base_url}/v1/templates/invoice/render"

    def submit(key: str) -> int:
        headers = {**small.headers, "Idempotency-Key": key}
        return httpx.post(path, headers=headers, json={"data": {}}).status_code

    assert [submit(f"k{n}") for n in range(4)] == [202] * 4
    assert submit("k3") == 200  # still remembered
    assert submit("k0") == 202  # the oldest was forgotten: a new render


def test_view_de_duplication_past_the_cap_forgets_the_oldest(small: Sandbox) -> None:
    share = httpx.post(
        f"{small.base_url}/v1/renders/{small.render_id}/shares", headers=small.headers, json={}
    ).json()
    small.freeze()

    def view(address: str) -> None:
        httpx.get(share["shareUrl"], headers={"X-Forwarded-For": address})

    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        view(address)
    view("10.0.0.4")  # remembered: not counted again
    view("10.0.0.1")  # forgotten past the cap: counted again
    rows = httpx.get(
        f"{small.base_url}/v1/renders/{small.render_id}/shares", headers=small.headers
    ).json()["shares"]
    assert rows[0]["clickCount"] == 5


def test_idle_sockets_cannot_starve_a_mock_of_descriptors() -> None:
    """With 256 descriptors and 300 idle connections the mock still answers.

    The header deadline cuts the idle connections and frees their descriptors.
    """
    env = {**os.environ, "CRAFTKIT_MOCK_HEADER_TIMEOUT": "0.5"}
    command = f"ulimit -n 256 && exec {sys.executable} -m mock_server --port 0"
    with subprocess.Popen(
        ["bash", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as mock:
        try:
            assert mock.stdout is not None
            url = mock.stdout.readline().split()[2]
            port = int(url.rsplit(":", 1)[1])
            idle = []
            for _ in range(300):
                try:
                    idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
                except OSError:
                    break  # the backlog is full: the point is made
            deadline = time.monotonic() + 15
            answered = None
            while time.monotonic() < deadline and answered is None:
                try:
                    answered = httpx.get(f"{url}/health", timeout=2).status_code
                except httpx.HTTPError:
                    time.sleep(0.2)
            for sock in idle:
                sock.close()
            assert answered == 200
        finally:
            mock.terminate()


def test_the_pdf_cache_keeps_the_most_recent_pdfs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "PDF_CACHE_SIZE", 2)
    app = create_app(Settings())
    with serve(app) as base_url, Sandbox.create(base_url) as sandbox:
        renders = [sandbox.render_id, sandbox.new_render(), sandbox.new_render()]
        pdfs = [
            httpx.get(f"{base_url}/v1/renders/{r}/download", headers=sandbox.headers).content
            for r in [*renders, renders[0]]
        ]
        assert app.state.store._pdfs.kept() == [renders[2], renders[0]]
    assert pdfs[0] == pdfs[3]  # drawn again, byte for byte


def test_rate_limit_windows_of_quiet_addresses_are_swept() -> None:
    ticks = [0.0]
    engine = MemoryEngine(Limits(dedup_keys=3), monotonic=lambda: ticks[0])
    start = datetime(2030, 1, 1, tzinfo=UTC)
    for n in range(3):
        assert asyncio.run(engine.admit(None, f"10.0.0.{n}", 5, start)) is None
    ticks[0] = 61.0
    assert asyncio.run(engine.admit(None, "10.0.0.9", 5, start + timedelta(seconds=61))) is None
    assert list(engine._windows) == ["10.0.0.9"]


def test_the_sweep_runs_at_most_once_a_minute() -> None:
    ticks = [61.0]
    engine = MemoryEngine(Limits(dedup_keys=2), monotonic=lambda: ticks[0])
    start = datetime(2030, 1, 1, tzinfo=UTC)

    def admit(address: str, seconds: float) -> None:
        asyncio.run(engine.admit(None, address, 5, start + timedelta(seconds=seconds)))

    ticks[0] = 122.0
    for n in range(3):  # the third finds the cap reached: a sweep (nobody is quiet yet)
        admit(f"10.0.1.{n}", 0)
    admit("10.0.1.9", 61)  # the first three are quiet now, but a sweep ran within the minute
    assert len(engine._windows) == 4
    ticks[0] = 183.0
    admit("10.0.2.1", 122)  # a minute later: the next sweep drops everyone quiet
    assert list(engine._windows) == ["10.0.2.1"]


def test_a_pdf_being_drawn_holds_up_no_other_request(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drawing happens off the event loop: /health answers while a PDF is still drawn.

    (Drawn in a thread here, so that the test can hold the drawing until /health answered;
    the mock draws in processes of its own, which bench/pdf_latency.py measures.)
    """
    release = threading.Event()
    drawing = threading.Event()
    real_draw = pdf._render_marshalled

    def slow_draw(**render: Any) -> bytes:
        drawing.set()
        release.wait(timeout=30)
        return real_draw(**render)

    monkeypatch.setattr(pdf, "_render_marshalled", slow_draw)
    app = make_app()
    app.state.store._pdfs.executor = ThreadPoolExecutor(2)
    with serve(app) as base_url, Sandbox.create(base_url) as sandbox:
        url = f"{base_url}/v1/renders/{sandbox.render_id}/download"
        with ThreadPoolExecutor(2) as pool:
            downloads = [pool.submit(httpx.get, url, headers=sandbox.headers, timeout=30)]
            downloads.append(pool.submit(httpx.get, url, headers=sandbox.headers, timeout=30))
            assert drawing.wait(timeout=10)
            try:
                health = httpx.get(f"{base_url}/health", timeout=5)
            finally:
                release.set()
            answers = [download.result() for download in downloads]
    assert health.json() == {"status": "ok"}
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].content == answers[1].content
    assert answers[0].content.startswith(b"%PDF")


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


BOMBS = {
    "empty arrays": {"x": [[] for _ in range(90_000)]},
    "short strings": {"x": ["ab"] * 90_000},
    "empty objects": {f"k{n}": {} for n in range(60_000)},
    "one long string": {"x": "y" * 1_000_000},
}
"""Bodies under the byte limit and the value budget, each shaped to cost memory."""


@pytest.mark.slow
def test_memory_kept_stays_within_twice_the_bytes_received() -> None:
    """Render data and event metadata are kept packed, not as Python objects.

    As objects they took 8.5 times the bytes received for these bodies, and 24 times for a
    body of empty arrays (which the value budget now refuses).
    """
    limit = craftkit_spec.body_limit()
    too_many = orjson.dumps({"data": {"x": [[]] * (limit // 3 - 10)}})
    mock = MockProcess()
    url = mock.start()
    try:
        with Sandbox.create(url) as sandbox, httpx.Client(timeout=60) as client:
            headers = {**sandbox.headers, "Content-Type": "application/json"}
            refused = client.post(
                f"{url}/v1/templates/invoice/render", headers=headers, content=too_many
            )
            assert refused.status_code == 413
            assert refused.json()["error"]["code"] == "payload_too_large"
            before, received = _rss(mock.pid), 0
            for round_ in range(5):
                for name, data in BOMBS.items():
                    render = orjson.dumps({"data": data})
                    event = orjson.dumps({"eventType": "printed", "metadata": data})
                    kept = client.post(
                        f"{url}/v1/templates/invoice/render", headers=headers, content=render
                    )
                    counted = client.post(
                        f"{url}/v1/renders/{sandbox.render_id}/events",
                        headers={**headers, "X-Forwarded-For": f"10.0.{round_}.{len(name)}"},
                        content=event,
                    )
                    assert (kept.status_code, counted.status_code) == (202, 200), name
                    received += len(render) + len(event)
            grown = _rss(mock.pid) - before
    finally:
        mock.stop()
    assert grown < 2 * received, f"{grown / 1e6:.0f} MB kept for {received / 1e6:.0f} MB received"


def test_a_full_project_and_a_full_mock_refuse_more_saying_so(make_app: AppFactory) -> None:
    app = make_app(max_renders=3, max_projects=3)  # the seed's two projects, and one more
    with serve(app) as base_url, Sandbox.create(base_url) as sandbox:
        made = [sandbox.new_render() for _ in range(2)]  # three with the sandbox's own
        assert len(set(made)) == 2
        control = httpx.post(
            f"{base_url}/_mock/projects/{sandbox.project_id}/renders", json={"status": "queued"}
        )
        assert control.status_code == 409
        assert "CRAFTKIT_MOCK_MAX_RENDERS" in control.json()["error"]["message"]
        public = httpx.post(
            f"{base_url}/v1/templates/invoice/render", headers=sandbox.headers, json={"data": {}}
        )
        assert public.status_code == 503
        assert public.json()["error"]["code"] == "queue_unavailable"
        another = httpx.post(f"{base_url}/_mock/projects", json={})
        assert another.status_code == 409
        assert "CRAFTKIT_MOCK_MAX_PROJECTS" in another.json()["error"]["message"]
