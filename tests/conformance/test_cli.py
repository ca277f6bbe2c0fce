"""craftkit-conformance as implementers use it: exit codes, reports, live mode, pytest plugin."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import craftkit_spec
from conformance.client import Pacer
from conformance.config import PROFILES
from conformance.options import RUN_OPTIONS
from conformance.rules import all_rules
from mock_server import Settings, create_app
from mock_server.testing import serve
from tests.conftest import (
    ACME_KEY,
    GLOBEX_KEY,
    QUEUED_RENDER,
    SEED,
    SUCCEEDED_RENDER,
    all_emails,
    all_shares,
)
from tests.support.variants import (
    VARIANTS,
    ExpiredSharesGone,
    LiveLike,
    PartBLiberties,
    StrictShareBodies,
)


def run_deployment(base_url: str, profile: str, report: Path) -> subprocess.CompletedProcess[str]:
    """``run`` against a deployment-like target, given what an implementer gives it."""
    return conformance(
        "run", "--base-url", base_url,
        "--api-key", ACME_KEY, "--other-api-key", GLOBEX_KEY,
        "--render-id", SUCCEEDED_RENDER, "--not-ready-render-id", QUEUED_RENDER,
        "--template-slug", "invoice", "--template-data", '{"customer": "Conformance"}',
        "--profile", profile, "--report", str(report),
    )  # fmt: skip


def thorough_last(name: str) -> Any:
    """A profile as a test parameter: the thorough one in CI's second pass (``-m thorough``)."""
    return pytest.param(name, marks=pytest.mark.thorough) if name == "thorough" else name


def conformance(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_default_profile_passes_the_mock_and_provokes_every_code(tmp_path: Path) -> None:
    """What CI runs: the default profile against the mock, with both reports written."""
    app = create_app()
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    with serve(app) as base_url:
        result = conformance(
            "run", "--base-url", base_url, "--report", str(report), "--junit-xml", str(junit)
        )
    assert result.returncode == 0, result.stdout[-5000:]
    data = json.loads(report.read_text())
    assert data["passed"] is True
    assert {rule["outcome"] for rule in data["rules"]} == {"passed"}
    assert len(data["rules"]) == len(all_rules())
    declared = set(craftkit_spec.load_resolved()["components"]["schemas"]["ErrorCode"]["enum"])
    assert set(data["codesProvoked"]) == declared
    assert data["codesNotProvoked"] == []
    assert data["codesNotDeclared"] == []
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == str(len(all_rules()))
    assert suite.get("failures") == "0"
    assert all(share.revoked_at is not None for share in all_shares(app)), "shares left active"


def test_a_broken_variant_exits_1_with_a_report_that_reproduces_it(tmp_path: Path) -> None:
    variant = next(v for v in VARIANTS if v.breaks == "SHARE-REVOKE-ONCE")
    report = tmp_path / "report.md"
    with serve(variant.build()) as base_url:
        result = conformance(
            "run",
            "--base-url",
            base_url,
            "--profile",
            "quick",
            "--rule",
            "SHARE-REVOKE-ONCE",
            "--report",
            str(report),
        )
    assert result.returncode == 1
    for text in (result.stdout, report.read_text()):
        assert "SHARE-REVOKE-ONCE" in text
        assert "the second revoke" in text
        assert 'curl -i -X DELETE -H "Authorization: Bearer $CRAFTKIT_API_KEY"' in text
        assert "expected:   HTTP 404" in text or "HTTP 404" in text


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "deleted"])
def test_with_keep_the_reports_curl_line_replays_on_the_mock(tmp_path: Path, keep: bool) -> None:
    """Without ``--keep`` the run's projects are gone, and so is what its curl lines name."""
    variant = next(v for v in VARIANTS if v.breaks == "SHARE-REVOKE-ONCE")
    report = tmp_path / "report.json"
    with serve(variant.build()) as base_url:
        result = conformance(
            "run",
            "--base-url",
            base_url,
            "--profile",
            "quick",
            "--rule",
            "SHARE-REVOKE-ONCE",
            "--report",
            str(report),
            *(["--keep"] if keep else []),
        )
        assert result.returncode == 1
        data = json.loads(report.read_text())
        [failed] = [r for r in data["rules"] if r["outcome"] == "failed"]
        curl = [r["curl"] for r in failed["requests"] if r["curl"].startswith("curl -i -X DELETE")][
            -1
        ]
        found = re.search(r"`\. (\S+/keys\.env)`", data["cleanup"])
        assert (found is not None) == keep, data["cleanup"]
        setup = f". {found.group(1)} && " if found else "CRAFTKIT_API_KEY=gone && "
        if found:
            assert oct(Path(found.group(1)).stat().st_mode & 0o777) == "0o600"
            assert "ck_" not in report.read_text(), "keys stay out of the report"
        replayed = subprocess.run(
            ["bash", "-c", setup + curl], capture_output=True, text=True, check=False
        )
    status = replayed.stdout.splitlines()[0] if replayed.stdout else replayed.stderr
    # The broken variant answers the repeated revoke 200 again; a deleted project's key is 401.
    assert (" 200" in status) if keep else (" 401" in status), status


