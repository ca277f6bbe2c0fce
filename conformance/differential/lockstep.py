"""The two servers of a comparison, and the step that runs on both and compares.

In a drawn sequence a departure ends it (``Diverged``), so hypothesis can shrink it; in the
steps that run once (the probes and the core) it is reported and the run goes on, each
departure once, up to ``MAX_DEPARTURES`` (``--fail-fast``: the first ends the run). A
legitimate difference is noted once and the sequence goes on.
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
from conformance.differential.verdict import compare, documented_headers, judge, stated_headers
from conformance.runner import ConformanceSession

MAX_DEPARTURES = 25
"""Departures a run reports before it stops: enough for a team fixing several at once."""


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
    replay: str = ""
    """A script that repeats the step where one request cannot: requests sent at once."""

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
    untested: list[str] = field(default_factory=list)
    """What the run could not compare against this target, and why."""

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


def at_once_script(exchanges: list[Exchange]) -> str:
    """A shell script that sends these requests at once again (each in the background)."""
    lines = ["#!/bin/sh", "# The requests at once, as the run sent them; then wait for all."]
    lines += [f"{exchange.curl()} &" for exchange in exchanges]
    return "\n".join([*lines, "wait"])


def noted(source: str, found: Any) -> tuple[str, tuple[str, ...]]:
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
    going_on: bool = False
    """Whether a departure is reported and the steps go on (the steps that run once)."""
    fail_fast: bool = False
    untested: list[str] = field(default_factory=list)
    """What could not be compared against this target, and why (said in the report)."""
    history: list[tuple[str, Exchange, Exchange]] = field(default_factory=list)
    """The current sequence's steps as sent: name, the target's and the reference's answer
    (what a webhook delivery is traced back to)."""

    @property
    def departures(self) -> int:
        """Departures found so far."""
        return sum(not d.decision for d in self.divergences)

    @property
    def done(self) -> bool:
        """Whether the run has reported all the departures it may."""
        return self.departures >= (1 if self.fail_fast else MAX_DEPARTURES)

    def both(
        self,
        name: str,
        operation_path: str,
        method: str,
        act: Callable[[Side], Exchange],
        *,
        decisions_go_on: bool = True,
        allowed: tuple[str, Callable[[Exchange], bool]] | None = None,
    ) -> tuple[Exchange, Exchange]:
        """Run one step on both sides and compare.

        A legitimate difference (a Part B decision, an optional header) shapes an answer,
        not whether it succeeds, so both sides stay in step: it is reported once, at its
        first step, and the sequence goes on (unless ``decisions_go_on`` is false).
        ``allowed`` is a decision of this step's own and what its other choice looks like
        from the target (B.13's other 4xx for a body not sent as JSON): a difference of that
        look is that decision. A departure raises ``Diverged``, unless the run is
        ``going_on``: then it is reported, once, and the step's answers are returned.
        """
        self.log.append(f"{len(self.log) + 1}. {name}")
        self.steps += 1
        ours, theirs = act(self.target), act(self.reference)
        self.history.append((name, ours, theirs))
        documented = documented_headers(operation_path, method, theirs.status)
        stated = stated_headers(operation_path, method, theirs.status)
        found = compare(
            self.target.correlator,
            self.reference.correlator,
            ours,
            theirs,
            documented,
            name,
            stated,
        )
        if found is None:
            return ours, theirs
        source, is_decision = judge(operation_path, method, theirs.status, ours.status, found)
        if allowed is not None and allowed[1](ours):
            source, is_decision = allowed[0], True
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
        if is_decision and not decisions_go_on:
            raise Diverged(divergence)
        if not is_decision and not (self.going_on and not self.done):
            raise Diverged(divergence)
        seen = {noted(d.source, d.differences) for d in self.divergences}
        if noted(source, found.found) not in seen:
            self.divergences.append(divergence)
        return ours, theirs

    def at_once(
        self,
        name: str,
        operation_path: str,
        method: str,
        requests: Callable[[Side], list[Exchange]],
    ) -> None:
        """Requests sent at once on each side: as many of them must succeed on both.

        The count is what a race is judged on (one of two revokes wins). When it differs the
        report shows the target's requests and every answer, the reference's answers, and a
        script that sends the same requests at once again; otherwise the answers are compared
        as any step's are (the winner's with the winner's).
        """
        answers = {side.label: requests(side) for side in (self.target, self.reference)}
        won = {label: [a for a in got if a.status < 300] for label, got in answers.items()}
        ours, theirs = len(won[self.target.label]), len(won[self.reference.label])
        if ours == theirs:
            chosen = {label: (won[label] or answers[label])[0] for label in answers}
            self.both(name, operation_path, method, lambda side: chosen[side.label])
            return
        self.log.append(f"{len(self.log) + 1}. {name}")
        self.steps += 1
        target_answers = answers[self.target.label]
        reference_answers = answers[self.reference.label]
        self.history += [
            (name, a, b) for a, b in zip(target_answers, reference_answers, strict=False)
        ]
        shown = won[self.target.label][-1] if ours > theirs else target_answers[-1]
        other = next((a for a in reference_answers if a.status >= 300), reference_answers[-1])
        source, _ = judge(operation_path, method, other.status, shown.status, None)
        differences: list[tuple[str, Any, Any]] = [
            (f"answered 2xx, of {len(target_answers)} sent at once", ours, theirs),
            *[
                (f"answer {n} status", a.status, b.status)
                for n, (a, b) in enumerate(zip(target_answers, reference_answers, strict=False), 1)
            ],
        ]
        divergence = Divergence(
            f"{name}: {ours} of {len(target_answers)} succeeded (the reference: {theirs})",
            len(self.log),
            tuple(self.log),
            shown,
            other,
            tuple(differences),
            source,
            False,
            replay=at_once_script(target_answers),
        )
        if not (self.going_on and not self.done):
            raise Diverged(divergence)
        seen = {noted(d.source, d.differences) for d in self.divergences}
        if noted(source, divergence.differences) not in seen:
            self.divergences.append(divergence)

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
        going_on, self.going_on = self.going_on, False  # this step judges its own difference
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
            reported = {noted(d.source, d.differences) for d in self.divergences}
            if noted(found.source, found.differences) not in reported:
                self.divergences.append(found)
        finally:
            self.going_on = going_on
        for side in (self.target, self.reference):
            answer = answers.get(side.label)
            made = answer.json() if answer is not None and answer.status == 201 else None
            if isinstance(made, dict) and isinstance(made.get("id"), str):
                side.session.target.remember_share(side.render, made["id"])
        return found
