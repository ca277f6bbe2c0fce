"""The mock's clocks: real time plus an offset that tests move, or frozen at an instant.

Every rule that depends on time (render progress, expiry, view de-duplication, rate-limit
windows) reads a clock, so tests advance it through the control API instead of sleeping.
A clock is a small value, ``ClockState``, kept by the store's engine, so every mock process
on one Redis reads the same time. There is one shared clock and, per project, an optional
clock of its own: a project follows the shared clock until a test moves its clock, and from
then on nothing but that project's calls move it, so parallel test runs in their own
projects never see each other's time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
"""The clock's range: ids carry milliseconds since 1970, and timestamps have four-digit years
(the last year is left as headroom for a clock that keeps running)."""


class ClockRangeError(ValueError):
    """A change would move the clock outside ``EARLIEST`` … ``LATEST``; nothing was changed."""


def real_now() -> datetime:
    """The real time, UTC: what an unmoved clock shows."""
    return datetime.fromtimestamp(time.time(), UTC)


def _in_range(instant: datetime) -> datetime:
    if not EARLIEST <= instant <= LATEST:
        raise ClockRangeError(
            "the clock must stay between 1970-01-01T00:00:00.000Z and 9999-01-01T00:00:00.000Z"
        )
    return instant


def _millis(instant: datetime) -> datetime:
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class ClockState:
    """A clock as data: an offset from real time, or the instant it is frozen at.

    Changes return a new state (checked against the clock's range first), so an engine can
    apply one atomically and a refused change leaves the stored clock as it was.
    """

    offset_ms: int = 0
    frozen_at_ms: int | None = None

    def current(self) -> datetime:
        """The clock's time now (``now(real_now())``, in fewer steps: it is read per request)."""
        if self.frozen_at_ms is not None:
            return EARLIEST + timedelta(milliseconds=self.frozen_at_ms)
        return EARLIEST + timedelta(milliseconds=int(time.time() * 1000) + self.offset_ms)

    def now(self, real: datetime) -> datetime:
        """The clock's time when the real time is ``real``: UTC, in whole milliseconds."""
        if self.frozen_at_ms is not None:
            return EARLIEST + timedelta(milliseconds=self.frozen_at_ms)
        return _millis(real + timedelta(milliseconds=self.offset_ms))

    def real_ms_when(self, instant: datetime) -> int | None:
        """The real time (Unix ms) at which the clock shows ``instant``; ``None``: never.

        A frozen clock reaches an instant it has passed at once and a later one never (until
        it is moved); a running one at that instant less its offset.
        """
        target = _ms_since_epoch(instant)
        if self.frozen_at_ms is not None:
            return int(time.time() * 1000) if target <= self.frozen_at_ms else None
        return target - self.offset_ms

    @property
    def frozen(self) -> bool:
        """Whether time stands still until moved by hand."""
        return self.frozen_at_ms is not None

    def advanced(self, seconds: float, real: datetime) -> ClockState:
        """Moved forward (or back, with a negative number)."""
        try:
            target = self.now(real) + timedelta(seconds=seconds)
        except OverflowError:
            raise ClockRangeError("the clock cannot move that far") from None
        return self.set_to(target, real)

    def set_to(self, instant: datetime, real: datetime) -> ClockState:
        """Jumped to an instant; time goes on from there unless the clock is frozen."""
        target = _millis(_in_range(instant))
        if self.frozen:
            return ClockState(self.offset_ms, _ms_since_epoch(target))
        return ClockState(_ms_between(_millis(real), target), None)

    def frozen_as(self, frozen: bool, real: datetime) -> ClockState:
        """Time stopped at the current instant, or running on from there."""
        current = self.now(real)
        if frozen:
            return ClockState(self.offset_ms, _ms_since_epoch(current))
        return ClockState(_ms_between(_millis(real), current), None)


def _ms_since_epoch(instant: datetime) -> int:
    return _ms_between(EARLIEST, instant)


def _ms_between(start: datetime, end: datetime) -> int:
    delta = end - start
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
