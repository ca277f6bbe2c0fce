"""Departs, or a choice the contract allows: one judgement, for ``run`` and ``diff`` alike.

Everything the suite checks cites where it comes from (a rule's ``source``, a failing
check's own, the spec's ``x-source``): a seed page (``seed 000``), a fact of API_NOTES Part A
(``notes A``), the spec itself (``openapi.yaml``), a decision of Part B (``notes B.15``), or
an assumption of this toolkit (``assumption``). A difference that breaks a fact departs from
the contract. One that breaks only decisions or assumptions is a choice a deployment may
make otherwise: ``run`` reports it as deviated and ``diff`` as a legitimate difference,
naming the decision, and neither fails on it. Against the reference mock itself a decision
is no choice: the mock takes each one as its decision record says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import craftkit_spec

DECISIONS_PAGE = craftkit_spec.DECISIONS_RECORD
"""The decision record, in this repository and on the docs site (``decisions.html``)."""

_CITED = re.compile(r"seed \d{3}|notes A\b|openapi\.yaml|assumption|notes B\.\d+(?:\s*,\s*B\.\d+)*")


def cited(text: str) -> list[str]:
    """The sources a citation names, one each: ``notes B.1, B.3`` is two."""
    found: list[str] = []
    for match in _CITED.findall(text):
        if match.startswith("notes B."):
            found += [f"notes {number}" for number in re.findall(r"B\.\d+", match)]
        else:
            found.append(match)
    return found


def is_decision(source: str) -> bool:
    """Whether a source is a decision or an assumption (a choice, not a fact).

    The spec's ``x-sources`` says which; a citation it does not list is held to be a fact.
    """
    listed = craftkit_spec.source(source)
    return listed is not None and listed.kind != "fact"


@dataclass(frozen=True)
class Judgement:
    """What a difference is, and on what grounds."""

    departs: bool
    sources: tuple[str, ...]

    @property
    def decisions(self) -> tuple[str, ...]:
        """The decisions (and assumptions) the difference is a choice of."""
        return tuple(source for source in self.sources if is_decision(source))

    def basis(self) -> str:
        """The sources as a report cites them, decisions with their entry in the record."""
        return ", ".join(_linked(source) for source in self.sources) or "the spec"

    def reason(self) -> str:
        """Why a deployment that differs here is reported, not failed."""
        return (
            f"differs from {self.basis()}, which a deployment may decide otherwise: "
            "reported, not failed"
        )


def _linked(source: str) -> str:
    anchor = craftkit_spec.decision_anchor(source)
    return f"{source} ({DECISIONS_PAGE}#{anchor})" if anchor else source


def judge(sources: Iterable[str]) -> Judgement:
    """A difference from what ``sources`` state: it departs when any of them is a fact.

    With no source at all the spec itself is what is broken: that departs too.
    """
    named = tuple(dict.fromkeys(sources))
    departs = not named or any(not is_decision(source) for source in named)
    return Judgement(departs, named)


def judge_citation(text: str) -> Judgement:
    """``judge`` of the sources a citation names (``"seed 000; notes B.3"``)."""
    return judge(cited(text))
