"""A share list of 50,000 rows on Redis, and another process's /health meanwhile.

    python bench/long_list.py [--shares 50000]

A ``redis-server`` and ``craftkit-mock --store`` on it, both on loopback; the shares are
written straight into the store through the Redis engine (creating them over HTTP would
take minutes). One client lists the render's shares from one mock process while another
times ``GET /health`` of a second process on the same Redis, back to back: a call holding
Redis would stall it. Redis's SLOWLOG (threshold 10 ms) counts the calls that held it longer.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import redis

from mock_server.engines.interface import Limits
from mock_server.engines.redis import RedisEngine
from mock_server.model.ids import ShareTokenMinter, digest
from mock_server.model.records import EngagementEvent, Share
from mock_server.testing import MockProcess, RedisServer, Sandbox

SECRET = "7b" * 32
PREFIX = "longlist"


async def _fill(url: str, project_id: str, render_id: str, count: int) -> None:
    """``count`` shares of the render, written through the engine, 500 at a time."""
    engine = RedisEngine(url, PREFIX, Limits())
    minter = ShareTokenMinter(bytes.fromhex(SECRET))
    start = datetime(2030, 1, 1, tzinfo=UTC)
    try:
        for first in range(0, count, 500):
            batch = []
            for n in range(first, min(first + 500, count)):
                at = start + timedelta(milliseconds=n)
                nonce = minter.new_nonce()
                token_digest = digest(minter.token(nonce))
                share = Share(
                    f"{n:08d}-0000-7000-8000-000000000000", render_id, project_id, 0, nonce,
                    token_digest, "link", None, None, None, at,
                )  # fmt: skip
                event = EngagementEvent(f"e{n}", "share_created", share.id, at)
                batch.append(engine.add_share(share, token_digest, event))
            await asyncio.gather(*batch)
    finally:
        await engine.aclose()


def main() -> None:
    """Measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=int, default=50_000)
    args = parser.parse_args()
    env = {"CRAFTKIT_MOCK_TOKEN_SECRET": SECRET, "CRAFTKIT_MOCK_STORE_PREFIX": PREFIX}
    server = RedisServer()
    server.start()
    with (
        MockProcess("--store", server.url, env=env) as url,
        MockProcess("--store", server.url, env=env) as other,
        Sandbox.create(url) as sandbox,
    ):
        asyncio.run(_fill(server.url, sandbox.project_id, sandbox.render_id, args.shares))
        client = redis.Redis.from_url(server.url)
        client.config_set("slowlog-log-slower-than", 10_000)
        client.slowlog_reset()
        done, health = threading.Event(), []

        def probe() -> None:
            with httpx.Client(timeout=30) as http:
                while not done.is_set():
                    started = time.perf_counter()
                    http.get(f"{other}/health").raise_for_status()
                    health.append(time.perf_counter() - started)

        prober = threading.Thread(target=probe)
        prober.start()
        started = time.perf_counter()
        listed = httpx.get(
            f"{url}/v1/renders/{sandbox.render_id}/shares", headers=sandbox.headers, timeout=120
        )
        took = time.perf_counter() - started
        done.set()
        prober.join()
        rows = len(listed.json()["shares"])
        slow = client.slowlog_get(128)
        client.close()
    server.stop()
    print(f"listed {rows} shares in {took:.1f} s; Redis calls over 10 ms meanwhile: {len(slow)}")
    longest = max((entry["duration"] for entry in slow), default=0) / 1000
    print(f"longest slow call: {longest:.1f} ms")
    p90 = statistics.quantiles(health, n=10)[-1]
    print("| /health during the list | p50 (ms) | p90 (ms) | max (ms) | probes |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| | {statistics.median(health) * 1000:.1f} | {p90 * 1000:.1f} "
        f"| {max(health) * 1000:.1f} | {len(health)} |"
    )


if __name__ == "__main__":
    main()
