"""The console scripts start and answer as documented."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from conformance.cli import main as conformance_main
from mock_server.cli import banner
from mock_server.cli import main as mock_main
from mock_server.seed import default_seed_path, load_seed


def test_conformance_codes_lists_every_operation_and_code() -> None:
    result = CliRunner().invoke(conformance_main, ["codes"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for needle in ("createShare", "not_ready", "emailRender", "email_send_failed", "conflict"):
        assert needle in result.output


def test_mock_banner_names_each_seeded_key_and_render() -> None:
    seed = load_seed(default_seed_path())
    lines = banner(seed, "http://127.0.0.1:4010")
    assert lines[0].startswith("Craftkit mock: http://127.0.0.1:4010")
    for project in seed.projects:
        line = next(line for line in lines if project.api_key in line)
        for render in project.renders:
            assert render.id in line


def test_mock_refuses_a_bad_setting_with_exit_2_naming_it() -> None:
    result = CliRunner().invoke(mock_main, [], env={"SHARE_BASE_URL": "not a url"})
    assert result.exit_code == 2
    assert "SHARE_BASE_URL" in result.output


def test_mock_refuses_a_missing_seed_file_with_exit_2() -> None:
    result = CliRunner().invoke(mock_main, ["--seed", "/nonexistent/seed.yaml"])
    assert result.exit_code == 2
    assert "seed" in result.output


def test_modules_run_with_python_dash_m() -> None:
    for module in ("mock_server", "conformance"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout
