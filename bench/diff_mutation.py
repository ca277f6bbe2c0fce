"""How much differential mode notices: the mock's generated mutants, each against the mock.

    .venv/bin/python bench/diff_mutation.py [--profile quick] [--jobs 2] [--write]

Each mutant of ``tests/support/mutants.py`` (every field of every success answer dropped or
altered, lists reversed, timestamps drifted, documented headers dropped, statuses and error
codes swapped; the hand-written variants are tested one by one in
``tests/conformance/test_differential.py``)
is served on loopback and compared with the correct mock by ``craftkit-conformance diff``.
Each ends one of three ways: a departure from the contract is reported; only a legitimate
difference is (a Part B decision, or a header the spec makes optional), with its source;
or nothing is. Prints the outcomes by kind, the legitimate differences by source, and every
mutant not noticed with the reason it cannot be (``--write`` puts it into BENCHMARKS.md
between the markers).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run import write_section

from conformance.config import PROFILES, RunConfig
from conformance.differential.lockstep import DiffResult
from conformance.differential.machine import run_lockstep
from mock_server import create_app
from mock_server.testing import serve
from tests.support.mutants import UNOBSERVABLE, Mutant, generate

MARK_BEGIN = "<!-- diff-mutation:begin -->"
MARK_END = "<!-- diff-mutation:end -->"


def compared(mutant: Mutant, profile: str) -> DiffResult | Exception:
    """``diff`` of one mutant against a correct mock, or what stopped the run."""
    chosen = PROFILES[profile]
    with serve(mutant.build()) as target, serve(create_app()) as reference:
        try:
            return run_lockstep(
                RunConfig(base_url=target, profile=chosen),
                RunConfig(base_url=reference, profile=chosen),
            )
        except Exception as exc:  # a run the mutant broke is not a finding
            return exc


def outcome(mutant_id: str, profile: str) -> tuple[str, str, str]:
    """Compare one mutant (built in the worker) with a correct mock: (id, kind, outcome:source)."""
    mutant = next(m for m in generate() if m.id == mutant_id)
    result = compared(mutant, profile)
    if isinstance(result, Exception):
        print(f"{mutant.id}: the run stopped: {result!r}", file=sys.stderr)
        return mutant.id, mutant.kind, "unnoticed:"
    if not result.passed:
        return mutant.id, mutant.kind, "departure:"
    if result.divergences:
        return mutant.id, mutant.kind, "legitimate:" + result.divergences[0].source
    return mutant.id, mutant.kind, "unnoticed:"


def _outcome(args: tuple[str, str]) -> tuple[str, str, str]:
    return outcome(*args)


def main() -> None:
    """Every generated mutant; the outcomes by kind, and what was not reported as a departure."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    options = parser.parse_args()
    ids = [m.id for m in generate() if m.kind != "hand-written"]
    start = time.perf_counter()
    with ProcessPoolExecutor(options.jobs) as pool:
        verdicts = list(pool.map(_outcome, [(i, options.profile) for i in ids]))
    table: dict[str, Counter[str]] = defaultdict(Counter)
    legitimate: dict[str, list[str]] = defaultdict(list)
    unnoticed: list[str] = []
    for mutant_id, kind, verdict in verdicts:
        found, _, source = verdict.partition(":")
        table[kind][found] += 1
        if found == "legitimate":
            legitimate[source].append(mutant_id)
        elif found == "unnoticed":
            unnoticed.append(mutant_id)
    totals = Counter[str]()
    for counts in table.values():
        totals.update(counts)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')}: `diff --profile {options.profile}` against each "
        f"generated mutant, {time.perf_counter() - start:.0f} s in all. Departures found: "
        f"{totals['departure']} of {len(verdicts)}; legitimate differences reported: "
        f"{totals['legitimate']}; not noticed: {totals['unnoticed']}.",
        "",
        "| kind | departure | legitimate difference | not noticed | of |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {kind} | {table[kind]['departure']} | {table[kind]['legitimate']} | "
            f"{table[kind]['unnoticed']} | {sum(table[kind].values())} |"
            for kind in sorted(table)
        ],
        "",
        "Reported as legitimate differences, by the source that allows them:",
        "",
        *[
            f"- {source}: " + ", ".join(f"`{i}`" for i in mutant_ids)
            for source, mutant_ids in sorted(legitimate.items())
        ],
        "",
        "Not noticed:" + ("" if unnoticed else " none."),
        "",
        *[f"- `{i}`: {UNOBSERVABLE.get(i, 'not explained')}" for i in unnoticed],
    ]
    text = "\n".join(lines).rstrip()
    print(text)
    if options.write:
        write_section(MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
