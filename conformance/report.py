"""The run's report: a table per rule, each failure with its requests and curl lines.

Rendered for the terminal (rich), as JSON or Markdown (``--report``), and as JUnit XML
(``--junit-xml``) for CI systems.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conformance.client import Exchange
from conformance.runner import RuleResult, RunResult

_STYLE = {
    "passed": "green",
    "failed": "bold red",
    "error": "bold red",
    "skipped": "yellow",
    "deviated": "magenta",
}
_SHOWN_EXCHANGES = 30


def _kind(run: RunResult) -> str:
    return "mock" if run.is_mock else "deployment"


def _sequence(result: RuleResult) -> list[Exchange]:
    exchanges = list(result.exchanges)
    if result.culprit is not None and result.culprit in exchanges:
        exchanges = exchanges[: exchanges.index(result.culprit) + 1]
    return exchanges[-_SHOWN_EXCHANGES:]


def _last(result: RuleResult) -> Exchange | None:
    if result.culprit is not None:
        return result.culprit
    return result.exchanges[-1] if result.exchanges else None


def failure_text(result: RuleResult) -> str:
    """A failure as plain text: rule, title, expected, received, requests, curl."""
    lines = [
        f"{result.rule.id}: {result.rule.statement}",
        f"source: {result.rule.source}",
        "",
        f"what broke: {result.title}",
        f"expected:   {result.expected}",
    ]
    last = _last(result)
    if last is not None:
        lines += ["", f"received:   {last.summary()}", last.body_text()]
        for violation in last.violations:
            lines.append(f"  spec: {violation.problem}")
    sequence = _sequence(result)
    if sequence:
        earlier = len(result.exchanges) - len(sequence)
        lines += ["", "requests (in order, the last is the one that showed it):"]
        if earlier > 0 and result.culprit is None:
            lines.append(f"  ({earlier} earlier requests of this rule not shown)")
        lines += [f"  {index}. {exchange.summary()}" for index, exchange in enumerate(sequence, 1)]
        lines += ["", "reproduce (CRAFTKIT_API_KEY set to the run's key):"]
        lines += [f"  {exchange.curl()}" for exchange in sequence]
    if result.evidence:
        lines += ["", result.evidence]
    return "\n".join(lines)


def print_report(run: RunResult, console: Console) -> None:
    """The terminal report."""
    where = f"{_kind(run)}, profile {run.profile}, seed {run.seed}"
    table = Table(title=f"Conformance of {run.base_url} ({where})")
    # Ids and outcomes whole even in an 80-column CI log; the note wraps instead.
    widest = max((len(result.rule.id) for result in run.results), default=4)
    table.add_column("rule", no_wrap=True, min_width=widest)
    table.add_column("result", no_wrap=True, min_width=8)
    table.add_column("s", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold")
    for result in run.results:
        note = result.title or result.reason
        table.add_row(
            result.rule.id,
            f"[{_STYLE[result.outcome]}]{result.outcome}[/]",
            f"{result.seconds:.1f}",
            escape(note[:110]),
        )
    console.print(table)
    for result in run.results:
        if result.outcome in ("failed", "error", "deviated"):
            console.rule(f"[{_STYLE[result.outcome]}]{result.outcome.upper()} {result.rule.id}[/]")
            console.print(escape(failure_text(result)), highlight=False, soft_wrap=True)
    counts = {outcome: sum(r.outcome == outcome for r in run.results) for outcome in _STYLE}
    console.print(
        f"{counts['passed']} passed, {counts['failed'] + counts['error']} failed, "
        f"{counts['skipped']} skipped, {counts['deviated']} deviated "
        f"in {run.seconds:.1f} s, {run.requests} requests"
    )
    console.print(f"Cleanup: {escape(run.cleanup)}")
    if run.undeclared:
        console.print("[bold red]Codes observed that openapi.yaml does not declare:[/]")
        for op, status, code in run.undeclared:
            console.print(f"  {op} {status} {code}")
    if run.unprovoked:
        console.print(f"Declared codes {_unprovoked_by(run)} ({len(run.unprovoked)}):")
        for op, status, code in run.unprovoked:
            console.print(f"  {op} {status} {code}")
    for heading, lines in run.coverage.items():
        console.print(f"Operations {heading} ({len(lines)}):")
        for line in lines:
            console.print(f"  {escape(line)}")


def _unprovoked_by(run: RunResult) -> str:
    """Who did not provoke them: the rules of a run, or the traffic that was read."""
    return "the traffic never showed" if run.profile == "passive" else "no rule provoked"


def as_dict(run: RunResult) -> dict[str, Any]:
    """The run as plain data (the JSON report)."""
    return {
        "baseUrl": run.base_url,
        "target": _kind(run),
        "profile": run.profile,
        "seed": run.seed,
        "passed": run.passed,
        "seconds": round(run.seconds, 2),
        "requests": run.requests,
        "cleanup": run.cleanup,
        "rules": [
            {
                "id": r.rule.id,
                "statement": r.rule.statement,
                "source": r.rule.source,
                "outcome": r.outcome,
                "seconds": round(r.seconds, 3),
                "reason": r.reason,
                "title": r.title,
                "expected": r.expected,
                "evidence": r.evidence,
                "requests": [
                    {
                        "request": e.summary(),
                        "curl": e.curl(),
                        "status": e.status,
                        "body": e.body_text(),
                    }
                    for e in (_sequence(r) if r.failed or r.outcome == "deviated" else [])
                ],
            }
            for r in run.results
        ],
        "codesProvoked": sorted(run.provoked),
        "codesNotProvoked": [list(t) for t in run.unprovoked],
        "codesNotDeclared": [list(t) for t in run.undeclared],
        **({"coverage": run.coverage} if run.coverage else {}),
    }


def as_markdown(run: RunResult) -> str:
    """The run as Markdown."""
    lines = [
        f"# Conformance of {run.base_url}",
        "",
        f"Target: {_kind(run)}; profile {run.profile}; seed {run.seed}; {run.seconds:.1f} s; "
        f"{run.requests} requests; **{'PASSED' if run.passed else 'FAILED'}**.",
        "",
        f"Cleanup: {run.cleanup}",
        "",
        "| rule | result | note |",
        "|---|---|---|",
    ]
    for r in run.results:
        note = (r.title or r.reason).replace("|", "\\|")
        lines.append(f"| `{r.rule.id}` | {r.outcome} | {note} |")
    for r in run.results:
        if r.outcome in ("failed", "error", "deviated"):
            lines += ["", f"## {r.outcome}: {r.rule.id}", "", "```text", failure_text(r), "```"]
    if run.undeclared:
        lines += ["", "## Codes observed but not declared", ""] + [
            f"- {o} {s} `{c}`" for o, s, c in run.undeclared
        ]
    if run.unprovoked:
        lines += ["", f"## Declared codes {_unprovoked_by(run)}", ""] + [
            f"- {o} {s} `{c}`" for o, s, c in run.unprovoked
        ]
    for heading, listed in run.coverage.items():
        lines += ["", f"## Operations {heading}", ""] + [f"- {line}" for line in listed]
    return "\n".join(lines) + "\n"


def write_report(run: RunResult, path: Path) -> None:
    """``--report PATH``: JSON for ``.json``, Markdown otherwise."""
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(as_dict(run), indent=2), encoding="utf-8")
    else:
        path.write_text(as_markdown(run), encoding="utf-8")


def write_junit(run: RunResult, path: Path) -> None:
    """``--junit-xml PATH``: one testcase per rule."""
    suite = ET.Element(
        "testsuite",
        name="craftkit-conformance",
        tests=str(len(run.results)),
        failures=str(sum(r.outcome == "failed" for r in run.results)),
        errors=str(sum(r.outcome == "error" for r in run.results)),
        skipped=str(sum(r.outcome in ("skipped", "deviated") for r in run.results)),
        time=f"{run.seconds:.3f}",
    )
    for r in run.results:
        case = ET.SubElement(
            suite, "testcase", classname="conformance", name=r.rule.id, time=f"{r.seconds:.3f}"
        )
        if r.outcome in ("failed", "error"):
            element = ET.SubElement(
                case, "failure" if r.outcome == "failed" else "error", message=r.title
            )
            element.text = failure_text(r)
        elif r.outcome in ("skipped", "deviated"):
            ET.SubElement(case, "skipped", message=r.reason or r.title)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