def test_a_run_writes_nothing_into_the_current_folder(tmp_path: Path) -> None:
    """The state model runs hypothesis in this process: its caches must not land here."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    with serve(create_app()) as base_url:
        result = conformance(
            "run",
            "--base-url",
            base_url,
            "--profile",
            "quick",
            "--rule",
            "STATE-MODEL",
            cwd=checkout,
        )
    assert result.returncode == 0, result.stdout[-3000:]
    assert sorted(path.name for path in checkout.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_setup_problems_exit_2_and_say_what_to_fix() -> None:
    unreachable = conformance("run", "--base-url", f"http://127.0.0.1:{_closed_port()}")
    assert unreachable.returncode == 2
    assert "unreachable" in unreachable.stdout
    with serve(create_app()) as mock_url:
        refused = conformance("run", "--base-url", mock_url, "--api-key", "ck_test_nobody_000000")
    assert refused.returncode == 2
    assert "--api-key" in refused.stdout
    with serve(LiveLike()) as live_url:
        missing = conformance("run", "--base-url", live_url)
    assert missing.returncode == 2
    assert "--api-key is required" in missing.stdout
    bad_rule = conformance("run", "--base-url", "http://127.0.0.1:1", "--rule", "NO-SUCH-RULE")
    assert bad_rule.returncode == 2
    assert "NO-SUCH-RULE" in bad_rule.stdout
    usage = conformance("run")
    assert usage.returncode == 2


@pytest.mark.slow
def test_against_a_deployment_mock_only_rules_skip_with_reasons_and_the_rest_pass(
    tmp_path: Path,
) -> None:
    app = create_app()
    report = tmp_path / "report.json"
    with serve(LiveLike(app)) as base_url:
        result = conformance(
            "run",
            "--base-url", base_url,
            "--api-key", ACME_KEY,
            "--other-api-key", GLOBEX_KEY,
            "--render-id", SUCCEEDED_RENDER,
            "--not-ready-render-id", QUEUED_RENDER,
            "--template-slug", "invoice",
            "--template-data", '{"customer": "Conformance"}',
            "--profile", "quick",
            "--report", str(report),
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:]
    rules = {rule["id"]: rule for rule in json.loads(report.read_text())["rules"]}
    assert rules["EMAIL-CONTENT"]["outcome"] == "skipped"
    assert "control API" in rules["EMAIL-CONTENT"]["reason"]
    for rule_id in (
        "ISOLATION-RENDERS",
        "SHARE-LIST-ORDER",
        "STATE-MODEL",
        "SPEC-FUZZ",
        "EMAIL-SEND",
    ):
        assert rules[rule_id]["outcome"] == "passed", rules[rule_id]
    shares = [s for s in all_shares(app) if s.render_id == SUCCEEDED_RENDER]
    assert shares, "the run made shares on the given render"
    assert all(share.revoked_at is not None for share in shares), (
        "every share the run made is revoked"
    )
    assert all(entry.sent.email.to.endswith("@resend.dev") for entry in all_emails(app))


def test_read_only_creates_nothing_and_says_why_rules_skip(tmp_path: Path) -> None:
    app = create_app()
    report = tmp_path / "report.json"
    with serve(LiveLike(app)) as base_url:
        result = conformance(
            "run", "--base-url", base_url, "--api-key", ACME_KEY, "--render-id", SUCCEEDED_RENDER,
            "--read-only", "--profile", "quick", "--report", str(report),
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:]
    rules = {rule["id"]: rule for rule in json.loads(report.read_text())["rules"]}
    assert rules["SHARE-CREATE"]["outcome"] == "skipped"
    assert "--read-only" in rules["SHARE-CREATE"]["reason"]
    assert rules["DOWNLOAD-PDF"]["outcome"] == "passed"
    assert all_shares(app) == []
    assert all_emails(app) == []


def test_the_rule_catalogue_lists_every_rule_with_its_source() -> None:
    result = conformance("rules")
    assert result.returncode == 0
    for rule in all_rules():
        assert rule.id in result.stdout
    assert len(all_rules()) >= 40
    assert all(rule.statement and rule.source for rule in all_rules())


def _pytest(
    folder: Path, base_url: str, *rules: str, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """An implementer's pytest session with the plugin pointed at ``base_url``."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *extra]
    command += ["--craftkit-base-url", base_url, "--craftkit-profile", "quick"]
    for rule_id in rules:
        command += ["--craftkit-rule", rule_id]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)


