"""Instants on the wire: how the API writes them, and how it reads the ones it is sent."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime


@functools.lru_cache(maxsize=65536)
def format_timestamp(instant: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``: ``2026-12-31T23:59:59.000Z``.

    Cached: a share list formats the same few instants on every request.
    """
    utc = instant.astimezone(UTC)
    # Not strftime: its %Y does not zero-pad years before 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def parse_timestamp(text: str) -> datetime:
    """Parse an input timestamp (already checked against the spec) to UTC milliseconds.

    The zone is ``Z`` or an offset (``+02:00``); fractional seconds of any precision are
    truncated to milliseconds, as a JavaScript ``Date`` would hold them. ``ValueError`` for
    an instant that has no UTC counterpart a ``datetime`` can hold.
    """
    match = _INPUT_TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO 8601 date-time with a zone: {text!r}")
    head, fraction, zone = match.groups()
    try:
        parsed = datetime.fromisoformat(head + ("+00:00" if zone == "Z" else zone))
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None
    millis = int((fraction[1:] + "000")[:3]) if fraction else 0
    return utc.replace(microsecond=millis * 1000)


_INPUT_TIMESTAMP = re.compile(r"(.+?)(\.\d+)?(Z|[+-]\d{2}:\d{2})")
