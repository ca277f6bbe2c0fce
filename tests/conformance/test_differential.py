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

import httpx
import orjson
import pytest

from conformance.config import PROFILES, Profile, RunConfig
from conformance.differential.lockstep import DiffResult
from conformance.differential.machine import run_lockstep
from conformance.differential.normal import (
    Correlator,
    changed_instant,
    differences,
    opposite_order,
)
from conformance.differential.report import as_data
from conformance.differential.verdict import Difference, judge
from mock_server import create_app
from mock_server.testing import serve
from tests.conftest import ACME_KEY, GLOBEX_KEY, SUCCEEDED_RENDER
from tests.support.mutants import generate
from tests.support.variants import (
    VARIANTS,
    ExpiredSharesGone,
    LiveLike,
    PartBLiberties,
    StrictShareBodies,
    _expired_shares_are_gone,
    _patched,
    _Rewriter,
    _rewritten,
    more_fields,
)

QUICK = PROFILES["quick"]
FEW = replace(QUICK, name="few", state_machine_examples=2, state_machine_steps=6)
"""Enough for a variant: the core steps every sequence starts with reach most of them."""


@pytest.fixture(scope="module")
def reference() -> Iterator[str]:
    """One reference mock for the module (each run works in projects of its own)."""
    with serve(create_app()) as base_url:
        yield base_url


def diff(target: str, reference: str, profile: Profile = FEW, **options: object) -> DiffResult:
    config = RunConfig(base_url=target, profile=profile, **options)  # type: ignore[arg-type]
    return run_lockstep(config, RunConfig(base_url=reference, profile=profile))


def diff_deployment(target: str, reference: str, profile: Profile = FEW) -> DiffResult:
    """``diff`` of a deployment-like target, given what an implementer gives: keys, a render."""
    return diff(
        target,
        reference,
        profile,
        api_key=ACME_KEY,
        other_api_key=GLOBEX_KEY,
        render_id=SUCCEEDED_RENDER,
        template_slug="invoice",
    )


def test_the_mock_against_itself_shows_no_divergence(reference: str) -> None:
    """The quick profile here; the default and thorough ones in BENCHMARKS.md."""
    with serve(create_app()) as target:
        result = diff(target, reference, QUICK)
    assert result.divergences == []
    assert result.passed
    assert result.sequences >= QUICK.state_machine_examples
    assert "deleted 2 project(s)" in result.cleanup


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
    "download truncated": "follow downloadUrl of",
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
    "body validated before the key": "a body that is not JSON, sent without a key",
    "views de-duplicated whatever the address": "list_shares()",
    "a render's list holds the whole project's shares": "list_shares() of another render",
    "an emailed share drops its expiresAt": "list_shares()",
    "the message limit counted in UTF-8 bytes": "create(channel='link', message='\u00e9",
    "Idempotency-Key looked up across projects": (
        "submit_render() with the same key from another project"
    ),
    "expiresAt taken in any form": 'error_on_purpose("an expiresAt that is no ISO 8601',
    "Content-Disposition names another file": "download_render()",
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


def test_a_race_is_reported_as_the_requests_sent_at_once_with_a_script_replaying_them(
    reference: str,
) -> None:
    variant = next(v for v in VARIANTS if v.name == "concurrent revokes both win")
    with serve(variant.build()) as target:
        result = diff(target, reference)
    race = next(d for d in result.divergences if "at once" in d.title)
    assert not race.decision
    assert "2 of 2 succeeded (the reference: 1)" in race.title
    assert race.target.status == 200
    assert race.reference.status == 404
    # The answers as the servers gave them, not a body made up for the report.
    assert "winners" not in race.target.body_text()
    assert race.target.json()["id"]
    script = race.replay.splitlines()
    assert script[0] == "#!/bin/sh"
    assert script[-1] == "wait"
    assert [
        line.startswith("curl -i -X DELETE ") and line.endswith(" &") for line in script[2:-1]
    ] == [True, True]
    assert "replay" in as_data(result)["divergences"][result.divergences.index(race)]


DECIDED_BY_PART_B: dict[str, set[str]] = {
    "bodies over 1 MiB accepted": {"notes B.6"},
    "HEAD on a link counts a view": {"notes B.12"},
    # It drops the header everywhere: on a 503 the spec makes it optional.
    "429 without Retry-After": {"notes B.7", "the spec makes Retry-After optional"},
}
"""Variants that take a Part B decision the other way: reported as decisions, exit 0."""


MISSED_DELIVERIES = {
    "no webhook for a revoke": "revoke(",
    "no webhook for an email sent": "email(",
    "webhooks signed with another key": None,
    "webhooks without x-craftkit-timestamp": None,
}
"""Webhook variants the deliveries after the core tell apart, and the step each is traced to
(``None``: every delivery departs from the contract, whatever caused it)."""