def test_the_plugin_and_the_command_line_take_the_same_options(tmp_path: Path) -> None:
    cli = conformance("run", "--help").stdout
    plugin = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], cwd=tmp_path, capture_output=True, text=True
    ).stdout
    for option in RUN_OPTIONS:
        assert f"--{option.name}" in cli
        assert f"--craftkit-{option.name}" in plugin


def test_the_plugin_refuses_bad_template_data_with_exit_code_2(tmp_path: Path) -> None:
    with serve(create_app()) as base_url:
        result = _pytest(tmp_path, base_url, "HEALTH", extra=("--craftkit-template-data={bad",))
    assert result.returncode == 2, result.stdout
    assert "--template-data is not JSON" in result.stdout + result.stderr


def test_pytest_plugin_runs_each_rule_as_a_test(tmp_path: Path) -> None:
    with serve(create_app()) as base_url:
        passing = _pytest(tmp_path, base_url, "SHARE-REVOKE-ONCE", "HEALTH")
    assert passing.returncode == 0, passing.stdout
    for rule_id in ("SHARE-REVOKE-ONCE", "HEALTH"):
        assert f"PASSED ::craftkit::{rule_id}" in passing.stdout
    variant = next(v for v in VARIANTS if v.breaks == "SHARE-REVOKE-ONCE")
    with serve(variant.build()) as base_url:
        failing = _pytest(tmp_path, base_url, "SHARE-REVOKE-ONCE")
    assert failing.returncode == 1
    assert "craftkit::SHARE-REVOKE-ONCE" in failing.stdout
    assert "what broke: the second revoke" in failing.stdout


def test_pacer_spaces_requests_to_the_rate() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])
    unlimited = Pacer(None, clock=lambda: now[0], sleep=sleep)
    unlimited.wait()
    assert len(slept) == 4


