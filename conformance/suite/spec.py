"""Spec-level rules: schemathesis over openapi.yaml, and every response of the run checked.

SPEC-FUZZ runs schemathesis (every operation, positive and negative data, all its checks,
the stateful phase over the spec's links) as its own process. Against a live deployment it
leaves out the operations with outside effects (renders, email) and, with --read-only,
everything but reads. SPEC-RESPONSES looks at every response any rule received.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import craftkit_spec
from conformance.context import Context
from conformance.failures import RuleFailure, expect, fail
from conformance.rules import rule

SPEC_RESPONSES = "SPEC-RESPONSES"


def schemathesis_command(
    base_url: str,
    key: str | None,
    *,
    phases: str,
    examples: int,
    seed: int,
    live: bool = False,
    read_only: bool = False,
    max_rps: float | None = None,
    spec: Path | None = None,
    mode: str = "all",
    exclude_checks: tuple[str, ...] = (),
    suppress_health_checks: tuple[str, ...] = (),
) -> list[str]:
    """The schemathesis CLI call over openapi.yaml (the suite's, and the mock's own test).

    ``live`` leaves out the operations with outside effects (renders, email); ``spec``
    replaces openapi.yaml (the portable view of it, for a deployment).
    """
    command = [sys.executable, "-m", "schemathesis.cli", "run"]
    command += [str(spec or craftkit_spec.spec_path()), "--mode", mode]
    command += ["--url", base_url, "--checks", "all", "--phases", phases]
    if exclude_checks:
        command += ["--exclude-checks", ",".join(exclude_checks)]
    if suppress_health_checks:
        command += ["--suppress-health-check", ",".join(suppress_health_checks)]
    command += ["--max-examples", str(examples), "--seed", str(seed), "--workers", "1"]
    if key is not None:
        command += ["--header", f"Authorization: Bearer {key}"]
    if live:
        command += ["--exclude-operation-id", "renderTemplate"]
        command += ["--exclude-operation-id", "emailRender"]
    if read_only:
        command += ["--include-method", "GET"]
    if max_rps:
        command += ["--rate-limit", f"{max(1, int(max_rps))}/s"]
    return command


@rule(
    "SPEC-FUZZ",
    "Schemathesis finds no departure from openapi.yaml: statuses, schemas, content types, headers, no 5xx, negative data rejected.",
    source="openapi.yaml",
    needs=("key",),
)
def fuzz(ctx: Context) -> None:
    # Schemathesis may reach a real render (an id from the spec's examples, or one a link
    # led it to) and share it: whatever it leaves active there is revoked afterwards.
    renders = [ctx.target.render()] if "render" in ctx.target.capabilities else []
    before = {render: {row["id"] for row in ctx.list_shares(render)} for render in renders}
    failure: RuleFailure | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="craftkit-schemathesis-") as work:
            for command in _fuzz_commands(ctx, Path(work)):
                _run_schemathesis(ctx, command, Path(work))
    except RuleFailure as found:
        failure = found
    finally:
        _revoke_new(ctx, before)
    if failure is not None:
        # The suite's own calls (listing, revoking) are not the failing cases: the findings are.
        ctx.client.transcript.exchanges.clear()
        raise failure


def _revoke_new(ctx: Context, before: dict[str, set[str]]) -> None:
    """Revoke the shares schemathesis left active on the run's render."""
    for render, known in before.items():
        for row in ctx.list_shares(render):
            if row["id"] not in known and row["revokedAt"] is None:
                ctx.revoke(render, row["id"])


DECIDED_CHECKS = ("unsupported_method",)
"""Checks of behaviour a deployment may decide otherwise: 405 for an unknown method (notes
B.10). On a deployment they are left to ROUTING-ERRORS, which reports them as deviations."""


PORTABLE = "x-portable-"


def portable_spec(folder: Path) -> Path:
    """openapi.yaml with every decided constraint narrowed to its portable form.

    A constraint whose form is a decision (offsets and past instants in timestamps, unusual
    email addresses, unknown keys in a body) carries its portable form as ``x-portable-<k>``
    (``x-portable-pattern``, ``x-portable-additionalProperties``): what every conforming
    deployment accepts, put in place of ``<k>``. Positive tests of a deployment draw from
    that, so accepting or refusing the decided extras never fails.
    """

    def narrow(node: Any) -> Any:
        if isinstance(node, dict):
            narrowed = {key: narrow(value) for key, value in node.items()}
            for key, value in node.items():
                if key.startswith(PORTABLE):
                    narrowed[key.removeprefix(PORTABLE)] = value
            return narrowed
        if isinstance(node, list):
            return [narrow(item) for item in node]
        return node

    path = folder / "openapi.portable.yaml"
    portable = yaml.safe_dump(narrow(craftkit_spec.load_raw()), sort_keys=False)
    path.write_text(portable, encoding="utf-8")
    return path


CONSTRAINT_KEYWORDS = frozenset(
    ("maxLength", "minLength", "pattern", "minimum", "maximum", "maxItems", "minItems")
)


def sourced_spec(folder: Path) -> Path:
    """openapi.yaml without the limits that rest on an assumption of ours alone.

    Negative tests of a deployment probe only what a source states: a deployment that takes
    a value our assumptions refuse is not wrong for it.
    """

    def relax(node: Any) -> Any:
        if isinstance(node, dict):
            assumed = node.get("x-source") == ["assumption"]
            return {
                key: relax(value)
                for key, value in node.items()
                if not (assumed and key in CONSTRAINT_KEYWORDS)
            }
        if isinstance(node, list):
            return [relax(item) for item in node]
        return node

    path = folder / "openapi.sourced.yaml"
    relaxed = yaml.safe_dump(relax(craftkit_spec.load_raw()), sort_keys=False)
    path.write_text(relaxed, encoding="utf-8")
    return path


