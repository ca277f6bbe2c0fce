"""What importing a part of the toolkit costs: ``python -X importtime``, median of N runs.

    python bench/import_time.py [--runs 15] [module ...]

Each run is a fresh interpreter; the figure is the module's cumulative import time as
``-X importtime`` reports it (its own imports included, the interpreter's start not), beside
the same for the standard library's ``dataclasses`` as a yardstick.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

DEFAULT_MODULES = (
    "dataclasses",
    "mock_server.model",
    "mock_server.model.records",
    "mock_server.model.rules",
    "mock_server.app",
)


def cumulative_us(module: str) -> int:
    """One fresh interpreter's cumulative import time of ``module``, in microseconds."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(done.stderr.splitlines()):
        _, _own, cumulative, name = (part.strip() for part in line.replace(":", "|", 1).split("|"))
        if name == module:
            return int(cumulative)
    raise RuntimeError(f"{module} is not in the importtime output")


def main() -> None:
    """Print a Markdown table: module, median and spread over the runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("modules", nargs="*", default=list(DEFAULT_MODULES))
    args = parser.parse_args()
    print("| module | median import (ms) | min-max (ms) |")
    print("|---|---|---|")
    for module in args.modules:
        times = [cumulative_us(module) / 1000 for _ in range(args.runs)]
        print(
            f"| `{module}` | {statistics.median(times):.1f} | {min(times):.1f}-{max(times):.1f} |"
        )


if __name__ == "__main__":
    main()