@pytest.mark.slow
def test_ctrl_c_mid_run_leaves_no_active_share_and_no_fault_switched() -> None:
    app = create_app(Settings())
    store = app.state.store
    seeded = {project.id for project in SEED.projects}

    def run_projects() -> list[Any]:
        stored = store._engine._projects.values()
        return [p for p in stored if p.project.id not in seeded and not p.project.deleted]

    with serve(app) as base_url:
        run = subprocess.Popen(
            [sys.executable, "-m", "conformance", "run", "--base-url", base_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        )
        # Interrupt once the run is in the middle of things: faults touched, shares active.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            stored = run_projects()
            touched = any(data.faults for data in stored)
            active = any(s.revoked_at is None for data in stored for s in data.shares.values())
            if touched and active:
                break
            time.sleep(0.02)
        assert run.poll() is None, "the run ended before it could be interrupted"
        run.send_signal(signal.SIGINT)
        output = run.communicate(timeout=120)[0]
    assert run.returncode == 130, output[-3000:]
    assert "interrupted after" in output
    assert "Cleanup: deleted" in output
    assert run_projects() == []
    assert store._engine._shared.faults == {}
    assert all(share.revoked_at is not None for share in all_shares(app))


@pytest.mark.slow
@pytest.mark.parametrize("profile", [thorough_last(name) for name in sorted(PROFILES)])
def test_a_deployment_taking_every_part_b_liberty_passes_with_deviations(
    tmp_path: Path, profile: str
) -> None:
    """No false alarm on a deployment that decides every Part B point otherwise, in any profile.

    404 for unknown methods, no email, offsets and unusual addresses refused: the run exits
    0 and names each difference as a deviation or a note. The thorough profile draws the
    rare data (addresses, timestamps, bodies) the smaller ones may never reach.
    """
    report = tmp_path / "report.json"
    with serve(PartBLiberties()) as base_url:
        result = run_deployment(base_url, profile, report)
    assert result.returncode == 0, result.stdout[-6000:]
    rules = {rule["id"]: rule for rule in json.loads(report.read_text())["rules"]}
    assert rules["ROUTING-ERRORS"]["outcome"] == "deviated"
    assert "notes B.10" in rules["ROUTING-ERRORS"]["reason"]
    assert "notes B.8" in rules["SHARE-EXPIRY-OFFSET"]["reason"]
    assert rules["SHARE-EXPIRY-OFFSET"]["outcome"] == "deviated"
    assert rules["SPEC-FUZZ"]["outcome"] == "passed"
    assert rules["STATE-MODEL"]["outcome"] == "passed"
    assert "notes B.11" in rules["STATE-MODEL"]["reason"]
    for rule_id, decision in (
        ("RENDER-IDEMPOTENT", "notes B.15"),
        ("SHARE-BAD-BODY", "notes B.13"),
        ("EMAIL-NOT-READY", "notes B.14"),
        ("UNKNOWN-RENDER-404", "notes B.14"),
        ("ISOLATION-RENDERS", "notes B.14"),
    ):
        assert rules[rule_id]["outcome"] == "deviated", (rule_id, rules[rule_id])
        assert decision in rules[rule_id]["reason"], (rule_id, rules[rule_id]["reason"])
    assert rules["AUTH-FIRST"]["outcome"] == "passed"


SHARE_LIFE_LIBERTIES: dict[str, tuple[type, dict[str, str], str]] = {
    "expired shares unlisted and not revocable": (
        ExpiredSharesGone,
        {"LINK-EXPIRED-404": "notes B.4", "EMAIL-EXPIRY": "notes B.4"},
        "expired shares are left out of the lists (notes B.4)",
    ),
    "unknown keys and past expiries refused": (
        StrictShareBodies,
        {"LINK-EXPIRED-404": "notes B.3", "LINK-NOT-FOUND-UNIFORM": "notes B.3"},
        "a past expiresAt is refused (notes B.3)",
    ),
}
"""Deployments that decide a share's life (notes B.3, B.4) otherwise: reported, never failed."""


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHARE_LIFE_LIBERTIES))
def test_a_deployment_deciding_a_shares_life_otherwise_passes_with_deviations(
    tmp_path: Path, name: str
) -> None:
    """The rules report the decision; the state model follows it, and says so."""
    deployment, deviated, modelled = SHARE_LIFE_LIBERTIES[name]
    report = tmp_path / "report.json"
    with serve(deployment()) as base_url:
        result = run_deployment(base_url, "quick", report)
    assert result.returncode == 0, result.stdout[-6000:]
    rules = {rule["id"]: rule for rule in json.loads(report.read_text())["rules"]}
    for rule_id, decision in deviated.items():
        assert rules[rule_id]["outcome"] == "deviated", (rule_id, rules[rule_id])
        assert decision in rules[rule_id]["reason"], (rule_id, rules[rule_id]["reason"])
    assert rules["STATE-MODEL"]["outcome"] == "passed"
    assert modelled in rules["STATE-MODEL"]["reason"]
    assert rules["SPEC-FUZZ"]["outcome"] == "passed"


def test_rule_ids_stay_whole_in_a_narrow_ci_log() -> None:
    with serve(create_app()) as base_url:
        result = subprocess.run(
            [sys.executable, "-m", "conformance", "run", "--base-url", base_url, "--profile",
             "quick", "--rule", "SHARE-REVOKE-CONCURRENT", "--rule", "LINK-NOT-FOUND-UNIFORM"],
            capture_output=True, text=True, check=False,
            env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "80"},
        )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert "SHARE-REVOKE-CONCURRENT" in result.stdout
    assert "LINK-NOT-FOUND-UNIFORM" in result.stdout
    listing = subprocess.run(
        [sys.executable, "-m", "conformance", "rules"],
        capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "80"},
    )  # fmt: skip
    for rule in all_rules():
        assert rule.id in listing.stdout, rule.id
