"""How long each conformance profile takes against the local mock, and how many requests it sends.

    python bench/conformance_speed.py [--write]

Starts the mock (``python -m mock_server``) on a free port, runs ``craftkit-conformance run``
with each profile, reads the JSON report, and prints a Markdown table (``--write`` puts it
into BENCHMARKS.md between the conformance markers).
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

MARK_BEGIN = "<!-- conformance:begin -->"
MARK_END = "<!-- conformance:end -->"


def main() -> None:
    """Run each profile against a fresh mock and report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    rows = []
    for profile in ("quick", "default"):
        command = [sys.executable, "-m", "mock_server", "--port", "{port}"]
        with running(command, "/health") as base_url, tempfile.TemporaryDirectory() as folder:
            report = Path(folder) / "report.json"
            start = time.perf_counter()
            suite = [sys.executable, "-m", "conformance", "run", "--base-url", base_url]
            suite += ["--profile", profile, "--report", str(report)]
            subprocess.run(suite, capture_output=True, check=True, cwd=ROOT)
            wall = time.perf_counter() - start
            data = json.loads(report.read_text())
            rules, seconds, requests = len(data["rules"]), data["seconds"], data["requests"]
            rows.append(f"| {profile} | {rules} | {wall:.1f} | {seconds:.1f} | {requests:,} |")
    text = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')}: `craftkit-conformance run --profile P` against "
            "`python -m mock_server` on the same 2-core machine.",
            "",
            "| profile | rules run | wall s (with start-up) | suite s | requests sent |",
            "|---|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(text)
    if args.write:
        write_section(MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
