"""One mock shared by many: parallel workers, conformance runs and partner suites at once.

Each test starts one mock of its own and points several processes at it, as a partner's
CI would; the claim under test is that nobody sees anybody else's doing.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from mock_server import Settings, create_app
from mock_server.testing import serve
from tests.support.sandbox_worker import run_worker

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 8
ROUNDS = 3


@pytest.fixture
def shared_mock() -> Iterator[str]:
    """A mock with default settings, for this test alone."""
    with serve(create_app(Settings())) as base_url:
        yield base_url


def test_eight_parallel_workers_never_see_each_others_doing(shared_mock: str) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        futures = [pool.submit(run_worker, shared_mock, n, ROUNDS) for n in range(WORKERS)]
        leaks = [leak for future in futures for leak in future.result(timeout=120)]
    assert leaks == []


def _env(base_url: str) -> dict[str, str]:
    return {**os.environ, "CRAFTKIT_MOCK_URL": base_url, "NO_COLOR": "1"}


@pytest.mark.slow
def test_three_conformance_runs_at_once_all_pass(shared_mock: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "conformance", "run", "--base-url", shared_mock]
    runs = [
        subprocess.Popen(
            [*command, "--profile", "quick", "--seed", str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
        for seed in (1, 2, 3)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], "\n\n".join(o[-3000:] for o in outputs)


def _example_tests() -> int:
    """The test functions of the Python example suite (none is parametrized)."""
    folder = ROOT / "examples" / "python"
    trees = [ast.parse(path.read_text()) for path in folder.glob("test_*.py")]
    return sum(
        isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        for tree in trees
        for node in tree.body
    )


def _node_example_tests() -> int:
    """The ``test(...)`` calls of the Node example files."""
    folder = ROOT / "examples" / "node"
    return sum(
        len(re.findall(r"^test\(", path.read_text(), flags=re.MULTILINE))
        for path in folder.glob("*.test.mjs")
    )


@pytest.mark.slow
def test_the_example_partner_suite_passes_with_four_workers_on_one_mock(shared_mock: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "4",
         str(ROOT / "examples" / "python")],
        capture_output=True, text=True, env=_env(shared_mock), cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{_example_tests()} passed" in result.stdout


def test_the_node_example_passes_against_the_shared_mock(shared_mock: str) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed (scripts/test installs it)"
    result = subprocess.run(
        [node, "--test", str(ROOT / "examples" / "node")],
        capture_output=True, text=True, env=_env(shared_mock), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"# pass {_node_example_tests()}" in result.stdout
