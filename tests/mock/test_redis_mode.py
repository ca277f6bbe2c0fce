"""Many mock processes on one Redis are one mock: invariants across processes, restarts, outages.

Every mock here is ``craftkit-mock`` in processes of its own (four uvicorn workers, or two
separate mocks), on a real ``redis-server`` the tests start on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import craftkit_spec
from mock_server.testing import MockProcess, RedisServer, Sandbox, WebhookReceiver
from tests.conftest import ACME_KEY, SUCCEEDED_RENDER

SECRET = "5e" * 32


def _without_secret() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CRAFTKIT_MOCK_TOKEN_SECRET"}


def _env(prefix: str, secret: str = SECRET, **more: str) -> dict[str, str]:
    return {
        "CRAFTKIT_MOCK_TOKEN_SECRET": secret,
        "CRAFTKIT_MOCK_STORE_PREFIX": prefix,
        **more,
    }


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for the module."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def four_workers(redis_server: RedisServer) -> Iterator[str]:
    """``craftkit-mock --workers 4`` on Redis."""
    prefix = f"w{uuid.uuid4().hex[:8]}"
    with MockProcess("--workers", "4", "--store", redis_server.url, env=_env(prefix)) as url:
        yield url


@pytest.fixture
def sandbox(four_workers: str) -> Iterator[Sandbox]:
    """A project of its own on the four workers."""
    with Sandbox.create(four_workers) as box:
        yield box


def _at_once(requests: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send every request at once, each on a connection of its own.

    New connections are spread over the workers by the kernel.
    """

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            return await asyncio.gather(*(client.request(m, u, **k) for m, u, k in requests))

    return asyncio.run(send_all())


def test_two_hundred_concurrent_revokes_of_one_share_have_one_winner(sandbox: Sandbox) -> None:
    base, headers = sandbox.base_url, sandbox.headers
    share = httpx.post(f"{base}/v1/renders/{sandbox.render_id}/shares", headers=headers, json={})
    path = f"{base}/v1/renders/{sandbox.render_id}/shares/{share.json()['id']}"
    answers = _at_once([("DELETE", path, {"headers": headers})] * 200)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [404] * 199
    engagement = httpx.get(f"{base}/v1/renders/{sandbox.render_id}/engagement", headers=headers)
    assert engagement.json()["counts"]["share_revoked"] == 1


def test_three_hundred_views_from_distinct_addresses_count_exactly(sandbox: Sandbox) -> None:
    base, headers = sandbox.base_url, sandbox.headers
    share = httpx.post(
        f"{base}/v1/renders/{sandbox.render_id}/shares", headers=headers, json={}
    ).json()
    sandbox.freeze()
    views = [
        ("GET", share["shareUrl"], {"headers": {"X-Forwarded-For": f"10.1.{n // 250}.{n % 250}"}})
        for n in range(300)
    ]
    # Every address twice: the second view of each falls within the de-duplication window.
    assert {answer.status_code for answer in _at_once(views + views)} == {200}
    rows = httpx.get(f"{base}/v1/renders/{sandbox.render_id}/shares", headers=headers).json()
    assert rows["shares"][0]["clickCount"] == 300
    sandbox.advance(craftkit_spec.dedup_window_seconds())
    assert {answer.status_code for answer in _at_once(views[:10])} == {200}
    rows = httpx.get(f"{base}/v1/renders/{sandbox.render_id}/shares", headers=headers).json()
    assert rows["shares"][0]["clickCount"] == 310


def test_one_idempotency_key_sent_a_hundred_times_at_once_makes_one_render(
    sandbox: Sandbox, redis_server: RedisServer
) -> None:
    headers = {**sandbox.headers, "Idempotency-Key": f"once-{uuid.uuid4()}"}
    path = f"{sandbox.base_url}/v1/templates/invoice/render"
    answers = _at_once([("POST", path, {"headers": headers, "json": {"data": {}}})] * 100)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 99 + [202]
    assert len({answer.json()["id"] for answer in answers}) == 1
    client = redis.Redis.from_url(redis_server.url)
    [renders] = list(client.scan_iter(match=f"*{{p:{sandbox.project_id}}}:renders"))
    assert client.hlen(renders) == 2  # the sandbox's own render, and this one
    client.close()


