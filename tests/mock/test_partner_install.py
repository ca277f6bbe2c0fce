"""The partner's install is light: the mock's distribution brings no suite, and its plugin is cheap.

pytest loads the mock's fixtures plugin into every session of an environment the mock is
installed in, a partner's own suites included; before the split it also loaded the suite's
plugin and, through the suite's requirements, schemathesis's and hypothesis's, making a
partner's suite 3-5x slower (BENCHMARKS.md, "What installing costs").
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"schemathesis", "hypothesis", "craftkit-conformance", "pypdf", "rich"}

_NEW_MODULES = """
import sys
import pytest
before = set(sys.modules)
import mock_server.testing.pytest_plugin
print("\\n".join(sorted(set(sys.modules) - before)))
"""


def test_the_mock_plugin_imports_nothing_but_itself_until_a_fixture_is_used() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _NEW_MODULES], capture_output=True, text=True, check=True
    )
    loaded = done.stdout.split()
    assert "mock_server.testing.pytest_plugin" in loaded
    assert [name for name in loaded if not name.startswith("mock_server")] == []
    assert "mock_server.testing.sandbox" not in loaded


@pytest.fixture(scope="module")
def mock_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mock's distribution, built from this checkout as a partner's pip builds it."""
    folder = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder),
         str(ROOT)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return next(folder.glob("craftkit_mock-*.whl"))


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if n.endswith(f".dist-info/{name}"))
        return archive.read(member).decode("utf-8")


@pytest.mark.slow
def test_the_mock_wheel_ships_the_mock_alone_and_only_its_own_plugin(mock_wheel: Path) -> None:
    with zipfile.ZipFile(mock_wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    assert tops - {n for n in tops if n.endswith(".dist-info")} == {"craftkit_spec", "mock_server"}
    entry_points = _dist_info(mock_wheel, "entry_points.txt")
    assert "craftkit_mock = mock_server.testing.pytest_plugin" in entry_points
    assert "conformance" not in entry_points
    metadata = Parser().parsestr(_dist_info(mock_wheel, "METADATA"))
    required = {Requirement(line).name for line in metadata.get_all("Requires-Dist") or []}
    assert required & (HEAVY | {"pytest"}) == set()


@pytest.mark.slow
def test_everything_a_partner_install_pulls_in_leaves_the_suite_out(mock_wheel: Path) -> None:
    """The resolution pip itself makes of the wheel, as a fresh environment would install it."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
         "--report", "-", str(mock_wheel)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    report = json.loads(done.stdout)
    names = {item["metadata"]["name"].lower() for item in report["install"]}
    assert "craftkit-mock" in names
    assert "uvicorn" in names  # the closure is really there
    assert names & HEAVY == set()
