"""Every operation, status, error code and field in the seeds' tables is in openapi.yaml.

Driven by the seed documents themselves (read by ``tests/support/seed_tables.py``), so a fact the
seeds state cannot silently go missing from the contract.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import craftkit_spec
from craftkit_spec import declared_properties, item_schema
from tests.support.seed_tables import ErrorRow, FieldRow, notes_part_a_codes, read_all, shared_dir

SEEDS_PRESENT = (shared_dir() / "seeds").is_dir()
ERRORS, FIELDS = read_all(craftkit_spec.load_raw()["paths"]) if SEEDS_PRESENT else ([], [])
NOTES_CODES = list(notes_part_a_codes()) if SEEDS_PRESENT else []


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = spec["paths"][path][method]
    return operation


def test_seed_tables_were_found_and_read() -> None:
    """Guards the table-driven tests below against passing on zero rows."""
    if not SEEDS_PRESENT:
        if os.environ.get("CI"):
            pytest.fail(f"no seeds at {shared_dir()}: CI must run with shared/ beside the repo")
        pytest.skip(f"no seeds at {shared_dir()} (set CRAFTKIT_SHARED_DIR)")
    operations = {(row.method, row.path) for row in ERRORS}
    assert operations == {
        ("post", "/v1/renders/{id}/shares"),
        ("get", "/v1/renders/{id}/shares"),
        ("delete", "/v1/renders/{id}/shares/{shareId}"),
        ("post", "/v1/renders/{id}/email"),
        ("get", "/v1/renders/{id}/download"),
    }
    assert len(ERRORS) >= 20
    locations = {row.location for row in FIELDS}
    assert locations == {"path", "body", "response", "header"}
    assert len(NOTES_CODES) >= 15


@pytest.mark.parametrize("row", ERRORS, ids=lambda r: f"{r.method} {r.path} {r.status} {r.code}")
def test_seed_error_is_declared(row: ErrorRow, resolved_spec: dict[str, Any]) -> None:
    operation = _operation(resolved_spec, row.method, row.path)
    response = operation["responses"].get(str(row.status))
    assert response is not None, f"{row.seed}: {row.status} is not declared"
    assert row.code in craftkit_spec.error_codes(response), (
        f"{row.seed}: {row.status} on {row.method.upper()} {row.path} does not allow {row.code}"
    )


def _field_schema(response_or_body: dict[str, Any], media_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = response_or_body["content"][media_type]["schema"]
    return schema


@pytest.mark.parametrize(
    "row", FIELDS, ids=lambda r: f"{r.seed[:3]} {r.method} {r.path} {r.location} {r.name}"
)
def test_seed_field_is_declared(row: FieldRow, resolved_spec: dict[str, Any]) -> None:
    path_item = resolved_spec["paths"][row.path]
    operation = path_item[row.method]
    if row.location == "path":
        names = {
            p["name"] for p in path_item.get("parameters", []) + operation.get("parameters", [])
        }
        assert row.name in names
        return
    if row.location == "header":
        response = operation["responses"][str(row.status)]
        if row.name == "Content-Type":
            assert list(response["content"]) == ["application/pdf"]
        else:
            assert response["headers"][row.name]["required"] is True
        return
    if row.location == "body":
        schema = _field_schema(operation["requestBody"], "application/json")
    else:
        schema = _field_schema(operation["responses"][str(row.status)], "application/json")
    *parents, leaf = row.name.split(".")
    for parent in parents:
        schema = declared_properties(schema)[parent.removesuffix("[]")]
        if parent.endswith("[]"):
            schema = dict(item_schema(schema))
    assert leaf in declared_properties(schema), f"{row.seed}: {row.name} is not in the schema"
    if row.location == "response":
        required = set(schema.get("required", []))
        assert leaf in required, f"{row.seed}: {row.name} is documented but not required"


@pytest.mark.parametrize("pair", NOTES_CODES, ids=lambda p: f"{p[0]} {p[1]}")
def test_notes_code_is_declared(
    pair: tuple[int | None, str], resolved_spec: dict[str, Any]
) -> None:
    """Every (status, code) of API_NOTES Part A is answered by at least one operation."""
    status, code = pair
    enum = resolved_spec["components"]["schemas"]["ErrorCode"]["enum"]
    assert code in enum
    table = craftkit_spec.error_table(resolved_spec)
    statuses = {s for (_, s), codes in table.items() if code in codes}
    assert statuses, f"no operation answers {code}"
    if status is not None:
        assert status in statuses, f"{code} is declared under {statuses}, not {status}"
