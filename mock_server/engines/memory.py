"""The in-memory engine: the default, embedded, needing nothing; one process only.

Every method runs to its end without awaiting anything, so on the one event loop each is
atomic: fifty concurrent revokes see one winner and views are counted exactly. State dies
with the process (the README says so); projects idle past ``Limits.idle_seconds`` are
dropped, at most one sweep a minute.
"""

from __future__ import annotations

import collections
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from mock_server.engines.interface import (
    CapacityReached,
    EngagementView,
    JournalEntry,
    Limits,
    OutboxEntry,
    SharedState,
    StoredProject,
)
from mock_server.engines.memory_webhooks import HookBook, MemoryWebhooks
from mock_server.model import rules
from mock_server.model.clock import ClockState
from mock_server.model.records import (
    EVENT_TYPES,
    EngagementEvent,
    Project,
    Render,
    SentEmail,
    Share,
)

_MINUTE = timedelta(minutes=1)
_SWEEP_SECONDS = 60.0


@dataclass
class _ProjectData:
    """Everything one project holds."""

    project: Project
    limits: Limits
    used: float = field(default_factory=time.monotonic)
    clock: ClockState | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    renders: dict[str, Render] = field(default_factory=dict)
    idempotency: dict[str, str] = field(default_factory=dict)
    shares: dict[str, Share] = field(default_factory=dict)
    shares_by_render: collections.defaultdict[str, list[str]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    out_of_order: set[str] = field(default_factory=set)
    sequence: int = 0
    clicks: collections.Counter[str] = field(default_factory=collections.Counter)
    last_counted: dict[str, datetime] = field(default_factory=dict)
    counted_order: list[tuple[datetime, str]] = field(default_factory=list)
    """A heap of (last counted, key), oldest first; entries a later count replaced linger
    until they reach the top (Redis's sorted set, ordered by score then member)."""
    counts: collections.defaultdict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    link_opens: collections.Counter[str] = field(default_factory=collections.Counter)
    recent: dict[str, collections.deque[EngagementEvent]] = field(default_factory=dict)
    outbox: collections.deque[OutboxEntry] = field(init=False)
    journal: collections.deque[JournalEntry] = field(init=False)
    rate_window: collections.deque[datetime] = field(default_factory=collections.deque)
    hooks: HookBook = field(default_factory=HookBook)

    def __post_init__(self) -> None:
        self.outbox = collections.deque(maxlen=self.limits.outbox)
        self.journal = collections.deque(maxlen=self.limits.journal)


class MemoryEngine:
    """All state in this process's memory."""

    description = "memory"

    def __init__(self, limits: Limits, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._monotonic = monotonic
        self._claims: dict[str, str] = {}  # survive a wipe, as they do on Redis
        self.webhooks = MemoryWebhooks(self._hooks_of, limits)
        self._wipe()

    def _hooks_of(self, project_id: str) -> HookBook | None:
        data = self._projects.get(project_id)
        return None if data is None else data.hooks

    def _wipe(self) -> None:
        self._projects: dict[str, _ProjectData] = {}
        self._keys: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, str]] = {}
        self._render_owner: dict[str, str] = {}
        self._shared = SharedState()
        self._sequence = 0
        self._journal: collections.deque[JournalEntry] = collections.deque(
            maxlen=self._limits.journal
        )
        self._windows: dict[str, collections.deque[datetime]] = {}
        self._swept = self._rate_swept = self._monotonic()
        self.webhooks.forget()

    async def ping(self) -> None:
        """Memory always answers."""

    async def aclose(self) -> None:
        """Nothing to release."""

    async def wipe(self) -> None:
        """Forget everything."""
        self._wipe()

    async def claim(self, name: str, value: str) -> str:
        """Only one process: the first value claimed stays."""
        return self._claims.setdefault(name, value)

    async def claimed(self, name: str) -> str | None:
        """The value claimed, if any."""
        return self._claims.get(name)

    # ---- projects -------------------------------------------------------------------

    async def add_project(self, project: Project, key_digest: str) -> bool:
        """Add a project and its key, unless the id is taken (or the mock is full)."""
        if project.id in self._projects:
            return False
        if len(self._projects) >= self._limits.projects:
            raise CapacityReached(f"the mock holds {self._limits.projects} projects")
        data = self._projects[project.id] = _ProjectData(project, self._limits, self._monotonic())
        data.keys.add(key_digest)
        self._keys[key_digest] = project.id
        return True

    async def plant_project(self, project: Project, key_digest: str, renders: list[Render]) -> bool:
        """Add the project and its renders (one step: nothing awaits in between).

        A seeded project is planted whatever the caps say.
        """
        if project.id in self._projects:
            return False
        data = self._projects[project.id] = _ProjectData(project, self._limits, self._monotonic())
        data.keys.add(key_digest)
        self._keys[key_digest] = project.id
        for render in renders:
            data.renders[render.id] = render
            self._render_owner[render.id] = project.id
        return True

    async def project_id_of_key(self, key_digest: str) -> str | None:
        """The key's project id."""
        return self._keys.get(key_digest)

    async def project(self, project_id: str) -> StoredProject | None:
        """The project with its own clock and faults."""
        data = self._projects.get(project_id)
        if data is None:
            return None
        return StoredProject(data.project, data.clock, dict(data.faults), self._shared)

    async def touch(self, project_id: str) -> None:
        """Mark the project used now; sweep idle ones at most once a minute."""
        now = self._monotonic()
        data = self._projects.get(project_id)
        if data is not None:
            data.used = now
        if now - self._swept >= _SWEEP_SECONDS:
            self._swept = now
            idle = [
                p for p, b in self._projects.items() if now - b.used > self._limits.idle_seconds
            ]
            for stale in idle:
                self._drop(self._projects[stale])

    def _drop(self, data: _ProjectData) -> None:
        """Forget a project entirely, keys included."""
        self._forget_contents(data)
        for key in data.keys:
            self._keys.pop(key, None)
        del self._projects[data.project.id]

    def _forget_contents(self, data: _ProjectData) -> None:
        for share in data.shares.values():
            self._tokens.pop(share.token_digest, None)
        for render_id in data.renders:
            self._render_owner.pop(render_id, None)
        project_id = data.project.id
        self._journal = collections.deque(
            (e for e in self._journal if e.project_id != project_id), maxlen=self._limits.journal
        )

    async def clear_project(self, project_id: str, *, delete: bool) -> None:
        """An empty sanddata in place of the old one (same keys)."""
        data = self._projects.get(project_id)
        if data is None:
            return
        self._forget_contents(data)
        project = replace(data.project, deleted=True) if delete else data.project
        fresh = self._projects[project_id] = _ProjectData(project, self._limits, self._monotonic())
        fresh.keys = data.keys

    # ---- clocks and faults ----------------------------------------------------------

    async def shared(self) -> SharedState:
        """The shared clock and faults."""
        return self._shared

    async def change_clock(
        self, project_id: str | None, change: Callable[[ClockState], ClockState]
    ) -> ClockState:
        """Apply a change to the shared clock or a project's."""
        if project_id is None:
            self._shared = replace(self._shared, clock=change(self._shared.clock))
            return self._shared.clock
        data = self._projects[project_id]
        data.clock = change(data.clock or self._shared.clock)
        return data.clock

    async def set_faults(self, project_id: str | None, changes: dict[str, Any]) -> None:
        """Set fault switches."""
        if project_id is None:
            self._shared = replace(self._shared, faults={**self._shared.faults, **changes})
        else:
            self._projects[project_id].faults.update(changes)

    # ---- renders --------------------------------------------------------------------

    async def add_render(self, render: Render, idempotency_digest: str | None) -> Render:
        """Keep a render, or return the one the key made (refused once the project is full)."""
        data = self._projects[render.project_id]
        existing = None if idempotency_digest is None else data.idempotency.get(idempotency_digest)
        if existing is not None:
            return data.renders[existing]
        if len(data.renders) >= self._limits.renders:
            raise CapacityReached(f"the project holds {self._limits.renders} renders")
        if idempotency_digest is not None:
            data.idempotency[idempotency_digest] = render.id
            if len(data.idempotency) > self._limits.idempotency_keys:
                del data.idempotency[next(iter(data.idempotency))]
        data.renders[render.id] = render
        self._render_owner[render.id] = render.project_id
        return render

    async def render_of_key(self, project_id: str, idempotency_digest: str) -> Render | None:
        """The render the key made."""
        data = self._projects.get(project_id)
        found = None if data is None else data.idempotency.get(idempotency_digest)
        return None if data is None or found is None else data.renders[found]

    async def render(self, project_id: str, render_id: str) -> Render | None:
        """One of the project's renders."""
        data = self._projects.get(project_id)
        return None if data is None else data.renders.get(render_id)

    async def find_render(self, render_id: str) -> Render | None:
        """A render of any project."""
        owner = self._render_owner.get(render_id)
        return None if owner is None else self._projects[owner].renders[render_id]

    async def replace_render(self, render: Render) -> None:
        """Store a render's new version."""
        self._projects[render.project_id].renders[render.id] = render

    # ---- shares ---------------------------------------------------------------------

    async def add_share(self, share: Share, token_digest: str, event: EngagementEvent) -> Share:
        """Keep a share, number it, index its token and record ``share_created``."""
        data = self._projects[share.project_id]
        data.sequence += 1
        share = replace(share, sequence=data.sequence)
        data.shares[share.id] = share
        siblings = data.shares_by_render[share.render_id]
        if siblings and data.shares[siblings[-1]].created_at > share.created_at:
            data.out_of_order.add(share.render_id)  # the clock was moved back
        siblings.append(share.id)
        self._tokens[token_digest] = (share.project_id, share.id)
        self._record(data, share.render_id, event)
        return share

    async def share_of_token(self, token_digest: str) -> Share | None:
        """The share behind a token."""
        found = self._tokens.get(token_digest)
        return None if found is None else self._projects[found[0]].shares[found[1]]

    async def shares(self, project_id: str, render_id: str) -> list[tuple[Share, int]] | None:
        """A render's shares, newest first, with click counts."""
        data = self._projects[project_id]
        if render_id not in data.renders:
            return None
        shares = [data.shares[share_id] for share_id in data.shares_by_render.get(render_id, ())]
        if render_id in data.out_of_order:
            shares = rules.newest_first(shares)
        else:
            shares.reverse()  # created in time order: newest first is a reversal
        return [(share, data.clicks[share.id]) for share in shares]

    async def revoke_share(
        self,
        project_id: str,
        render_id: str,
        share_id: str,
        at: datetime,
        reason: str,
        event: EngagementEvent,
    ) -> Share | None:
        """Revoke once."""
        data = self._projects[project_id]
        share = data.shares.get(share_id)
        if share is None or share.render_id != render_id or share.revoked_at is not None:
            return None
        revoked = data.shares[share_id] = rules.revoke(share, at, reason)
        self._record(data, render_id, event)
        return revoked

    # ---- engagement -----------------------------------------------------------------

    def _record(self, data: _ProjectData, render_id: str, event: EngagementEvent) -> None:
        data.counts[render_id][event.event_type] += 1
        if event.event_type == "viewed" and event.share_id is not None:
            data.link_opens[render_id] += 1
            data.clicks[event.share_id] += 1
        recent = data.recent.get(render_id)
        if recent is None:
            recent = data.recent[render_id] = collections.deque(maxlen=self._limits.recent_events)
        recent.appendleft(event)

    async def record_event(self, project_id: str, render_id: str, event: EngagementEvent) -> None:
        """Count an event."""
        self._record(self._projects[project_id], render_id, event)

    async def record_recipient_event(
        self,
        project_id: str,
        render_id: str,
        event: EngagementEvent,
        dedup_key: str,
        window: timedelta,
    ) -> bool:
        """Count a recipient event unless it was counted within the window."""
        data = self._projects[project_id]
        now = event.created_at
        if not rules.counts_again(data.last_counted.get(dedup_key), now, window):
            return False
        counted, order = data.last_counted, data.counted_order
        counted[dedup_key] = now
        heapq.heappush(order, (now, dedup_key))
        if len(counted) > self._limits.dedup_keys:
            # Entries whose window has passed change nothing; then the oldest go.
            while order and (
                counted.get(order[0][1]) != order[0][0]
                or rules.counts_again(order[0][0], now, window)
            ):
                _forget_oldest(counted, order)
            while len(counted) > self._limits.dedup_keys:
                _forget_oldest(counted, order)
        if len(order) > 2 * len(counted) + 64:  # replaced entries: rebuilt, never unbounded
            order[:] = [(at, key) for key, at in counted.items()]
            heapq.heapify(order)
        self._record(data, render_id, event)
        return True

    async def engagement(self, project_id: str, render_id: str) -> EngagementView:
        """The render's engagement."""
        data = self._projects[project_id]
        stored = data.counts.get(render_id, collections.Counter())
        counts: dict[str, int] = {name: stored[name] for name in EVENT_TYPES}
        return EngagementView(
            counts,
            data.link_opens[render_id],
            sum(counts.values()),
            list(data.recent.get(render_id, ())),
        )

    # ---- mail -----------------------------------------------------------------------

    async def keep_email(self, project_id: str, sent: SentEmail) -> OutboxEntry:
        """Append to the project's outbox."""
        self._sequence += 1
        entry = OutboxEntry(self._sequence, project_id, sent)
        self._projects[project_id].outbox.append(entry)
        return entry

    async def emails(self, project_id: str | None) -> list[OutboxEntry]:
        """Kept mail, oldest first."""
        if project_id is not None:
            data = self._projects.get(project_id)
            return list(data.outbox) if data is not None else []
        entries = [entry for data in self._projects.values() for entry in data.outbox]
        return sorted(entries, key=lambda entry: entry.sequence)

    # ---- the HTTP gate's state ------------------------------------------------------

    async def admit(
        self, project_id: str | None, address: str, limit: int, now: datetime
    ) -> int | None:
        """Count a request in its client's sliding minute."""
        if project_id is not None and project_id in self._projects:
            window = self._projects[project_id].rate_window
        else:
            window = self._windows.get(address) or self._address_window(address, now)
        # Kept in time order: requests "after" now (its clock was moved back) are forgotten,
        # as are those a minute or more before it; nothing waits on a moved clock.
        while window and window[-1] > now:
            window.pop()
        while window and now - window[0] >= _MINUTE:
            window.popleft()
        if len(window) >= limit:
            wait = _MINUTE - (now - window[0])
            return max(1, int(wait.total_seconds() + 0.999))
        window.append(now)
        return None

    def _address_window(self, address: str, now: datetime) -> collections.deque[datetime]:
        """A new address's window; past the cap, addresses quiet for a minute are dropped.

        At most one sweep a minute: many active addresses must not make each request a scan.
        """
        if len(self._windows) >= self._limits.dedup_keys and (
            self._monotonic() - self._rate_swept >= _SWEEP_SECONDS
        ):
            self._rate_swept = self._monotonic()
            for quiet in [a for a, w in self._windows.items() if not w or now - w[-1] >= _MINUTE]:
                del self._windows[quiet]
        window = self._windows[address] = collections.deque()
        return window

    async def journal_record(self, entry: JournalEntry) -> None:
        """Keep an answered request."""
        self._journal.appendleft(entry)
        if entry.project_id is not None and entry.project_id in self._projects:
            self._projects[entry.project_id].journal.appendleft(entry)

    async def journal(self, project_id: str | None) -> list[JournalEntry]:
        """Answered requests, newest first."""
        if project_id is None:
            return list(self._journal)
        data = self._projects.get(project_id)
        return list(data.journal) if data is not None else []

    async def forget_rate(self, project_id: str | None) -> None:
        """Start rate-limit windows afresh."""
        if project_id is None:
            self._windows.clear()
            for data in self._projects.values():
                data.rate_window.clear()
        elif project_id in self._projects:
            self._projects[project_id].rate_window.clear()


def _forget_oldest(counted: dict[str, datetime], order: list[tuple[datetime, str]]) -> None:
    """Drop the heap's top, and its key when the entry is the key's latest count."""
    at, key = heapq.heappop(order)
    if counted.get(key) == at:
        del counted[key]
