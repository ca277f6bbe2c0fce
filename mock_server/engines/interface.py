"""Where the mock's state lives: one interface, two engines (in-memory and Redis).

The store's operations (``mock_server.operations.store``) hold the API's rules between
steps and call an engine for every read and write. Each engine method is one atomic step:
in memory because it does not yield to the event loop part-way, on Redis because it is one
Lua script or one MULTI transaction. So the invariants the API promises (one revoke wins,
exact counts with de-duplication, one render per idempotency key, bounded logs) hold the
same way in one process or in many processes sharing one Redis, and nothing here reads a
value in Python and writes a decision back without a guard.

The rules an atomic step decides (revoke once, count once per window, one render per key,
newest first, the rate window) are written in each engine, once in Python and once in Lua;
``tests/mock/test_engine_equivalence.py`` drives both with the same steps and compares them
after each, so the two copies cannot drift apart unnoticed.

The records handed across are the model's frozen dataclasses plus the few below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from mock_server.model.clock import ClockState
from mock_server.model.records import EngagementEvent, Project, Render, SentEmail, Share
from mock_server.model.webhooks import Delivery, Subscription


@dataclass(frozen=True, slots=True)
class SharedState:
    """The whole mock's clock and fault switches (a project's own override them)."""

    clock: ClockState = field(default_factory=ClockState)
    faults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredProject:
    """A project as its engine keeps it: the record, its own clock (if moved) and faults."""

    project: Project
    clock: ClockState | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    shared: SharedState = field(default_factory=SharedState)


@dataclass(frozen=True, slots=True)
class EngagementView:
    """A render's engagement, as the API shows it."""

    counts: dict[str, int]
    link_opens: int
    total: int
    recent: list[EngagementEvent]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A kept email and its place in the mock-wide sending order."""

    sequence: int
    project_id: str
    sent: SentEmail


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request the mock answered; ``recorded`` (real time) orders entries mock-wide."""

    method: str
    path: str
    status: int
    at: datetime
    project_id: str | None
    recorded: float = 0.0
    exchange: bytes | None = None
    """The exchange itself, secrets replaced (``http.recording``), for a project's request."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How much an engine keeps per project before the oldest goes (see the README)."""

    idempotency_keys: int = 10_000
    dedup_keys: int = 10_000
    recent_events: int = 10
    outbox: int = 1000
    journal: int = 1000
    idle_seconds: float = 7 * 24 * 3600
    renders: int = 10_000
    """Renders a project holds; one more is refused (``CapacityReached``)."""
    projects: int = 10_000
    """Projects a mock holds (used within the idle time); one more is refused."""
    subscriptions: int = 20
    """Webhook subscriptions a project holds; one more is refused."""
    deliveries: int = 1000
    """Webhook deliveries a project's log keeps (the oldest go, attempted or not)."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """What one claim of a project's due webhook work found, and when more falls due."""

    deliveries: list[Delivery]
    """Due deliveries, now leased to the claiming process until it finishes them."""
    renders: list[str]
    """Renders whose watch fell due: each has come to its end (or must be looked at again)."""
    next_due: datetime | None
    """The project-clock instant of the earliest work still scheduled, if any."""
    leased: int = 0
    """Deliveries out on lease (this claim's included): the project is not idle yet."""


class WebhookLedger(Protocol):
    """A project's webhook subscriptions, its delivery log and the work scheduled on its clock.

    Scheduled work (deliveries to attempt, renders whose end is to be announced) is ordered by
    the project's clock; a separate wake index says, in real time, when each project must be
    looked at next, so the dispatcher reads only projects with work due. Each claim leases
    what it hands out: whichever process claims an attempt makes it, and the work of a
    process that died is handed out again once its lease ends.
    """

    async def put_subscription(self, subscription: Subscription) -> bool:
        """Keep a new or changed subscription; ``False`` when the project holds all it may."""

    async def subscriptions(self, project_id: str) -> list[Subscription]:
        """The project's subscriptions, oldest first."""

    async def delete_subscription(self, project_id: str, subscription_id: str) -> bool:
        """Forget a subscription; ``False`` if there was none."""

    async def schedule(
        self, project_id: str, deliveries: list[Delivery], watches: list[tuple[str, datetime]]
    ) -> None:
        """Keep deliveries and schedule them; watch each render until its instant.

        A delivery replaces any of the same id and, while pending, is due at its
        ``next_attempt_at``. The log keeps the newest ``Limits.deliveries``; an older one
        leaves the schedule with it.
        """

    async def claim(self, project_id: str, now: datetime, lease_ms: int, limit: int) -> Claimed:
        """Take the work due at ``now`` (project clock), at most ``limit`` deliveries.

        Deliveries whose lease (real time) ran out are due again first.
        """

    async def finish(self, delivery: Delivery) -> None:
        """Store an attempted delivery, end its lease, and schedule it again if pending."""

    async def unwatch(self, project_id: str, render_id: str) -> bool:
        """Stop watching a render; ``True`` if it was watched (and nobody had claimed it)."""

    async def deliveries(self, project_id: str) -> list[Delivery]:
        """The project's delivery log, newest first."""

    async def delivery(self, project_id: str, delivery_id: str) -> Delivery | None:
        """One delivery of the project."""

    async def wake(self, project_ids: list[str] | None, real_ms: int) -> None:
        """Look at these projects (``None``: every one with work) by ``real_ms`` at the latest.

        An earlier time already set stays.
        """

    async def due_projects(self, real_ms: int, limit: int) -> list[str]:
        """Projects to look at by ``real_ms``."""

    async def hold(self, project_id: str, real_ms: int) -> None:
        """Set when to look at a project next, whatever was set (a claim starts with it)."""

    async def settle(self, project_id: str, held_ms: int) -> None:
        """Forget a project with no work left, unless someone asked for it since ``hold``."""


class CapacityReached(Exception):  # noqa: N818  # read as "raise CapacityReached"
    """A project holds all the renders it may, or the mock all the projects it may."""


class StoreUnavailable(RuntimeError):  # noqa: N818  # read as "raise StoreUnavailable"
    """The engine cannot reach its storage; the message names it (never a secret)."""


class UnsupportedStore(RuntimeError):  # noqa: N818  # read as "raise UnsupportedStore"
    """The storage answers but cannot hold the mock's state; the message says what to use."""


