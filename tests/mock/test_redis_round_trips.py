"""Round trips to Redis per request, counted on the wire between a mock process and Redis.

A relay on loopback passes every byte between ``craftkit-mock --store`` and ``redis-server``
and counts turns: each time the mock writes after Redis answered (or first) on a connection
is one round trip, however many commands that write pipelines. The mock's keeper pings in
the background twice a second, so each figure is the fewest seen over a few requests.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from mock_server.testing import MockProcess, RedisServer, Sandbox
from tests.support.turn_relay import TurnCountingRelay

SECRET = "7b" * 32


@pytest.fixture(scope="module")
def counted() -> Iterator[tuple[str, TurnCountingRelay]]:
    """A mock process whose Redis is reached through the counting relay."""
    with RedisServer() as server:
        relay = TurnCountingRelay(server.port)
        env = {"CRAFTKIT_MOCK_TOKEN_SECRET": SECRET, "CRAFTKIT_MOCK_STORE_PREFIX": "t"}
        with MockProcess("--store", f"redis://127.0.0.1:{relay.port}/0", env=env) as url:
            yield url, relay
        relay.close()


def _fewest_turns(relay: TurnCountingRelay, request: Callable[[], None], times: int = 6) -> int:
    counts = []
    for _ in range(times):
        before = relay.turns
        request()
        counts.append(relay.turns - before)
    return min(counts)


@pytest.mark.parametrize(
    ("call", "most"),
    [("create share", 5), ("list shares", 3), ("read render", 3)],
)
def test_a_request_takes_no_more_round_trips_to_redis_than_architecture_states(
    counted: tuple[str, TurnCountingRelay], call: str, most: int
) -> None:
    url, relay = counted
    box = Sandbox.create(url, name=f"trips-{uuid.uuid4().hex[:6]}")
    api = httpx.Client(base_url=f"{url}/v1", headers=box.headers, timeout=10)
    with api, contextlib.closing(box):
        shares = f"/renders/{box.render_id}/shares"
        for _ in range(3):  # warm: the key's project known to the process, keys renewed
            assert api.post(shares, json={}).status_code == 201
            assert api.get(shares).status_code == 200

        def one() -> None:
            if call == "create share":
                assert api.post(shares, json={}).status_code == 201
            elif call == "list shares":
                assert api.get(shares).status_code == 200
            else:
                assert api.get(f"/renders/{box.render_id}").status_code == 200

        fewest = _fewest_turns(relay, one)
    assert fewest == most, f"{call}: {fewest} round trips to Redis (ARCHITECTURE.md says {most})"
