"""Running rules against a target and collecting what happened.

``ConformanceSession`` is shared by the command line (which loops over the catalogue with a
progress display) and the pytest plugin (which runs one rule per test item).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Literal

from conformance.client import Exchange, Pacer, RecordingClient, Transcript
from conformance.config import RunConfig
from conformance.context import Context
from conformance.failures import RuleFailure, RuleSkipped
from conformance.judge import cited, judge, judge_citation
from conformance.responses import ResponseContract
from conformance.rules import Rule, all_rules
from conformance.suite.spec import SPEC_RESPONSES
from conformance.target import SetupError, Target

Outcome = Literal["passed", "failed", "skipped", "deviated", "error"]
__all__ = ["ConformanceSession", "RuleResult", "RunResult", "SetupError", "select_rules"]


@dataclass(frozen=True)
class RuleResult:
    """How one rule went."""

    rule: Rule
    outcome: Outcome
    seconds: float
    reason: str = ""
    title: str = ""
    expected: str = ""
    evidence: str = ""
    exchanges: tuple[Exchange, ...] = ()
    culprit: Exchange | None = None

    @property
    def failed(self) -> bool:
        """Whether this result fails the run."""
        return self.outcome in ("failed", "error")


@dataclass
class RunResult:
    """The whole run."""

    base_url: str
    is_mock: bool
    profile: str
    seed: int
    results: list[RuleResult] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0
    cleanup: str = ""
    unprovoked: list[tuple[str, int, str]] = field(default_factory=list)
    undeclared: list[tuple[str, int, str]] = field(default_factory=list)
    provoked: set[str] = field(default_factory=set)
    coverage: dict[str, list[str]] = field(default_factory=dict)
    """What passive traffic exercised (operations with their statuses) and what it never did."""

    @property
    def passed(self) -> bool:
        """True when no rule failed."""
        return not any(result.failed for result in self.results)


def select_rules(only: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[Rule]:
    """The catalogue filtered by id, SPEC-RESPONSES last (it judges everything before it)."""
    known = {r.id for r in all_rules()}
    unknown = sorted((set(only) | set(exclude)) - known)
    if unknown:
        raise SetupError(
            f"unknown rule id(s): {', '.join(unknown)} (see `craftkit-conformance rules`)"
        )
    chosen = [r for r in all_rules() if (not only or r.id in only) and r.id not in exclude]
    return sorted(chosen, key=lambda r: r.id == SPEC_RESPONSES)


class ConformanceSession:
    """A target, a client and a context, ready to run rules one at a time.

    A context manager: leaving the block (at the end, on an error or on Ctrl-C) cleans the
    target up once, so shares never stay active and the run's projects on the mock never linger.
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.contract = ResponseContract()
        self.client = RecordingClient(
            config.base_url,
            self.contract,
            Pacer(config.max_rps),
            share_base_url=config.share_base_url,
        )
        self.started = time.perf_counter()
        try:
            self.target = Target.connect(config, self.client)
        except SetupError:
            self.client.close()
            raise
        self.context = Context(self.target, self.client, config.profile, config.seed)
        self.results: list[RuleResult] = []
        self.cleanup: str | None = None

    def __enter__(self) -> ConformanceSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Clean the target up (once) and close the client; the outcome is kept for the report."""
        if self.cleanup is not None:
            return
        try:
            self.cleanup = self.target.restore()
        except Exception as exc:  # reported, so the run's own results still reach the user
            self.cleanup = f"cleanup failed: {exc!r}"
        finally:
            self.client.close()

    def run_rule(self, rule: Rule) -> RuleResult:
        """Run one rule on a fresh transcript and record its result."""
        missing = rule.missing(self.target.capabilities)
        if missing:
            result = RuleResult(rule, "skipped", 0.0, reason="needs " + "; ".join(missing))
            self.results.append(result)
            return result
        self.client.transcript = Transcript()
        self.context.notes.clear()
        self.context.deviations.clear()
        start = time.perf_counter()
        outcome: Outcome = "passed"
        details: dict[str, str] = {}
        culprit: Exchange | None = None
        try:
            rule.run(self.context)
        except RuleSkipped as skipped:
            outcome, details = "skipped", {"reason": str(skipped)}
        except RuleFailure as failure:
            judgement = judge_citation(failure.source or rule.source)
            lenient = not judgement.departs and not self.target.is_mock
            outcome = "deviated" if lenient else "failed"
            details = {
                "title": failure.title,
                "expected": failure.expected,
                "evidence": failure.evidence,
            }
            culprit = failure.exchange
            if lenient:
                details["reason"] = judgement.reason()
        except Exception as exc:  # a crash in a rule is reported as its result
            outcome = "error"
            details = {
                "title": f"the rule could not complete: {exc!r}",
                "expected": "the rule to run to its end",
                "evidence": "".join(traceback.format_exception(exc))[-4000:],
            }
        if outcome == "passed" and self.context.deviations:
            first = self.context.deviations[0]
            sources = [s for d in self.context.deviations for s in cited(d.source or "")]
            outcome, culprit = "deviated", first.exchange
            details = {
                "title": "; ".join(dict.fromkeys(d.title for d in self.context.deviations)),
                "expected": first.expected,
                "reason": judge(sources).reason(),
            }
        elif outcome == "passed" and self.context.notes:
            details = {"reason": "; ".join(self.context.notes)}
        result = RuleResult(
            rule,
            outcome,
            time.perf_counter() - start,
            exchanges=tuple(self.client.transcript.exchanges),
            culprit=culprit,
            **details,
        )
        self.results.append(result)
        return result

    def finish(self) -> RunResult:
        """Clean up the target (unless done already) and summarise the run."""
        self.close()
        return RunResult(
            base_url=self.config.base_url,
            is_mock=self.target.is_mock,
            profile=self.config.profile.name,
            seed=self.config.seed,
            results=self.results,
            seconds=time.perf_counter() - self.started,
            cleanup=self.cleanup or "",
            requests=self.client.requests_sent + self.client.external_requests,
            unprovoked=self.contract.unprovoked(),
            undeclared=self.contract.undeclared(),
            provoked=self.contract.codes_provoked(),
        )
