"""Every Python example of the seed documents runs unchanged against a real mock process.

The snippets are read from the seeds themselves; only the base URL is swapped (and seed
002's truncated placeholder id ``0193c2c3`` for a whole render id). The mock runs as a
separate process started the way a partner starts it, ``python -m mock_server``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ACME_KEY, SUCCEEDED_RENDER
from tests.support.seed_tables import shared_dir

SEEDS = shared_dir() / "seeds"
pytestmark = pytest.mark.skipif(
    not SEEDS.is_dir() and not os.environ.get("CI"), reason=f"no seeds at {SEEDS}"
)


def python_snippets() -> list[str]:
    """The seeds' Python examples, in document order."""
    snippets: list[str] = []
    for prefix in ("000_", "002_"):
        (seed,) = SEEDS.glob(f"{prefix}*.txt")
        text = seed.read_text(encoding="utf-8")
        for match in re.finditer(r"^import os, requests$(.*?)Path parameters", text, re.M | re.S):
            snippets.append("import os, requests" + match.group(1))
    return snippets


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(base_url: str, process: subprocess.Popen[str]) -> None:
    """Poll /health until the process answers (it prints its banner first)."""
    with httpx.Client() as client:
        for _ in range(400):
            try:
                if client.get(f"{base_url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                if process.poll() is not None:
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"the mock exited: {output}")
                time.sleep(0.025)
    pytest.fail("the mock did not answer /health within 10 s")


@pytest.fixture(scope="module")
def mock_process() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, process)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_the_seeds_have_five_python_examples() -> None:
    assert len(python_snippets()) == 5


def _run(snippet: str, base_url: str, **variables: Any) -> dict[str, Any]:
    code = snippet.replace("https://api.craftkit.dev", base_url)
    code = code.replace("/v1/renders/0193c2c3/", f"/v1/renders/{SUCCEEDED_RENDER}/")
    namespace: dict[str, Any] = dict(variables)
    exec(compile(code, "<seed example>", "exec"), namespace)  # the seeds' own code
    return namespace


def test_seed_examples_run_unchanged(
    mock_process: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CRAFTKIT_API_KEY", ACME_KEY)
    monkeypatch.chdir(tmp_path)
    httpx.post(f"{mock_process}/_mock/reset")
    create, listing, revoke, email, download = python_snippets()

    share = _run(create, mock_process, render_id=SUCCEEDED_RENDER)["share"]
    assert share["channel"] == "link"
    assert share["expiresAt"] == "2026-12-31T23:59:59.000Z"
    assert share["shareUrl"].startswith(f"{mock_process}/share/cks_")

    shares = _run(listing, mock_process, render_id=SUCCEEDED_RENDER)["shares"]
    assert [row["id"] for row in shares] == [share["id"]]

    sent = _run(email, mock_process, render_id=SUCCEEDED_RENDER)["result"]
    assert sent["emailMessageId"]
    assert sent["shareUrl"].startswith(f"{mock_process}/share/cks_")

    revoked = _run(revoke, mock_process, render_id=SUCCEEDED_RENDER, share_id=share["id"])["result"]
    assert revoked["id"] == share["id"]
    assert revoked["revokedAt"].endswith("Z")

    _run(download, mock_process)
    pdf = (tmp_path / "render.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
