"""What the traffic decided, rule by rule: the tallies, the findings, the judgement.

A rule is decided when the traffic showed what it speaks of (``DECIDES``); a finding is
judged as ``run`` judges it (``conformance/judge.py``): a fact broken fails, a Part B
decision taken otherwise is deviated. A rule never decided is reported as not decidable,
never as passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from conformance.client import Exchange
from conformance.judge import judge_citation
from conformance.passive.traffic import Observed
from conformance.rules import Rule
from conformance.runner import RuleResult

FINDINGS_KEPT = 10
"""Findings kept per rule for the report (all are counted)."""
KEPT_BODY_BYTES = 4096
"""How much of each body an exchange the history keeps (as later evidence) holds."""

DECIDES: dict[str, str] = {
    "SPEC-RESPONSES": "any answer of the API",
    "AUTH-MISSING-KEY": "a request without Authorization to an operation that needs a key",
    "AUTH-MALFORMED-KEY": "a request whose Authorization is not a Bearer key",
    "RENDER-LIFECYCLE": "a render read twice",
    "RENDER-IDEMPOTENT": "a render submission replayed with its Idempotency-Key",
    "RENDER-IDEMPOTENT-PER-PROJECT": "one Idempotency-Key used by two projects",
    "ISOLATION-RENDERS": "a render reached with another project's key",
    "ISOLATION-SHARES": "a share revoked with another project's key",
    "WRONG-PARENT-404": "a share revoked through another render of its project",
    "SHARE-NOT-READY": "a share created on a render seen succeeded",
    "EMAIL-NOT-READY": "an email sent of a render seen succeeded",
    "DOWNLOAD-NOT-READY": "a download of a render seen succeeded",
    "VALUES-AGREE": "one share shown by two answers",
    "SHARE-LIST-ORDER": "a list of two shares or more",
    "SHARE-LIST-OWN-RENDER": "a list of a render some of whose shares were seen made",
    "SHARE-REVOKE-ONCE": "a share revoked again after a revoke had answered",
    "SHARE-REVOKE-CONCURRENT": "two revokes of one share in flight at once",
    "LINK-REVOKED-404": "a link opened after its share was seen revoked",
    "LINK-EXPIRED-404": "a link opened after an answer stamped its project's time past the "
    "share's expiresAt",
    "LINK-CLICK-COUNT": "one share's clickCount shown twice",
    "ENGAGEMENT-COUNTS": "a render's engagement read",
}
"""The rules traffic can decide, and what it must show for each."""


@dataclass(frozen=True)
class Finding:
    """One place the traffic departs from a rule, with the exchanges that show it."""

    title: str
    expected: str
    exchanges: tuple[Exchange, ...]


@dataclass
class _Tally:
    decided: int = 0
    count: int = 0
    findings: list[Finding] = field(default_factory=list)


def json_of(observed: Observed) -> Any:
    """The answer's JSON body, or ``None`` (unknown, or not JSON)."""
    if not observed.body_known:
        return None
    try:
        return orjson.loads(observed.exchange.response_body)
    except orjson.JSONDecodeError:
        return None


def instant(value: object) -> datetime | None:
    """A timestamp of the API's answers, comparable; ``None`` for anything else."""
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def code_of(observed: Observed) -> str | None:
    """The error code of an answer in the envelope, or ``None``."""
    body = json_of(observed)
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


class Verdicts:
    """Each rule's tally as the checks report to it."""

    def __init__(self) -> None:
        self._tallies = {rule_id: _Tally() for rule_id in DECIDES}
        self._kept: dict[int, tuple[Observed, Observed]] = {}

    @property
    def findings(self) -> int:
        """Findings so far, of every rule."""
        return sum(tally.count for tally in self._tallies.values())

    def outcome(self, rule: Rule) -> RuleResult:
        """The rule as this traffic showed it: failed or deviated, passed, or not decidable."""
        tally = self._tallies[rule.id]
        if tally.findings:
            first = tally.findings[0]
            judgement = judge_citation(rule.source)
            more = f" (and {tally.count - 1} more)" if tally.count > 1 else ""
            evidence = "\n".join(f"also: {f.title}" for f in tally.findings[1:]) + (
                f"\n… {tally.count - len(tally.findings)} more not kept"
                if tally.count > len(tally.findings)
                else ""
            )
            return RuleResult(
                rule,
                "failed" if judgement.departs else "deviated",
                0.0,
                reason="" if judgement.departs else judgement.reason(),
                title=first.title + more,
                expected=first.expected,
                evidence=evidence.strip(),
                exchanges=first.exchanges,
                culprit=first.exchanges[-1],
            )
        if tally.decided:
            return RuleResult(rule, "passed", 0.0, reason=f"decided {tally.decided} time(s)")
        return RuleResult(
            rule,
            "skipped",
            0.0,
            reason=f"not decidable: the traffic never showed {DECIDES[rule.id]}",
        )

    def keep(self, observed: Observed) -> Observed:
        """The exchange as the history keeps it: its bodies cut to ``KEPT_BODY_BYTES``.

        Only a later finding shows it, as evidence; a whole list kept for each of its rows
        would make the history's memory the traffic's.
        """
        exchange = observed.exchange
        if max(len(exchange.request_body), len(exchange.response_body)) <= KEPT_BODY_BYTES:
            return observed
        kept = self._kept.get(id(observed))
        if kept is None or kept[0] is not observed:
            cut = replace(
                exchange,
                request_body=exchange.request_body[:KEPT_BODY_BYTES],
                response_body=exchange.response_body[:KEPT_BODY_BYTES],
            )
            kept = (observed, replace(observed, exchange=cut))
            self._kept = {id(observed): kept}  # the exchange being read, only
        return kept[1]

    def decided(self, rule_id: str) -> None:
        """The traffic showed what the rule speaks of, and it held."""
        self._tallies[rule_id].decided += 1

    def found(self, rule_id: str, title: str, expected: str, *shown: Observed) -> None:
        """The traffic departs from the rule: these exchanges, in order, show it."""
        tally = self._tallies[rule_id]
        tally.decided += 1
        tally.count += 1
        if len(tally.findings) < FINDINGS_KEPT:
            tally.findings.append(Finding(title, expected, tuple(o.exchange for o in shown)))
