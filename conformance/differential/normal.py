"""Answers made comparable across two servers: values that must differ are correlated.

Ids, share tokens, message ids and hosts differ between a deployment and the mock by nature,
so each side maps them to names in the order it first shows them (``id#3``, ``token#2``):
the share created at step 3 is ``id#3`` on both sides, and a later list that drops, reorders
or alters it differs in its normal form. Timestamps are not compared by value but as
relations: each one is ``<time>`` in the normal form, and the order between any two of them
(before, after) must not be opposite on the two sides. A timestamp of a thing with an id is
also the same thing's field in every later answer: where one side shows it unchanged, the
other must too (``changed_instant``). Instants the run sent itself are named (``sent#1``), so
an echoed ``expiresAt`` must come back as sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import craftkit_spec

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_TOKEN = re.compile(r"cks_[A-Za-z0-9_-]+")
_ORIGIN = re.compile(r"https?://[^/\s\"'<>]+")
_INSTANT = re.compile(craftkit_spec.component("InputTimestamp")["pattern"])
"""An instant in any form the API reads (which includes the form it writes)."""
_OPAQUE_KEYS = frozenset({"emailMessageId"})
"""Fields whose values are opaque per side, whatever they look like."""
_TIMING_KEYS = frozenset({"durationMs"})
"""Fields that measure how long something took: a number on both sides, never the same."""
_LOCATION_KEYS = frozenset({"downloadUrl"})
"""URLs whose form is the deployment's (the authenticated route, or public storage): only
whether there is one is compared."""


@dataclass(frozen=True)
class Stamp:
    """A timestamp met in an answer: where, its text, and whose field it is (if known)."""

    where: str
    value: str
    owner: str | None
    """``<name of the thing's id>.<field>``, e.g. ``id#3.createdAt``."""


