"""Where the decision record is, and where in it a decision's entry is.

The spec's ``x-source`` cites a decision as ``notes B.15``: a decision this project took
where the public material is silent. ``docs/decisions.md`` is the one page that says what
each decision is, what a deployment may do instead and what the suite then reports; the
docs site renders it and every citation of a decision links to its entry there.
"""

from __future__ import annotations

import re

DECISIONS_RECORD = "docs/decisions.md"
"""The record in a checkout (and, in a wheel, inside this package at the same path)."""

_DECISION = re.compile(r"\bB\.(\d+)\b")


def decision_anchor(source: str) -> str | None:
    """The entry's anchor for a citation of one decision (``notes B.15`` → ``b15``)."""
    found = _DECISION.search(source) if source.startswith("notes B.") else None
    return f"b{found.group(1)}" if found else None


def link_decisions(citation: str, page: str) -> str:
    """A citation in Markdown with each decision it names linked to ``page#entry``.

    ``notes B.1, B.3`` links both; facts and assumptions stay as they are.
    """

    def linked(match: re.Match[str]) -> str:
        return f"[{match.group(0)}]({page}#b{match.group(1)})"

    return re.sub(
        r"notes B\.\d+(?:\s*,\s*B\.\d+)*",
        lambda whole: _DECISION.sub(linked, whole.group(0)),
        citation,
    )
