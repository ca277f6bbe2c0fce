"""The container images: built as CI builds them, run as partners run them, on loopback.

``scripts/build-image`` builds ``craftkit-mock`` and ``craftkit-conformance`` (with a base
bootstrapped from Debian's packages when no registry answers); each test runs a container
with host networking on a free loopback port and drives it as a partner's suite would: the
Python and Node example suites, Redis by a variable, the suite's own image against the mock's.

These run in a pass of CI's own (``-m container -n 0``, one process): the first build
bootstraps a Debian base, a minute or more. Where no Docker daemon is running or can be
started here, they are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mock_server.testing import RedisServer, free_port

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
TAG = "0.1.0"
DEADLINE_SECONDS = 60.0


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _answers() -> bool:
    return shutil.which("docker") is not None and _docker("info", timeout=30).returncode == 0


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A running Docker daemon: the machine's, or one started here (as root) for the session."""
    if _answers():
        yield
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        pytest.skip(
            "no Docker daemon is running and none can be started here "
            "(needs Debian's docker.io and root; scripts/test installs it as root)"
        )
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with log.open("w") as output:
        daemon = subprocess.Popen([dockerd], stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not _answers():
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"dockerd cannot start here: {log.read_text()[-600:]}")
            time.sleep(0.5)
        yield
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


@pytest.fixture(scope="session")
def images(docker_daemon: None) -> str:
    """Both images built from this checkout by the documented script; the mock's name."""
    built = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image")],
        capture_output=True, text=True, cwd=ROOT, timeout=1800,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return f"craftkit-mock:{TAG}"


class Container:
    """A container of the mock's image with host networking, on a free loopback port."""

    def __init__(self, image: str, **env: str) -> None:
        self.port = free_port()
        settings = {"CRAFTKIT_MOCK_PORT": str(self.port), **env}
        flags = [part for name, value in settings.items() for part in ("-e", f"{name}={value}")]
        started = _docker("run", "-d", "--network", "host", "--health-interval", "1s",
                          *flags, image)  # fmt: skip
        assert started.returncode == 0, started.stderr
        self.id = started.stdout.strip()
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self) -> None:
        """Until Docker's own health check (the image's) says healthy."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            inspected = _docker("inspect", "--format", "{{json .State}}", self.id)
            assert inspected.returncode == 0, f"the container ended: {inspected.stderr}"
            state = json.loads(inspected.stdout)
            if state.get("Health", {}).get("Status") == "healthy":
                return
            logs = _docker("logs", self.id)
            assert state["Running"], logs.stdout[-2000:] + logs.stderr[-2000:]
            assert time.monotonic() < deadline, state
            time.sleep(0.3)

    def stop(self) -> None:
        _docker("rm", "-f", self.id)


@pytest.fixture
def mock_container(images: str) -> Iterator[Container]:
    container = Container(images)
    try:
        container.wait_healthy()
        yield container
    finally:
        container.stop()


def _partner_env(base_url: str) -> dict[str, str]:
    return {**os.environ, "CRAFTKIT_MOCK_URL": base_url, "NO_COLOR": "1"}


def test_the_mock_image_runs_as_no_root_user_on_loopback(mock_container: Container) -> None:
    user = _docker("exec", mock_container.id, "id", "-u")
    assert user.returncode == 0, user.stderr
    assert user.stdout.strip() != "0"
    assert httpx.get(f"{mock_container.url}/health", timeout=10).json() == {"status": "ok"}
    listening = _docker("exec", mock_container.id, "cat", "/proc/net/tcp").stdout
    local = [line.split()[1] for line in listening.splitlines()[1:] if line.split()[3] == "0A"]
    assert f"0100007F:{mock_container.port:04X}" in local  # 127.0.0.1:PORT, nothing wider


def test_the_python_example_suite_passes_against_the_image(mock_container: Container) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
         str(ROOT / "examples" / "python")],
        capture_output=True, text=True, env=_partner_env(mock_container.url), cwd=ROOT,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    assert "failed" not in result.stdout


def test_the_node_example_suite_passes_against_the_image(mock_container: Container) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed (scripts/test installs it)"
    result = subprocess.run(
        [node, "--test", str(ROOT / "examples" / "node")],
        capture_output=True, text=True, env=_partner_env(mock_container.url), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout


def test_the_image_keeps_its_state_on_redis_when_a_variable_says_so(images: str) -> None:
    redis = RedisServer()
    redis.start()
    container = Container(
        images, CRAFTKIT_MOCK_STORE=redis.url, CRAFTKIT_MOCK_WORKERS="2",
        CRAFTKIT_MOCK_TOKEN_SECRET="5c" * 32,
    )  # fmt: skip
    try:
        container.wait_healthy()
        made = httpx.post(f"{container.url}/_mock/projects", json={"name": "on redis"}).json()
        keys = subprocess.run(
            ["redis-cli", "-p", str(redis.port), "--scan"], capture_output=True, text=True,
            check=True, timeout=30,
        ).stdout  # fmt: skip
        assert made["projectId"] in keys
    finally:
        container.stop()
        redis.stop()


def test_the_suite_image_passes_the_mock_image(images: str, mock_container: Container) -> None:
    done = _docker(
        "run", "--rm", "--network", "host", f"craftkit-conformance:{TAG}",
        "run", "--base-url", mock_container.url, "--profile", "quick",
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
