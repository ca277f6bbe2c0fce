"""The spec keeps its own conventions: one error envelope, auth errors, headers, links, samples.

These are the promises the mock, the suite and the docs rely on when they read the spec;
each test names the convention it guards.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.versions import consts as validator_versions

import craftkit_spec
from tests.support.seed_tables import shared_dir
from tests.support.spec_oracle import load_validated

SPEC = craftkit_spec.load_resolved()
OPERATIONS = list(craftkit_spec.iter_operations(SPEC))
BY_ID = {operation.operation_id: operation for operation in OPERATIONS}


def _ids(operation: craftkit_spec.Operation) -> str:
    return operation.operation_id


def test_spec_is_valid_openapi_3_1(raw_spec: dict[str, Any]) -> None:
    assert raw_spec["openapi"].startswith("3.1.")
    validate(raw_spec)


def test_mock_control_spec_is_valid_and_reuses_the_product_schemas() -> None:
    path = craftkit_spec.spec_path("mock-control.yaml")
    raw = craftkit_spec.load_raw(path)
    validate(raw, base_uri=path.as_uri())
    text = path.read_text(encoding="utf-8")
    assert "openapi.yaml#/components/schemas/Render" in text
    assert "openapi.yaml#/components/schemas/Error" in text


@pytest.mark.parametrize("name", ["openapi.yaml", "mock-control.yaml"])
def test_fast_resolver_agrees_with_prance(name: str) -> None:
    """The mock starts with the fast resolver; it must read exactly what prance reads."""
    path = craftkit_spec.spec_path(name)
    assert craftkit_spec.load_resolved(path) == load_validated(path)


def test_validator_knows_3_1() -> None:
    """The check above means something only if the validator speaks 3.1."""
    assert hasattr(validator_versions, "OPENAPIV31")


def test_operation_ids_are_unique(raw_spec: dict[str, Any]) -> None:
    ids = [op.operation_id for op in craftkit_spec.iter_operations(raw_spec)]
    assert len(ids) == len(set(ids)) == 12


def test_servers_name_production_and_the_mock(raw_spec: dict[str, Any]) -> None:
    urls = [server["url"] for server in raw_spec["servers"]]
    assert urls == ["https://api.craftkit.dev", "http://127.0.0.1:4010"]


SOURCE = re.compile(r"seed \d{3}|notes A|notes B\.(\d+)|assumption")
"""A seed page, API_NOTES Part A, a Part B decision, or an assumption of ours."""
PROVENANCE_IN_PROSE = re.compile(r"\((seed \d{3}|notes [AB])|\bnotes B\.\d|issue #\d|seed \d{3}")


def _texts(node: object, where: str = "") -> Iterator[tuple[str, str]]:
    """Every summary and description of a spec, with where it stands."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("summary", "description") and isinstance(value, str):
                yield f"{where}/{key}", value
            else:
                yield from _texts(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _texts(item, f"{where}/{index}")


def _sources(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "x-source":
                yield from value
            else:
                yield from _sources(value)
    elif isinstance(node, list):
        for item in node:
            yield from _sources(item)


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_operation_is_documented_with_its_source(operation: craftkit_spec.Operation) -> None:
    definition = operation.definition
    assert definition["summary"]
    assert definition["tags"]
    assert definition["description"]
    sources = definition.get("x-source", [])
    assert sources, f"{operation.operation_id}: no x-source names where it comes from"


def test_every_source_is_a_seed_page_a_note_or_an_assumption(raw_spec: dict[str, Any]) -> None:
    seeds = {path.name[:3] for path in (shared_dir() / "seeds").glob("[0-9][0-9][0-9]_*.txt")}
    notes = (shared_dir() / "API_NOTES.md").read_text(encoding="utf-8")
    decisions = {int(n) for n in re.findall(r"^(\d+)\. \*\*", notes, flags=re.MULTILINE)}
    for source in _sources(raw_spec):
        match = SOURCE.fullmatch(source)
        assert match, f"x-source {source!r} is not a seed page, a note or an assumption"
        if source.startswith("seed"):
            assert source[5:] in seeds, source
        if match.group(1):
            assert int(match.group(1)) in decisions, source


CONSTRAINTS = frozenset(
    ("maxLength", "minLength", "pattern", "format", "enum", "const")
) | frozenset(("minimum", "maximum", "maxItems", "minItems"))


def _unsourced(node: object, where: str = "") -> Iterator[str]:
    """Every constraint or response of the spec without an ``x-source`` of its own."""
    if isinstance(node, dict):
        if CONSTRAINTS & set(node) and "x-source" not in node:
            yield f"{where} ({', '.join(sorted(CONSTRAINTS & set(node)))})"
        for key, value in node.items():
            if key in ("examples", "example", "x-codeSamples"):
                continue
            if key == "responses" and isinstance(value, dict):
                for status, response in value.items():
                    if "$ref" not in response and "x-source" not in response:
                        yield f"{where}/responses/{status}"
            yield from _unsourced(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _unsourced(item, f"{where}/{index}")


def test_every_constraint_and_status_names_its_source(raw_spec: dict[str, Any]) -> None:
    """A limit, format, pattern, enum or status says where it comes from.

    So a deployment that departs from a decision or an assumption can be told from one that
    breaks a fact.
    """
    assert list(_unsourced(raw_spec)) == []


@pytest.mark.parametrize("name", ["openapi.yaml", "mock-control.yaml"])
def test_no_prose_carries_internal_provenance(name: str) -> None:
    spec = craftkit_spec.load_raw(craftkit_spec.spec_path(name))
    leaks = [(where, text) for where, text in _texts(spec) if PROVENANCE_IN_PROSE.search(text)]
    assert leaks == []


@pytest.mark.parametrize("operation", [o for o in OPERATIONS if o.is_authenticated], ids=_ids)
def test_authenticated_operation_declares_auth_and_throttling_errors(
    operation: craftkit_spec.Operation,
) -> None:
    assert {"401", "403", "429"} <= set(operation.responses)
    assert craftkit_spec.error_codes(operation.responses["401"]) == {"unauthorized"}
    assert craftkit_spec.error_codes(operation.responses["403"]) == {"forbidden"}


def test_public_operations_are_exactly_health_and_the_share_page() -> None:
    public = {o.operation_id for o in OPERATIONS if not o.is_authenticated}
    assert public == {"getHealth", "viewSharePage", "downloadSharedPdf"}
    assert SPEC["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_throttling_and_unavailability_carry_retry_after(
    operation: craftkit_spec.Operation,
) -> None:
    for status in ("429", "503"):
        response = operation.responses.get(status)
        if response is None:
            continue
        header = response["headers"]["Retry-After"]
        assert header["schema"]["type"] == "integer"
        assert header["required"] is (status == "429")


ERROR_RESPONSES = [
    (op.operation_id, status, response)
    for op in OPERATIONS
    for status, response in op.responses.items()
    if int(status) >= 400
]


@pytest.mark.parametrize(("operation_id", "status", "response"), ERROR_RESPONSES, ids=str)
def test_error_response_is_the_envelope_narrowed_to_its_codes(
    operation_id: str, status: str, response: dict[str, Any]
) -> None:
    assert list(response["content"]) == ["application/json"]
    schema = response["content"]["application/json"]["schema"]
    codes = craftkit_spec.error_codes(response)
    for code in codes:
        jsonschema.validate({"error": {"code": code, "message": "m"}}, schema)
    others = set(SPEC["components"]["schemas"]["ErrorCode"]["enum"]) - codes
    for code in others:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"error": {"code": code, "message": "m"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"code": next(iter(codes)), "message": "flat, not enveloped"}, schema)
    issues = {"formErrors": [], "fieldErrors": {"to": ["Invalid email"]}}
    jsonschema.validate(
        {"error": {"code": next(iter(codes)), "message": "m", "issues": issues}}, schema
    )


def test_every_declared_code_is_answered_somewhere() -> None:
    """A code in the enum is either answered by an operation or listed for every call."""
    enum = set(SPEC["components"]["schemas"]["ErrorCode"]["enum"])
    answered = set().union(*craftkit_spec.error_table(SPEC).values())
    general = set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", SPEC["info"]["description"], re.M))
    assert answered | general == enum
    assert general == {"method_not_allowed", "payload_too_large", "rate_limited", "internal"}


@pytest.mark.parametrize(
    "operation", [o for o in OPERATIONS if o.operation_id.startswith("download")], ids=_ids
)
def test_downloads_declare_pdf_and_its_headers(operation: craftkit_spec.Operation) -> None:
    ok = operation.responses["200"]
    assert list(ok["content"]) == ["application/pdf"]
    assert ok["headers"]["Content-Length"]["required"] is True
    disposition = ok["headers"]["Content-Disposition"]
    assert disposition["required"] is True
    pattern = re.compile(disposition["schema"]["pattern"])
    assert pattern.match('attachment; filename="0193c2c3-5b1e-7a3c-9f2d-4e8b6a1c0d2f.pdf"')
    assert not pattern.match('inline; filename="x.pdf"')


def test_render_submission_takes_and_echoes_the_idempotency_key() -> None:
    operation = BY_ID["renderTemplate"]
    names = [p["name"] for p in operation.definition["parameters"]]
    assert names == ["Idempotency-Key"]
    assert {"200", "202"} <= set(operation.responses)
    for status in ("200", "202"):
        assert "Idempotency-Key" in operation.responses[status]["headers"]


LINKS = [
    (op.operation_id, status, name, link)
    for op in OPERATIONS
    for status, response in op.responses.items()
    for name, link in response.get("links", {}).items()
]


@pytest.mark.parametrize(("source", "status", "name", "link"), LINKS, ids=lambda v: str(v)[:30])
def test_link_targets_a_real_operation_and_its_parameters(
    source: str, status: str, name: str, link: dict[str, Any]
) -> None:
    target = BY_ID[link["operationId"]]
    path_item = SPEC["paths"][target.path]
    params = {p["name"] for p in path_item.get("parameters", [])} | {
        p["name"] for p in target.definition.get("parameters", []) if p["in"] == "path"
    }
    path_params = set(re.findall(r"\{(\w+)\}", target.path))
    assert set(link["parameters"]) == path_params <= params
    for expression in link["parameters"].values():
        assert re.fullmatch(r"\$(response\.body#/\w+|request\.path\.\w+)", expression)


def test_stateful_flows_are_linked() -> None:
    """Render → get/download/share, share → list/revoke/open, email → revoke (issue #2)."""
    wanted = {
        ("renderTemplate", "getRender"),
        ("renderTemplate", "downloadRender"),
        ("renderTemplate", "createShare"),
        ("createShare", "listShares"),
        ("createShare", "revokeShare"),
        ("createShare", "viewSharePage"),
        ("emailRender", "revokeShare"),
    }
    present = {(source, link["operationId"]) for source, _, _, link in LINKS}
    assert wanted <= present


SAMPLE_LABELS = ["curl", "Node.js", "Python"]


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_code_samples_cover_curl_node_and_python(operation: craftkit_spec.Operation) -> None:
    samples = operation.definition["x-codeSamples"]
    assert [sample["label"] for sample in samples] == SAMPLE_LABELS
    curl = samples[0]["source"]
    pattern = re.sub(r"\\\{\w+\\\}", r"[^/\\s]+", re.escape(operation.path)) + r"(\s|$)"
    assert re.search(pattern, curl), f"curl sample does not call {operation.path}"
    method = operation.method.upper()
    assert (f"-X {method}" in curl) == (method != "GET")


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_code_samples_are_syntactically_valid(
    operation: craftkit_spec.Operation, tmp_path: Path
) -> None:
    curl, node, python = (s["source"] for s in operation.definition["x-codeSamples"])
    compile(python, f"{operation.operation_id}.py", "exec")
    subprocess.run(["bash", "-n"], input=curl, text=True, check=True)
    node_binary = shutil.which("node")
    assert node_binary is not None, "Node.js is needed to check the Node.js samples"
    script = tmp_path / "sample.mjs"
    script.write_text(node, encoding="utf-8")
    subprocess.run([node_binary, "--check", str(script)], check=True, capture_output=True)