@pytest.mark.parametrize("name", sorted(MISSED_DELIVERIES))
def test_a_variant_sending_other_deliveries_departs_after_the_core(
    name: str, reference: str
) -> None:
    variant = next(v for v in VARIANTS if v.name == name)
    with serve(variant.build()) as target:
        result = diff(target, reference, webhook_wait=5.0)
    departures = [d for d in result.divergences if not d.decision]
    assert [d.title for d in departures], f"{name} was not told apart"
    webhooks = [d for d in departures if d.title.startswith("webhooks")]
    assert webhooks, [d.title for d in departures]
    first = webhooks[0]
    assert first.source == "notes A (outgoing webhooks)"
    assert first.sequence[-1].startswith("(then the deliveries"), first.sequence
    cause = MISSED_DELIVERIES[name]
    if cause is None:
        assert "departs from the contract" in first.title
        assert first.target.method == "POST"
        assert first.target.request_body
    else:
        assert cause in first.title, first.title
    assert not result.passed


@pytest.mark.parametrize("name", sorted(DECIDED_BY_PART_B))
def test_a_variant_taking_a_part_b_decision_otherwise_is_reported_as_that_decision(
    name: str, reference: str
) -> None:
    variant = next(v for v in VARIANTS if v.name == name)
    with serve(variant.build()) as target:
        result = diff(target, reference)
    assert result.passed, [d.title for d in result.divergences if not d.decision]
    # Each once, however many steps show it; the run went on past them.
    assert sorted(d.source for d in result.divergences) == sorted(DECIDED_BY_PART_B[name])


@pytest.mark.slow
@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(p, marks=pytest.mark.thorough) if p.name == "thorough" else p
        for p in (FEW, *PROFILES.values())
    ],
    ids=lambda p: p.name,
)
def test_a_deployment_taking_every_part_b_liberty_differs_only_by_decisions(
    reference: str, profile: Profile
) -> None:
    """No false alarm in any profile: every difference is a decision, each named once."""
    with serve(PartBLiberties()) as target:
        result = diff_deployment(target, reference, profile)
    assert result.passed, [(d.title, d.source) for d in result.divergences if not d.decision]
    decided = {d.source for d in result.divergences}
    assert decided == {
        "notes B.8",
        "notes B.10",
        "notes B.11",
        "notes B.13",
        "notes B.14",
        "notes B.15",
    }
    assert all(d.decision for d in result.divergences)


@pytest.mark.parametrize("deployment", [ExpiredSharesGone, StrictShareBodies])
def test_a_deployment_deciding_a_shares_life_otherwise_passes_and_says_what_was_not_compared(
    reference: str, deployment: type
) -> None:
    """Past expiries refused (notes B.3) or expired rows unlisted (B.4): never a departure."""
    with serve(deployment()) as target:
        result = diff_deployment(target, reference)
    assert result.passed, [(d.title, d.source) for d in result.divergences if not d.decision]
    assert any("expired already" in reason for reason in result.untested), result.untested


def test_two_mocks_compare_shares_that_expired_already(reference: str) -> None:
    """Between two mocks the past expiries are compared: a mock dropping expired rows departs."""
    with serve(_patched(_expired_shares_are_gone)()) as target:
        result = diff(target, reference)
    assert not result.passed
    assert not any("expired already" in reason for reason in result.untested)


MUTANT_SAMPLE: dict[str, tuple[str, str]] = {
    # Once a crash of the lockstep (an answer without an id) or never compared (events).
    "createShare.201.drop.id": ("departure", "a share whose expiresAt has a UTC offset"),
    "renderTemplate.200.drop.id": ("departure", "submit_render() again, same key"),
    "recordRenderEvent.200.alter.recorded": ("departure", "record_event("),
    "createShare.201.drift.createdAt": ("departure", "list_shares()"),
    "getRender.403.swap-code.invalid_json": (
        "departure",
        "GET /v1/renders/{id} with a deleted project's key",
    ),
    "downloadSharedPdf.200.drop-header.Content-Length": ("departure", "open_link("),
    "getRender.200.alter.downloadUrl": ("departure", "follow downloadUrl of get_render()"),
    "recordRenderEvent.413.swap-code.invalid_json": (
        "departure",
        "record_event() with a body over 1 MiB",
    ),
    "listShares.429.drop-header.Retry-After": (
        "notes B.7",
        "GET /v1/renders/{id}/shares over one request a minute",
    ),
}
"""Generated mutants, one per way the lockstep reaches them (``bench/diff_mutation.py`` runs
all): the first report's kind (a departure, or the source that makes it legitimate) and step."""


@pytest.mark.parametrize("mutant_id", sorted(MUTANT_SAMPLE))
def test_a_generated_mutant_is_reported_at_its_first_step_as_its_source_decides(
    mutant_id: str, reference: str
) -> None:
    mutant = next(m for m in generate() if m.id == mutant_id)
    with serve(mutant.build()) as target:
        result = diff(target, reference)
    kind, step = MUTANT_SAMPLE[mutant_id]
    [first] = result.divergences[:1]
    assert first.sequence[-1].split(". ", 1)[1].startswith(step), first.sequence
    if kind == "departure":
        assert not first.decision, first.verdict
        assert not result.passed
    else:
        assert result.passed
        assert [d.source for d in result.divergences] == [kind]


