"""The in-memory engine: the default, embedded, needing nothing; one process only.

Every method runs to its end without awaiting anything, so on the one event loop each is
atomic: fifty concurrent revokes see one winner and views are counted exactly. State dies
with the process (the README says so); sandboxes idle past ``Limits.idle_seconds`` are
dropped, at most one sweep a minute.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from mock_server import domain
from mock_server.clock import ClockState
from mock_server.domain import EngagementEvent, Render, Share
from mock_server.email import SentEmail
from mock_server.engine import (
    EngagementView,
    JournalEntry,
    Limits,
    OutboxEntry,
    Project,
    SandboxState,
    SharedState,
)

_MINUTE = timedelta(minutes=1)
_SWEEP_SECONDS = 60.0


@dataclass
class _Box:
    """One project's state."""

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
    counts: collections.defaultdict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    link_opens: collections.Counter[str] = field(default_factory=collections.Counter)
    recent: dict[str, collections.deque[EngagementEvent]] = field(default_factory=dict)
    outbox: collections.deque[OutboxEntry] = field(init=False)
    journal: collections.deque[JournalEntry] = field(init=False)
    window: collections.deque[datetime] = field(default_factory=collections.deque)

    def __post_init__(self) -> None:
        self.outbox = collections.deque(maxlen=self.limits.outbox)
        self.journal = collections.deque(maxlen=self.limits.journal)