@dataclass
class Correlator:
    """One side's names for the values that differ between sides by nature."""

    names: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    sent: dict[str, str] = field(default_factory=dict)
    times: list[Stamp] = field(default_factory=list)
    """Every timestamp seen, in order."""

    def name(self, value: str, kind: str) -> str:
        """The side's name for a value, given on first sight."""
        found = self.names.get(value)
        if found is None:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            found = self.names[value] = f"{kind}#{self.counts[kind]}"
        return found

    def preset(self, value: str, name: str) -> None:
        """Name a value both sides know in advance (a render provisioned for the run)."""
        self.names[value] = name

    def sent_instant(self, value: str) -> str:
        """Note an instant the run sent; it is named wherever it comes back."""
        return self.sent.setdefault(_canonical(value), f"sent#{len(self.sent) + 1}")

    def text(self, value: str, where: str, key: str | None = None, owner: str | None = None) -> str:
        """A string's normal form (``owner``: the name of the thing whose field it is)."""
        if key in _OPAQUE_KEYS:
            return self.name(value, "opaque")
        if _INSTANT.fullmatch(value):
            # Exactly as the contract writes instants (UTC, milliseconds, Z): another
            # spelling of a sent instant is not an echo of it.
            sent = self.sent.get(value)
            if sent is not None:
                return sent
            field_of = f"{owner}.{key}" if owner is not None and key is not None else None
            self.times.append(Stamp(where, value, field_of))
            return "<time>"
        if value.startswith(("http://", "https://")):
            parts = urlsplit(value)
            path = _TOKEN.sub(lambda m: self.name(m.group(0), "token"), parts.path)
            path = _UUID.sub(lambda m: self.name(m.group(0).lower(), "id"), path)
            return f"<host>{path}"
        if _TOKEN.fullmatch(value):
            return self.name(value, "token")
        if _UUID.fullmatch(value):
            return self.name(value.lower(), "id")
        # Free text (an email's body) carries links and ids of its own side.
        value = _ORIGIN.sub("<host>", value)
        value = _TOKEN.sub(lambda m: self.name(m.group(0), "token"), value)
        return _UUID.sub(lambda m: self.name(m.group(0).lower(), "id"), value)

    def normal(
        self, value: Any, where: str = "$", key: str | None = None, owner: str | None = None
    ) -> Any:
        """A JSON value's normal form (timestamps noted in order as they are met)."""
        if key in _TIMING_KEYS and isinstance(value, int | float):
            return "<duration>"
        if key in _LOCATION_KEYS and isinstance(value, str):
            return "<url>"
        if isinstance(value, dict):
            own_id = value.get("id")
            if isinstance(own_id, str):
                owner = self.text(own_id, f"{where}.id", "id")
            return {k: self.normal(v, f"{where}.{k}", k, owner) for k, v in value.items()}
        if isinstance(value, list):
            return [self.normal(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str):
            return self.text(value, where, key, owner)
        return value


def _canonical(instant: str) -> str:
    """An instant as milliseconds in UTC text, so ``…Z`` and ``….000Z`` are one."""
    parsed = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def extra_fields(left: Any, right: Any, where: str = "$") -> list[tuple[str, Any]]:
    """Keys of ``left``'s objects that ``right`` does not have at the same place: (path, value).

    Lists are walked item by item as far as both go (a length that differs is a difference
    of its own). No schema of the contract is closed, so a deployment may send more.
    """
    if isinstance(left, dict) and isinstance(right, dict):
        found: list[tuple[str, Any]] = []
        for key, value in left.items():
            if key not in right:
                found.append((f"{where}.{key}", value))
            else:
                found += extra_fields(value, right[key], f"{where}.{key}")
        return found
    if isinstance(left, list) and isinstance(right, list):
        return [e for i, (a, b) in enumerate(zip(left, right, strict=False))
                for e in extra_fields(a, b, f"{where}[{i}]")]  # fmt: skip
    return []


def without_fields(value: Any, paths: set[str], where: str = "$") -> Any:
    """``value`` less the keys at ``paths`` (as ``extra_fields`` names them)."""
    if isinstance(value, dict):
        return {
            k: without_fields(v, paths, f"{where}.{k}")
            for k, v in value.items()
            if f"{where}.{k}" not in paths
        }
    if isinstance(value, list):
        return [without_fields(v, paths, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def differences(left: Any, right: Any, where: str = "$") -> list[tuple[str, Any, Any]]:
    """Where two normal forms differ: (path, left value, right value), depth first."""
    if isinstance(left, dict) and isinstance(right, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in [*left, *(k for k in right if k not in left)]:
            if key not in right:
                found.append((f"{where}.{key}", left[key], "(absent)"))
            elif key not in left:
                found.append((f"{where}.{key}", "(absent)", right[key]))
            else:
                found += differences(left[key], right[key], f"{where}.{key}")
        return found
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return [(f"{where} (length)", len(left), len(right))]
        return [d for i, (a, b) in enumerate(zip(left, right, strict=True))
                for d in differences(a, b, f"{where}[{i}]")]  # fmt: skip
    return [] if left == right else [(where, left, right)]


def opposite_order(left: Correlator, right: Correlator, since: int) -> tuple[str, str] | None:
    """Two timestamps (by where they were) whose order one side has the other way round.

    Only the timestamps from index ``since`` on are new; each is compared with every one
    before it. Equal on one side and ordered on the other is timing, not a difference.
    """
    for index in range(since, min(len(left.times), len(right.times))):
        for earlier in range(index):
            a = _sign(left.times[earlier].value, left.times[index].value)
            b = _sign(right.times[earlier].value, right.times[index].value)
            if a * b < 0:
                return left.times[earlier].where, left.times[index].where
    return None


def changed_instant(left: Correlator, right: Correlator, since: int) -> tuple[str, str] | None:
    """A thing's timestamp that one side shows unchanged since it first showed it, the other not.

    The same share's ``createdAt`` in the create answer and in a later list, or its
    ``revokedAt`` in the revoke answer and in the list, is one instant: a side whose two
    answers disagree contradicts itself where the other does not. Only timestamps from index
    ``since`` on are new; each is compared with the first sight of the same field.
    """
    for index in range(since, min(len(left.times), len(right.times))):
        stamp = left.times[index]
        if stamp.owner is None or right.times[index].owner != stamp.owner:
            continue
        first = next(i for i, seen in enumerate(left.times) if seen.owner == stamp.owner)
        if first == index or right.times[first].owner != stamp.owner:
            continue
        same_left = _sign(left.times[first].value, stamp.value) == 0
        same_right = _sign(right.times[first].value, right.times[index].value) == 0
        if same_left != same_right:
            return left.times[first].where, stamp.where
    return None


def _sign(first: str, second: str) -> int:
    a, b = _canonical(first), _canonical(second)
    return (a > b) - (a < b)