def test_two_hundred_concurrent_creates_are_all_listed_newest_first(sandbox: Sandbox) -> None:
    path = f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/shares"
    answers = _at_once([("POST", path, {"headers": sandbox.headers, "json": {}})] * 200)
    assert {answer.status_code for answer in answers} == {201}
    rows = httpx.get(path, headers=sandbox.headers).json()["shares"]
    assert {row["id"] for row in rows} == {answer.json()["id"] for answer in answers}
    stamps = [row["createdAt"] for row in rows]
    assert stamps == sorted(stamps, reverse=True)
    tokens = {answer.json()["id"]: answer.json()["shareToken"] for answer in answers}
    assert all(row["shareToken"] == tokens[row["id"]] for row in rows), "one secret everywhere"


@pytest.mark.slow
def test_four_workers_deliver_each_webhook_once_and_retry_it_once(sandbox: Sandbox) -> None:
    """Every worker runs a dispatcher; a claim hands each attempt to one of them."""
    rules = craftkit_spec.webhook_rules()
    with WebhookReceiver("four-workers") as receiver:
        sandbox.subscribe(receiver.url, "four-workers", events=list(rules.document_events))
        sandbox.freeze()
        receiver.refuse(1)
        url = f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/shares"
        created = _at_once([("POST", url, {"headers": sandbox.headers, "json": {}})] * 40)
        ids = {response.json()["id"] for response in created}
        for share_id in ids:
            receiver.wait_for(
                "document.share_created", timeout=15, verified=False, shareId=share_id
            )
        refused = [d for d in receiver.deliveries if d.answered != 200]
        assert len(refused) == 1
        sandbox.advance(rules.retry_delays_seconds[0])
        retried = receiver.wait_for(
            "document.share_created", timeout=15, count=2, shareId=refused[0].body["shareId"]
        )
        assert retried.delivery_id == refused[0].delivery_id
        deadline = time.monotonic() + 10
        while sum(len(d["attempts"]) for d in sandbox.deliveries()) < len(ids) + 1:
            assert time.monotonic() < deadline, sandbox.deliveries()
            time.sleep(0.01)  # attempts are recorded just after the receiver answered
        sandbox.advance(24 * 3600)  # nothing else is due: every other delivery was acknowledged
        logged = sandbox.deliveries()
        by_delivery = [d.delivery_id for d in receiver.deliveries]
        assert len(by_delivery) == len(ids) + 1
        assert len(set(by_delivery)) == len(ids)
        assert sorted(len(d["attempts"]) for d in logged) == [1] * (len(ids) - 1) + [2]
        assert {d["status"] for d in logged} == {"delivered"}


