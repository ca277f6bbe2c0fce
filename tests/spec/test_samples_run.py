"""Every code sample in openapi.yaml (curl, Node.js, Python) runs against the mock unchanged.

Only the base URLs are swapped for the mock's; the samples' variables (``$RENDER_ID``,
``renderId``, ``render_id``, ``shareUrl`` ...) are set to a fresh succeeded render and an active
share, so each sample meets the state it was written for. A sample that errors, or a request
it makes that fails (``curl --fail``, ``raise_for_status``, ``res.ok``), fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import craftkit_spec
from tests.conftest import ACME_KEY, Api

SPEC = craftkit_spec.load_resolved()
OPERATIONS = list(craftkit_spec.iter_operations(SPEC))
HOSTS = ("https://api.craftkit.dev", "https://www.craftkit.dev")


def _swap(source: str, base_url: str) -> str:
    for host in HOSTS:
        source = source.replace(host, base_url)
    return source


def _state(api: Api) -> dict[str, str]:
    render = api.new_render()
    share = api.create_share(render)
    return {
        "render": render,
        "share": share["id"],
        "token": share["shareToken"],
        "url": share["shareUrl"],
    }


def _ids(operation: craftkit_spec.Operation) -> str:
    return operation.operation_id


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_curl_sample_runs(operation: craftkit_spec.Operation, api: Api, tmp_path: Path) -> None:
    state = _state(api)
    source = _swap(
        operation.definition["x-codeSamples"][0]["source"], str(api.http.base_url).rstrip("/")
    )
    environment = {
        **os.environ,
        "CRAFTKIT_API_KEY": ACME_KEY,
        "RENDER_ID": state["render"],
        "SHARE_ID": state["share"],
        "SHARE_TOKEN": state["token"],
    }
    checked = "curl --silent --show-error " + ("" if "--fail" in source else "--fail-with-body ")
    script = "set -e\n" + source.replace("curl ", checked, 1)
    result = subprocess.run(
        ["bash", "-c", script],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_node_sample_runs(operation: craftkit_spec.Operation, api: Api, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed to run the Node.js samples"
    state = _state(api)
    source = _swap(
        operation.definition["x-codeSamples"][1]["source"], str(api.http.base_url).rstrip("/")
    )
    imports = "\n".join(line for line in source.splitlines() if line.startswith("import "))
    body = "\n".join(line for line in source.splitlines() if not line.startswith("import "))
    script = tmp_path / "sample.mjs"
    script.write_text(
        f"{imports}\n"
        f"const renderId = {state['render']!r};\n"
        f"const shareId = {state['share']!r};\n"
        f"const shareUrl = {state['url']!r};\n"
        "const realFetch = globalThis.fetch;\n"
        "globalThis.fetch = async (...args) => {\n"
        "  const res = await realFetch(...args);\n"
        "  if (!res.ok) throw new Error(`${res.status} ${await res.clone().text()}`);\n"
        "  return res;\n"
        "};\n"
        f"{{\n{body}\n}}\n",  # a block, so the sample may declare the names set above
        encoding="utf-8",
    )
    result = subprocess.run(
        [node, str(script)],
        env={**os.environ, "CRAFTKIT_API_KEY": ACME_KEY},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_python_sample_runs(operation: craftkit_spec.Operation, api: Api, tmp_path: Path) -> None:
    state = _state(api)
    source = _swap(
        operation.definition["x-codeSamples"][2]["source"], str(api.http.base_url).rstrip("/")
    )
    prelude = (
        "import requests\n"
        "_send = requests.Session.send\n"
        "def _checked(self, request, **kwargs):\n"
        "    response = _send(self, request, **kwargs)\n"
        "    response.raise_for_status()\n"
        "    return response\n"
        "requests.Session.send = _checked\n"
        f"render_id = {state['render']!r}\n"
        f"share_id = {state['share']!r}\n"
        f"share_url = {state['url']!r}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + source],
        env={**os.environ, "CRAFTKIT_API_KEY": ACME_KEY},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
