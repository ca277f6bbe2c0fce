"""How long ``craftkit-conformance diff`` takes between two local mocks, per profile.

    python bench/diff_speed.py [--profiles quick,default,thorough] [--write]

Starts two mocks (``python -m mock_server``) on free ports, compares one with the other in
each profile, reads the JSON report, and prints a Markdown table (``--write`` puts it into
BENCHMARKS.md between the diff markers). Two instances of the same mock must show no
divergence: the table says how many each run found.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import ROOT, running, write_section

MARK_BEGIN = "<!-- diff:begin -->"
MARK_END = "<!-- diff:end -->"


def main() -> None:
    """Each profile, the mock against a second instance of itself."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", default="quick,default,thorough")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    rows = []
    mock = [sys.executable, "-m", "mock_server", "--port", "{port}"]
    for profile in args.profiles.split(","):
        with (
            running(mock, "/health") as target,
            running(mock, "/health") as reference,
            tempfile.TemporaryDirectory() as folder,
        ):
            report = Path(folder) / "diff.json"
            command = [sys.executable, "-m", "conformance", "diff", "--base-url", target,
                       "--reference-url", reference, "--profile", profile, "--report",
                       str(report)]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
            wall = time.perf_counter() - start
            data = json.loads(report.read_text())
            rows.append(
                f"| {profile} | {data['sequences']} | {data['steps']:,} | {data['requests']:,} "
                f"| {wall:.1f} | {len(data['divergences'])} |"
            )
    text = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')}: `craftkit-conformance diff --profile P` "
            "between two `python -m mock_server` on the same 2-core machine.",
            "",
            "| profile | sequences | steps | requests (both sides) | wall s | divergences |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(text)
    if args.write:
        write_section(MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
