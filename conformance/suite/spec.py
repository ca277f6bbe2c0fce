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
from pathlib import Path
from typing import Any

import yaml

import craftkit_spec
from conformance.checks import expect, fail
from conformance.context import Context
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
    try:
        with tempfile.TemporaryDirectory(prefix="craftkit-schemathesis-") as work:
            for command in _fuzz_commands(ctx, Path(work)):
                _run_schemathesis(ctx, command, Path(work))
    finally:
        for render, known in before.items():
            for row in ctx.list_shares(render):
                if row["id"] not in known and row["revokedAt"] is None:
                    ctx.revoke(render, row["id"])


DECIDED_CHECKS = ("unsupported_method",)
"""Checks of behaviour a deployment may decide otherwise: 405 for an unknown method (notes
B.10). On a deployment they are left to ROUTING-ERRORS, which reports them as deviations."""


def portable_spec(folder: Path) -> Path:
    """openapi.yaml with every decided constraint narrowed to its portable form.

    A constraint whose form is a decision (offsets in timestamps, unusual email addresses)
    carries ``x-portable-pattern``: what every conforming deployment accepts. Positive tests
    of a deployment draw from that, so accepting or refusing the decided extras never fails.
    """

    def narrow(node: Any) -> Any:
        if isinstance(node, dict):
            narrowed = {key: narrow(value) for key, value in node.items()}
            if "x-portable-pattern" in node:
                narrowed["pattern"] = node["x-portable-pattern"]
            return narrowed
        if isinstance(node, list):
            return [narrow(item) for item in node]
        return node

    path = folder / "openapi.portable.yaml"
    path.write_text(yaml.safe_dump(narrow(craftkit_spec.load_raw())), encoding="utf-8")
    return path


def _fuzz_commands(ctx: Context, work: Path) -> list[list[str]]:
    """The schemathesis runs: one against the mock, two against a deployment.

    Against a deployment: positive tests of the portable spec and negative tests of the spec
    itself, the decided checks left to the rules that report them as deviations.
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
    base, key = ctx.client.base_url, ctx.target.key
    if ctx.target.is_mock:
        return [schemathesis_command(base, key, **common)]
    return [
        schemathesis_command(
            base, key, spec=portable_spec(work), mode="positive",
            exclude_checks=(*DECIDED_CHECKS, "negative_data_rejection"), **common,
        ),
        schemathesis_command(
            base, key, mode="negative",
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
    failures = (
        output.split("= FAILURES =", 1)[-1].split("= WARNINGS =", 1)[0].split("= SUMMARY =", 1)[0]
    )
    first = next(
        (line.strip() for line in failures.splitlines() if line.strip().startswith("- ")),
        "see the evidence",
    )
    fail(
        f"schemathesis found a departure from the spec: {first.lstrip('- ')}",
        "no failure from schemathesis (exit code 0)",
        evidence=failures.strip("= \n")[-8000:] or output[-8000:],
    )


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