class MemoryEngine:
    """All state in this process's memory."""

    description = "memory"

    def __init__(self, limits: Limits, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._monotonic = monotonic
        self._wipe()

    def _wipe(self) -> None:
        self._boxes: dict[str, _Box] = {}
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

    async def ping(self) -> None:
        """Memory always answers."""

    async def aclose(self) -> None:
        """Nothing to release."""

    async def wipe(self) -> None:
        """Forget everything."""
        self._wipe()

    async def claim(self, name: str, value: str) -> str:
        """Only one process: the value is always this process's own."""
        return value

    # ---- projects -------------------------------------------------------------------

    async def add_project(self, project: Project, key_digest: str) -> bool:
        """Add a project and its key, unless the id is taken."""
        if project.id in self._boxes:
            return False
        box = self._boxes[project.id] = _Box(project, self._limits, self._monotonic())
        box.keys.add(key_digest)
        self._keys[key_digest] = project.id
        return True

    async def project_id_of_key(self, key_digest: str) -> str | None:
        """The key's project id."""
        return self._keys.get(key_digest)

    async def sandbox(self, project_id: str) -> SandboxState | None:
        """The project with its own clock and faults."""
        box = self._boxes.get(project_id)
        if box is None:
            return None
        return SandboxState(box.project, box.clock, dict(box.faults), self._shared)

    async def touch(self, project_id: str) -> None:
        """Mark the project used now; sweep idle ones at most once a minute."""
        now = self._monotonic()
        box = self._boxes.get(project_id)
        if box is not None:
            box.used = now
        if now - self._swept >= _SWEEP_SECONDS:
            self._swept = now
            idle = [p for p, b in self._boxes.items() if now - b.used > self._limits.idle_seconds]
            for stale in idle:
                self._drop(self._boxes[stale])

    def _drop(self, box: _Box) -> None:
        """Forget a project entirely, keys included."""
        self._forget_contents(box)
        for key in box.keys:
            self._keys.pop(key, None)
        del self._boxes[box.project.id]

    def _forget_contents(self, box: _Box) -> None:
        for share in box.shares.values():
            self._tokens.pop(share.token_digest, None)
        for render_id in box.renders:
            self._render_owner.pop(render_id, None)
        project_id = box.project.id
        self._journal = collections.deque(
            (e for e in self._journal if e.project_id != project_id), maxlen=self._limits.journal
        )

    async def clear_project(self, project_id: str, *, delete: bool) -> None:
        """An empty sandbox in place of the old one (same keys)."""
        box = self._boxes.get(project_id)
        if box is None:
            return
        self._forget_contents(box)
        project = replace(box.project, deleted=True) if delete else box.project
        fresh = self._boxes[project_id] = _Box(project, self._limits, self._monotonic())
        fresh.keys = box.keys

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
        box = self._boxes[project_id]
        box.clock = change(box.clock or self._shared.clock)
        return box.clock

    async def set_faults(self, project_id: str | None, changes: dict[str, Any]) -> None:
        """Set fault switches."""
        if project_id is None:
            self._shared = replace(self._shared, faults={**self._shared.faults, **changes})
        else:
            self._boxes[project_id].faults.update(changes)

    # ---- renders --------------------------------------------------------------------

    async def add_render(self, render: Render, idempotency_digest: str | None) -> Render:
        """Keep a render, or return the one the key made."""
        box = self._boxes[render.project_id]
        if idempotency_digest is not None:
            existing = box.idempotency.get(idempotency_digest)
            if existing is not None:
                return box.renders[existing]
            box.idempotency[idempotency_digest] = render.id
            if len(box.idempotency) > self._limits.idempotency_keys:
                del box.idempotency[next(iter(box.idempotency))]
        box.renders[render.id] = render
        self._render_owner[render.id] = render.project_id
        return render

    async def render_of_key(self, project_id: str, idempotency_digest: str) -> Render | None:
        """The render the key made."""
        box = self._boxes.get(project_id)
        found = None if box is None else box.idempotency.get(idempotency_digest)
        return None if box is None or found is None else box.renders[found]

    async def render(self, project_id: str, render_id: str) -> Render | None:
        """One of the project's renders."""
        box = self._boxes.get(project_id)
        return None if box is None else box.renders.get(render_id)

    async def find_render(self, render_id: str) -> Render | None:
        """A render of any project."""
        owner = self._render_owner.get(render_id)
        return None if owner is None else self._boxes[owner].renders[render_id]

    async def replace_render(self, render: Render) -> None:
        """Store a render's new version."""
        self._boxes[render.project_id].renders[render.id] = render

    # ---- shares ---------------------------------------------------------------------

    async def add_share(self, share: Share, token_digest: str, event: EngagementEvent) -> Share:
        """Keep a share, number it, index its token and record ``share_created``."""
        box = self._boxes[share.project_id]
        box.sequence += 1
        share = replace(share, sequence=box.sequence)
        box.shares[share.id] = share
        siblings = box.shares_by_render[share.render_id]
        if siblings and box.shares[siblings[-1]].created_at > share.created_at:
            box.out_of_order.add(share.render_id)  # the clock was moved back
        siblings.append(share.id)
        self._tokens[token_digest] = (share.project_id, share.id)
        self._record(box, share.render_id, event)
        return share

    async def share_of_token(self, token_digest: str) -> Share | None:
        """The share behind a token."""
        found = self._tokens.get(token_digest)
        return None if found is None else self._boxes[found[0]].shares[found[1]]

    async def shares(self, project_id: str, render_id: str) -> list[tuple[Share, int]] | None:
        """A render's shares, newest first, with click counts."""
        box = self._boxes[project_id]
        if render_id not in box.renders:
            return None
        shares = [box.shares[share_id] for share_id in box.shares_by_render.get(render_id, ())]
        if render_id in box.out_of_order:
            shares = domain.newest_first(shares)
        else:
            shares.reverse()  # created in time order: newest first is a reversal
        return [(share, box.clicks[share.id]) for share in shares]

    async def revoke_share(
        self, project_id: str, render_id: str, share_id: str, at: datetime, event: EngagementEvent
    ) -> Share | None:
        """Revoke once."""
        box = self._boxes[project_id]
        share = box.shares.get(share_id)
        if share is None or share.render_id != render_id or share.revoked_at is not None:
            return None
        revoked = box.shares[share_id] = domain.revoke(share, at)
        self._record(box, render_id, event)
        return revoked

    # ---- engagement -----------------------------------------------------------------

    def _record(self, box: _Box, render_id: str, event: EngagementEvent) -> None:
        box.counts[render_id][event.event_type] += 1
        if event.event_type == "viewed" and event.share_id is not None:
            box.link_opens[render_id] += 1
            box.clicks[event.share_id] += 1
        recent = box.recent.get(render_id)
        if recent is None:
            recent = box.recent[render_id] = collections.deque(maxlen=self._limits.recent_events)
        recent.appendleft(event)

    async def record_event(self, project_id: str, render_id: str, event: EngagementEvent) -> None:
        """Count an event."""
        self._record(self._boxes[project_id], render_id, event)

    async def record_recipient_event(
        self, project_id: str, render_id: str, event: EngagementEvent, dedup_key: str
    ) -> bool:
        """Count a recipient event unless it was counted within the window."""
        box = self._boxes[project_id]
        now = event.created_at
        if not domain.counts_again(box.last_counted.get(dedup_key), now):
            return False
        box.last_counted.pop(dedup_key, None)  # re-inserted last: the dict stays oldest first
        box.last_counted[dedup_key] = now
        if len(box.last_counted) > self._limits.dedup_keys:
            # Entries whose window has passed change nothing; then the oldest go.
            for key in [k for k, at in box.last_counted.items() if domain.counts_again(at, now)]:
                del box.last_counted[key]
            while len(box.last_counted) > self._limits.dedup_keys:
                del box.last_counted[next(iter(box.last_counted))]
        self._record(box, render_id, event)
        return True

    async def engagement(self, project_id: str, render_id: str) -> EngagementView:
        """The render's engagement."""
        box = self._boxes[project_id]
        stored = box.counts.get(render_id, collections.Counter())
        counts: dict[str, int] = {name: stored[name] for name in domain.EVENT_TYPES}
        return EngagementView(
            counts,
            box.link_opens[render_id],
            sum(counts.values()),
            list(box.recent.get(render_id, ())),
        )

    # ---- mail -----------------------------------------------------------------------

    async def keep_email(self, project_id: str, sent: SentEmail) -> OutboxEntry:
        """Append to the project's outbox."""
        self._sequence += 1
        entry = OutboxEntry(self._sequence, project_id, sent)
        self._boxes[project_id].outbox.append(entry)
        return entry

    async def emails(self, project_id: str | None) -> list[OutboxEntry]:
        """Kept mail, oldest first."""
        if project_id is not None:
            box = self._boxes.get(project_id)
            return list(box.outbox) if box is not None else []
        entries = [entry for box in self._boxes.values() for entry in box.outbox]
        return sorted(entries, key=lambda entry: entry.sequence)

    # ---- the HTTP gate's state ------------------------------------------------------

    async def admit(
        self, project_id: str | None, address: str, limit: int, now: datetime
    ) -> int | None:
        """Count a request in its client's sliding minute."""
        if project_id is not None and project_id in self._boxes:
            window = self._boxes[project_id].window
        else:
            window = self._windows.get(address) or self._address_window(address, now)
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
        if entry.project_id is not None and entry.project_id in self._boxes:
            self._boxes[entry.project_id].journal.appendleft(entry)

    async def journal(self, project_id: str | None) -> list[JournalEntry]:
        """Answered requests, newest first."""
        if project_id is None:
            return list(self._journal)
        box = self._boxes.get(project_id)
        return list(box.journal) if box is not None else []

    async def forget_rate(self, project_id: str | None) -> None:
        """Start rate-limit windows afresh."""
        if project_id is None:
            self._windows.clear()
            for box in self._boxes.values():
                box.window.clear()
        elif project_id in self._boxes:
            self._boxes[project_id].window.clear()
