"""Differential mode: the mock against itself, its broken variants, and Part B liberties."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from conformance.config import PROFILES, Profile, RunConfig
from conformance.differential.lockstep import DiffResult, run_lockstep
from conformance.differential.normal import Correlator, differences, opposite_order
from mock_server import create_app
from mock_server.testing import serve
from tests.conftest import ACME_KEY, GLOBEX_KEY, SUCCEEDED_RENDER
from tests.variants import VARIANTS, LiveLike, PartBLiberties, _rewritten

QUICK = PROFILES["quick"]
FEW = replace(QUICK, name="few", state_machine_examples=2, state_machine_steps=6)
"""Enough for a variant: the core steps every sequence starts with reach most of them."""


@pytest.fixture(scope="module")
def reference() -> Iterator[str]:
    """One reference mock for the module (each run works in sandbox projects of its own)."""
    with serve(create_app()) as base_url:
        yield base_url


def diff(target: str, reference: str, profile: Profile = FEW, **options: object) -> DiffResult:
    config = RunConfig(base_url=target, profile=profile, **options)  # type: ignore[arg-type]
    return run_lockstep(config, RunConfig(base_url=reference, profile=profile))


def test_the_mock_against_itself_shows_no_divergence(reference: str) -> None:
    """The quick profile here; the default and thorough ones in BENCHMARKS.md."""
    with serve(create_app()) as target:
        result = diff(target, reference, QUICK)
    assert result.divergences == []
    assert result.passed
    assert result.sequences >= QUICK.state_machine_examples
    assert "deleted 2 sandbox project(s)" in result.cleanup


SEEN_BY_DIFF: dict[str, str | tuple[str, ...]] = {
    "second revoke answers 200": "revoke(",
    "list oldest first": "list_shares()",
    "revoked rows left out of the list": ("list_shares()", "open_link("),
    "email shares left out of the list": "list_shares()",
    "revoked link still resolves": "open_link(",
    "expired link still resolves": "open_link(",
    "unfinished render shared (201, not 409)": "create() on a render that has not succeeded",
    "unknown key answers 403": "error_on_purpose('unknown key')",
    "another project's render is readable": "error_on_purpose('another project's render')",
    "views not de-duplicated": ("list_shares()", "engagement()"),
    "views not counted": ("list_shares()", "engagement()"),
    "email makes a link-channel share": ("create(channel='email'", "list_shares()"),
    "idempotency key ignored": "submit_render() again, same key",
    "unknown render crashes (500)": "error_on_purpose('unknown render",
    "2000-character message refused": "create(channel='link', message='mmm",
    "download without Content-Length": "download_render()",
    "download inline, not attachment": "download_render()",
    "download truncated": "download_render()",
    "expiresAt echoed without milliseconds": "create(",
    "errors not in the envelope": ("error_on_purpose(", "an unknown method"),
    "engagement misses a count": "engagement()",
    "revoke answers another revokedAt than the list": "revoke(",
    "a share revoked through any render of its project": "revoke(",
    "a non-JSON body not sent as JSON read as {}": "error_on_purpose('a body that is not JSON')",
    "concurrent revokes both win": "revoke(",
    "failed send drops the share": "list_shares()",
    "mail without the greeting": "the outboxes",
    "409 conflict without the status": "download_render() of a render that has not succeeded",
}
"""Variants the lockstep sequences reach, and the step each must first differ at."""


@pytest.mark.parametrize(
    "variant",
    [v for v in VARIANTS if SEEN_BY_DIFF.get(v.name)],
    ids=lambda v: v.name,
)
def test_a_broken_variant_diverges_at_the_step_where_it_first_differs(
    variant: object, reference: str
) -> None:
    with serve(variant.build()) as target:  # type: ignore[attr-defined]
        result = diff(target, reference)
    departures = [d for d in result.divergences if not d.decision]
    assert departures, f"{variant.name} was not told apart"  # type: ignore[attr-defined]
    first = departures[0]
    expected_step = SEEN_BY_DIFF[variant.name]  # type: ignore[attr-defined]
    assert first.sequence[-1].split(". ", 1)[1].startswith(expected_step), first.sequence
    assert first.step == len(first.sequence)
    assert not result.passed


DECIDED_BY_PART_B = {
    "body validated before the key": "notes B.2",
    "bodies over 1 MiB accepted": "notes B.6",
    "HEAD on a link counts a view": "notes B.12",
    "429 without Retry-After": "notes B.7",
}
"""Variants that take a Part B decision the other way: reported as decisions, exit 0."""


@pytest.mark.parametrize("name", sorted(DECIDED_BY_PART_B))
def test_a_variant_taking_a_part_b_decision_otherwise_is_reported_as_that_decision(
    name: str, reference: str
) -> None:
    variant = next(v for v in VARIANTS if v.name == name)
    with serve(variant.build()) as target:
        result = diff(target, reference)
    assert result.passed, [d.title for d in result.divergences if not d.decision]
    assert [d.source for d in result.divergences] == [DECIDED_BY_PART_B[name]]


def test_a_deployment_taking_every_part_b_liberty_differs_only_by_decisions(
    reference: str,
) -> None:
    with serve(PartBLiberties()) as target:
        result = diff(
            target,
            reference,
            api_key=ACME_KEY,
            other_api_key=GLOBEX_KEY,
            render_id=SUCCEEDED_RENDER,
        )
    assert result.passed, [(d.title, d.source) for d in result.divergences if not d.decision]
    decided = {d.source for d in result.divergences}
    assert decided == {"notes B.8", "notes B.10", "notes B.11"}
    assert all(d.decision for d in result.divergences)


def test_ids_tokens_and_hosts_correlate_and_timestamps_compare_as_relations() -> None:
    ours, theirs = Correlator(), Correlator()
    ours.sent_instant("2030-01-01T00:00:00Z")
    theirs.sent_instant("2030-01-01T00:00:00Z")
    a = ours.normal({
        "id": "0193c2c3-5b1e-7a3c-9f2d-4e8b6a1c0d2f", "shareToken": "cks_AAA",
        "shareUrl": "http://a:1/share/cks_AAA", "expiresAt": "2030-01-01T00:00:00.000Z",
        "createdAt": "2026-01-01T00:00:00.000Z",
    })  # fmt: skip
    b = theirs.normal({
        "id": "0193c2c3-0000-7000-8000-000000000001", "shareToken": "cks_BBB",
        "shareUrl": "https://b/share/cks_BBB", "expiresAt": "2030-01-01T00:00:00.000Z",
        "createdAt": "2026-06-01T00:00:00.000Z",
    })  # fmt: skip
    assert differences(a, b) == []
    assert a["shareUrl"] == "<host>/share/token#1"
    assert a["expiresAt"] == "sent#1"
    # A second timestamp: later on one side, earlier on the other.
    ours.normal({"revokedAt": "2026-01-02T00:00:00.000Z"})
    theirs.normal({"revokedAt": "2026-05-01T00:00:00.000Z"})
    assert opposite_order(ours, theirs, 1) is not None
    # Equal on one side and later on the other is timing, not a difference.
    ours2, theirs2 = Correlator(), Correlator()
    for c, second in ((ours2, "2026-01-01T00:00:00.000Z"), (theirs2, "2026-01-01T00:00:00.001Z")):
        c.normal({"t": "2026-01-01T00:00:00.000Z"})
        c.normal({"t": second})
    assert opposite_order(ours2, theirs2, 1) is None
    # How long a render took, and where its PDF lies, are the deployment's own.
    assert ours.normal({"durationMs": 1500, "downloadUrl": "https://a/v1/renders/x/download"}) == (
        theirs.normal({"durationMs": 3100, "downloadUrl": "https://s3.example/p/x.pdf"})
    )
    # A share the other side does not list is a difference.
    assert differences([{"id": "id#1"}], []) == [("$ (length)", 1, 0)]


def test_the_diff_command_reports_a_departure_with_both_curl_lines_and_exits_1(
    tmp_path: Path, reference: str
) -> None:
    variant = next(v for v in VARIANTS if v.name == "list oldest first")
    report = tmp_path / "diff.json"
    junit = tmp_path / "diff.xml"
    with serve(variant.build()) as target:
        result = subprocess.run(
            [sys.executable, "-m", "conformance", "diff", "--base-url", target,
             "--reference-url", reference, "--profile", "quick", "--report", str(report),
             "--junit-xml", str(junit)],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        )  # fmt: skip
    assert result.returncode == 1, result.stdout[-3000:]
    assert "DEPARTURE" in result.stdout
    data = json.loads(report.read_text())
    [first] = [d for d in data["divergences"] if d["kind"] == "departure"][:1]
    assert first["sequence"][-1].endswith("list_shares()")
    assert first["target"]["curl"].startswith("curl -i -X GET")
    assert first["reference"]["curl"].startswith("curl -i -X GET")
    assert "$CRAFTKIT_API_KEY" in first["target"]["curl"]
    assert "<failure" in junit.read_text()
    markdown = tmp_path / "diff.md"
    clean = subprocess.run(
        [sys.executable, "-m", "conformance", "diff", "--base-url", reference, "--profile",
         "quick", "--report", str(markdown)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert clean.returncode == 0, clean.stdout[-3000:]
    assert "answered every step as the reference did" in markdown.read_text()


def test_the_pytest_plugin_runs_the_comparison_as_one_test(tmp_path: Path, reference: str) -> None:
    def plugin(target: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                   "--craftkit-base-url", target, "--craftkit-profile", "quick",
                   "--craftkit-diff", "--craftkit-reference-url", reference]  # fmt: skip
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    with serve(create_app()) as target:
        same = plugin(target)
    assert same.returncode == 0, same.stdout[-3000:]
    assert "1 passed" in same.stdout
    variant = next(v for v in VARIANTS if v.name == "second revoke answers 200")
    with serve(variant.build()) as target:
        broken = plugin(target)
    assert broken.returncode == 1
    assert "craftkit::DIFF" in broken.stdout
    assert "revoke(" in broken.stdout
    assert "curl -i -X DELETE" in broken.stdout


def test_read_only_compares_without_creating_anything(reference: str) -> None:
    with serve(LiveLike()) as target:
        result = diff(
            target, reference, api_key=ACME_KEY, render_id=SUCCEEDED_RENDER, read_only=True
        )
    assert result.passed, [d.title for d in result.divergences]
    assert result.steps > 0
    assert "revoked 0 of the 0 share(s)" in result.cleanup


def _ascii_messages(
    m: str, p: str, s: int, h: dict[str, str], b: bytes
) -> tuple[int, dict[str, str], bytes]:
    """A server that echoes a created share's message without its non-ASCII characters."""
    if m == "POST" and p.endswith("/shares") and s == 201:
        body = orjson.loads(b)
        if isinstance(body.get("message"), str) and not body["message"].isascii():
            body["message"] = body["message"].encode("ascii", "ignore").decode()
            return s, h, orjson.dumps(body)
    return s, h, b


def test_the_default_profile_shrinks_a_divergence_to_the_shortest_sequence(
    reference: str,
) -> None:
    default = PROFILES["default"]
    with serve(_rewritten(_ascii_messages)()) as target:
        result = diff(target, reference, default)
    [first] = [d for d in result.divergences if not d.decision]
    steps = [line.split(". ", 1)[1] for line in first.sequence]
    # The core steps use ASCII only; the difference needs a drawn create whose message is
    # outside ASCII. Shrunk, the sequence is that one create, with a one-character message.
    assert len(steps) == 1, steps
    assert steps[0].startswith("create(channel="), steps
    message = steps[0].split("message=", 1)[1].split(", expiresIn")[0]
    assert len(ast.literal_eval(message)) == 1, message