def test_the_conformance_suite_passes_against_four_workers_on_redis(four_workers: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--base-url", four_workers,
         "--profile", "quick"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_two_mocks_on_one_redis_are_one_mock(redis_server: RedisServer) -> None:
    env = _env(f"m{uuid.uuid4().hex[:8]}")
    args = ("--store", redis_server.url)
    with (
        MockProcess(*args, env=env) as first,
        MockProcess(*args, env=env) as second,
        Sandbox.create(first) as box,
    ):
        made = httpx.post(
            f"{first}/v1/renders/{box.render_id}/shares", headers=box.headers, json={}
        ).json()
        # The second mock knows the key, the render, the share and its link.
        rows = httpx.get(f"{second}/v1/renders/{box.render_id}/shares", headers=box.headers).json()
        assert [row["shareToken"] for row in rows["shares"]] == [made["shareToken"]]
        link = made["shareUrl"].replace(first, second)
        assert httpx.get(link).status_code == 200
        # One clock, one set of faults, one outbox and one journal.
        moved = httpx.post(f"{first}/_mock/projects/{box.project_id}/clock",
                           json={"now": "2031-05-01T00:00:00.000Z"})  # fmt: skip
        assert moved.status_code == 200
        clock = httpx.get(f"{second}/_mock/projects/{box.project_id}/clock").json()
        assert clock["now"].startswith("2031-05-01T00:00")
        httpx.put(f"{second}/_mock/projects/{box.project_id}/faults",
                  json={"emailTransport": "none"})  # fmt: skip
        refused = httpx.post(f"{first}/v1/renders/{box.render_id}/email",
                             headers=box.headers, json={"to": "a@example.com"})  # fmt: skip
        assert refused.json()["error"]["code"] == "email_not_configured"
        httpx.put(f"{first}/_mock/projects/{box.project_id}/faults",
                  json={"emailTransport": "outbox"})  # fmt: skip
        sent = httpx.post(f"{second}/v1/renders/{box.render_id}/email",
                          headers=box.headers, json={"to": "b@example.com"})  # fmt: skip
        assert sent.status_code == 201
        mail = httpx.get(f"{first}/_mock/projects/{box.project_id}/emails").json()
        assert [m["to"] for m in mail["emails"]] == ["b@example.com"]
        journal = httpx.get(f"{first}/_mock/projects/{box.project_id}/requests").json()
        assert journal["requests"][0]["path"] == f"/v1/renders/{box.render_id}/email"


def _commands_while(url: str, action: Callable[[], None]) -> list[str]:
    """Every command Redis received while ``action`` ran (MONITOR), as text."""
    end = f"craftkit-monitor-end-{uuid.uuid4().hex}"
    seen: list[str] = []
    ready = threading.Event()

    def watch() -> None:
        with redis.Redis.from_url(url) as client, client.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                if end in entry["command"]:
                    return
                seen.append(entry["command"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert ready.wait(10)
    time.sleep(0.2)  # MONITOR is answered before it is in force; a real-time property
    try:
        action()
    finally:
        with redis.Redis.from_url(url) as client:
            client.echo(end)
        watcher.join(10)
    return seen


def test_each_process_reads_a_key_from_redis_once_and_still_sees_its_project_deleted(
    redis_server: RedisServer,
) -> None:
    prefix = f"k{uuid.uuid4().hex[:8]}"
    args = ("--store", redis_server.url)
    with (
        MockProcess(*args, env=_env(prefix)) as first,
        MockProcess(*args, env=_env(prefix)) as second,
    ):
        box = Sandbox.create(first)
        listed = f"{second}/v1/renders/{box.render_id}/shares"

        def twenty_lists() -> None:
            for _ in range(20):
                assert httpx.get(listed, headers=box.headers).status_code == 200

        commands = _commands_while(redis_server.url, twenty_lists)
        key_reads = [c for c in commands if c.startswith(f"GET {prefix}:key:")]
        assert len(key_reads) == 1, key_reads
        assert len(commands) > 20  # the monitor saw the requests themselves
        box.delete()  # through the first process
        gone = httpx.get(listed, headers=box.headers)
        assert gone.status_code == 403, gone.text


@pytest.mark.slow
def test_a_restart_loses_nothing_and_old_links_keep_resolving(redis_server: RedisServer) -> None:
    env = _env(f"r{uuid.uuid4().hex[:8]}")
    args = ("--workers", "2", "--store", redis_server.url)
    with MockProcess(*args, env=env) as url:
        project = httpx.post(f"{url}/_mock/projects", json={"name": "kept"}).json()
        headers = {"Authorization": f"Bearer {project['apiKey']}"}
        render = httpx.post(f"{url}/_mock/projects/{project['projectId']}/renders").json()
        share = httpx.post(
            f"{url}/v1/renders/{render['id']}/shares", headers=headers, json={}
        ).json()
        httpx.post(f"{url}/_mock/projects/{project['projectId']}/clock", json={"frozen": True})
        httpx.post(f"{url}/_mock/projects/{project['projectId']}/clock",
                   json={"now": "2030-01-01T00:00:00.000Z"})  # fmt: skip
    with MockProcess(*args, env=env) as again:
        link = share["shareUrl"].replace(url, again)
        assert httpx.get(link).status_code == 200
        rows = httpx.get(f"{again}/v1/renders/{render['id']}/shares", headers=headers).json()
        assert rows["shares"][0]["shareToken"] == share["shareToken"]
        assert rows["shares"][0]["clickCount"] == 1
        clock = httpx.get(f"{again}/_mock/projects/{project['projectId']}/clock").json()
        assert clock == {"now": "2030-01-01T00:00:00.000Z", "frozen": True}


def test_a_pending_webhook_retry_survives_a_restart(redis_server: RedisServer) -> None:
    env = _env(f"h{uuid.uuid4().hex[:8]}")
    args = ("--workers", "2", "--store", redis_server.url)
    with WebhookReceiver("kept-secret") as receiver:
        with MockProcess(*args, env=env) as url:
            box = Sandbox.create(url)
            box.subscribe(receiver.url, "kept-secret", events=["document.share_created"])
            box.freeze()
            receiver.refuse(1)
            httpx.post(
                f"{url}/v1/renders/{box.render_id}/shares", headers=box.headers, json={}
            ).raise_for_status()
            first = receiver.wait_for("document.share_created", verified=False)
            deadline = time.monotonic() + 10
            while not box.deliveries()[0]["attempts"] and time.monotonic() < deadline:
                time.sleep(0.01)  # the attempt is recorded just after the receiver answered
            box.close()
        with MockProcess(*args, env=env) as again:
            moved = Sandbox(again, box.project_id, box.api_key, box.render_id, httpx.Client(
                base_url=f"{again}/_mock"))  # fmt: skip
            moved.advance(craftkit_spec.webhook_rules().retry_delays_seconds[0])
            second = receiver.wait_for("document.share_created", count=1, timeout=15)
            assert second.delivery_id == first.delivery_id
            assert second.verified  # the secret, sealed in Redis, opens after the restart
            moved.delete()


@pytest.mark.slow
def test_a_redis_outage_is_a_500_naming_the_store_and_the_mock_recovers() -> None:
    with RedisServer() as server, MockProcess("--store", server.url, env=_env("o")) as url:
        seeded = {"Authorization": f"Bearer {ACME_KEY}"}
        assert httpx.get(f"{url}/v1/renders/{SUCCEEDED_RENDER}", headers=seeded).is_success
        server.pause()  # Redis hangs: every call must give up within its timeout
        try:
            started = time.monotonic()
            hung = httpx.get(f"{url}/v1/renders/{SUCCEEDED_RENDER}", headers=seeded, timeout=30)
            assert time.monotonic() - started < 5
            assert hung.status_code == 500
            assert hung.json()["error"]["code"] == "internal"
            assert f"Redis at {server.url}" in hung.json()["error"]["message"]
            assert httpx.get(f"{url}/health", timeout=30).status_code == 500
        finally:
            server.resume()
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        server.stop()  # Redis gone: refused at once
        refused = httpx.get(f"{url}/v1/renders/{SUCCEEDED_RENDER}", headers=seeded, timeout=30)
        assert refused.status_code == 500
        assert "is unreachable" in refused.json()["error"]["message"]
        server.start()  # back, empty: the mock recovers and the seed comes back with it
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        answer = httpx.get(f"{url}/v1/renders/{SUCCEEDED_RENDER}", headers=seeded)
        assert answer.status_code == 200, answer.text


def test_every_key_of_a_sandbox_expires_after_the_idle_time(redis_server: RedisServer) -> None:
    prefix = f"x{uuid.uuid4().hex[:8]}"
    env = _env(prefix, CRAFTKIT_MOCK_SANDBOX_IDLE_SECONDS="3600")
    with MockProcess("--store", redis_server.url, env=env) as url, Sandbox.create(url) as box:
        share = httpx.post(
            f"{url}/v1/renders/{box.render_id}/shares", headers=box.headers, json={}
        ).json()
        httpx.get(share["shareUrl"])
        httpx.post(f"{url}/v1/renders/{box.render_id}/email", headers=box.headers,
                   json={"to": "c@example.com"})  # fmt: skip
        httpx.put(f"{url}/_mock/projects/{box.project_id}/faults", json={"rateLimitPerMinute": 50})
        httpx.get(f"{url}/v1/renders/{box.render_id}", headers=box.headers)
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        mock_wide = {f"{prefix}:{name}" for name in ("projects", "shared", "journal", "seq")}
        lasting = []
        for key in client.scan_iter(match=f"{prefix}:*"):
            if key in mock_wide or key.startswith(f"{prefix}:claim:"):
                continue
            ttl = client.pttl(key)
            if not 0 < ttl <= 3_600_000:
                lasting.append((key, ttl))
        client.close()
        assert lasting == []


def test_workers_above_one_need_redis_and_redis_needs_the_token_secret() -> None:
    memory = subprocess.run(
        [sys.executable, "-m", "mock_server", "--workers", "2", "--store", "memory"],
        capture_output=True,
        text=True,
    )
    assert memory.returncode == 2
    assert "--workers 2 needs the Redis store" in memory.stderr
    env = {**_without_secret(), "CRAFTKIT_MOCK_STORE": "redis://127.0.0.1:1/0"}
    secretless = subprocess.run(
        [sys.executable, "-m", "mock_server"], capture_output=True, text=True, env=env
    )
    assert secretless.returncode == 2
    assert "needs CRAFTKIT_MOCK_TOKEN_SECRET" in secretless.stderr


def test_a_mock_with_another_token_secret_is_refused(redis_server: RedisServer) -> None:
    env = _env(f"s{uuid.uuid4().hex[:8]}")
    with MockProcess("--store", redis_server.url, env=env):
        other = subprocess.run(
            [sys.executable, "-m", "mock_server", "--port", "0", "--store", redis_server.url],
            capture_output=True, text=True, timeout=30,
            env={**env, "CRAFTKIT_MOCK_TOKEN_SECRET": "77" * 32},
        )  # fmt: skip
    assert other.returncode == 2
    assert "different CRAFTKIT_MOCK_TOKEN_SECRET" in other.stderr


def test_an_unreachable_redis_at_start_is_refused_naming_it() -> None:
    env = _env("u")
    result = subprocess.run(
        [sys.executable, "-m", "mock_server", "--store", "redis://:hunter2@127.0.0.1:1/0"],
        capture_output=True, text=True, timeout=30, env={**os.environ, **env},
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in result.stderr
    assert "hunter2" not in result.stderr


def test_a_mock_process_never_outlives_the_test_that_started_it(redis_server: RedisServer) -> None:
    """Dropped without ``stop`` (a test torn down early), its supervisor and workers go too."""
    mock = MockProcess("--workers", "2", "--store", redis_server.url, env=_env("g"))
    url = mock.start()
    assert httpx.get(f"{url}/health").status_code == 200
    group = os.getpgid(mock._process.pid)  # type: ignore[union-attr]
    assert len(_alive_in_group(group)) >= 3  # the supervisor and two workers (and helpers)
    del mock
    gc.collect()
    assert _alive_in_group(group) == []


def _alive_in_group(group: int) -> list[int]:
    """The processes of a process group that are alive (not exited and waiting to be reaped)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so read after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                alive.append(int(stat.parent.name))
    return alive
