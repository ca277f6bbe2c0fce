"""How much differential mode notices: the mock's generated mutants, each against the mock.

    .venv/bin/python bench/diff_mutation.py [--profile quick] [--jobs 2] [--write]

Each mutant of ``tests/mutants.py`` (every field of every success answer dropped or altered,
lists reversed, timestamps drifted, documented headers dropped, statuses and error codes
swapped; the hand-written variants are tested one by one in ``tests/test_differential.py``)
is served on loopback and compared with the correct mock by ``craftkit-conformance diff``.
A mutant is found when a departure from the contract is reported. Prints the rate by kind
and every mutant not found (``--write`` puts it into BENCHMARKS.md between the markers).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run import write_section

from conformance.config import PROFILES, RunConfig
from conformance.differential.lockstep import run_lockstep
from mock_server import create_app
from mock_server.testing import serve
from tests.mutants import generate

MARK_BEGIN = "<!-- diff-mutation:begin -->"
MARK_END = "<!-- diff-mutation:end -->"


def _found(args: tuple[str, str]) -> tuple[str, str, bool]:
    """Compare one mutant (built in the worker) with a correct mock: whether it departs."""
    mutant_id, profile = args
    mutant = next(m for m in generate() if m.id == mutant_id)
    chosen = PROFILES[profile]
    with serve(mutant.build()) as target, serve(create_app()) as reference:
        try:
            result = run_lockstep(
                RunConfig(base_url=target, profile=chosen),
                RunConfig(base_url=reference, profile=chosen),
            )
        except Exception as exc:  # a run the mutant broke is not a finding
            print(f"{mutant.id}: the run stopped: {exc!r}", file=sys.stderr)
            return mutant.id, mutant.kind, False
    return mutant.id, mutant.kind, not result.passed


def main() -> None:
    """Every generated mutant; the rate by kind and the ones not found."""
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
        verdicts = list(pool.map(_found, [(i, options.profile) for i in ids]))
    total, found = Counter[str](), Counter[str]()
    for _, kind, seen in verdicts:
        total[kind] += 1
        found[kind] += seen
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')}: `diff --profile {options.profile}` against each "
        f"generated mutant, {time.perf_counter() - start:.0f} s in all. Found: "
        f"{sum(found.values())} of {sum(total.values())}.",
        "",
        "| kind | found | of |",
        "|---|---:|---:|",
        *[f"| {kind} | {found[kind]} | {total[kind]} |" for kind in sorted(total)],
        "",
        "Not found: " + (", ".join(f"`{i}`" for i, _, seen in verdicts if not seen) or "none"),
    ]
    text = "\n".join(lines)
    print(text)
    if options.write:
        write_section(MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
