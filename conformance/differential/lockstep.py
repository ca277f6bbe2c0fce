"""The two servers of a comparison, and the step that runs on both and compares.

A departure ends the sequence (``Diverged``), so hypothesis can shrink it; a legitimate
difference is noted once and the sequence goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.client import Exchange
from conformance.differential.normal import (
    Correlator,
)
from conformance.differential.verdict import compare, documented_headers, judge
from conformance.runner import ConformanceSession


@dataclass(frozen=True)
class Divergence:
    """The first step at which the target answers otherwise than the reference."""

    title: str
    step: int
    sequence: tuple[str, ...]
    target: Exchange
    reference: Exchange
    differences: tuple[tuple[str, Any, Any], ...]
    source: str
    decision: bool

    @property
    def verdict(self) -> str:
        """Who is right, as the source decides."""
        if self.decision and self.source.startswith("notes B."):
            return (
                f"a legitimate difference: {self.source} is a decision a deployment may take "
                "otherwise (reported, not failed)"
            )
        if self.decision:
            return f"a legitimate difference: {self.source} (reported, not failed)"
        return f"the target departs from the contract ({self.source})"


@dataclass
class DiffResult:
    """A whole differential run."""

    target_url: str
    reference_url: str
    profile: str
    seed: int
    divergences: list[Divergence]
    sequences: int
    steps: int
    seconds: float
    requests: int
    cleanup: str

    @property
    def passed(self) -> bool:
        """Nothing differs beyond Part B decisions."""
        return all(d.decision for d in self.divergences)


class Diverged(Exception):  # noqa: N818  # read as "raise Diverged(divergence)"
    """Ends a sequence at its first divergence (hypothesis then shrinks the sequence)."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.title)
        self.divergence = divergence


@dataclass
class Side:
    """One server in the comparison, and what the current sequence knows of it."""

    label: str
    session: ConformanceSession
    correlator: Correlator = field(default_factory=Correlator)
    render: str = ""
    baseline: set[str] = field(default_factory=set)
    template: tuple[str, dict[str, Any]] | None = None
    not_ready: str | None = None
    """A render of the project that has not succeeded, where the run has one."""
    foreign: str | None = None
    """A render of another project, where the run has a second key."""
    engaged: dict[str, Any] = field(default_factory=dict)
    """The render's engagement when the sequence began (a deployment's render has history)."""

    def call(
        self,
        method: str,
        path: str,
        *,
        key: bool = True,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        """A request with the side's key (or none)."""
        chosen = self.session.target.key if key else None
        return self.session.client.request(method, path, key=chosen, json=json, headers=headers)


def _noted(source: str, found: Any) -> tuple[str, tuple[str, ...]]:
    """What makes a legitimate difference the same one again: its source and where it is.

    The same field of any row of a list is one place.
    """
    return source, tuple(re.sub(r"\[\d+\]", "[]", str(where)) for where, *_ in found)


@dataclass
class Lockstep:
    """Both sides, the steps of the current sequence, and every divergence found."""

    target: Side
    reference: Side
    divergences: list[Divergence] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    sequences: int = 0
    steps: int = 0

    def both(
        self,
        name: str,
        operation_path: str,
        method: str,
        act: Callable[[Side], Exchange],
        *,
        decisions_go_on: bool = True,
    ) -> tuple[Exchange, Exchange]:
        """Run one step on both sides and compare; raise at the first departure.

        A legitimate difference (a Part B decision, an optional header) shapes an answer,
        not whether it succeeds, so both sides stay in step: it is reported once, at its
        first step, and the sequence goes on (unless ``decisions_go_on`` is false).
        """
        self.log.append(f"{len(self.log) + 1}. {name}")
        self.steps += 1
        ours, theirs = act(self.target), act(self.reference)
        documented = documented_headers(operation_path, method, theirs.status)
        found = compare(
            self.target.correlator, self.reference.correlator, ours, theirs, documented, name
        )
        if found is None:
            return ours, theirs
        source, is_decision = judge(operation_path, method, theirs.status, ours.status, found)
        divergence = Divergence(
            f"{name}: {found.title}",
            len(self.log),
            tuple(self.log),
            ours,
            theirs,
            tuple(found.found),
            source,
            is_decision,
        )
        if not (is_decision and decisions_go_on):
            raise Diverged(divergence)
        seen = {_noted(d.source, d.differences) for d in self.divergences}
        if _noted(source, found.found) not in seen:
            self.divergences.append(divergence)
        return ours, theirs

    def probe(
        self,
        name: str,
        operation_path: str,
        method: str,
        act: Callable[[Side], Exchange],
        decision: str,
        taken: Callable[[Exchange], bool],
    ) -> Divergence | None:
        """A Part B point: the run goes on whatever the target answers.

        A difference is the decision taken otherwise when the target's answer is what that
        other choice looks like (``taken``); any other difference departs from the contract.
        A share either side made is remembered for the cleanup.
        """
        self.log = []
        answers: dict[str, Exchange] = {}

        def recorded(side: Side) -> Exchange:
            answers[side.label] = act(side)
            return answers[side.label]

        found: Divergence | None = None
        try:
            self.both(name, operation_path, method, recorded, decisions_go_on=False)
        except Diverged as diverged:
            found = diverged.divergence
            if taken(found.target):
                found = replace(found, source=decision, decision=True)
            elif found.decision and found.source.startswith("notes B."):
                # A Part B difference at this point, but not the point's other choice.
                found = replace(
                    found,
                    source=f"{decision}: neither its choice nor the other one",
                    decision=False,
                )
            noted = {_noted(d.source, d.differences) for d in self.divergences}
            if not found.decision or _noted(found.source, found.differences) not in noted:
                self.divergences.append(found)
        for side in (self.target, self.reference):
            answer = answers.get(side.label)
            made = answer.json() if answer is not None and answer.status == 201 else None
            if isinstance(made, dict) and isinstance(made.get("id"), str):
                side.session.target.remember_share(side.render, made["id"])
        return found
