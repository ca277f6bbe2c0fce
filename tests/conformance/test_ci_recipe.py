"""The GitHub Actions recipe in examples/ runs, step by step, against the mock: it cannot rot.

``examples/github-actions/conformance.yml`` is what implementers copy. Its steps are run
here as a runner would run them: each ``run`` step in bash with the workflow's, job's and
step's environment, ``${{ secrets.* }}`` filled in, ``if: always()`` honoured, and the two
actions it uses done for real in their local sense (the Python it asks for must be the one
here or newer; the artifact's files must exist when the upload step comes). The toolkit is
installed from a git URL, as the recipe installs it from a tag: this working tree, committed
in a repository of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mock_server import Settings, create_app
from mock_server.testing import serve
from tests.conftest import ACME_KEY, GLOBEX_KEY
from tests.support.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "examples" / "github-actions" / "conformance.yml"
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepOutcome:
    """What one step did: its name, whether it ran, its exit code and output."""

    name: str
    ran: bool
    returncode: int = 0
    output: str = ""


@dataclass
class WorkflowRun:
    """A local run of one job of a workflow file."""

    workspace: Path
    runner_temp: Path
    """The runner's temporary folder (``RUNNER_TEMP``), where the recipe installs the suite."""
    secrets: Mapping[str, str]
    overrides: Mapping[str, str] = field(default_factory=dict)
    steps: list[StepOutcome] = field(default_factory=list)
    succeeded: bool = False

    def expand(self, text: str) -> str:
        """``${{ secrets.NAME }}`` filled in; any other expression is refused."""

        def value(match: re.Match[str]) -> str:
            expression = match.group(1)
            if not expression.startswith("secrets."):
                raise AssertionError(f"the local runner knows no expression {expression!r}")
            return self.secrets[expression.removeprefix("secrets.")]

        return _EXPRESSION.sub(value, text)

    def run_job(self, workflow: Mapping[str, Any], job: str) -> bool:
        """Run the job's steps in order; whether the job succeeded."""
        definition = workflow["jobs"][job]
        temp = self.runner_temp
        temp.mkdir(exist_ok=True)
        summary = self.workspace.parent / "step-summary.md"
        base_env = {
            **os.environ,
            **{k: self.expand(str(v)) for k, v in workflow.get("env", {}).items()},
            **{k: self.expand(str(v)) for k, v in definition.get("env", {}).items()},
            **self.overrides,
            "RUNNER_TEMP": str(temp),
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_STEP_SUMMARY": str(summary),
            "CI": "true",
        }
        failed = False
        for step in definition["steps"]:
            name = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
            condition = step.get("if")
            assert condition in (None, "always()"), f"the local runner knows no if: {condition}"
            if failed and condition != "always()":
                self.steps.append(StepOutcome(name, ran=False))
                continue
            outcome = self._step(step, name, base_env)
            self.steps.append(outcome)
            failed = failed or outcome.returncode != 0
        return not failed

    def _step(self, step: Mapping[str, Any], name: str, env: dict[str, str]) -> StepOutcome:
        if "uses" in step:
            return self._action(step, name)
        step_env = {**env, **{k: self.expand(str(v)) for k, v in step.get("env", {}).items()}}
        step_env.update(self.overrides)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", self.expand(step["run"])],
            cwd=self.workspace, env=step_env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        return StepOutcome(name, True, done.returncode, done.stdout + done.stderr)

    def _action(self, step: Mapping[str, Any], name: str) -> StepOutcome:
        action, _, _version = step["uses"].partition("@")
        inputs = step.get("with", {})
        if action == "actions/setup-python":
            wanted = tuple(int(part) for part in str(inputs["python-version"]).split("."))
            here = sys.version_info[: len(wanted)]
            note = f"Python {'.'.join(map(str, here))} here, {inputs['python-version']} asked"
            return StepOutcome(name, True, 0 if here >= (3, 11) else 1, note)
        if action == "actions/upload-artifact":
            paths = [line.strip() for line in str(inputs["path"]).splitlines() if line.strip()]
            missing = [p for p in paths if not (self.workspace / p).is_file()]
            return StepOutcome(name, True, 1 if missing else 0, f"missing: {missing}")
        raise AssertionError(f"the local runner cannot run {step['uses']}")


def _workflow() -> dict[str, Any]:
    loaded = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    assert loaded.get(True) or loaded.get("on")
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def toolkit(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The toolkit as the recipe installs it, a git URL: this working tree, committed apart.

    The files git would check out (tracked and new ones, not ignored ones) go into a
    repository of their own, so uncommitted work is what gets installed, as in CI's clone.
    """
    repository = tmp_path_factory.mktemp("toolkit")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = repository / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-C", str(repository), "-c", "user.name=ci", "-c", "user.email=ci@localhost"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "toolkit"]):
        subprocess.run([*git, *command], check=True, capture_output=True)
    return f"git+file://{repository}"


def _run(base_url: str, workspace: Path, runner_temp: Path, toolkit: str) -> WorkflowRun:
    workspace.mkdir(parents=True)
    run = WorkflowRun(
        workspace,
        runner_temp,
        secrets={
            "CRAFTKIT_BASE_URL": base_url,
            "CRAFTKIT_API_KEY": ACME_KEY,
            "CRAFTKIT_OTHER_API_KEY": GLOBEX_KEY,
        },
        overrides={"CRAFTKIT_TOOLKIT": toolkit, "CRAFTKIT_CONFORMANCE_PROFILE": "quick"},
    )
    run.succeeded = run.run_job(_workflow(), "conformance")
    return run


@pytest.mark.slow
def test_the_recipe_passes_the_mock_fails_a_broken_deployment_and_uploads_the_reports(
    tmp_path: Path, toolkit: str
) -> None:
    """Two runs of the whole job on one runner, as a repository's runs would go.

    The second finds the first's installed suite in ``RUNNER_TEMP`` (a runner keeps its tool
    folder), so its install step runs as written but builds nothing new.
    """
    runner_temp = tmp_path / "runner-temp"
    with serve(create_app(Settings())) as mock_url:
        run = _run(mock_url, tmp_path / "passing" / "workspace", runner_temp, toolkit)
    outputs = "\n".join(f"## {s.name}\n{s.output[-1500:]}" for s in run.steps)
    assert run.succeeded, outputs
    assert [s.ran for s in run.steps] == [True] * len(run.steps)
    assert "<testsuite" in (run.workspace / "conformance.xml").read_text()
    report = (run.workspace / "conformance.md").read_text()
    summary = (run.workspace.parent / "step-summary.md").read_text()
    assert report.strip()
    assert summary == report

    variant = next(v for v in VARIANTS if v.breaks == "SHARE-REVOKE-ONCE")
    with serve(variant.build()) as broken:
        run = _run(broken, tmp_path / "failing" / "workspace", runner_temp, toolkit)
    assert not run.succeeded
    install, check, summary_step, upload = run.steps[-4:]
    assert install.ran
    assert install.returncode == 0, install.output[-2000:]
    assert check.ran
    assert check.returncode == 1, check.output[-2000:]
    assert summary_step.ran  # if: always()
    assert summary_step.returncode == 0
    assert upload.ran
    assert upload.returncode == 0, upload.output
    assert "SHARE-REVOKE-ONCE" in (run.workspace / "conformance.md").read_text()