def test_a_deployments_failed_render_is_matched_by_a_failed_one_on_the_reference(
    reference: str,
) -> None:
    """A 409's message names the status: the reference's not-ready render is made alike."""
    backdoor = {"X-Test-Backdoor": "set-up"}
    with (
        serve(LiveLike(backdoor="set-up")) as target,
        httpx.Client(base_url=f"{target}/_mock", headers=backdoor) as control,
    ):
        project = control.post("/projects", json={"name": "a deployment"}).json()
        renders = f"/projects/{project['projectId']}/renders"
        made = {
            status: control.post(renders, json={"status": status, "data": {}}).json()["id"]
            for status in ("succeeded", "failed")
        }
        result = diff(
            target,
            reference,
            api_key=project["apiKey"],
            render_id=made["succeeded"],
            not_ready_render_id=made["failed"],
        )
        journal = control.get(f"/projects/{project['projectId']}/requests").json()
    assert result.divergences == [], [(d.title, d.differences) for d in result.divergences]
    paths = {entry["path"] for entry in journal["requests"]}
    assert f"/v1/renders/{made['failed']}/shares" in paths  # the 409 steps ran on it


def test_fields_only_the_target_sends_are_its_own_and_hide_nothing_else(reference: str) -> None:
    """No schema of the contract is closed: a deployment may send more, ids and times too."""
    with serve(_rewritten(more_fields)()) as target:
        result = diff(target, reference)
    assert result.passed, [(d.title, d.differences) for d in result.divergences if not d.decision]
    assert {d.source for d in result.divergences} == {
        "the spec closes no object: a deployment may send fields besides its own"
    }
    # What it sends besides hides nothing: with a departure too, the departure is found.
    broken = next(v for v in VARIANTS if v.name == "list oldest first")
    with serve(_Rewriter(broken.build(), more_fields)) as target:
        departed = diff(target, reference)
    assert not departed.passed


def test_who_is_right_turns_on_the_header_or_the_code_that_differs() -> None:
    shares, get = "/v1/renders/{id}/shares", "get"
    # A header with a source of its own: the PDF's length (a seed), a 429's wait (Part B).
    pdf = Difference("h", [], header="Content-Length")
    assert judge("/share/{token}/download", get, 200, 200, pdf) == ("seed 002", False)
    wait = Difference("h", [], header="Retry-After")
    assert judge(shares, get, 429, 429, wait) == ("notes B.7", True)
    # An optional one without a source: absent is allowed.
    assert judge("/v1/templates/{slug}/render", "post", 503, 503, wait)[1] is True
    # A code the API gives another meaning departs, whatever decided the status ...
    foreign = Difference("c", [], code="invalid_json")
    source, decided = judge("/share/{token}", get, 404, 404, foreign)
    assert not decided
    assert "invalid_json" in source
    # ... while a code of the deployment's own under a Part B answer is its decision.
    own = Difference("c", [], code="too_many_requests")
    assert judge(shares, get, 429, 429, own) == ("notes B.7", True)


def test_a_things_timestamp_must_stay_as_it_was_where_the_other_side_keeps_it() -> None:
    created = {
        "id": "0193c2c3-5b1e-7a3c-9f2d-4e8b6a1c0d2f",
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    drifted = {**created, "createdAt": "2026-01-01T00:00:00.001Z"}
    ours, theirs = Correlator(), Correlator()
    ours.normal(created, "create")
    theirs.normal(created, "create")
    ours.normal({"shares": [drifted]}, "list")
    theirs.normal({"shares": [created]}, "list")
    assert changed_instant(ours, theirs, 1) == ("create.createdAt", "list.shares[0].createdAt")
    # Another thing's timestamp may differ as it likes; so may one both sides change.
    other = {"id": "0193c2c3-0000-7000-8000-000000000001", "createdAt": "2026-01-01T00:00:00.009Z"}
    a, b = Correlator(), Correlator()
    for side in (a, b):
        side.normal(created, "create")
        side.normal(other, "create")
    assert changed_instant(a, b, 1) is None


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
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
                   "--craftkit-base-url", target, "--craftkit-profile", "quick",
                   "--craftkit-diff", "--craftkit-reference-url", reference]  # fmt: skip
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    with serve(create_app()) as target:
        same = plugin(target)
    assert same.returncode == 0, same.stdout[-3000:]
    assert "PASSED ::craftkit::DIFF" in same.stdout
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
    """A server that echoes a short message without its non-ASCII characters.

    (The core steps' one non-ASCII message is 2000 characters long: only the drawn
    sequences' short messages find this.)
    """
    if m == "POST" and p.endswith("/shares") and s == 201:
        body = orjson.loads(b)
        message = body.get("message")
        if isinstance(message, str) and len(message) <= 100 and not message.isascii():
            body["message"] = message.encode("ascii", "ignore").decode()
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
    # The difference needs a drawn create whose short message is outside ASCII. Shrunk, the
    # sequence is that one create, with a one-character message.
    assert len(steps) == 1, steps
    assert steps[0].startswith("create(channel="), steps
    message = steps[0].split("message=", 1)[1].split(", expiresIn")[0]
    assert len(ast.literal_eval(message)) == 1, message
