"""The mock's clock: real time plus an offset that tests move, or frozen at an instant.

Every rule that depends on time (render progress, expiry, view de-duplication) reads this
clock, so tests advance it through the control API instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def _utc_now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


class MockClock:
    """A settable clock. ``now()`` is always timezone-aware UTC, truncated to milliseconds."""

    def __init__(self, source: Callable[[], datetime] = _utc_now) -> None:
        self._source = source
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None

    def now(self) -> datetime:
        """The current mock time."""
        instant = self._frozen_at if self._frozen_at is not None else self._source() + self._offset
        return instant.replace(microsecond=instant.microsecond // 1000 * 1000)

    @property
    def frozen(self) -> bool:
        """Whether time stands still until moved by hand."""
        return self._frozen_at is not None

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (or back, with a negative number)."""
        if self._frozen_at is not None:
            self._frozen_at += timedelta(seconds=seconds)
        else:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, instant: datetime) -> datetime:
        """Jump to an instant; time goes on from there unless the clock is frozen."""
        if self._frozen_at is not None:
            self._frozen_at = instant
        else:
            self._offset = instant - self._source()
        return self.now()

    def freeze(self, frozen: bool) -> datetime:
        """Stop time at the current instant, or let it run on from there."""
        current = self.now()
        if frozen:
            self._frozen_at = current
        elif self._frozen_at is not None:
            self._frozen_at = None
            self._offset = current - self._source()
        return current

    def reset(self) -> None:
        """Back to real time."""
        self._offset = timedelta(0)
        self._frozen_at = None
