"""How much the conformance suite notices: its kill rate over the mock's generated mutants.

    .venv/bin/python bench/mutation.py --report build/mutation.md          # every mutant
    .venv/bin/python bench/mutation.py --only createShare.201.drop.shareUrl

Each mutant (``tests/support/mutants.py``) is served on loopback and the suite runs against it in
the quick profile; a mutant is killed when any rule fails. The report lists the kill rate
by kind and every survivor, for a sharper rule or an explanation of why the fault cannot be
seen through the public API.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.mutants import Verdict, generate, judge, report


def _judge_by_id(args: tuple[str, tuple[str, ...]]) -> Verdict:
    """Judge one mutant by id (in a worker process: mutants are built there, not pickled)."""
    mutant_id, exclude = args
    mutant = next(m for m in generate() if m.id == mutant_id)
    return judge(mutant, exclude)


def main() -> None:
    """Parse the options, judge the mutants (two at a time) and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="A mutant id (repeatable).")
    parser.add_argument("--report", type=Path, help="Write the Markdown report here.")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--with-fuzz", action="store_true", help="Include SPEC-FUZZ (slower: schemathesis)."
    )
    options = parser.parse_args()
    exclude = () if options.with_fuzz else ("SPEC-FUZZ",)
    ids = options.only or [m.id for m in generate()]
    start = time.perf_counter()
    with ProcessPoolExecutor(options.jobs) as pool:
        verdicts = list(pool.map(_judge_by_id, [(i, exclude) for i in ids]))
    text = report(verdicts, time.perf_counter() - start)
    if options.report:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        options.report.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
