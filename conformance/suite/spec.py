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
) -> list[str]:
    """The schemathesis CLI call over openapi.yaml (the suite's, and the mock's own test).

    ``live`` leaves out the operations with outside effects (renders, email).
    """
    command = [sys.executable, "-m", "schemathesis.cli", "run", str(craftkit_spec.spec_path())]
    command += ["--url", base_url, "--checks", "all", "--phases", phases]
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
        _run_schemathesis(ctx)
    finally:
        for render, known in before.items():
            for row in ctx.list_shares(render):
                if row["id"] not in known and row["revokedAt"] is None:
                    ctx.revoke(render, row["id"])


def _run_schemathesis(ctx: Context) -> None:
    result = subprocess.run(
        schemathesis_command(
            ctx.client.base_url,
            ctx.target.key,
            phases=ctx.profile.schemathesis_phases,
            examples=ctx.profile.schemathesis_examples,
            seed=ctx.seed,
            live=not ctx.target.is_mock,
            read_only=ctx.target.config.read_only,
            max_rps=ctx.target.config.max_rps,
        ),
        capture_output=True,
        text=True,
        check=False,
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
