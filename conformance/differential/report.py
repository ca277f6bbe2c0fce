"""A differential run's report: in the terminal, as JSON, as Markdown, and as JUnit XML.

Each divergence is shown once, at its first step: the sequence up to it, both requests and
both answers side by side, the differences in normal form, a curl line for each side, and
who is right according to the source of the behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from rich.console import Console

from conformance.client import Exchange
from conformance.differential.lockstep import DiffResult


def _side(exchange: Exchange) -> dict[str, Any]:
    return {
        "request": f"{exchange.method} {exchange.url}",
        "requestBody": exchange.request_body.decode("utf-8", errors="replace")[:2000],
        "status": exchange.status,
        "responseBody": exchange.body_text(),
        "curl": exchange.curl(),
    }


def as_data(result: DiffResult) -> dict[str, Any]:
    """The report as plain data (the JSON report)."""
    return {
        "target": result.target_url,
        "reference": result.reference_url,
        "profile": result.profile,
        "seed": result.seed,
        "passed": result.passed,
        "sequences": result.sequences,
        "steps": result.steps,
        "requests": result.requests,
        "seconds": round(result.seconds, 1),
        "cleanup": result.cleanup,
        "untested": result.untested,
        "divergences": [
            {
                "title": d.title,
                "step": d.step,
                "sequence": list(d.sequence),
                "kind": "decision" if d.decision else "departure",
                "source": d.source,
                "verdict": d.verdict,
                "differences": [
                    {"where": where, "target": ours, "reference": theirs}
                    for where, ours, theirs in d.differences
                ],
                "target": _side(d.target),
                "reference": _side(d.reference),
                **({"replay": d.replay} if d.replay else {}),
            }
            for d in result.divergences
        ],
    }


def _summary(result: DiffResult) -> str:
    departures = sum(not d.decision for d in result.divergences)
    decisions = len(result.divergences) - departures
    return (
        f"{departures} departure(s) from the contract, {decisions} decision(s) taken otherwise; "
        f"{result.sequences} sequences, {result.steps} steps, {result.requests} requests "
        f"in {result.seconds:.1f} s"
    )


def as_markdown(result: DiffResult) -> str:
    """The report as Markdown."""
    lines = [
        f"# Differential run: {result.target_url} against {result.reference_url}",
        "",
        f"Profile {result.profile}, seed {result.seed}. {_summary(result)}.",
        "",
    ]
    if not result.divergences:
        lines.append("The target answered every step as the reference did.")
    for number, d in enumerate(result.divergences, 1):
        lines += [
            f"## {number}. {d.title}",
            "",
            f"**{'Decision' if d.decision else 'Departure'}**: {d.verdict}.",
            "",
            "Sequence:",
            "",
            *[f"    {line}" for line in d.sequence],
            "",
            "| where | target | reference |",
            "|---|---|---|",
            *[f"| `{w}` | `{a!r}` | `{b!r}` |" for w, a, b in d.differences],
            "",
        ]
        for label, exchange in (("Target", d.target), ("Reference", d.reference)):
            lines += [
                f"{label}: `{exchange.summary()}`",
                "",
                "```",
                exchange.body_text(),
                "```",
                "",
                "```sh",
                exchange.curl(),
                "```",
                "",
            ]
        if d.replay:
            lines += ["Replay (the requests at once):", "", "```sh", d.replay, "```", ""]
    if result.untested:
        lines += ["", "Not compared against this target:", ""]
        lines += [f"- {reason}" for reason in result.untested]
    lines += ["", f"Cleanup: {result.cleanup}"]
    return "\n".join(lines) + "\n"


def write_report(result: DiffResult, path: Path) -> None:
    """A ``.json`` or ``.md`` report (by the file's suffix)."""
    if path.suffix == ".md":
        path.write_text(as_markdown(result), encoding="utf-8")
    else:
        path.write_text(json.dumps(as_data(result), indent=2), encoding="utf-8")


def write_junit(result: DiffResult, path: Path) -> None:
    """One test case per divergence (a failure when it departs from the contract)."""
    suite = ElementTree.Element(
        "testsuite",
        name="craftkit-conformance diff",
        tests=str(max(1, len(result.divergences))),
        failures=str(sum(not d.decision for d in result.divergences)),
        time=f"{result.seconds:.1f}",
    )
    if not result.divergences:
        ElementTree.SubElement(suite, "testcase", classname="diff", name="no divergence")
    for d in result.divergences:
        case = ElementTree.SubElement(suite, "testcase", classname="diff", name=d.title)
        text = "\n".join([*d.sequence, "", d.replay or d.target.curl(), d.reference.curl()])
        if d.decision:
            skipped = ElementTree.SubElement(case, "skipped", message=d.verdict)
            skipped.text = text
        else:
            failure = ElementTree.SubElement(case, "failure", message=d.verdict)
            failure.text = text
    ElementTree.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)


def print_report(result: DiffResult, console: Console) -> None:
    """The terminal report."""
    for d in result.divergences:
        style = "yellow" if d.decision else "bold red"
        console.rule(f"[{style}]{'DECISION' if d.decision else 'DEPARTURE'}[/] {d.title}")
        console.print(d.verdict, highlight=False, soft_wrap=True)
        console.print("\n".join(d.sequence), highlight=False, markup=False, soft_wrap=True)
        # Lines, not a table: a table's cells wrap inside a value, and values are JSON.
        for where, ours, theirs in d.differences:
            console.print(
                f"  {where}: target {ours!r}, reference {theirs!r}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        for label, exchange in (("target", d.target), ("reference", d.reference)):
            console.print(f"[bold]{label}[/]: {exchange.summary()}", highlight=False)
            console.print(exchange.body_text(600), highlight=False, markup=False, soft_wrap=True)
            console.print(exchange.curl(), highlight=False, markup=False, soft_wrap=True)
        if d.replay:
            console.print("[bold]replay, the requests at once[/]:")
            console.print(d.replay, highlight=False, markup=False, soft_wrap=True)
    for reason in result.untested:
        console.print(f"[yellow]not compared[/]: {reason}")
    verdict = "[green]no departure[/]" if result.passed else "[bold red]departures found[/]"
    console.print(f"{verdict}: {_summary(result)}")
    console.print(f"Cleanup: {result.cleanup}", highlight=False)
