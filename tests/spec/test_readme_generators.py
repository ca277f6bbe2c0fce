"""The README's generator lines run exactly as written, from an empty folder, pinned as CI is.

The block under the README's ``generators`` marker is run with bash in an empty folder,
``CRAFTKIT`` naming this checkout, as a partner would paste it: the Python generator from
PyPI, the TypeScript ones through npx from the npm registry (no node_modules of ours). Its
pins are those the rest of CI uses (package.json, pyproject.toml), so they cannot drift.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- generators:"


def readme_block() -> str:
    """The shell block right under the README's generators marker."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split(MARKER, 1)[1]
    match = re.search(r"```sh\n(.*?)```", after, flags=re.S)
    assert match is not None
    assert after.index("```sh") < after.index("\n\n"), "the block right under the marker"
    return match.group(1)


def test_the_readme_pins_the_generators_ci_uses() -> None:
    block = readme_block()
    node = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    for package in ("openapi-typescript", "typescript", "@hey-api/openapi-ts"):
        assert f"{package}@{node[package]}" in block, package
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = next(r for r in dev["dev"] if r.startswith("openapi-python-client"))
    assert pinned in block  # openapi-python-client==X.Y.Z in both
    for line in (line for line in block.splitlines() if line.startswith("npx ")):
        words = line.split()
        assert "--yes" in words, line
        packages = [words[i + 1] for i, word in enumerate(words) if word == "-p"] or [words[2]]
        assert all(re.fullmatch(r"\S+@\d+(\.\d+)*", package) for package in packages), line


@pytest.mark.slow
def test_the_readme_generator_block_runs_as_written_from_an_empty_folder(tmp_path: Path) -> None:
    if shutil.which("npx") is None:
        pytest.fail("npx is needed (Node.js with npm; scripts/test installs it)")
    env = {**os.environ, "CRAFTKIT": str(ROOT), "npm_config_update_notifier": "false"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_block()],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "warning" not in done.stdout.lower(), done.stdout  # openapi-python-client's own
    assert (tmp_path / "craftkit_client" / "craftkit_client" / "client.py").is_file()
    assert "CreateShareRequest" in (tmp_path / "craftkit.d.ts").read_text()
    assert "CreateShareErrors" in (tmp_path / "craftkit-client" / "types.gen.ts").read_text()
