"""The docs site: built from the specs, rendered in a real browser, tables true to the spec."""

from __future__ import annotations

import copy
import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

import craftkit_spec
from craftkit_docs.pages import operation_page
from craftkit_docs.site import redoc_page, without_conditionals
from craftkit_spec import declared_properties, item_schema
from tests.support.seed_tables import REPO_ROOT

SPEC = craftkit_spec.load_resolved()
CONTROL = craftkit_spec.load_resolved(craftkit_spec.spec_path("mock-control.yaml"))
OPERATIONS = list(craftkit_spec.iter_operations(SPEC))
WEBHOOKS = list(craftkit_spec.iter_webhooks(SPEC))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
]


@pytest.fixture(scope="module")
def site(worker_id: str) -> Path:
    """The site, built by the documented command into build/docs (kept, with its screenshot).

    Each pytest-xdist worker builds its own copy (build/docs-gw0, ...), so none deletes the
    folder another is reading.
    """
    out = REPO_ROOT / "build" / ("docs" if worker_id == "master" else f"docs-{worker_id}")
    shutil.rmtree(out, ignore_errors=True)
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "docs", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, (
        "Chromium is needed (Debian package chromium; .ci/run and scripts/test install it)"
    )
    return found


def rendered_text(page: Path) -> str:
    """The page's visible text after the browser ran its scripts."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", result.stdout, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def test_the_site_has_its_entry_page_and_every_part(site: Path) -> None:
    index = (site / "index.html").read_text()
    for target in ("reference.html", "mock.html", "control.html"):
        assert target in index
        assert (site / target).is_file()
    for operation in [*OPERATIONS, *WEBHOOKS]:
        assert f"operations/{operation.operation_id}.html" in index
        assert (site / "operations" / f"{operation.operation_id}.md").is_file()
    assert "cdn." not in (site / "reference.html").read_text(), "the reference must work offline"


@pytest.mark.browser
def test_the_reference_shows_every_operation_code_and_sample_in_a_browser(site: Path) -> None:
    text = rendered_text(site / "reference.html")
    assert len(text) > 20_000, "Redoc did not render"
    missing = [
        op.definition["summary"]
        for op in [*OPERATIONS, *WEBHOOKS]
        if op.definition["summary"] not in text
    ]
    assert missing == []  # the webhooks too, in Redoc's own section
    codes = SPEC["components"]["schemas"]["ErrorCode"]["enum"]
    assert [code for code in codes if code not in text] == []
    for label in ("curl", "Node.js", "Python"):
        assert label in text
    with tempfile.TemporaryDirectory() as profile:
        screenshot = site / "screenshot.png"
        subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,3000",
             f"--screenshot={screenshot}", (site / "reference.html").as_uri()],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 50_000


def _page_requests(site: Path, name: str) -> list[str]:
    """The URLs a page of the site asked for while it rendered, served as the README serves it.

    The site is served over HTTP on loopback (file: loads bypass the network stack and its
    log) and the URLs read from Chromium's net log. Chromium's own background requests carry
    no page as their initiator ("not an origin"); all the page loads names its origin.
    """
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as work:
            log = Path(work) / "net.json"
            subprocess.run(
                [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={work}/profile",
                 f"--log-net-log={log}", "--dump-dom",
                 f"http://127.0.0.1:{server.server_address[1]}/{name}"],
                capture_output=True, timeout=120, check=True,
            )  # fmt: skip
            events = json.loads(log.read_text(encoding="utf-8"))["events"]
    finally:
        server.shutdown()
        server.server_close()
    return [
        event["params"]["url"]
        for event in events
        if "url" in event.get("params", {})
        and event["params"].get("initiator", "not an origin") != "not an origin"
    ]


@pytest.mark.browser
@pytest.mark.parametrize("name", ["reference.html", "control.html"])
def test_a_redoc_page_asks_for_nothing_outside_the_site(site: Path, name: str) -> None:
    asked = _page_requests(site, name)
    assert any(url.endswith("/redoc.standalone.js") for url in asked)  # the log is read right
    assert [url for url in asked if not url.startswith("http://127.0.0.1:")] == []


def test_every_condition_left_out_for_redoc_is_stated_in_words() -> None:
    """Redoc cannot draw ``if``/``then``; the fields it constrains say it instead."""
    conditional = [
        (name, schema)
        for name, schema in SPEC["components"]["schemas"].items()
        if "if" in schema and "then" in schema
    ]
    assert [name for name, _ in conditional] == ["CreateShareRequest"]
    for _, schema in conditional:
        for field in schema["then"].get("required", []):
            assert "Required when" in schema["properties"][field]["description"]
    drawn = without_conditionals(craftkit_spec.load_raw())
    body = drawn["components"]["schemas"]["CreateShareRequest"]
    assert "if" not in body
    assert "then" not in body
    assert set(body["properties"]) == set(
        SPEC["components"]["schemas"]["CreateShareRequest"]["properties"]
    )
    field_called_if = {"type": "object", "properties": {"if": {"type": "string"}}}
    assert without_conditionals(field_called_if) == field_called_if


@pytest.mark.browser
def test_the_create_share_body_reads_every_field_optional_with_the_email_condition(
    site: Path,
) -> None:
    """Rendered alone, as Redoc draws it in the reference, and kept as a screenshot."""
    path = "/v1/renders/{id}/shares"
    raw = craftkit_spec.load_raw()
    operation = raw["paths"][path]["post"]
    alone = {
        **raw,
        "info": {"title": "Create a share", "version": raw["info"]["version"]},
        "tags": [{"name": tag} for tag in operation["tags"]],
        "paths": {path: {"post": operation}},
        "webhooks": {},
    }
    page = site / "create-share.html"
    page.write_text(redoc_page("Create a share", alone), encoding="utf-8")
    text = re.sub(r"\s+", " ", rendered_text(page))
    body = text.split("Request Body schema: application/json", 1)[1].split(" Responses ", 1)[0]
    assert "case 1" not in text
    assert "One of" not in body
    for field in ("channel", "recipientEmail", "message", "expiresAt"):
        assert field in body
    # The body itself is required ("required" right after its media type); no field is.
    assert body.split()[0] == "required"
    assert "required" not in body.split(None, 1)[1]
    assert "Required when channel is email" in body
    screenshot = site / "create-share.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1400",
             f"--screenshot={screenshot}", page.as_uri()],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 50_000


@pytest.mark.browser
def test_the_control_reference_shows_every_control_operation(site: Path) -> None:
    text = rendered_text(site / "control.html")
    for operation in craftkit_spec.iter_operations(CONTROL):
        assert operation.definition["summary"] in text


def _table(markdown: str, heading: str) -> list[list[str]]:
    """The rows of the table under a heading (cells stripped of backticks)."""
    section = markdown.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [
        line
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
    ]
    return [
        [cell.strip().strip("`") for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[1:]
    ]


def _fields(schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Every field name the spec declares, nested ones as a.b and a[].b (the test's own walk)."""
    names = set()
    for name, sub in declared_properties(schema).items():
        names.add(prefix + name)
        if declared_properties(sub) and "object" in str(sub.get("type", "object")):
            names |= _fields(sub, f"{prefix}{name}.")
        try:
            items = item_schema(sub)
        except KeyError:
            continue
        if declared_properties(dict(items)):
            names |= _fields(dict(items), f"{prefix}{name}[].")
    return names


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.operation_id)
def test_markdown_tables_match_the_spec(operation: craftkit_spec.Operation, site: Path) -> None:
    markdown = (site / "operations" / f"{operation.operation_id}.md").read_text()
    errors = {(int(row[0]), row[1]) for row in _table(markdown, "Errors")}
    expected = {
        (status, code)
        for (op, status), codes in craftkit_spec.error_table(SPEC).items()
        if op == operation.operation_id
        for code in codes
    }
    assert errors == expected
    for row in _table(markdown, "Errors"):
        assert row[2], f"{row[1]}: no meaning"
        assert row[3], f"{row[1]}: no fix"
    body = operation.definition.get("requestBody")
    if body is not None:
        documented = {row[0] for row in _table(markdown, "Request body")}
        assert documented == _fields(body["content"]["application/json"]["schema"])
    for status, response in operation.responses.items():
        content = response.get("content", {}).get("application/json")
        if int(status) < 400 and content is not None:
            documented = {row[0] for row in _table(markdown, f"Response — {status}")}
            assert documented == _fields(content["schema"])
    samples = [sample["label"] for sample in operation.definition["x-codeSamples"]]
    for label in samples:
        assert f"### {label}" in markdown


