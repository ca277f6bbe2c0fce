"""Real faults on a real Redis: the mock rides them out, and nothing changes but capacity.

Each test runs ``craftkit-mock --store redis://…`` as processes of its own against a
``redis-server`` it starts, then takes Redis away (paused: it hangs; stopped: it refuses;
restarted: it comes back empty), kills a worker, or lets another secret claim the store.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from mock_server.engines.interface import Limits, StoreUnavailable
from mock_server.engines.redis import PROBE_GAP_SECONDS, TIMEOUT_SECONDS, RedisEngine
from mock_server.testing import MockProcess, RedisServer
from tests.conftest import ACME_KEY, SUCCEEDED_RENDER

SECRET = "5f" * 32
SEEDED = {"Authorization": f"Bearer {ACME_KEY}"}

pytestmark = pytest.mark.slow


def _env(prefix: str, secret: str = SECRET) -> dict[str, str]:
    return {"CRAFTKIT_MOCK_TOKEN_SECRET": secret, "CRAFTKIT_MOCK_STORE_PREFIX": prefix}


def _prefix() -> str:
    return f"f{uuid.uuid4().hex[:8]}"


def _workers(supervisor: int) -> list[int]:
    """The worker processes of a ``--workers`` supervisor (not multiprocessing's helpers)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = []
    for child in children:
        try:
            if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text(errors="replace"):
                workers.append(int(child))
        except OSError:
            pass  # gone meanwhile
    return workers


def _until(condition: Any, seconds: float = 20.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {seconds} s")
        time.sleep(0.05)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _burst(url: str, count: int) -> list[tuple[int, float]]:
    """``count`` reads of the seeded render at once: each answer's status and seconds."""

    async def one(client: httpx.AsyncClient) -> tuple[int, float]:
        started = time.monotonic()
        answer = await client.get(f"{url}/v1/renders/{SUCCEEDED_RENDER}", headers=SEEDED)
        return answer.status_code, time.monotonic() - started

    async def all_at_once() -> list[tuple[int, float]]:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return await asyncio.gather(*(one(client) for _ in range(count)))

    return asyncio.run(all_at_once())


def test_a_worker_that_dies_while_redis_hangs_is_replaced_and_serves_once_redis_is_back() -> None:
    with RedisServer() as server:
        mock = MockProcess("--workers", "2", "--store", server.url, env=_env(_prefix()))
        url = mock.start()
        assert _healthy(url)
        supervisor = mock.pid
        server.pause()
        try:
            first, *_ = _workers(supervisor)
            os.kill(first, signal.SIGKILL)
            # The replacement starts while Redis hangs: it must wait, not fail its start.
            _until(lambda: first not in _workers(supervisor) and len(_workers(supervisor)) == 2,
                   what="a replacement worker")  # fmt: skip
            # Long enough for the replacement to import, start, and meet the outage (a Redis
            # call gives up after 2 s): it must wait for Redis, not fail its start.
            time.sleep(8)
            assert mock.running, f"the supervisor gave up:\n{mock.output()}"
        finally:
            server.resume()
        try:
            _until(lambda: _healthy(url), what="/health green again")
            assert mock.running, f"the supervisor gave up:\n{mock.output()}"
            assert {status for status, _ in _burst(url, 32)} == {200}
        finally:
            mock.stop()


def test_no_request_fails_once_health_is_green_after_redis_restarts_empty() -> None:
    with (
        RedisServer() as server,
        MockProcess("--workers", "2", "--store", server.url, env=_env(_prefix())) as url,
    ):
        assert {status for status, _ in _burst(url, 128)} == {200}  # every pooled connection
        server.stop()
        server.start()  # empty: the pools' connections are all stale, the seed is gone
        _until(lambda: _healthy(url), what="/health green")
        statuses = [status for _ in range(3) for status, _ in _burst(url, 128)]
        with httpx.Client(timeout=10) as client:
            statuses += [
                client.get(f"{url}/v1/renders/{SUCCEEDED_RENDER}", headers=SEEDED).status_code
                for _ in range(100)
            ]
        assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}


def test_a_process_whose_breaker_is_open_serves_its_next_request_once_redis_is_back() -> None:
    # No keeper runs here, and no /health: as for a worker whose sibling answered /health
    # green, only the request itself can find Redis back.
    async def scenario(server: RedisServer) -> list[str]:
        engine = RedisEngine(server.url, _prefix(), Limits())
        seen = []
        try:
            assert await engine.claimed("anything") is None
            server.stop()
            with pytest.raises(StoreUnavailable):
                await engine.claimed("anything")  # opens the breaker
            with pytest.raises(StoreUnavailable):
                await engine.claimed("anything")  # answered at once, Redis still down
            server.start()
            await asyncio.sleep(2 * PROBE_GAP_SECONDS)  # past the gap between two pings
            answers = await asyncio.gather(
                *(engine.claimed("anything") for _ in range(20)), return_exceptions=True
            )
            seen = [type(answer).__name__ for answer in answers]
        finally:
            await engine.aclose()
        return seen

    with RedisServer() as server:
        assert asyncio.run(scenario(server)) == ["NoneType"] * 20


def test_a_hung_redis_costs_a_crowd_one_timeout_and_the_next_crowd_nothing() -> None:
    with (
        RedisServer() as server,
        MockProcess("--store", server.url, env=_env(_prefix())) as url,
    ):
        assert {status for status, _ in _burst(url, 150)} == {200}
        server.pause()
        try:
            first, then = _burst(url, 150), _burst(url, 150)
        finally:
            server.resume()
    assert {status for status, _ in first + then} == {500}
    # Bounds from the Redis timeout, not from this machine's speed: a request that waited for
    # Redis took a whole timeout; one that waited twice (queued for a connection, handed one
    # before the breaker knew of the timeout that freed it) took two.
    slowest = max(seconds for _, seconds in first)
    assert slowest < 1.5 * TIMEOUT_SECONDS, (
        f"the slowest of the first 150 answered in {slowest:.1f} s: it waited more than once"
    )
    slowest = max(seconds for _, seconds in then)
    assert slowest < TIMEOUT_SECONDS, (
        f"the slowest of the next 150 answered in {slowest:.1f} s: it waited for Redis"
    )


def test_another_secret_claiming_the_store_makes_a_mock_refuse_until_the_claim_is_its_own() -> None:
    prefix = _prefix()
    with (
        RedisServer() as server,
        MockProcess("--store", server.url, env=_env(prefix)) as url,
    ):
        client = redis.Redis.from_url(server.url)
        claim = f"{prefix}:claim:token-secret"
        mine = client.get(claim)
        assert mine is not None
        # As if Redis had restarted empty and a mock with another secret claimed it first.
        client.set(claim, "another process's secret")
        _until(lambda: httpx.get(f"{url}/health").status_code == 500, what="the refusal")
        refused = httpx.get(f"{url}/v1/renders/{SUCCEEDED_RENDER}", headers=SEEDED).json()
        message = refused["error"]["message"]
        for advice in ("same secret", "CRAFTKIT_MOCK_STORE_PREFIX", "claim:token-secret"):
            assert advice in message
        # And a newcomer with yet another secret is refused at start, saying why.
        client.delete(claim)
        _until(lambda: _healthy(url), what="serving again once the claim is free")
        assert client.get(claim) == mine
        newcomer = MockProcess("--store", server.url, env=_env(prefix, "6a" * 32))
        with pytest.raises(RuntimeError, match="CRAFTKIT_MOCK_TOKEN_SECRET"):
            newcomer.start()
        client.close()
