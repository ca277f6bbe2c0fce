"""The Redis engine's shared pipeline: concurrent callers share round trips, not answers.

Counted on the wire by a relay between the engine and a real ``redis-server``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.exceptions import ResponseError

from mock_server.engines.interface import Limits
from mock_server.engines.redis import RedisEngine
from mock_server.model.records import Project, Render, pack
from mock_server.testing import RedisServer
from tests.support.turn_relay import TurnCountingRelay

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def relayed() -> Iterator[tuple[str, TurnCountingRelay]]:
    """A Redis URL that goes through a counting relay."""
    with RedisServer() as server:
        relay = TurnCountingRelay(server.port)
        yield f"redis://127.0.0.1:{relay.port}/0", relay
        relay.close()


def _render(render_id: str, project_id: str) -> Render:
    return Render(
        render_id, project_id, "invoice", "Invoice", 1, pack({}), T0, timedelta(0),
        timedelta(0), forced_status="succeeded", forced_at=T0,
    )  # fmt: skip


def _scenario(url: str, body: Any) -> Any:
    async def run() -> Any:
        engine = RedisEngine(url, f"b{uuid.uuid4().hex[:10]}", Limits())
        try:
            for n in range(40):
                await engine.add_project(Project(f"p{n}", f"Project {n}"), f"key-{n}")
                await engine.add_render(_render(f"r{n}", f"p{n}"), None)
            return await body(engine)
        finally:
            await engine.wipe()
            await engine.aclose()

    return asyncio.run(run())


def test_forty_concurrent_reads_share_one_round_trip_and_each_gets_its_own_answer(
    relayed: tuple[str, TurnCountingRelay],
) -> None:
    url, relay = relayed

    async def body(engine: RedisEngine) -> tuple[int, list[str]]:
        await engine.render("p0", "r0")  # a pooled connection, connected
        before = relay.turns
        found = await asyncio.gather(*(engine.render(f"p{n}", f"r{n}") for n in range(40)))
        turns = relay.turns - before
        return turns, [render.id for render in found if render is not None]

    turns, ids = _scenario(url, body)
    assert ids == [f"r{n}" for n in range(40)]
    assert turns == 1


def test_a_command_redis_refuses_fails_only_its_caller(
    relayed: tuple[str, TurnCountingRelay],
) -> None:
    url, _ = relayed

    async def body(engine: RedisEngine) -> list[Any]:
        renders = engine.project_key("p1", "renders")
        answers: list[Any] = await asyncio.gather(
            engine.render("p0", "r0"),
            engine.batched(lambda pipe: pipe.lpush(renders, "not a hash")),  # WRONGTYPE
            engine.batched(lambda pipe: [][0]),  # a caller's own mistake while filling
            engine.render("p2", "r2"),
            return_exceptions=True,
        )
        return answers

    first, wrong_type, mistake, last = _scenario(url, body)
    assert isinstance(first, Render)
    assert first.id == "r0"
    assert isinstance(wrong_type, ResponseError)
    assert "WRONGTYPE" in str(wrong_type)
    assert isinstance(mistake, IndexError)
    assert isinstance(last, Render)
    assert last.id == "r2"