@pytest.mark.parametrize("webhook", WEBHOOKS, ids=lambda w: w.operation_id)
def test_a_webhook_page_shows_its_headers_and_every_body_field(
    webhook: craftkit_spec.Operation, site: Path
) -> None:
    page = (site / "operations" / f"{webhook.operation_id}.md").read_text()
    assert f"`{webhook.path}`" in page
    for parameter in webhook.definition["parameters"]:
        assert f"| `{parameter['name']}` |" in page
    schema = webhook.definition["requestBody"]["content"]["application/json"]["schema"]
    for field in craftkit_spec.declared_properties(schema):
        assert f"| `{field}` |" in page
    for status in webhook.responses:
        assert f"- `{status}`:" in page


def test_a_field_or_code_added_to_the_spec_appears_in_its_page() -> None:
    spec = copy.deepcopy(SPEC)
    operation = next(
        op for op in craftkit_spec.iter_operations(spec) if op.operation_id == "createShare"
    )
    schema = operation.definition["requestBody"]["content"]["application/json"]["schema"]
    schema["properties"]["colour"] = {"type": "string", "description": "A new field."}
    conflict = operation.definition["responses"]["409"]
    error = conflict["content"]["application/json"]["schema"]["properties"]["error"]
    body, narrowing = error["allOf"]
    body["properties"]["code"]["enum"].append("brand_new_code")
    narrowing["properties"]["code"]["enum"] = ["not_ready", "brand_new_code"]
    conflict["content"]["application/json"]["examples"]["brand_new_code"] = {
        "summary": "A new meaning",
        "description": "**Fix:** a new fix.",
        "value": {"error": {"code": "brand_new_code", "message": "m"}},
    }
    page = operation_page(spec, operation).markdown
    assert "colour" in {row[0] for row in _table(page, "Request body")}
    assert ["409", "brand_new_code", "A new meaning", "A new fix."] in _table(page, "Errors")


def test_the_mock_page_lists_every_control_operation(site: Path) -> None:
    page = (site / "mock.md").read_text()
    for operation in craftkit_spec.iter_operations(CONTROL):
        assert f"`{operation.path}`" in page
