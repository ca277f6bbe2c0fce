"""Both engines keep the same promises, step by step (the HTTP tests run on both as well)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

import craftkit_spec
from mock_server.engines.interface import Engine, JournalEntry, Limits
from mock_server.engines.memory import MemoryEngine
from mock_server.engines.redis import LIST_SLICE, RedisEngine
from mock_server.model.clock import ClockRangeError
from mock_server.model.ids import ShareTokenMinter
from mock_server.model.records import (
    EngagementEvent,
    OutgoingEmail,
    Project,
    Render,
    SentEmail,
    Share,
    pack,
)
from mock_server.operations.callers import ProjectView, UnknownKey
from mock_server.operations.store import Store
from mock_server.seed import default_seed_path, load_seed
from mock_server.settings import Settings

if TYPE_CHECKING:
    from mock_server.model.records import EventType

T0 = datetime(2030, 1, 1, tzinfo=UTC)
WINDOW = timedelta(seconds=craftkit_spec.dedup_window_seconds())
REASON = craftkit_spec.revoke_reason()
SMALL = Limits(idempotency_keys=2, dedup_keys=2, recent_events=3, outbox=2, journal=2)

Scenario = Callable[[Engine], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    """Run a scenario on a fresh engine of each kind (Redis: a prefix of its own)."""

    def on_engine(scenario: Scenario) -> None:
        async def go() -> None:
            if request.param == "memory":
                engine: Engine = MemoryEngine(SMALL)
            else:
                url = request.getfixturevalue("redis_url")
                engine = RedisEngine(url, f"e{uuid.uuid4().hex[:10]}", SMALL)
            try:
                await engine.add_project(Project("p1", "One"), "key-1")
                await scenario(engine)
            finally:
                await engine.aclose()

        asyncio.run(go())

    return on_engine


def _render(render_id: str = "r1", at: datetime = T0) -> Render:
    return Render(
        render_id, "p1", "invoice", "Invoice", 1, pack({}), at, timedelta(0), timedelta(0),
        forced_status="succeeded", forced_at=at,
    )  # fmt: skip


def _share(share_id: str, at: datetime = T0, render_id: str = "r1") -> Share:
    return Share(
        share_id, render_id, "p1", 0, b"\x01" * 16, f"digest-{share_id}", "link", None, None,
        None, at,
    )  # fmt: skip


def _event(kind: EventType, share_id: str | None, at: datetime) -> EngagementEvent:
    return EngagementEvent(f"e-{uuid.uuid4()}", kind, share_id, at)


def test_one_revoke_wins(run: Callable[[Scenario], None]) -> None:
    async def scenario(engine: Engine) -> None:
        await engine.add_render(_render(), None)
        await engine.add_share(_share("s1"), "digest-s1", _event("share_created", "s1", T0))
        revoke = engine.revoke_share(
            "p1", "r1", "s1", T0, REASON, _event("share_revoked", "s1", T0)
        )
        first = await revoke
        assert first is not None
        assert first.revoked_at == T0
        again = await engine.revoke_share(
            "p1", "r1", "s1", T0, REASON, _event("share_revoked", "s1", T0)
        )
        assert again is None
        other_parent = await engine.revoke_share(
            "p1", "r2", "s1", T0, REASON, _event("share_revoked", "s1", T0)
        )
        assert other_parent is None
        view = await engine.engagement("p1", "r1")
        assert view.counts["share_revoked"] == 1
        assert [e.event_type for e in view.recent] == ["share_revoked", "share_created"]

    run(scenario)


def test_views_count_once_per_key_within_the_window(run: Callable[[Scenario], None]) -> None:
    async def scenario(engine: Engine) -> None:
        await engine.add_render(_render(), None)
        await engine.add_share(_share("s1"), "digest-s1", _event("share_created", "s1", T0))

        async def view(at: datetime, key: str = "s1|viewed|10.0.0.1") -> bool:
            event = _event("viewed", "s1", at)
            return await engine.record_recipient_event("p1", "r1", event, key, WINDOW)

        assert await view(T0)
        assert not await view(T0 + WINDOW - timedelta(milliseconds=1))
        assert await view(T0 + WINDOW)
        assert await view(T0, "s1|viewed|10.0.0.2")
        assert await engine.shares("p1", "no-such-render") is None
        [(_, clicks)] = await engine.shares("p1", "r1") or []
        assert clicks == 3
        view_counts = await engine.engagement("p1", "r1")
        assert (view_counts.counts["viewed"], view_counts.link_opens) == (3, 3)
        assert len(view_counts.recent) == SMALL.recent_events

    run(scenario)


def test_one_render_per_idempotency_key_and_the_oldest_keys_go(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(engine: Engine) -> None:
        first = await engine.add_render(_render("r1"), "k1")
        assert (await engine.add_render(_render("r2"), "k1")).id == first.id
        await engine.add_render(_render("r3"), "k2")
        await engine.add_render(_render("r4"), "k3")  # k1 is forgotten past two keys
        assert await engine.render_of_key("p1", "k1") is None
        assert (await engine.add_render(_render("r5"), "k1")).id == "r5"
        assert await engine.render("p1", "r2") is None

    run(scenario)


def test_shares_are_listed_newest_first_even_after_the_clock_went_back(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(engine: Engine) -> None:
        await engine.add_render(_render(), None)
        stamps = [T0, T0 + timedelta(seconds=5), T0 - timedelta(days=1), T0 + timedelta(seconds=5)]
        for n, at in enumerate(stamps):
            made = await engine.add_share(
                _share(f"s{n}", at), f"d{n}", _event("share_created", f"s{n}", at)
            )
            assert made.sequence == n + 1
        listed = [share.id for share, _ in await engine.shares("p1", "r1") or []]
        assert listed == ["s3", "s1", "s0", "s2"]
        assert (await engine.share_of_token("d2")) is not None

    run(scenario)


def test_the_outbox_and_the_journal_keep_the_newest(run: Callable[[Scenario], None]) -> None:
    async def scenario(engine: Engine) -> None:
        for n in range(3):
            mail = OutgoingEmail("f@x.dev", f"to{n}@x.dev", "s", "t", "h", "r1", "s1")
            await engine.keep_email("p1", SentEmail(f"m{n}", mail, T0))
            entry = JournalEntry("GET", f"/v1/renders/r{n}", 200, T0, "p1", float(n))
            await engine.journal_record(entry)
        assert [e.sent.id for e in await engine.emails("p1")] == ["m1", "m2"]
        assert [e.path for e in await engine.journal("p1")] == ["/v1/renders/r2", "/v1/renders/r1"]
        assert [e.path for e in await engine.journal(None)][:2] == [
            "/v1/renders/r2",
            "/v1/renders/r1",
        ]

    run(scenario)


def test_clearing_a_project_keeps_its_key_and_forgets_the_rest(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(engine: Engine) -> None:
        await engine.add_render(_render(), None)
        await engine.add_share(_share("s1"), "digest-s1", _event("share_created", "s1", T0))
        await engine.set_faults("p1", {"storage_fails": True})
        await engine.change_clock("p1", lambda c: c.set_to(T0, T0))
        await engine.clear_project("p1", delete=True)
        state = await engine.project("p1")
        assert state is not None
        assert state.project.deleted
        assert (state.clock, state.faults) == (None, {})
        assert await engine.project_id_of_key("key-1") == "p1"
        assert await engine.render("p1", "r1") is None
        assert await engine.share_of_token("digest-s1") is None
        assert not await engine.add_project(Project("p1", "Again"), "key-2")

    run(scenario)


def test_a_refused_clock_change_leaves_the_clock_as_it_was(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(engine: Engine) -> None:
        await engine.change_clock(None, lambda c: c.frozen_as(True, T0))
        with pytest.raises(ClockRangeError):
            await engine.change_clock(None, lambda c: c.advanced(1e12, T0))
        shared = (await engine.shared()).clock
        assert shared.frozen
        assert shared.now(T0 + timedelta(days=3)) == T0
        own = await engine.change_clock("p1", lambda c: c.advanced(60, T0))
        assert own.now(T0) == T0 + timedelta(seconds=60)  # moved from the shared clock's time
        assert own.frozen
        assert (await engine.shared()).clock == shared

    run(scenario)


def test_an_idle_project_is_dropped_and_a_seeded_one_comes_back() -> None:
    ticks = [0.0]
    engine = MemoryEngine(Limits(idle_seconds=3600), monotonic=lambda: ticks[0])
    seed = load_seed(default_seed_path())
    store = Store(settings=Settings(), seed=seed, engine=engine, minter=ShareTokenMinter())
    seeded = seed.projects[0]

    async def scenario() -> None:
        _project, key = await store.create_project("idle")
        assert isinstance(await store.caller_of_key(key), ProjectView)
        acme = await store.project_of_key(seeded.api_key)
        await store.control_create_render(acme, status="succeeded", slug="invoice", data={})
        ticks[0] = 3600 + 61  # an hour and a minute later a request sweeps
        await engine.touch("nobody")
        assert isinstance(await store.caller_of_key(key), UnknownKey)  # dropped, key and all
        again = await store.project_of_key(seeded.api_key)  # the seeded project comes back
        assert again.project.id == seeded.id
        assert len(engine._projects[seeded.id].renders) == len(seeded.renders)

    asyncio.run(scenario())


def test_a_full_deduplication_cache_forgets_the_longest_counted_entry_first(
    run: Callable[[Scenario], None],
) -> None:
    """Past the cap (two entries here), the entry counted longest ago goes.

    Among entries counted at one instant, the first in key order, whichever engine keeps
    them. Found by the engine equivalence machine: the memory engine went by arrival, Redis
    by key.
    """

    async def scenario(engine: Engine) -> None:
        await engine.add_render(_render(), None)

        async def event(key: str, at: datetime = T0) -> bool:
            return await engine.record_recipient_event(
                "p1", "r1", _event("printed", None, at), key, WINDOW
            )

        assert await event("render:r1|printed|b")
        assert await event("render:r1|printed|a")
        assert await event("render:r1|printed|c")  # over the cap: "…|a" goes, not "…|b"
        assert await event("render:r1|printed|a")  # forgotten, so it counts again
        assert not await event("render:r1|printed|c")
        # The clock went back: the entry counted at the earliest instant goes first.
        assert await event("render:r1|printed|d", T0 - timedelta(hours=1))
        assert await event("render:r1|printed|e", T0 - timedelta(hours=1))  # "…|d" goes
        assert await event("render:r1|printed|d", T0 - timedelta(hours=1))

    run(scenario)


def test_a_rate_window_forgets_requests_after_a_clock_moved_back(
    run: Callable[[Scenario], None],
) -> None:
    """Moving a clock back never locks a client out until the old time comes round again."""

    async def scenario(engine: Engine) -> None:
        for client in ("p1", None):
            assert await engine.admit(client, "10.0.0.9", 1, T0) is None
            assert await engine.admit(client, "10.0.0.9", 1, T0) == 60
            earlier = T0 - timedelta(days=1)
            assert await engine.admit(client, "10.0.0.9", 1, earlier) is None
            assert await engine.admit(client, "10.0.0.9", 1, earlier + timedelta(seconds=59)) == 1

    run(scenario)


def test_a_long_share_list_is_read_in_short_slices_none_twice(redis_url: str) -> None:
    """No one script holds Redis for a whole long list.

    A share made between two slices is not read twice, and nothing is missed.
    """

    async def scenario() -> None:
        engine = RedisEngine(redis_url, f"s{uuid.uuid4().hex[:10]}", SMALL)
        try:
            await engine.add_project(Project("p1", "One"), "key-1")
            await engine.add_render(_render(), None)
            count = LIST_SLICE * 2 + 50
            for n in range(count):
                at = T0 + timedelta(seconds=n)
                await engine.add_share(
                    _share(f"s{n}", at), f"d{n}", _event("share_created", None, at)
                )
            script = engine._list_shares
            slices: list[int] = []

            async def counted(keys: list[str], args: list[Any]) -> Any:
                found = await script(keys=keys, args=args)
                slices.append(len(found or []) // 4)
                if len(slices) == 1:  # a share made between two slices: the newest of all
                    later = T0 + timedelta(days=1)
                    await engine.add_share(
                        _share("late", later), "dl", _event("share_created", None, later)
                    )
                return found

            engine._list_shares = counted  # type: ignore[assignment]
            listed = [share.id for share, _ in await engine.shares("p1", "r1") or []]
            assert slices == [LIST_SLICE] * 2 + [50]
            assert listed == [f"s{n}" for n in reversed(range(count))]
            assert await engine.shares("p1", "no-such-render") is None  # after the count
            # A list of exactly one slice is one script: the slice says nothing follows it.
            await engine.add_render(_render("r2"), None)
            for n in range(LIST_SLICE):
                at = T0 + timedelta(seconds=n)
                await engine.add_share(
                    _share(f"t{n}", at, "r2"), f"e{n}", _event("share_created", None, at)
                )
            slices.clear()
            whole = await engine.shares("p1", "r2") or []
            assert (len(whole), slices) == (LIST_SLICE, [LIST_SLICE])
        finally:
            await engine.wipe()
            await engine.aclose()

    asyncio.run(scenario())


def test_a_share_is_kept_and_indexed_after_redis_forgot_its_scripts(redis_url: str) -> None:
    """The share and its token index go in one round trip; ``NOSCRIPT`` loads and resends."""

    async def scenario() -> None:
        engine = RedisEngine(redis_url, f"n{uuid.uuid4().hex[:10]}", SMALL)
        try:
            await engine.add_project(Project("p1", "One"), "key-1")
            await engine.add_render(_render(), None)
            await engine.add_share(_share("s0"), "d0", _event("share_created", None, T0))
            await engine.client.script_flush()  # as after a restart or a failover
            kept = await engine.add_share(_share("s1"), "d1", _event("share_created", None, T0))
            assert kept.sequence == 2
            found = await engine.share_of_token("d1")
            assert found is not None
            assert found.id == "s1"
        finally:
            await engine.wipe()
            await engine.aclose()

    asyncio.run(scenario())
