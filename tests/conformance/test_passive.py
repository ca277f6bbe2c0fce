"""Passive checking: traffic through the proxy, or recorded, judged by the contract's rules.

A partner's calls through ``CheckingProxy`` in front of the mock show no finding and decide
the rules they touch; in front of a broken variant the variant's rule is reported with the
exchanges that show it. The mock's HAR export, a real mitmproxy's HAR and NDJSON read back
the same way; what traffic cannot decide is never a pass.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from conformance.client import Exchange
from conformance.passive.checker import DECIDES, PassiveChecker
from conformance.passive.proxy import CheckingProxy
from conformance.passive.traffic import Observed, TrafficError, read_traffic
from conformance.runner import RunResult
from mock_server import Settings, create_app
from mock_server.testing import Sandbox, free_port, serve
from tests.support.partner_traffic import partner_traffic
from tests.support.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[2]

# The variant, and the rule passive checking reports it under when that is not the one
# `run` names: a list that leaves revoked rows out misses shares seen made; an answer whose
# shape departs fails the spec check before any rule looks at it.
PASSIVE_RULE = {
    "second revoke answers 200": "SHARE-REVOKE-ONCE",
    "list oldest first": "SHARE-LIST-ORDER",
    "revoked rows left out of the list": "SHARE-LIST-OWN-RENDER",
    "revoked link still resolves": "LINK-REVOKED-404",
    "expired link still resolves": "LINK-EXPIRED-404",
    "another project's render is readable": "ISOLATION-RENDERS",
    "idempotency key ignored": "RENDER-IDEMPOTENT",
    "engagement misses a count": "SPEC-RESPONSES",
    "errors not in the envelope": "SPEC-RESPONSES",
    "revoke answers another revokedAt than the list": "VALUES-AGREE",
    "a share revoked through any render of its project": "WRONG-PARENT-404",
    "a render's list holds the whole project's shares": "SHARE-LIST-OWN-RENDER",
    "Idempotency-Key looked up across projects": "RENDER-IDEMPOTENT-PER-PROJECT",
}
VARIANTS_BY_NAME = {variant.name: variant for variant in VARIANTS}


@contextmanager
def proxied(app: ASGIApp) -> Iterator[tuple[str, PassiveChecker]]:
    """``app`` served, the checking proxy in front of it (the client's Host kept)."""
    checker = PassiveChecker()
    with serve(app) as upstream, serve(CheckingProxy(upstream, checker, keep_host=True)) as proxy:
        yield proxy, checker


def _outcomes(result: RunResult) -> dict[str, str]:
    return {r.rule.id: r.outcome for r in result.results}


def _findings(result: RunResult) -> list[str]:
    return [r.rule.id for r in result.results if r.outcome in ("failed", "deviated", "error")]


def test_partner_traffic_through_the_proxy_in_front_of_the_mock_shows_no_finding() -> None:
    with proxied(create_app(Settings())) as (proxy, checker):
        partner_traffic(proxy)
    result = checker.result()
    assert _findings(result) == []
    outcomes = _outcomes(result)
    decided = {rule for rule, outcome in outcomes.items() if outcome == "passed"}
    # Every rule the traffic was shaped for is decided (two revokes in flight at once decide
    # only when the winner's answer is the one seen first).
    assert set(DECIDES) - decided <= {"SHARE-REVOKE-CONCURRENT"}
    assert result.requests > 20
    assert result.coverage["exercised"]
    assert "never exercised" in result.coverage


def _suite_through_the_proxy(tmp_path: Path, command: list[str]) -> dict[str, Any]:
    """Run an example suite against the mock through the CLI proxy; its JSON report."""
    report = tmp_path / "report.json"
    with serve(create_app(Settings())) as upstream:
        port = free_port()
        proxy = subprocess.Popen(
            [sys.executable, "-m", "conformance", "proxy", "--upstream", upstream,
             "--port", str(port), "--keep-host", "--report", str(report)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for(url)
            env = {**os.environ, "CRAFTKIT_MOCK_URL": url, "NO_COLOR": "1"}
            suite = subprocess.run(
                command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
            )
            assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
        finally:
            proxy.send_signal(signal.SIGTERM)
            output, _ = proxy.communicate(timeout=30)
    assert proxy.returncode == 0, output[-3000:]
    written: dict[str, Any] = json.loads(report.read_text())
    outcomes = {r["id"]: r["outcome"] for r in written["rules"]}
    assert {"failed", "deviated", "error"}.isdisjoint(outcomes.values()), outcomes
    return written


def test_the_python_example_suite_through_the_proxy_shows_no_finding(tmp_path: Path) -> None:
    written = _suite_through_the_proxy(
        tmp_path,
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
         str(ROOT / "examples" / "python")],
    )  # fmt: skip
    assert written["requests"] > 20
    passed = {r["id"] for r in written["rules"] if r["outcome"] == "passed"}
    assert {"SPEC-RESPONSES", "SHARE-REVOKE-ONCE", "LINK-REVOKED-404"} <= passed


def test_the_node_example_suite_through_the_proxy_shows_no_finding(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed (scripts/test installs it)"
    written = _suite_through_the_proxy(tmp_path, [node, "--test", str(ROOT / "examples" / "node")])
    assert written["requests"] > 5
    passed = {r["id"] for r in written["rules"] if r["outcome"] == "passed"}
    assert "SPEC-RESPONSES" in passed


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listened at {url}")


@pytest.mark.parametrize("name", sorted(PASSIVE_RULE))
def test_the_proxy_in_front_of_a_broken_variant_names_its_rule(name: str) -> None:
    with proxied(VARIANTS_BY_NAME[name].build()) as (proxy, checker):
        partner_traffic(proxy)
    result = checker.result()
    rule = PASSIVE_RULE[name]
    found = next(r for r in result.results if r.rule.id == rule)
    assert found.outcome in ("failed", "deviated"), (rule, found.outcome, found.reason)
    assert found.exchanges, "the finding shows the exchanges that make it"
    assert found.culprit is not None
    assert found.culprit.curl().startswith("curl")


def test_concurrent_revokes_that_both_win_are_reported() -> None:
    # Fed in the order the answers end, both 200s: the second is the finding.
    with proxied(VARIANTS_BY_NAME["concurrent revokes both win"].build()) as (proxy, checker):
        partner_traffic(proxy)
    assert _outcomes(checker.result())["SHARE-REVOKE-CONCURRENT"] == "failed"


def _exports(base_url: str, *sandboxes: Sandbox) -> list[dict[str, object]]:
    return [
        httpx.get(f"{base_url}/_mock/projects/{box.project_id}/requests.har").json()
        for box in sandboxes
    ]


def test_the_mocks_har_export_reads_back_and_hides_every_secret(tmp_path: Path) -> None:
    with (
        serve(create_app(Settings())) as base_url,
        Sandbox.create(base_url) as box,
        httpx.Client(base_url=base_url, headers=box.headers) as api,
    ):
        share = api.post(f"/v1/renders/{box.render_id}/shares", json={}).json()
        httpx.get(share["shareUrl"])
        api.delete(f"/v1/renders/{box.render_id}/shares/{share['id']}")
        api.delete(f"/v1/renders/{box.render_id}/shares/{share['id']}")
        httpx.get(share["shareUrl"])
        api.get(f"/v1/renders/{box.render_id}/shares")
        api.get(f"/v1/renders/{box.render_id}/download")
        (har,) = _exports(base_url, box)
        secrets = (box.api_key, share["shareToken"])
    path = tmp_path / "mock.har"
    path.write_text(json.dumps(har))
    text = path.read_text()
    assert not any(secret in text for secret in secrets)
    entries = har["log"]["entries"]  # type: ignore[index]
    assert [e["request"]["method"] for e in entries] == [
        "POST", "GET", "DELETE", "DELETE", "GET", "GET", "GET"
    ]  # fmt: skip
    assert "text" not in entries[-1]["response"]["content"]  # the PDF is left out
    checker = PassiveChecker()
    checker.feed_all(read_traffic(path))
    outcomes = _outcomes(checker.result())
    for rule in ("SHARE-REVOKE-ONCE", "LINK-REVOKED-404", "SHARE-LIST-OWN-RENDER", "VALUES-AGREE"):
        assert outcomes[rule] == "passed", rule
    assert _findings(checker.result()) == []


def test_a_har_exported_from_a_broken_variant_fails_its_rule(tmp_path: Path) -> None:
    with (
        serve(VARIANTS_BY_NAME["revoked link still resolves"].build()) as base_url,
        Sandbox.create(base_url) as box,
        httpx.Client(base_url=base_url, headers=box.headers) as api,
    ):
        share = api.post(f"/v1/renders/{box.render_id}/shares", json={}).json()
        api.delete(f"/v1/renders/{box.render_id}/shares/{share['id']}")
        httpx.get(share["shareUrl"])
        (har,) = _exports(base_url, box)
    path = tmp_path / "variant.har"
    path.write_text(json.dumps(har))
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "check", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-3000:]
    assert "LINK-REVOKED-404" in result.stdout
    assert "failed" in result.stdout


def test_a_har_written_by_mitmproxy_in_front_of_the_mock_reads_back(tmp_path: Path) -> None:
    mitmdump = os.environ.get("CRAFTKIT_MITMDUMP")
    if not mitmdump:
        pytest.skip("CRAFTKIT_MITMDUMP names mitmdump (scripts/test installs mitmproxy)")
    har = tmp_path / "mitm.har"
    with serve(create_app(Settings())) as upstream:
        port = free_port()
        mitm = subprocess.Popen(
            [mitmdump, "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1",
             "--listen-port", str(port), "--set", "keep_host_header=true",
             "--set", f"hardump={har}", "--set", f"confdir={tmp_path / 'mitm'}", "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            _wait_for(f"http://127.0.0.1:{port}")
            partner_traffic(f"http://127.0.0.1:{port}")
        finally:
            mitm.send_signal(signal.SIGINT)  # it writes the HAR as it exits
            output, _ = mitm.communicate(timeout=60)
    assert har.exists(), output[-3000:]
    checker = PassiveChecker()
    checker.feed_all(read_traffic(har))
    result = checker.result()
    assert _findings(result) == []
    passed = {r for r, outcome in _outcomes(result).items() if outcome == "passed"}
    assert {"SHARE-REVOKE-ONCE", "LINK-REVOKED-404", "ISOLATION-RENDERS"} <= passed


def _exchange(method: str, path: str, status: int, body: object, key: str) -> dict[str, object]:
    return {
        "method": method,
        "url": f"https://api.example.com{path}",
        "requestHeaders": {"authorization": f"Bearer {key}"},
        "status": status,
        "responseHeaders": {"content-type": "application/json"},
        "responseBody": json.dumps(body),
    }


RENDER = "0193c2f0-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
SHARE = "0193c2f0-1a2b-7c3d-8e4f-5a6b7c8d9e1f"
ROW = {
    "id": SHARE,
    "shareToken": "cks_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "shareUrl": "https://share.example.com/share/cks_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "channel": "link",
    "recipientEmail": None,
    "message": None,
    "expiresAt": None,
    "revokedAt": None,
    "createdAt": "2026-12-01T10:00:00.000Z",
}
REVOKED = {**ROW, "revokedAt": "2026-12-01T10:05:00.000Z"}


def _ndjson(tmp_path: Path, *lines: dict[str, object]) -> Path:
    path = tmp_path / "traffic.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_ndjson_traffic_with_a_second_winning_revoke_fails_once_revoke(tmp_path: Path) -> None:
    shares = f"/v1/renders/{RENDER}/shares"
    path = _ndjson(
        tmp_path,
        _exchange("POST", shares, 201, ROW, "ck_test_one"),
        _exchange("DELETE", f"{shares}/{SHARE}", 200, REVOKED, "ck_test_one"),
        _exchange("DELETE", f"{shares}/{SHARE}", 200, REVOKED, "ck_test_one"),
    )
    checker = PassiveChecker()
    checker.feed_all(read_traffic(path))
    found = next(r for r in checker.result().results if r.rule.id == "SHARE-REVOKE-ONCE")
    assert found.outcome == "failed"
    assert [e.method for e in found.exchanges] == ["DELETE", "DELETE"]


def test_two_keys_not_shown_to_be_two_projects_are_not_an_isolation_finding(
    tmp_path: Path,
) -> None:
    # A project may hold several keys: one reading what another made proves no leak.
    render = {"id": RENDER, "status": "succeeded", "createdAt": "2026-12-01T10:00:00.000Z"}
    path = _ndjson(
        tmp_path,
        _exchange("GET", f"/v1/renders/{RENDER}", 200, render, "ck_live_first"),
        _exchange("GET", f"/v1/renders/{RENDER}", 200, render, "ck_live_second"),
    )
    checker = PassiveChecker()
    checker.feed_all(read_traffic(path))
    assert _outcomes(checker.result())["ISOLATION-RENDERS"] == "skipped"


def test_traffic_that_decides_nothing_passes_nothing(tmp_path: Path) -> None:
    path = _ndjson(tmp_path, _exchange("GET", "/v1/templates", 200, {}, "ck_test_one"))
    checker = PassiveChecker()
    checker.feed_all(read_traffic(path))
    outcomes = _outcomes(checker.result())
    assert set(outcomes) == set(DECIDES)
    assert "passed" not in {o for r, o in outcomes.items() if r != "SPEC-RESPONSES"}
    assert all(
        r.reason.startswith("not decidable")
        for r in checker.result().results
        if r.outcome == "skipped"
    )


def test_a_file_that_is_not_traffic_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not traffic\n")
    with pytest.raises(TrafficError):
        list(read_traffic(path))
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "check", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2


def test_the_proxy_keeps_no_body_over_its_bound_and_passes_it_whole() -> None:
    checker = PassiveChecker()
    big = b"x" * (2 * 1024 * 1024)
    with (
        serve(create_app(Settings())) as upstream,
        serve(CheckingProxy(upstream, checker)) as proxy,
    ):
        answer = httpx.post(f"{proxy}/v1/templates/invoice/render", content=big)
    assert answer.status_code in (401, 413)
    assert checker.exchanges == 1


def test_an_exchange_is_checked_against_the_spec_even_without_its_body() -> None:
    checker = PassiveChecker()
    exchange = Exchange(
        "GET", f"https://api.example.com/v1/renders/{RENDER}", {}, b"", 418, {}, b""
    )
    checker.feed(Observed(exchange, 0.0, 0.1, body_known=False))
    spec = next(r for r in checker.result().results if r.rule.id == "SPEC-RESPONSES")
    assert spec.outcome == "failed"
    assert "418" in spec.title


def test_one_projects_reset_leaves_the_others_history_standing(tmp_path: Path) -> None:
    # Parallel tests reset and delete their own sandboxes while the others go on.
    def made(project: str, key: str) -> dict[str, object]:
        body = {"projectId": project, "name": project, "apiKey": key}
        return {**_exchange("POST", "/_mock/projects", 201, body, "none"), "requestHeaders": {}}

    shares = f"/v1/renders/{RENDER}/shares"
    path = _ndjson(
        tmp_path,
        made("p-one", "ck_test_one"),
        made("p-two", "ck_test_two"),
        _exchange("POST", shares, 201, ROW, "ck_test_two"),
        _exchange("DELETE", f"{shares}/{SHARE}", 200, REVOKED, "ck_test_two"),
        {**_exchange("DELETE", "/_mock/projects/p-one", 204, "", "none"), "responseBody": ""},
        _exchange("DELETE", f"{shares}/{SHARE}", 200, REVOKED, "ck_test_two"),
    )
    checker = PassiveChecker()
    checker.feed_all(read_traffic(path))
    assert _outcomes(checker.result())["SHARE-REVOKE-ONCE"] == "failed"


def test_the_proxy_exits_1_with_its_reports_when_the_traffic_showed_a_finding(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.md"
    junit = tmp_path / "junit.xml"
    with serve(VARIANTS_BY_NAME["second revoke answers 200"].build()) as upstream:
        port = free_port()
        proxy = subprocess.Popen(
            [sys.executable, "-m", "conformance", "proxy", "--upstream", upstream,
             "--port", str(port), "--report", str(report), "--junit-xml", str(junit)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for(url)
            with Sandbox.create(url) as box, httpx.Client(base_url=url, headers=box.headers) as api:
                shares = f"/v1/renders/{box.render_id}/shares"
                share = api.post(shares, json={}).json()
                api.delete(f"{shares}/{share['id']}")
                api.delete(f"{shares}/{share['id']}")
                proxy.send_signal(signal.SIGUSR1)  # the reports as they stand, still serving
                deadline = time.monotonic() + 10
                while not report.exists():
                    assert time.monotonic() < deadline, "SIGUSR1 wrote no report"
                    time.sleep(0.05)
                assert api.get(shares).status_code == 200
        finally:
            proxy.send_signal(signal.SIGTERM)
            output, _ = proxy.communicate(timeout=30)
    assert proxy.returncode == 1, output[-3000:]
    assert "SHARE-REVOKE-ONCE" in output
    assert "curl" in report.read_text()
    assert "SHARE-REVOKE-ONCE" in junit.read_text()


def test_an_expiry_is_judged_only_on_the_apis_own_stamps_past_the_skew(tmp_path: Path) -> None:
    shares = f"/v1/renders/{RENDER}/shares"
    expiring = {**ROW, "expiresAt": "2026-12-01T10:01:00.000Z"}
    other = {**ROW, "id": RENDER.replace("e0f", "e2f"), "shareToken": "cks_other",
             "shareUrl": "https://share.example.com/share/cks_other"}  # fmt: skip

    def later(at: str) -> dict[str, object]:
        return _exchange("POST", shares, 201, {**other, "createdAt": at}, "ck_test_one")

    link = {**_exchange("GET", f"/share/{ROW['shareToken']}", 200, "", "x"), "requestHeaders": {}}
    link["responseHeaders"] = {"content-type": "text/html"}
    clock_set = {**_exchange("POST", "/_mock/clock", 200, {}, "x"), "requestHeaders": {}}

    def outcome(*lines: dict[str, object]) -> str:
        checker = PassiveChecker()
        checker.feed_all(read_traffic(_ndjson(tmp_path, *lines)))
        return _outcomes(checker.result())["LINK-EXPIRED-404"]

    made = _exchange("POST", shares, 201, expiring, "ck_test_one")
    # Within the skew two servers' clocks may have: nothing decided.
    assert outcome(made, later("2026-12-01T10:01:01.500Z"), link) == "skipped"
    # A clock set through the control API: what was stamped before says nothing.
    assert outcome(made, later("2026-12-01T10:05:00.000Z"), clock_set, link) == "skipped"
    # Stamped well past the expiry, and the link still opens: the finding.
    assert outcome(made, later("2026-12-01T10:05:00.000Z"), link) == "failed"