def _fuzz_commands(ctx: Context, work: Path) -> list[list[str]]:
    """The schemathesis runs: one against the mock, two against a deployment.

    Against a deployment: positive tests of the portable spec and negative tests of the
    sourced limits only, the decided checks left to the rules that report them as deviations.
    """
    config = ctx.target.config
    common: dict[str, Any] = {
        "phases": ctx.profile.schemathesis_phases,
        "examples": ctx.profile.schemathesis_examples,
        "seed": ctx.seed,
        "live": not ctx.target.is_mock,
        "read_only": config.read_only,
        "max_rps": config.max_rps,
    }
    if not ctx.target.is_mock:
        # A generator that filters too much is the suite's limit, not the deployment's fault.
        common["suppress_health_checks"] = ("filter_too_much",)
    base, key = ctx.client.base_url, ctx.target.key
    if ctx.target.is_mock:
        return [schemathesis_command(base, key, **common)]
    return [
        schemathesis_command(
            base, key, spec=portable_spec(work), mode="positive",
            exclude_checks=(*DECIDED_CHECKS, "negative_data_rejection"), **common,
        ),
        schemathesis_command(
            base, key, spec=sourced_spec(work), mode="negative",
            exclude_checks=(*DECIDED_CHECKS, "positive_data_acceptance"), **common,
        ),
    ]  # fmt: skip


def _run_schemathesis(ctx: Context, command: list[str], work: Path) -> None:
    # Run in the temporary folder: schemathesis and hypothesis write their caches where
    # they run, and that must not be the implementer's repository.
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=work,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=3600,
    )
    output = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", output)
    ctx.client.external_requests += int(generated.group(1)) if generated else 0
    if result.returncode == 0:
        return
    findings = parse_findings(output)
    if not findings:
        fail(
            "schemathesis could not complete its run",
            "no failure from schemathesis (exit code 0)",
            evidence=output[-8000:],
        )
    checks = sorted({check for finding in findings for check in finding.checks})
    fail(
        f"schemathesis found {len(findings)} departure(s) from the spec: {'; '.join(checks)}",
        "no failure from schemathesis (exit code 0)",
        evidence="\n\n".join(finding.text() for finding in findings)[-12000:],
    )


@dataclass(frozen=True)
class Finding:
    """One failing schemathesis case: where, which checks, what came back, how to replay."""

    operation: str
    checks: tuple[str, ...]
    detail: str
    received: str
    curl: str

    def text(self) -> str:
        """The finding as the report shows it."""
        lines = [f"{self.operation}: {', '.join(self.checks)}"]
        lines += [f"  {line}" for line in (self.detail, self.received) if line]
        if self.curl:
            lines.append(f"  reproduce: {self.curl}")
        return "\n".join(lines)


_OPERATION = re.compile(r"^_{3,} (.+?) _{3,}$", re.MULTILINE)
_CASE = re.compile(r"^\d+\. Test Case ID: \S+$", re.MULTILINE)
_FILTERED = re.compile(r"'([A-Za-z0-9-]+): \[Filtered\]'")


def _received(lines: list[str]) -> str:
    """The answer's status line and its body: the field and reason that make it actionable.

    Schemathesis prints the body indented in backticks after ``[400] Bad Request:``, up to
    ``Reproduce with:``.
    """
    start = next((i for i, line in enumerate(lines) if re.match(r"^\[\d{3}\]", line)), None)
    if start is None:
        return ""
    body: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("Reproduce with") or line.startswith("curl "):
            break
        if line:
            body.append(line.strip("`"))
    return " ".join([lines[start], *body])


def parse_findings(output: str) -> list[Finding]:
    """Every failing case of a schemathesis run's text output, one finding each.

    The curl line it prints hides the key as ``[Filtered]``; the finding's curl takes it
    from ``$CRAFTKIT_API_KEY`` instead, so it runs as printed.
    """
    section = output.split("= FAILURES =", 1)[-1].split("= WARNINGS =", 1)[0]
    section = section.split("= SUMMARY =", 1)[0]
    findings = []
    parts = _OPERATION.split(section)
    for operation, body in zip(parts[1::2], parts[2::2], strict=True):
        for case in _CASE.split(body)[1:]:
            lines = [line.strip() for line in case.splitlines()]
            checks = tuple(line[2:] for line in lines if line.startswith("- "))
            first_check = next((i for i, line in enumerate(lines) if line.startswith("- ")), 0)
            detail = next((line for line in lines[first_check + 1 :] if line), "")
            received = _received(lines)
            curl = next((line for line in lines if line.startswith("curl ")), "")
            curl = curl.replace(
                "'Authorization: [Filtered]'", '"Authorization: Bearer $CRAFTKIT_API_KEY"'
            )
            # Other headers schemathesis hides (an Idempotency-Key) get a value of the same form.
            curl = _FILTERED.sub(r"'\1: replay-\1'", curl)
            findings.append(
                Finding(operation, checks or ("(no check named)",), detail, received, curl)
            )
    return findings


@rule(
    SPEC_RESPONSES,
    "Every response the run received is documented for its operation: status, content type, schema, headers, and an error code that status may carry.",
    source="openapi.yaml",
    needs=(),
)
def every_response(ctx: Context) -> None:
    broken = ctx.client.spec_violations
    if not broken:
        return
    ctx.client.transcript.exchanges[:] = broken[:5]
    lines = [
        f"{exchange.summary()}: {v.problem}" for exchange in broken for v in exchange.violations
    ]
    expect(
        False,
        f"{len(broken)} response(s) break the spec; the first: {lines[0]}",
        "every response as openapi.yaml documents it",
        broken[0],
    )
