"""Passive conformance: exchanges read in order, checked against the spec and the rules.

Each exchange is checked against openapi.yaml and against the catalogue's rules that the
history seen so far makes decidable.

``run`` acts and then checks; here nothing is sent, so a rule is decided only when the
traffic happens to show what it speaks of: a second revoke of a share seen revoked, a link
opened after its share was revoked, a list of a render some of whose shares were seen made.
Each rule keeps the catalogue's id, statement and source (``conformance/rules.py``), and a
finding is judged as ``run`` judges it (``conformance/judge.py``): a fact broken fails, a
Part B decision taken otherwise is reported as deviated. A rule the traffic never decided is
reported as not decidable, never as passed.

"Before" means that an answer had ended before the next request started; answers that
overlap in time decide nothing about each other, except two revokes of one share that
both won (one revoke wins).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from urllib.parse import urlsplit

import craftkit_spec
from conformance.passive.history import History, digest
from conformance.passive.renders import RenderChecks
from conformance.passive.shares import ShareChecks
from conformance.passive.traffic import Observed
from conformance.passive.verdicts import DECIDES, Verdicts, code_of, json_of
from conformance.responses import ResponseContract
from conformance.rules import all_rules
from conformance.runner import RunResult

_PROJECT_RESET = re.compile(r"^/_mock/projects/([^/]+)(/reset)?$")
"""``DELETE /_mock/projects/{id}``, or ``POST`` of its ``/reset``."""
_STATUS_SET = re.compile(r"^/_mock/renders/([^/]+)/status$")
_CLOCK_SET = re.compile(r"^/_mock(?:/projects/([^/]+))?/clock$")

__all__ = ["DECIDES", "PassiveChecker"]


class PassiveChecker:
    """Feed it exchanges in the order they started; ``result`` is the report."""

    def __init__(self, source: str = "traffic") -> None:
        self.source = source
        self.contract = ResponseContract()
        self.history = History()
        self.exchanges = 0
        self.unchecked = 0
        self.operations: Counter[tuple[str, int]] = Counter()
        self._rules = {r.id: r for r in all_rules() if r.id in DECIDES}
        self._verdicts = Verdicts()
        renders = RenderChecks(self.history, self._verdicts)
        shares = ShareChecks(self.history, self._verdicts, renders)
        spec = craftkit_spec.load_resolved()
        self._keyed = {
            op.operation_id
            for op in craftkit_spec.iter_operations(spec)
            if op.definition.get("security", spec.get("security")) != []
        }
        self._handlers: dict[str, Callable[[Observed, str, str | None], None]] = {
            "renderTemplate": renders.submitted,
            "getRender": renders.read_render,
            "downloadRender": renders.downloaded,
            "recordRenderEvent": renders.reported,
            "createShare": shares.shared,
            "emailRender": shares.emailed,
            "listShares": shares.listed,
            "revokeShare": shares.revoked,
            "viewSharePage": shares.link_opened,
            "downloadSharedPdf": shares.link_opened,
            "getRenderEngagement": renders.engagement_read,
        }
        self._all_operations = sorted(
            {op.operation_id for op in craftkit_spec.iter_operations(spec)}
        )

    @property
    def findings(self) -> int:
        """Findings so far, of every rule."""
        return self._verdicts.findings

    def result(self, seconds: float = 0.0) -> RunResult:
        """Every rule: failed or deviated with its findings, passed, or not decidable."""
        results = [self._verdicts.outcome(rule) for rule in self._rules.values()]
        seen_operations = {op for op, _ in self.operations}
        coverage = [
            f"{op}: {', '.join(str(s) for o, s in sorted(self.operations) if o == op)}"
            for op in self._all_operations
            if op in seen_operations
        ]
        never = [op for op in self._all_operations if op not in seen_operations]
        return RunResult(
            base_url=self.source,
            is_mock=False,
            profile="passive",
            seed=0,
            results=results,
            seconds=seconds,
            requests=self.exchanges,
            cleanup=(
                f"nothing to clean: {self.exchanges} exchange(s) read, none sent"
                + (f" ({self.unchecked} not the API's, passed unchecked)" if self.unchecked else "")
            ),
            unprovoked=self.contract.unprovoked(),
            undeclared=self.contract.undeclared(),
            provoked=self.contract.codes_provoked(),
            coverage={"exercised": coverage, "never exercised": never},
        )

    def feed_all(self, traffic: Iterable[Observed]) -> None:
        """Every exchange of a recording, in order."""
        for observed in traffic:
            self.feed(observed)

    def feed(self, observed: Observed) -> None:
        """One exchange: checked, then remembered."""
        exchange = observed.exchange
        path = urlsplit(exchange.url).path
        if path.startswith("/_mock"):
            self.unchecked += 1
            self._control(observed, path)
            return
        operation = self.contract.operation_id(exchange.method, path)
        if operation is None and not path.startswith(("/v1/", "/share/", "/health")):
            self.unchecked += 1
            return
        self.exchanges += 1
        self.operations[(operation or "(no operation)", exchange.status)] += 1
        self._spec(observed, path)
        if operation is None:
            return
        usable, project = self._project(observed, operation)
        if not usable:
            return
        handler = self._handlers.get(operation)
        if handler is not None:
            handler(observed, path, project)

    def _control(self, observed: Observed, path: str) -> None:
        """The mock's control calls: a project made (its key told apart), a reset (forget)."""
        exchange = observed.exchange
        if exchange.status >= 300:
            return
        if exchange.method == "POST" and path == "/_mock/projects":
            body = json_of(observed)
            if isinstance(body, dict) and isinstance(body.get("apiKey"), str):
                key = digest(f"Bearer {body['apiKey']}")
                self.history.projects[key] = str(body.get("projectId"))
            return
        project = _PROJECT_RESET.match(path)
        if project is not None and (exchange.method == "DELETE") == (project.group(2) is None):
            self.history.forget(self.history.keys_of(project.group(1)))
        elif exchange.method == "POST" and path == "/_mock/reset":
            self.history.forget()
        elif exchange.method == "POST" and (clock := _CLOCK_SET.match(path)) is not None:
            # The project's time was set (the shared clock: every project's may have moved).
            self.history.forget_time(
                None if clock.group(1) is None else self.history.keys_of(clock.group(1))
            )
        elif exchange.method == "POST" and (status := _STATUS_SET.match(path)) is not None:
            self.history.forget_render(status.group(1))

    def _spec(self, observed: Observed, path: str) -> None:
        exchange = observed.exchange
        if observed.body_known and exchange.method != "HEAD":
            violations = self.contract.check(
                exchange.method, path, exchange.status, exchange.response_headers,
                exchange.response_body,
            )  # fmt: skip
        else:
            violations = self.contract.check_status(exchange.method, path, exchange.status)
        if not violations:
            self._verdicts.decided("SPEC-RESPONSES")
            return
        shown = replace(observed, exchange=replace(exchange, violations=tuple(violations)))
        self._verdicts.found(
            "SPEC-RESPONSES",
            f"{exchange.summary()}: {violations[0].problem}",
            "every answer as openapi.yaml documents it",
            shown,
        )

    def _project(self, observed: Observed, operation: str) -> tuple[bool, str | None]:
        """The key's project (its digest; ``None`` for a public operation), if it was let in.

        A refusal (401, 403) says nothing of state: it is checked here and goes no further.
        """
        header = observed.exchange.request_headers.get("authorization")
        if operation not in self._keyed:
            return True, None
        if header is None or not re.fullmatch(r"Bearer \S+", header):
            rule_id = "AUTH-MISSING-KEY" if header is None else "AUTH-MALFORMED-KEY"
            if observed.exchange.status == 401 and code_of(observed) in ("unauthorized", None):
                self._verdicts.decided(rule_id)
            else:
                self._verdicts.found(
                    rule_id,
                    f"{observed.exchange.summary()} answered without a usable key",
                    "401 unauthorized before anything else",
                    observed,
                )
            return False, None
        if observed.exchange.status in (401, 403):
            return False, None
        return True, digest(header)
