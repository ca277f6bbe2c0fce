"""The two engines are one: a state machine drives both with the same steps and compares them.

The rules an atomic step decides (revoke once, count once per source and window, newest
first, one render per idempotency key, the rate window, capped logs and caches) are written
twice, in Python for the memory engine and in Lua for Redis. Example tests can miss a copy
that drifts (a ``>=`` become ``>`` in one of them); this machine draws sequences of
creates, revokes, views from several addresses, recipient events, admissions, idempotent
submissions, mail, journal entries and clock moves both ways, runs each step on a
``MemoryEngine`` and a ``RedisEngine`` on a real ``redis-server``, and after every step
compares everything either engine can show. Small limits make the caps bite.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import craftkit_spec
from mock_server.engines.interface import Engine, JournalEntry, Limits
from mock_server.engines.memory import MemoryEngine
from mock_server.engines.redis import RedisEngine
from mock_server.model.clock import ClockRangeError, ClockState
from mock_server.model.records import (
    EngagementEvent,
    OutgoingEmail,
    Project,
    Render,
    SentEmail,
    Share,
    pack,
)

LIMITS = Limits(idempotency_keys=2, dedup_keys=3, recent_events=2, outbox=2, journal=2)
WINDOW = timedelta(seconds=craftkit_spec.dedup_window_seconds())
REASON = craftkit_spec.revoke_reason()
if TYPE_CHECKING:
    from mock_server.model.records import EventType

T0 = datetime(2030, 1, 1, tzinfo=UTC)
PROJECTS = ("p1", "p2")
RENDERS = {"r1": "p1", "r2": "p1", "r3": "p2"}
ADDRESSES = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
KEYS = ("k1", "k2", "k3")
RECIPIENT_KINDS: tuple[EventType, ...] = ("viewed", "downloaded", "printed")
MOVES = st.sampled_from(
    [-86_400, -WINDOW.seconds, -1, 1, 59, 60, WINDOW.seconds - 1, WINDOW.seconds, 3_601]
)
"""Clock moves in seconds, both ways, on and around the window's and the minute's edges."""


def _render(render_id: str, at: datetime) -> Render:
    data = pack({"n": render_id})
    return Render(
        render_id, RENDERS.get(render_id, "p1"), "invoice", "Invoice", 1, data, at,
        timedelta(0), timedelta(0), forced_status="succeeded", forced_at=at,
    )  # fmt: skip


class EnginesAgree(RuleBasedStateMachine):
    """One memory and one Redis engine, the same steps on each, compared after every step."""

    redis_url: ClassVar[str]
    shares = Bundle("shares")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.memory = MemoryEngine(LIMITS)
        self.redis = RedisEngine(self.redis_url, f"eq{uuid.uuid4().hex[:10]}", LIMITS)
        self.now = T0
        self.made = itertools.count()
        self.last_recipient: tuple[str, str, str | None, EventType, str] | None = None
        """The last recipient event's project, render, share, type and key, to repeat."""

    def _on_both(self, call: str, *args: Any) -> tuple[Any, Any]:
        """The engine method ``call`` with ``args``, on memory and then on Redis."""

        async def both() -> tuple[Any, Any]:
            memory = await getattr(self.memory, call)(*args)
            return memory, await getattr(self.redis, call)(*args)

        return self.loop.run_until_complete(both())

    def _same(self, call: str, *args: Any) -> Any:
        """The step on both engines, which must answer alike; the answer."""
        in_memory, in_redis = self._on_both(call, *args)
        assert in_memory == in_redis, f"{call}{args}: memory {in_memory!r}, Redis {in_redis!r}"
        return in_memory

    def _event(self, kind: EventType, share_id: str | None) -> EngagementEvent:
        return EngagementEvent(f"e{next(self.made)}", kind, share_id, self.now)

    def teardown(self) -> None:
        async def close() -> None:
            await self.redis.wipe()
            await self.redis.aclose()

        self.loop.run_until_complete(close())
        self.loop.close()

    @initialize()
    def projects_and_renders(self) -> None:
        """Two projects; two renders in the first, one in the second."""
        for project_id in PROJECTS:
            self._same("add_project", Project(project_id, project_id), f"key-{project_id}")
        for render_id in RENDERS:
            self._same("add_render", _render(render_id, T0), None)

    # ---- steps ----------------------------------------------------------------------

    @rule(target=shares, render_id=st.sampled_from(sorted(RENDERS)))
    def create(self, render_id: str) -> Share:
        """A share of a render, created now; both number it alike."""
        number = next(self.made)
        share = Share(
            f"s{number}", render_id, RENDERS[render_id], 0, number.to_bytes(16, "big"),
            f"digest-{number}", "link", None, None, None, self.now,
        )  # fmt: skip
        made: Share = self._same(
            "add_share", share, share.token_digest, self._event("share_created", share.id)
        )
        return made

    @rule(share=shares, through=st.sampled_from(sorted(RENDERS)))
    def revoke(self, share: Share, through: str) -> None:
        """A revoke, through the share's render or another: one winner, then none."""
        event = self._event("share_revoked", share.id)
        self._same("revoke_share", RENDERS[through], through, share.id, self.now, REASON, event)

    @rule(share=shares, kind=st.sampled_from(RECIPIENT_KINDS), address=st.sampled_from(ADDRESSES))
    def open_link(self, share: Share, kind: EventType, address: str) -> None:
        """A recipient's view or download through a link, de-duplicated per address."""
        key = f"{share.id}|{kind}|{address}"
        self.last_recipient = (share.project_id, share.render_id, share.id, kind, key)
        self._recipient_event()

    @rule(
        render_id=st.sampled_from(sorted(RENDERS)),
        kind=st.sampled_from(RECIPIENT_KINDS),
        address=st.sampled_from(ADDRESSES),
    )
    def report_event(self, render_id: str, kind: EventType, address: str) -> None:
        """A recipient event reported through the API, de-duplicated per render and address."""
        key = f"render:{render_id}|{kind}|{address}"
        self.last_recipient = (RENDERS[render_id], render_id, None, kind, key)
        self._recipient_event()

    @precondition(lambda self: self.last_recipient is not None)
    @rule(seconds=MOVES)
    def again_later(self, seconds: int) -> None:
        """The last recipient event again, some time later (or earlier): the window's edges."""
        self.now += timedelta(seconds=seconds)
        self._recipient_event()

    def _recipient_event(self) -> None:
        assert self.last_recipient is not None
        project_id, render_id, share_id, kind, key = self.last_recipient
        event = self._event(kind, share_id)
        self._same("record_recipient_event", project_id, render_id, event, key, WINDOW)

    @rule(render_id=st.sampled_from(sorted(RENDERS)))
    def email_sent(self, render_id: str) -> None:
        """An ``email_sent`` event, counted without de-duplication."""
        self._same("record_event", RENDERS[render_id], render_id, self._event("email_sent", None))

    @rule(
        project_id=st.none() | st.sampled_from(PROJECTS),
        address=st.sampled_from(ADDRESSES),
        limit=st.integers(1, 3),
    )
    def admit(self, project_id: str | None, address: str, limit: int) -> None:
        """A request counted in its client's minute: the same wait, or the same admission."""
        self._same("admit", project_id, address, limit, self.now)

    @rule(project_id=st.none() | st.sampled_from(PROJECTS))
    def forget_rate(self, project_id: str | None) -> None:
        """A rate limit switched anew: its minute starts afresh."""
        self._same("forget_rate", project_id)

    @rule(key=st.sampled_from(KEYS), project_id=st.sampled_from(PROJECTS))
    def submit(self, key: str, project_id: str) -> None:
        """A render submitted with an idempotency key: one render per key while it is kept."""
        render = replace(_render(f"n{next(self.made)}", self.now), project_id=project_id)
        self._same("add_render", render, f"{project_id}:{key}")

    @rule(project_id=st.sampled_from(PROJECTS))
    def keep_mail(self, project_id: str) -> None:
        """A mail kept in a project's outbox (capped)."""
        sent = SentEmail(
            f"m{next(self.made)}",
            OutgoingEmail("f@x.dev", "t@x.dev", "s", "t", "h", "r1", "s1"),
            self.now,
        )
        in_memory, in_redis = self._on_both("keep_email", project_id, sent)
        assert (in_memory.project_id, in_memory.sent) == (in_redis.project_id, in_redis.sent)

    @rule(project_id=st.none() | st.sampled_from(PROJECTS), status=st.sampled_from([200, 404]))
    def journal(self, project_id: str | None, status: int) -> None:
        """A request journalled (capped, per project and mock-wide)."""
        entry = JournalEntry("GET", "/v1/x", status, self.now, project_id, float(next(self.made)))
        self._same("journal_record", entry)

    @rule(seconds=MOVES)
    def time_passes(self, seconds: int) -> None:
        """The time the steps happen at moves, either way (a test moving its clock)."""
        self.now += timedelta(seconds=seconds)

    @rule(project_id=st.none() | st.sampled_from(PROJECTS), seconds=MOVES)
    def move_clock(self, project_id: str | None, seconds: int) -> None:
        """A stored clock moved: the shared one or a project's, to the same state on both."""

        def moved(clock: ClockState) -> ClockState:
            return clock.advanced(seconds, self.now)

        async def change(engine: Engine) -> ClockState | str:
            try:
                return await engine.change_clock(project_id, moved)
            except ClockRangeError as refused:
                return f"refused: {refused}"

        async def both() -> tuple[ClockState | str, ClockState | str]:
            return await change(self.memory), await change(self.redis)

        in_memory, in_redis = self.loop.run_until_complete(both())
        assert in_memory == in_redis, f"moving a clock: memory {in_memory}, Redis {in_redis}"

    # ---- what both must show alike --------------------------------------------------

    @invariant()
    def both_show_the_same(self) -> None:
        """Lists, counts, recent events, clocks, faults, outboxes and journals agree.

        (Which idempotency keys are kept shows in the next submission, compared as a step.)
        """
        for render_id, project_id in RENDERS.items():
            self._same("shares", project_id, render_id)
            self._same("engagement", project_id, render_id)
        for project_id in PROJECTS:
            self._same("project", project_id)
            in_memory, in_redis = self._on_both("emails", project_id)
            assert [e.sent for e in in_memory] == [e.sent for e in in_redis], "outboxes differ"
        for scope in (None, *PROJECTS):
            self._same("journal", scope)


@pytest.mark.slow
def test_the_memory_and_redis_engines_agree_after_every_step(redis_url: str) -> None:
    machine = type("EnginesOnThisRedis", (EnginesAgree,), {"redis_url": redis_url})
    run_state_machine_as_test(
        machine, settings=settings(settings(), stateful_step_count=30, deadline=None)
    )
