"""The figures the README quotes are the ones a script measured, with the date it did.

The profile timings come from ``bench/conformance_speed.py --write``, which writes them into
BENCHMARKS.md with its date; the README quotes that table, and this test fails when one is
measured again and the other is not.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _measured_profiles() -> tuple[str, dict[str, str]]:
    """The date and each profile's wall seconds, from BENCHMARKS.md's measured table."""
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    block = text.split("<!-- conformance:begin -->", 1)[1].split("<!-- conformance:end -->")[0]
    date = re.search(r"Measured (\d{4}-\d{2}-\d{2})", block)
    assert date is not None, block
    rows = re.findall(r"^\| (\w+) \| [\d,]+ \| ([\d.]+) \|", block, flags=re.M)
    return date.group(1), dict(rows)


def test_the_readme_quotes_the_profile_timings_as_measured() -> None:
    date, walls = _measured_profiles()
    assert {"quick", "default"} <= set(walls)
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    quoted = (
        f"quick took {walls['quick']} s and default {walls['default']} s "
        f"(measured {date} by `bench/conformance_speed.py`"
    )
    assert quoted in readme
