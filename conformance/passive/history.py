"""What the traffic has shown so far: renders, shares, revocations, counts, replayed keys.

Everything is keyed by the digest of the key that made the request (keys and share tokens
are kept only as digests, never as themselves); two keys count as two projects only once
the traffic has shown it. Every map is
bounded; what falls out of one is forgotten, which makes later checks about it undecidable,
never wrong. A reset of a project through the mock's control API forgets that project's
history (all of it when the traffic never showed which keys the project has).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from conformance.passive.traffic import Observed

K = TypeVar("K")
V = TypeVar("V")

REMEMBERED = 20_000
"""How many renders, shares and idempotency keys the history keeps (the oldest go first).

Each holds the exchanges that showed it with their bodies cut to 4 KiB: some hundreds of
MiB at the very most.
"""


def digest(secret: str) -> str:
    """A key or token as the history keeps it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:24]


class Bounded(OrderedDict[K, V], Generic[K, V]):
    """A map that forgets its oldest entries beyond ``REMEMBERED``."""

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > REMEMBERED:
            self.popitem(last=False)


@dataclass
class SeenRender:
    """A render some answer showed, and to which project."""

    project: str | None
    status: str | None = None
    status_seen: Observed | None = None
    succeeded_by: float | None = None
    """When an answer first showed it ``succeeded`` (its end)."""


@dataclass
class SeenShare:
    """A share some answer showed: where it lives, what it said, what happened to it."""

    project: str | None
    render: str
    shown: Observed
    values: dict[str, object] = field(default_factory=dict)
    """createdAt, expiresAt, channel and the digests of the token and URL, as first shown."""
    revoked_at: str | None = None
    revoked: Observed | None = None
    revoked_by: float | None = None
    """When an answer first showed it revoked (its end)."""
    clicks: int = 0
    clicks_seen: Observed | None = None


@dataclass
class History:
    """The traffic's state so far."""

    renders: Bounded[str, SeenRender] = field(default_factory=Bounded)
    shares: Bounded[str, SeenShare] = field(default_factory=Bounded)
    by_render: Bounded[str, dict[str, None]] = field(default_factory=Bounded)
    """Render id → the ids of its shares seen made, in order (``shares_of`` reads it)."""
    tokens: Bounded[str, str] = field(default_factory=Bounded)
    """Token digest → share id."""
    replays: Bounded[tuple[str | None, str], tuple[str, Observed]] = field(default_factory=Bounded)
    """(project, Idempotency-Key digest) → the render it gave and the answer that said so."""
    engagement: Bounded[str, tuple[dict[str, int], Observed]] = field(default_factory=Bounded)
    projects: Bounded[str, str] = field(default_factory=Bounded)
    """Key digest → project id, for keys the traffic saw made (the mock's control API)."""
    clock: Bounded[str | None, tuple[datetime, Observed]] = field(default_factory=Bounded)
    """Key digest → the latest instant an answer stamped for its project, and that answer."""
    apart: Bounded[frozenset[str], bool] = field(default_factory=Bounded)
    """Pairs of keys an answer showed to be of two projects (one's object is not the other's)."""

    def crossing(self, one: str | None, other: str | None) -> bool | None:
        """Whether two keys are of two projects: ``None`` when the traffic has not shown it.

        A project may hold several keys, so two digests alone say nothing: only keys seen
        made for two projects, or an answer that kept one's objects from the other, do.
        """
        if one is None or other is None or one == other:
            return False
        if one in self.projects and other in self.projects:
            return self.projects[one] != self.projects[other]
        return True if frozenset((one, other)) in self.apart else None

    def keep_apart(self, one: str | None, other: str | None) -> None:
        """An answer showed the two keys are of two projects."""
        if one is not None and other is not None and one != other:
            self.apart[frozenset((one, other))] = True

    def forget(self, keys: set[str] | None = None) -> None:
        """What the traffic showed of the projects of ``keys`` (``None``: of every project).

        After a project is reset or deleted, what came before says nothing of after; the
        other projects' histories stand (a partner's tests reset their own sandboxes while
        the others go on).
        """
        if keys is None:
            for kept in (self.renders, self.shares, self.tokens, self.replays, self.engagement):
                kept.clear()
            self.by_render.clear()
            self.clock.clear()
            return
        self.forget_time(keys)
        gone = [render for render, seen in self.renders.items() if seen.project in keys]
        for render in gone:
            del self.renders[render]
            self.engagement.pop(render, None)
        shares = {share for share, seen in self.shares.items() if seen.project in keys}
        for share in shares:
            del self.shares[share]
        for token in [token for token, share in self.tokens.items() if share in shares]:
            del self.tokens[token]
        for replay in [replay for replay in self.replays if replay[0] in keys]:
            del self.replays[replay]

    def add_share(self, share_id: str, share: SeenShare) -> None:
        """A share seen made, found again by its id and by its render."""
        self.shares[share_id] = share
        made = self.by_render.get(share.render)
        if made is None:
            made = self.by_render[share.render] = {}
        made[share_id] = None

    def shares_of(self, render_id: str) -> list[tuple[str, SeenShare]]:
        """The render's shares still remembered, in the order they were made.

        A list reads only its render's shares, not every one remembered; ids whose share
        was forgotten are dropped here.
        """
        made = self.by_render.get(render_id)
        if made is None:
            return []
        found = [(i, self.shares[i]) for i in made if i in self.shares]
        if len(found) < len(made):
            self.by_render[render_id] = dict.fromkeys(i for i, _ in found)
        return found

    def forget_time(self, keys: set[str] | None) -> None:
        """The instants seen for these keys' projects (all: ``None``): their clock was set."""
        if keys is None:
            self.clock.clear()
        for key in keys or ():
            self.clock.pop(key, None)

    def forget_render(self, render_id: str) -> None:
        """A render whose status the mock's control API set: its lifecycle starts over."""
        self.renders.pop(render_id, None)

    def keys_of(self, project_id: str) -> set[str] | None:
        """The key digests the traffic saw made for a project; ``None`` when it saw none."""
        keys = {key for key, project in self.projects.items() if project == project_id}
        return keys or None
