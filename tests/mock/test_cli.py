"""The console scripts start and answer as documented."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from click.testing import CliRunner

from conformance.cli import main as conformance_main
from mock_server.cli import WORKER_SEED_VARIABLE, banner, worker_app
from mock_server.cli import main as mock_main
from mock_server.seed import default_seed_path, load_seed
from mock_server.settings import is_loopback
from mock_server.testing import MockProcess


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


def test_a_mock_process_that_does_not_start_says_what_it_printed() -> None:
    mock = MockProcess("--seed", "/nonexistent/seed.yaml")
    with pytest.raises(RuntimeError, match="did not start"):
        mock.start()
    assert "seed" in mock.output()
    assert not mock.running


def test_a_mock_process_that_logs_before_its_banner_starts() -> None:
    """At ``--log-level info`` uvicorn's own line comes before the banner.

    Taken for a failed start, it had the helper read on until the running mock closed its
    output: for ever.
    """
    mock = MockProcess("--log-level", "info")
    with mock as url:
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert "Uvicorn running on" in mock.output()


def test_mock_refuses_a_missing_seed_file_with_exit_2() -> None:
    before = dict(os.environ)
    result = CliRunner().invoke(
        mock_main,
        ["--seed", "/nonexistent/seed.yaml", "--store", "redis://127.0.0.1:1/0"],
        env={"CRAFTKIT_MOCK_TOKEN_SECRET": "ab" * 32},
    )
    assert result.exit_code == 2
    assert "seed" in result.output
    # Refused options leave nothing behind for whatever this process starts next (a mock
    # process started later would inherit them).
    assert dict(os.environ) == before


def test_a_worker_that_cannot_load_its_seed_fails_its_start_rather_than_respawning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Uvicorn's supervisor stops on exit code 3 and replaces a worker on any other."""
    monkeypatch.setenv(WORKER_SEED_VARIABLE, "/nonexistent/seed.yaml")
    with pytest.raises(SystemExit) as stopped:
        worker_app()
    assert stopped.value.code == 3


def test_modules_run_with_python_dash_m() -> None:
    for module in ("mock_server", "conformance"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


def test_mock_refuses_to_listen_beyond_loopback_without_the_flag_and_a_token() -> None:
    bare = CliRunner().invoke(mock_main, ["--host", "0.0.0.0"])
    assert bare.exit_code == 2
    assert "--allow-remote" in bare.output
    no_token = CliRunner().invoke(mock_main, ["--host", "0.0.0.0", "--allow-remote"], env={})
    assert no_token.exit_code == 2
    assert "CRAFTKIT_MOCK_CONTROL_TOKEN" in no_token.output


def test_loopback_addresses_are_told_from_the_rest() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "192.0.2.1", "::", "example.com", ""):
        assert not is_loopback(host), host


def _mock_on_port_0() -> subprocess.Popen[str]:
    """``python -m mock_server --port 0``, its banner on stdout."""
    return subprocess.Popen(
        [sys.executable, "-m", "mock_server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_mock_port_0_prints_the_port_it_really_listens_on() -> None:
    with _mock_on_port_0() as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            url = first.split()[2]
            assert not url.endswith(":0"), first
            assert httpx.get(f"{url}/health", timeout=10).json() == {"status": "ok"}
        finally:
            process.terminate()


def test_ctrl_c_stops_the_mock_quietly_with_exit_0() -> None:
    with _mock_on_port_0() as process:
        assert process.stdout is not None
        url = process.stdout.readline().split()[2]
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Aborted" not in output


def test_a_redis_store_given_on_the_command_line_is_named_so_when_it_lacks_a_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CRAFTKIT_MOCK_TOKEN_SECRET"}
    result = CliRunner().invoke(mock_main, ["--store", "redis://127.0.0.1:1/0"], env=env)
    assert result.exit_code == 2
    assert "--store" in result.output
    assert "CRAFTKIT_MOCK_TOKEN_SECRET" in result.output


def test_every_option_may_come_from_its_environment_variable() -> None:
    """A container is configured by variables; each option reads its own."""
    runner = CliRunner()
    remote = runner.invoke(mock_main, [], env={"CRAFTKIT_MOCK_HOST": "0.0.0.0"})
    assert remote.exit_code == 2
    assert "--allow-remote" in remote.output
    allowed = {"CRAFTKIT_MOCK_HOST": "0.0.0.0", "CRAFTKIT_MOCK_ALLOW_REMOTE": "1"}
    no_token = runner.invoke(mock_main, [], env={**allowed, "CRAFTKIT_MOCK_CONTROL_TOKEN": ""})
    assert no_token.exit_code == 2
    assert "CRAFTKIT_MOCK_CONTROL_TOKEN" in no_token.output
    port = runner.invoke(mock_main, [], env={"CRAFTKIT_MOCK_PORT": "70000"})
    assert port.exit_code == 2
    assert "CRAFTKIT_MOCK_PORT" in port.output or "70000" in port.output
    workers = runner.invoke(
        mock_main, [], env={"CRAFTKIT_MOCK_WORKERS": "2", "CRAFTKIT_MOCK_STORE": "memory"}
    )
    assert workers.exit_code == 2
    assert "Redis" in workers.output
    missing = runner.invoke(mock_main, [], env={"CRAFTKIT_MOCK_SEED_FILE": "/nonexistent.yaml"})
    assert missing.exit_code == 2
    assert "/nonexistent.yaml" in missing.output


def test_the_port_variable_is_the_port_the_mock_listens_on() -> None:
    env = {**os.environ, "CRAFTKIT_MOCK_PORT": "0"}
    with subprocess.Popen(
        [sys.executable, "-m", "mock_server"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=env,
    ) as process:  # fmt: skip
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split()[2]
            assert not url.endswith((":4010", ":0")), url
            assert httpx.get(f"{url}/health", timeout=10).json() == {"status": "ok"}
        finally:
            process.terminate()
