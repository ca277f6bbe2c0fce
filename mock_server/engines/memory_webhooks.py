"""The in-memory webhook ledger: one project's subscriptions, delivery log and schedule.

Like the rest of the memory engine, each method runs to its end without awaiting, so each
is atomic on the one event loop. Leases are kept as on Redis, so the two ledgers behave
alike step by step, although in one process nothing is ever left leased by a dead worker.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mock_server.engines.interface import Claimed, Limits
from mock_server.model.webhooks import Delivery, Subscription

_DELIVERY = "d:"
_RENDER = "r:"


@dataclass
class HookBook:
    """What one project holds of webhooks (kept in the project's data, cleared with it)."""

    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    deliveries: collections.OrderedDict[str, Delivery] = field(
        default_factory=collections.OrderedDict
    )
    due: dict[str, datetime] = field(default_factory=dict)
    """Scheduled work (``d:`` delivery, ``r:`` render) -> when it is due (project clock)."""
    leased: dict[str, int] = field(default_factory=dict)
    """Claimed deliveries -> when their lease ends (real ms)."""


def _real_ms() -> int:
    return int(time.time() * 1000)


class MemoryWebhooks:
    """The ledger over the memory engine's projects."""

    def __init__(self, book_of: Callable[[str], HookBook | None], limits: Limits) -> None:
        self._book_of = book_of
        self._limits = limits
        self._wake: dict[str, int] = {}

    def forget(self) -> None:
        """Drop the wake index (the engine was wiped)."""
        self._wake.clear()

    def _book(self, project_id: str) -> HookBook:
        book = self._book_of(project_id)
        return HookBook() if book is None else book  # a project gone keeps nothing

    async def put_subscription(self, subscription: Subscription) -> bool:
        """Add or replace, within the cap."""
        book = self._book(subscription.project_id)
        held = book.subscriptions
        if subscription.id not in held and len(held) >= self._limits.subscriptions:
            return False
        held[subscription.id] = subscription
        return True

    async def subscriptions(self, project_id: str) -> list[Subscription]:
        """Oldest first (insertion order)."""
        return list(self._book(project_id).subscriptions.values())

    async def delete_subscription(self, project_id: str, subscription_id: str) -> bool:
        """Pop it."""
        return self._book(project_id).subscriptions.pop(subscription_id, None) is not None

    async def schedule(
        self, project_id: str, deliveries: list[Delivery], watches: list[tuple[str, datetime]]
    ) -> None:
        """Keep, schedule, and trim the log to its cap (oldest out, schedule included)."""
        book = self._book(project_id)
        for delivery in deliveries:
            book.deliveries[delivery.id] = delivery
            book.deliveries.move_to_end(delivery.id)
            if delivery.next_attempt_at is not None:
                book.due[_DELIVERY + delivery.id] = delivery.next_attempt_at
        while len(book.deliveries) > self._limits.deliveries:
            dropped, _ = book.deliveries.popitem(last=False)
            book.due.pop(_DELIVERY + dropped, None)
            book.leased.pop(_DELIVERY + dropped, None)
        for render_id, at in watches:
            book.due[_RENDER + render_id] = at

    async def claim(self, project_id: str, now: datetime, lease_ms: int, limit: int) -> Claimed:
        """Expired leases are due now; then the due work, earliest first."""
        book = self._book(project_id)
        real = _real_ms()
        for member in [m for m, until in book.leased.items() if until <= real]:
            del book.leased[member]
            book.due[member] = now
        ready = sorted((at, member) for member, at in book.due.items() if at <= now)
        deliveries: list[Delivery] = []
        renders: list[str] = []
        for _, member in ready:
            if member.startswith(_RENDER):
                del book.due[member]
                renders.append(member[len(_RENDER) :])
            elif len(deliveries) < limit:
                del book.due[member]
                found = book.deliveries.get(member[len(_DELIVERY) :])
                if found is not None:
                    book.leased[member] = real + lease_ms
                    deliveries.append(found)
        next_due = min(book.due.values(), default=None)
        return Claimed(deliveries, renders, next_due, len(book.leased))

    async def finish(self, delivery: Delivery) -> None:
        """Store it (unless the log dropped it meanwhile), end the lease, reschedule."""
        book = self._book(delivery.project_id)
        member = _DELIVERY + delivery.id
        book.leased.pop(member, None)
        if delivery.id not in book.deliveries:
            return
        book.deliveries[delivery.id] = delivery
        if delivery.next_attempt_at is not None:
            book.due[member] = delivery.next_attempt_at

    async def unwatch(self, project_id: str, render_id: str) -> bool:
        """Pop the watch."""
        return self._book(project_id).due.pop(_RENDER + render_id, None) is not None

    async def deliveries(self, project_id: str) -> list[Delivery]:
        """Newest first."""
        return list(reversed(self._book(project_id).deliveries.values()))

    async def delivery(self, project_id: str, delivery_id: str) -> Delivery | None:
        """By id."""
        return self._book(project_id).deliveries.get(delivery_id)

    async def wake(self, project_ids: list[str] | None, real_ms: int) -> None:
        """Lower each project's next look to ``real_ms``."""
        for project_id in list(self._wake) if project_ids is None else project_ids:
            self._wake[project_id] = min(self._wake.get(project_id, real_ms), real_ms)

    async def due_projects(self, real_ms: int, limit: int) -> list[str]:
        """Earliest first."""
        due = sorted((at, p) for p, at in self._wake.items() if at <= real_ms)
        return [project_id for _, project_id in due[:limit]]

    async def hold(self, project_id: str, real_ms: int) -> None:
        """Set the next look."""
        self._wake[project_id] = real_ms

    async def settle(self, project_id: str, held_ms: int) -> None:
        """Forget the project if nobody lowered its next look since ``hold``."""
        if self._wake.get(project_id) == held_ms:
            del self._wake[project_id]
