"""The mock's clocks: real time plus an offset that tests move, or frozen at an instant.

Every rule that depends on time (render progress, expiry, view de-duplication, rate-limit
windows) reads a clock, so tests advance it through the control API instead of sleeping.
There is one shared clock and one ``SandboxClock`` per project: a project follows the
shared clock until a test moves its own, and from then on nothing but that test moves it,
so parallel test runs in their own projects never see each other's time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
"""The clock's range: ids carry milliseconds since 1970, and timestamps have four-digit years
(the last year is left as headroom for a clock that keeps running)."""


class ClockRangeError(ValueError):
    """A change would move the clock outside ``EARLIEST`` … ``LATEST``; nothing was changed."""


def _utc_now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


def _in_range(instant: datetime) -> datetime:
    if not EARLIEST <= instant <= LATEST:
        raise ClockRangeError(
            "the clock must stay between 1970-01-01T00:00:00.000Z and 9999-01-01T00:00:00.000Z"
        )
    return instant


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
        try:
            target = self.now() + timedelta(seconds=seconds)
        except OverflowError:
            raise ClockRangeError("the clock cannot move that far") from None
        return self.set(target)

    def set(self, instant: datetime) -> datetime:
        """Jump to an instant; time goes on from there unless the clock is frozen."""
        _in_range(instant)
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

    def copy(self) -> MockClock:
        """An independent clock showing the same time, running or frozen alike."""
        twin = MockClock(self._source)
        twin._offset, twin._frozen_at = self._offset, self._frozen_at
        return twin


class SandboxClock:
    """A project's clock: the shared clock until the project moves its own.

    The first change made through the project (advance, set, freeze) copies the shared
    clock's current state and applies the change to the copy; later changes of the shared
    clock no longer reach the project. ``reset`` makes it follow the shared clock again.
    """

    def __init__(self, shared: MockClock) -> None:
        self._shared = shared
        self._own: MockClock | None = None

    def now(self) -> datetime:
        """The project's current time."""
        return (self._own or self._shared).now()

    @property
    def frozen(self) -> bool:
        """Whether the project's time stands still."""
        return (self._own or self._shared).frozen

    @property
    def detached(self) -> bool:
        """Whether the project has a time of its own."""
        return self._own is not None

    def _change(self, change: Callable[[MockClock], datetime]) -> datetime:
        """Apply a change to a copy and keep it only if it succeeded."""
        candidate = (self._own or self._shared).copy()
        instant = change(candidate)
        self._own = candidate
        return instant

    def advance(self, seconds: float) -> datetime:
        """Move the project's clock forward (or back)."""
        return self._change(lambda clock: clock.advance(seconds))

    def set(self, instant: datetime) -> datetime:
        """Jump the project's clock to an instant."""
        return self._change(lambda clock: clock.set(instant))

    def freeze(self, frozen: bool) -> datetime:
        """Stop or restart the project's time."""
        return self._change(lambda clock: clock.freeze(frozen))

    def reset(self) -> None:
        """Follow the shared clock again."""
        self._own = None
