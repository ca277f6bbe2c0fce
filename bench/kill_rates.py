"""``run`` and ``diff`` on the same mutants: what each notices, and why each survivor lives.

    .venv/bin/python bench/kill_rates.py [--jobs 2] [--write] [--kind K ...] [--only ID ...]

Every mutant of ``tests/support/mutants.py`` (the generated ones and the hand-written
variants of ``tests/support/variants.py``, the blind spots of issue #20 among them) is served
on loopback; ``craftkit-conformance run --profile quick`` (SPEC-FUZZ left out for time) and
``craftkit-conformance diff --profile quick`` against a correct mock each judge it. A mutant
is killed by ``run`` when a rule fails and by ``diff`` when it reports a departure. Prints
the kill rates side by side by kind and every mutant a side lets through with the reason
(``--write`` puts the report into BENCHMARKS.md between its markers).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from diff_mutation import compared
from run import write_section

from tests.support.mutants import UNOBSERVABLE, Mutant, generate, judge

DIFF_UNREACHED = {
    "documentEvent.drop-field.metadata": "diff's core reports no event with metadata "
    "(run's WEBHOOK-PARTNER-EVENTS does)",
    "documentEvent.alter-field.metadata": "diff's core reports no event with metadata "
    "(run's WEBHOOK-PARTNER-EVENTS does)",
    "documentEvent.never.document.email_opened": "diff's core opens no mail (the mock's outbox "
    "is its own; run's WEBHOOK-EMAIL-EVENTS opens it)",
    "documentEvent.alter-field.templateId": "diff compares what the two sides' deliveries say "
    "of shares and actors; a render's template is checked by run's WEBHOOK-RENDER-EVENTS",
    "documentEvent.alter-field.sourceIp": "the address each side saw of the client is its own "
    "in diff; run's WEBHOOK-SHARE-EVENTS checks it is an address",
    "documentEvent.alter-field.userAgent": "the user agent each side saw is its own in diff; "
    "run's WEBHOOK-SHARE-EVENTS checks it equals the one it sent",
}
"""Mutants the differential core cannot reach, and where they are caught instead."""

MARK_BEGIN = "<!-- kill-rates:begin -->"
MARK_END = "<!-- kill-rates:end -->"


@dataclass(frozen=True)
class Outcome:
    """What each side made of one mutant."""

    mutant_id: str
    kind: str
    run_failed: tuple[str, ...]
    diff: str
    """``departure``, ``decision:<source>`` (only a legitimate difference) or ``unnoticed``."""


def _diff(mutant: Mutant) -> str:
    result = compared(mutant, "quick")
    if isinstance(result, Exception):
        return f"unnoticed (the run stopped: {result!r})"
    if not result.passed:
        return "departure"
    if result.divergences:
        return "decision:" + ", ".join(sorted({d.source for d in result.divergences}))
    return "unnoticed"


def _judge(mutant_id: str) -> Outcome:
    """Both sides on one mutant, in a worker process (mutants are built there, not pickled)."""
    mutant = next(m for m in generate() if m.id == mutant_id)
    verdict = judge(mutant, exclude=("SPEC-FUZZ",))
    return Outcome(mutant.id, mutant.kind, verdict.killed_by, _diff(mutant))


def _why(outcome: Outcome, side: str) -> str:
    if side == "diff" and outcome.diff.startswith("decision:"):
        return f"reported as a decision taken otherwise ({outcome.diff.removeprefix('decision:')})"
    if side == "diff" and outcome.mutant_id.startswith("renderEvent."):
        return (
            "diff compares document.* deliveries only: when a render ends is each side's own "
            "(run's WEBHOOK-RENDER-EVENTS checks render.* deliveries)"
        )
    if side == "diff" and outcome.mutant_id in DIFF_UNREACHED:
        return DIFF_UNREACHED[outcome.mutant_id]
    return UNOBSERVABLE.get(outcome.mutant_id, "not explained")


def report(outcomes: list[Outcome], seconds: float) -> str:
    """The Markdown section: side by side by kind, then every survivor of each side."""
    kinds = sorted(Counter(o.kind for o in outcomes))
    run_killed = {o.mutant_id for o in outcomes if o.run_failed}
    diff_killed = {o.mutant_id for o in outcomes if o.diff == "departure"}
    total = len(outcomes)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')}: `run --profile quick` (SPEC-FUZZ left out) and "
        f"`diff --profile quick` on the same {total} mutants, {seconds:.0f} s in all. "
        f"`run` killed {len(run_killed)} ({100 * len(run_killed) / total:.1f}%), `diff` "
        f"{len(diff_killed)} ({100 * len(diff_killed) / total:.1f}%), either "
        f"{len(run_killed | diff_killed)}.",
        "",
        "| kind | mutants | run | diff | either | neither |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        ids = {o.mutant_id for o in outcomes if o.kind == kind}
        lines.append(
            f"| {kind} | {len(ids)} | {len(ids & run_killed)} | {len(ids & diff_killed)} | "
            f"{len(ids & (run_killed | diff_killed))} | {len(ids - run_killed - diff_killed)} |"
        )
    for side, killed in (("run", run_killed), ("diff", diff_killed)):
        survivors = [o for o in outcomes if o.mutant_id not in killed]
        lines += ["", f"Survivors of `{side}` ({len(survivors)}):", ""]
        lines += [f"- `{o.mutant_id}`: {_why(o, side)}" for o in survivors] or ["- none"]
    return "\n".join(lines)


def main() -> None:
    """Judge the mutants (``--jobs`` at a time) and print (or write) the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", action="append", default=[], help="A mutant id (repeatable).")
    parser.add_argument(
        "--kind", action="append", default=[], help="Only mutants of this kind (repeatable)."
    )
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    options = parser.parse_args()
    ids = options.only or [m.id for m in generate() if not options.kind or m.kind in options.kind]
    start = time.perf_counter()
    with ProcessPoolExecutor(options.jobs) as pool:
        outcomes = list(pool.map(_judge, ids))
    text = report(outcomes, time.perf_counter() - start)
    print(text)
    if options.write:
        write_section(MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
