"""What each citation of an ``x-source`` is, read from the spec's own ``x-sources``.

The spec cites where each statement comes from (``seed 000``, ``notes A``, ``notes B.15``,
``assumption``), and its root ``x-sources`` says what every citation is: a fact (a deployment
that breaks it departs from the contract), a decision or an assumption (a deployment may take
it otherwise), and, for a decision, the link to its entry in the decision record
(``docs/decisions.md``), the page that says what the mock does, what a deployment may do
instead and what the suite then reports. Whoever judges or links a citation asks here, so
the list of sources is written once, in the spec.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal, cast

from craftkit_spec.loading import load_raw

DECISIONS_RECORD = "docs/decisions.md"
"""The record in a checkout (and, in a wheel, inside this package at the same path)."""

Kind = Literal["fact", "decision", "assumption"]


@dataclass(frozen=True)
class Source:
    """One citable source, as the spec's ``x-sources`` states it."""

    citation: str
    kind: Kind
    title: str
    href: str | None
    """Where its text is read, relative to the spec (decisions: their record entry)."""

    @property
    def anchor(self) -> str | None:
        """The record entry's anchor (``b15``), for a decision."""
        return self.href.partition("#")[2] or None if self.href else None


@functools.cache
def sources() -> dict[str, Source]:
    """Every source the spec may cite, by its citation."""
    listed = load_raw()["x-sources"]
    return {
        str(citation): Source(
            str(citation),
            cast(Kind, entry["kind"]),
            " ".join(str(entry["title"]).split()),
            str(entry["href"]) if entry.get("href") else None,
        )
        for citation, entry in listed.items()
    }


def source(citation: str) -> Source | None:
    """The source one citation names, or ``None`` when the spec lists no such source."""
    return sources().get(citation)


def decision_anchor(citation: str) -> str | None:
    """The record entry's anchor for a citation of one decision (``notes B.15`` → ``b15``)."""
    found = source(citation)
    return found.anchor if found and found.kind == "decision" else None


_DECISION_LIST = re.compile(r"notes B\.\d+(?:\s*,\s*B\.\d+)*")
_DECISION = re.compile(r"\bB\.\d+\b")


def link_decisions(citation: str, page: str) -> str:
    """A citation in Markdown with each decision it names linked to ``page#entry``.

    ``notes B.1, B.3`` links both; facts, assumptions and unlisted citations stay as they are.
    """

    def linked(match: re.Match[str]) -> str:
        anchor = decision_anchor(f"notes {match.group(0)}")
        return f"[{match.group(0)}]({page}#{anchor})" if anchor else match.group(0)

    return _DECISION_LIST.sub(lambda whole: _DECISION.sub(linked, whole.group(0)), citation)
