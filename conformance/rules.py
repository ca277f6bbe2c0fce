"""Rules: what the suite checks, each with a stable id, a statement and its source.

A rule is a function of a ``Context`` registered with ``@rule``. It fails by raising
``RuleFailure`` (through the helpers in ``checks``), whose first line is a title and the rest
evidence. ``needs`` names what the run must have for the rule to mean anything (a second
project's key, a render that is not ready, the mock's control API, permission to write);
without it the rule is skipped, with the reason shown. Whether a failure departs from the
contract or only takes a decision otherwise is the judge's (``conformance.judge``), from the
failed check's own source or else the rule's: a deployment that differs from a decision of
API_NOTES Part B, or from an assumption, is reported as deviated, never failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conformance.judge import judge_citation

if TYPE_CHECKING:
    from conformance.context import Context

RuleFunction = Callable[["Context"], None]

NEEDS_EXPLAINED = {
    "key": "an API key (--api-key)",
    "other_key": "a second project's key (--other-api-key)",
    "other_render": "a succeeded render of that project (--other-render-id, or --template-slug)",
    "render": "a succeeded render (--template-slug/--template-data, or --render-id)",
    "not_ready_render": "a render that has not succeeded (--not-ready-render-id)",
    "write": "permission to create and revoke shares (drop --read-only)",
    "email": "permission to send email to Resend's test addresses (drop --read-only)",
    "mock": "the mock's control API (/_mock), to drive state the public API cannot",
    "template": "a template to render (--template-slug and --template-data)",
    "webhooks": "a webhook listener (--webhook-listen and --webhook-secret, with the project "
    "subscribed to every event there)",
}


@dataclass(frozen=True)
class Rule:
    """One checked property of the contract."""

    id: str
    statement: str
    source: str
    needs: frozenset[str]
    run: RuleFunction

    @property
    def decisions(self) -> tuple[str, ...]:
        """The Part B decisions (and assumptions) the rule's source names."""
        return judge_citation(self.source).decisions

    @property
    def only_decisions(self) -> bool:
        """Whether the rule rests on decisions alone: a deployment may fail it entirely."""
        return not judge_citation(self.source).departs

    def missing(self, capabilities: frozenset[str]) -> list[str]:
        """What the run lacks for this rule, explained."""
        return [NEEDS_EXPLAINED[need] for need in sorted(self.needs - capabilities)]


CATALOGUE: dict[str, Rule] = {}


def rule(
    rule_id: str,
    statement: str,
    *,
    source: str,
    needs: tuple[str, ...] = ("key",),
) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function under a stable id."""

    def register(function: RuleFunction) -> RuleFunction:
        if rule_id in CATALOGUE:
            raise ValueError(f"rule {rule_id} is registered twice")
        CATALOGUE[rule_id] = Rule(rule_id, statement, source, frozenset(needs), function)
        return function

    return register


def all_rules() -> list[Rule]:
    """Every rule, after importing the rule modules, in catalogue order."""
    import conformance.suite  # noqa: F401  # registers the rules

    return list(CATALOGUE.values())
