"""What installing the toolkit costs: packages, disk, and a partner's own test sessions.

    python bench/install.py [--runs 5] [--workers 4]

Builds both distributions of this checkout as wheels and installs them into fresh virtual
environments beside a bare one, each with pytest, pytest-xdist and httpx (what a partner's
suite needs anyway):

- ``bare``: nothing of ours;
- ``partner``: ``craftkit-mock`` (the mock, its fixtures, the ``Sandbox`` helper);
- ``implementer``: ``craftkit-mock`` and ``craftkit-conformance`` (the suite, schemathesis,
  hypothesis), which is what every install was before the split.

For each it prints the packages installed (beyond pip) and their size on disk, then times
``bench/partner_suite`` (20 tests that use none of our fixtures) in each environment against
one shared mock, ``pytest -n WORKERS`` and ``pytest --collect-only``, median of ``--runs``.
The goal is the partner's suite within 10 % of the bare one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "bench" / "partner_suite"
PARTNER_TOOLS = ["pytest", "pytest-xdist", "httpx"]


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def build_wheels(folder: Path) -> dict[str, Path]:
    """Both distributions of this checkout as wheels in ``folder``, by distribution name."""
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder),
          str(ROOT), str(ROOT / "packaging" / "conformance")])  # fmt: skip
    return {
        "craftkit-mock": next(folder.glob("craftkit_mock-*.whl")),
        "craftkit-conformance": next(folder.glob("craftkit_conformance-*.whl")),
    }


def make_venv(folder: Path, requirements: list[str]) -> Path:
    """A fresh virtual environment with ``requirements``; its Python."""
    _run([sys.executable, "-m", "venv", str(folder)])
    python = folder / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", *requirements])
    return python


def footprint(python: Path) -> tuple[int, float]:
    """Packages installed (pip itself left out) and site-packages' size in MB."""
    listed = json.loads(_run([str(python), "-m", "pip", "list", "--format", "json"]).stdout)
    packages = [p for p in listed if p["name"].lower() not in {"pip", "setuptools"}]
    site = next((python.parent.parent / "lib").glob("python3*/site-packages"))
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and "/pip/" not in str(f))
    return len(packages), size / 1e6


def seconds(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall time of one run of ``command``, which must succeed."""
    started = time.perf_counter()
    _run(command, cwd=cwd, env=env)
    return time.perf_counter() - started


def main() -> None:
    """Print the install table and the timing table as Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="craftkit-install-") as work_dir:
        work = Path(work_dir)
        wheels = build_wheels(work / "wheels")
        installs = {
            "bare": [],
            "partner": [str(wheels["craftkit-mock"])],
            "implementer": [str(wheels["craftkit-mock"]), str(wheels["craftkit-conformance"])],
        }
        pythons = {
            name: make_venv(work / name, [*PARTNER_TOOLS, *extra])
            for name, extra in installs.items()
        }
        print("| install | packages | size (MB) | schemathesis / hypothesis / suite plugin |")
        print("|---|---|---|---|")
        for name, python in pythons.items():
            count, size = footprint(python)
            heavy = _run([str(python), "-c", _HEAVY]).stdout.strip()
            print(f"| {name} | {count} | {size:.0f} | {heavy} |")
        suite = work / "suite"
        shutil.copytree(SUITE, suite)  # outside the checkout: no conftest or config of ours
        mock = subprocess.Popen(
            [str(pythons["partner"].parent / "craftkit-mock"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            base_url = _announced_url(mock)
            env = {**os.environ, "CRAFTKIT_MOCK_URL": base_url, "PYTHONDONTWRITEBYTECODE": "1"}
            print()
            print(f"| install | `pytest -n {args.workers}`, 20 tests (s) | `pytest --co` (s) |")
            print("|---|---|---|")
            figures: dict[str, float] = {}
            for name, python in pythons.items():
                pytest = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                run = [seconds([*pytest, "-n", str(args.workers)], suite, env)
                       for _ in range(args.runs)]  # fmt: skip
                collect = [seconds([*pytest, "--co"], suite, env) for _ in range(args.runs)]
                figures[name] = statistics.median(run)
                print(f"| {name} | {figures[name]:.2f} | {statistics.median(collect):.2f} |")
            ratio = figures["partner"] / figures["bare"]
            print(f"\npartner / bare: {ratio:.2f} (goal: 1.10 or less)")
        finally:
            mock.terminate()
            mock.wait(timeout=10)


_HEAVY = """
import importlib.metadata as m, importlib.util as u
names = {e.name for e in m.entry_points(group="pytest11")}
found = [n for n in ("schemathesis", "hypothesis") if u.find_spec(n)]
found += ["craftkit plugin"] if "craftkit" in names else []
print(", ".join(found) or "none")
"""


def _announced_url(mock: subprocess.Popen[str]) -> str:
    """The base URL ``craftkit-mock --port 0`` prints once it listens."""
    assert mock.stdout is not None
    for line in mock.stdout:
        for word in line.split():
            if word.startswith("http://127.0.0.1:"):
                return word.rstrip("/.,")
    raise RuntimeError("craftkit-mock ended before it announced its URL")


if __name__ == "__main__":
    main()
