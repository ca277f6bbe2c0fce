"""Schemathesis finds nothing wrong with the mock: every check, every phase, stateful included.

Runs the schemathesis CLI (as a user would) over openapi.yaml against a mock served on a free
port, with a fixed seed so CI is reproducible. The example count follows CRAFTKIT_PROFILE.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import craftkit_spec
from conformance.config import DEFAULT_SEED, PROFILES
from conformance.suite.spec import schemathesis_command
from mock_server.testing import serve
from tests.conftest import ACME_KEY, AppFactory

EXAMPLES = {"quick": 10, "default": 30, "thorough": 200}[
    os.environ.get("CRAFTKIT_PROFILE", "default")
]


@pytest.mark.slow
def test_schemathesis_all_checks_all_phases_pass_against_the_mock(
    tmp_path: Path, make_app: AppFactory
) -> None:
    with serve(make_app()) as base_url:
        result = subprocess.run(
            schemathesis_command(
                base_url,
                ACME_KEY,
                phases=PROFILES["default"].schemathesis_phases,
                examples=EXAMPLES,
                seed=DEFAULT_SEED,
            ),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=tmp_path,  # its caches go there, not into the checkout
            env={**os.environ, "NO_COLOR": "1"},
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    operations = len(list(craftkit_spec.iter_operations(craftkit_spec.load_resolved())))
    assert f"{operations} selected / {operations} total" in output
    assert "Stateful" in output
    assert " passed" in output
