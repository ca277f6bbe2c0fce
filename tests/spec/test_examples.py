"""Every example in openapi.yaml is valid against its own schema, and error examples are complete.

The docs are generated from these examples, so an example that drifts from its schema
teaches partners the wrong thing. Error examples carry the per-code meaning and fix that the
docs' error tables show, so each declared code must have exactly one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest

import craftkit_spec
from craftkit_spec import undeclared_keys

SPEC = craftkit_spec.load_resolved()
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


@dataclass(frozen=True)
class Example:
    """An example value and the schema it must satisfy, with where it was found."""

    where: str
    value: Any
    schema: dict[str, Any]


def _media_examples(where: str, media: dict[str, Any]) -> Iterator[Example]:
    schema = media.get("schema")
    if schema is None:
        return
    if "example" in media:
        yield Example(where, media["example"], schema)
    for name, example in media.get("examples", {}).items():
        yield Example(f"{where} examples/{name}", example["value"], schema)


def _schema_examples(where: str, schema: Any) -> Iterator[Example]:
    if not isinstance(schema, dict):
        return
    for index, value in enumerate(schema.get("examples", [])):
        yield Example(f"{where} examples[{index}]", value, schema)
    for key, sub in schema.items():
        if key in ("properties", "patternProperties"):
            for name, child in sub.items():
                yield from _schema_examples(f"{where}/{name}", child)
        elif key in ("allOf", "anyOf", "oneOf"):
            for index, child in enumerate(sub):
                yield from _schema_examples(f"{where}/{key}[{index}]", child)
        elif key in ("items", "additionalProperties", "then", "else", "if", "not"):
            yield from _schema_examples(f"{where}/{key}", sub)


def all_examples() -> Iterator[Example]:
    """Every example in the spec: media types, parameters, headers and schemas."""
    for operation in craftkit_spec.iter_operations(SPEC):
        name = operation.operation_id
        path_item = SPEC["paths"][operation.path]
        for parameter in path_item.get("parameters", []) + operation.definition.get(
            "parameters", []
        ):
            if "example" in parameter:
                yield Example(
                    f"{name} param {parameter['name']}", parameter["example"], parameter["schema"]
                )
        body = operation.definition.get("requestBody", {})
        for media_type, media in body.get("content", {}).items():
            yield from _media_examples(f"{name} request {media_type}", media)
        for status, response in operation.responses.items():
            for media_type, media in response.get("content", {}).items():
                yield from _media_examples(f"{name} {status} {media_type}", media)
            for header, spec in response.get("headers", {}).items():
                if "example" in spec:
                    yield Example(
                        f"{name} {status} header {header}", spec["example"], spec["schema"]
                    )
    for schema_name, schema in SPEC["components"]["schemas"].items():
        yield from _schema_examples(f"schema {schema_name}", schema)


EXAMPLES = list(all_examples())


def test_examples_were_collected() -> None:
    assert len(EXAMPLES) > 60


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.where)
def test_example_validates_against_its_schema(example: Example) -> None:
    jsonschema.validate(example.value, example.schema, format_checker=FORMATS)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.where)
def test_example_uses_only_declared_keys(example: Example) -> None:
    assert list(undeclared_keys(example.value, example.schema)) == []


def test_a_broken_example_is_caught() -> None:
    """The two checks above are not vacuous: a typo and a wrong type both fail."""
    schema = SPEC["components"]["schemas"]["Share"]
    good = SPEC["paths"]["/v1/renders/{id}/shares"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["examples"]["one"]["value"]["shares"][0]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "clickCount": "3"}, schema, format_checker=FORMATS)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**good, "createdAt": "2026-06-05T10:05:00Z"}, schema, format_checker=FORMATS
        )
    assert list(undeclared_keys({**good, "clikCount": 3}, schema)) == ["/clikCount"]


ERROR_RESPONSES = [
    (operation.operation_id, status, response)
    for operation in craftkit_spec.iter_operations(SPEC)
    for status, response in operation.responses.items()
    if int(status) >= 400
]


@pytest.mark.parametrize(
    ("operation_id", "status", "response"), ERROR_RESPONSES, ids=lambda v: str(v)[:24]
)
def test_error_response_has_one_example_per_code(
    operation_id: str, status: str, response: dict[str, Any]
) -> None:
    codes = craftkit_spec.error_codes(response)
    assert codes, f"{operation_id} {status}: no error codes declared"
    media = response["content"]["application/json"]
    assert set(media["examples"]) == codes, f"{operation_id} {status}: one example per code"
    for code, example in media["examples"].items():
        assert example["value"]["error"]["code"] == code
        assert example["summary"], f"{operation_id} {status} {code}: the meaning is missing"
        assert example["description"].startswith("**Fix:**"), f"{operation_id} {status} {code}"


@pytest.mark.parametrize("operation", list(craftkit_spec.iter_operations(SPEC)), ids=str)
def test_operation_has_request_and_response_examples(operation: craftkit_spec.Operation) -> None:
    body = operation.definition.get("requestBody")
    if body is not None:
        for media in body["content"].values():
            assert media.get("examples"), f"{operation.operation_id}: request has no example"
    for status, response in operation.responses.items():
        for media_type, media in response.get("content", {}).items():
            if media_type == "application/pdf":
                continue  # binary: nothing meaningful to show
            assert media.get("examples"), f"{operation.operation_id} {status}: no example"
