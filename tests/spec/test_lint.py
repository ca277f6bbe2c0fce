"""openapi.yaml lints clean with Redocly CLI under redocly.yaml, and the linter has teeth.

Redocly CLI is installed from the npm registry into node_modules by ``npm ci`` (the test
script and CI do that); the rules switched off are justified in redocly.yaml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
REDOCLY = REPO_ROOT / "node_modules" / ".bin" / "redocly"

pytestmark = pytest.mark.lint


def _lint(spec: Path | str) -> subprocess.CompletedProcess[str]:
    if not REDOCLY.exists():
        pytest.fail(f"{REDOCLY} is missing: run `npm ci` in {REPO_ROOT}")
    environment = {
        **os.environ,
        "REDOCLY_TELEMETRY": "off",
        "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
    }
    return subprocess.run(
        [str(REDOCLY), "lint", "--config", str(REPO_ROOT / "redocly.yaml"), str(spec)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("api", ["product", "control"])
def test_spec_lints_clean(api: str) -> None:
    """Both files, each under its entry in redocly.yaml's ``apis``."""
    result = _lint(api)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert {"product": "openapi.yaml", "control": "mock-control.yaml"}[api] in output
    assert "warning" not in output.lower().replace("deprecation warning", ""), output


def test_linter_rejects_an_example_that_breaks_its_schema(tmp_path: Path) -> None:
    """Without this, a silently misconfigured linter would pass anything."""
    spec = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    example = spec["paths"]["/v1/renders/{id}/shares"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["examples"]["one"]["value"]["shares"][0]
    example["clickCount"] = "three"
    broken = tmp_path / "openapi.yaml"
    broken.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    shutil.copy(REPO_ROOT / "redocly.yaml", tmp_path / "redocly.yaml")
    result = _lint(broken)
    assert result.returncode != 0
    assert "no-invalid-media-type-examples" in result.stdout + result.stderr