class Engine(Protocol):
    """The state of every project, shared by all the processes of one mock."""

    description: str
    """What the engine is, for messages and ``/health``: ``memory`` or ``redis at …``."""

    @property
    def webhooks(self) -> WebhookLedger:
        """The projects' webhook subscriptions, deliveries and schedule."""

    async def ping(self) -> None:
        """Return when the storage answers; ``StoreUnavailable`` when it does not."""

    async def aclose(self) -> None:
        """Release connections."""

    async def wipe(self) -> None:
        """Forget every project, clock, fault, mail and journal entry."""

    async def claim(self, name: str, value: str) -> str:
        """Set a mock-wide value unless one is set; the value that is set now."""

    async def claimed(self, name: str) -> str | None:
        """A mock-wide value, if one is set (``None`` after the store lost its data)."""

    # ---- projects -----------------------------------------------------------------

    async def add_project(self, project: Project, key_digest: str) -> bool:
        """Add a project and its key; ``False`` (nothing changed) if the id is taken.

        ``CapacityReached`` when the mock holds ``Limits.projects`` projects.
        """

    async def plant_project(self, project: Project, key_digest: str, renders: list[Render]) -> bool:
        """Add a project with its renders in one step, unless the id is taken (``False``).

        Nobody sees the project without its renders (the seed is planted this way).
        """

    async def project_id_of_key(self, key_digest: str) -> str | None:
        """The project holding a key (deleted or not)."""

    async def project(self, project_id: str) -> StoredProject | None:
        """A project with its own clock and faults, and the shared ones.

        Read together, as a request needs both; ``None`` if unknown or expired.
        """

    async def touch(self, project_id: str) -> None:
        """Note that a project is in use: it is dropped only after a long idle time."""

    async def clear_project(self, project_id: str, *, delete: bool) -> None:
        """Forget a project's contents, clock, faults and journal; keep its key.

        With ``delete`` the project is also marked deleted (its key then answers 403).
        """

    # ---- clocks and faults ----------------------------------------------------------

    async def shared(self) -> SharedState:
        """The shared clock and faults."""

    async def change_clock(
        self, project_id: str | None, change: Callable[[ClockState], ClockState]
    ) -> ClockState:
        """Apply ``change`` atomically to the shared clock or a project's.

        A project that follows the shared clock starts from it; the stored state is left as
        it was when ``change`` raises.
        """

    async def set_faults(self, project_id: str | None, changes: dict[str, Any]) -> None:
        """Set some fault switches, shared or a project's own."""

    # ---- renders --------------------------------------------------------------------

    async def add_render(self, render: Render, idempotency_digest: str | None) -> Render:
        """Keep a new render, unless the key already made one: then that one, unchanged.

        ``CapacityReached`` when the project holds ``Limits.renders`` renders already.
        """

    async def render_of_key(self, project_id: str, idempotency_digest: str) -> Render | None:
        """The render an idempotency key already made, if it is still remembered."""

    async def render(self, project_id: str, render_id: str) -> Render | None:
        """One of the project's renders."""

    async def find_render(self, render_id: str) -> Render | None:
        """A render of any project (control API)."""

    async def replace_render(self, render: Render) -> None:
        """Store a render's new version (a forced status)."""

    # ---- shares ---------------------------------------------------------------------

    async def add_share(self, share: Share, token_digest: str, event: EngagementEvent) -> Share:
        """Keep a share (numbered in its project) and its ``share_created`` event."""

    async def share_of_token(self, token_digest: str) -> Share | None:
        """The share a link token opens (revoked or expired too)."""

    async def shares(self, project_id: str, render_id: str) -> list[tuple[Share, int]] | None:
        """A render's shares with their click counts, newest first.

        ``None`` when the project has no such render.
        """

    async def revoke_share(
        self,
        project_id: str,
        render_id: str,
        share_id: str,
        at: datetime,
        reason: str,
        event: EngagementEvent,
    ) -> Share | None:
        """Revoke an active share of the render, once: ``None`` for every later attempt."""

    # ---- engagement -----------------------------------------------------------------

    async def record_event(self, project_id: str, render_id: str, event: EngagementEvent) -> None:
        """Count an event and keep it among the render's recent ones."""

    async def record_recipient_event(
        self,
        project_id: str,
        render_id: str,
        event: EngagementEvent,
        dedup_key: str,
        window: timedelta,
    ) -> bool:
        """Count a recipient's event unless ``dedup_key`` counted within ``window``.

        The window ends at ``event.created_at`` (the project's clock); a counted view of a
        share adds a click.
        """

    async def engagement(self, project_id: str, render_id: str) -> EngagementView:
        """Counts per event type, link opens and the recent events, newest first."""

    # ---- mail -----------------------------------------------------------------------

    async def keep_email(self, project_id: str, sent: SentEmail) -> OutboxEntry:
        """Append to a project's outbox (the oldest go once it is full)."""

    async def emails(self, project_id: str | None) -> list[OutboxEntry]:
        """A project's outbox, or every project's, oldest first."""

    # ---- the HTTP gate's state ------------------------------------------------------

    async def admit(
        self, project_id: str | None, address: str, limit: int, now: datetime
    ) -> int | None:
        """Count a request in its client's sliding minute (the project, else the address).

        Returns the seconds to wait when the client already made ``limit`` requests.
        """

    async def journal_record(self, entry: JournalEntry) -> None:
        """Keep an answered request (bounded, per project and mock-wide)."""

    async def journal(self, project_id: str | None) -> list[JournalEntry]:
        """Answered requests, newest first: a project's or the whole mock's."""

    async def forget_rate(self, project_id: str | None) -> None:
        """Start a project's rate-limit minute afresh, or every client's (``None``)."""
