"""Request bodies checked against the spec's own schemas, reported the way Zod reports.

Each operation's request schema is compiled once, at start, into a jsonschema-rs validator
(compiled Rust), so validation costs microseconds per request instead of the milliseconds a
per-request OpenAPI validator costs. Failures come back as Zod's ``flatten()`` shape:
``{"formErrors": [...], "fieldErrors": {field: [...]}}``, keyed by the top-level field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema_rs

import craftkit_spec

Issues = dict[str, Any]

_TYPE_NAMES = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _received(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _subschema(schema: Mapping[str, Any], path: Iterable[str | int]) -> Mapping[str, Any]:
    node: Any = schema
    for step in path:
        node = node[step]
    return node if isinstance(node, Mapping) else {}


def _zod_message(error: jsonschema_rs.ValidationError, schema: Mapping[str, Any]) -> str:
    """A message in Zod's words for the common failures, the validator's otherwise.

    A pattern says what it wants through the spec's ``x-pattern-message`` where it has one,
    never as the raw expression.
    """
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return "Required"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.MaxLength):
        return f"String must contain at most {kind.limit} character(s)"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.MinLength):
        return f"String must contain at least {kind.limit} character(s)"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Format):
        return {"email": "Invalid email", "date-time": "Invalid datetime"}.get(
            kind.format, f"Invalid {kind.format}"
        )
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        options = " | ".join(f"'{option}'" for option in kind.options)
        return f"Invalid enum value. Expected {options}, received '{error.instance}'"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type):
        expected = " | ".join(str(name) for name in kind.types)
        return f"Expected {expected}, received {_received(error.instance)}"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Pattern):
        said = _subschema(schema, list(error.schema_path)[:-1]).get("x-pattern-message")
        return str(said) if said else "Invalid string: not in the expected form"
    return str(error.message)


def flatten(errors: Iterable[jsonschema_rs.ValidationError], schema: Mapping[str, Any]) -> Issues:
    """Group validation errors (of an instance against ``schema``) into Zod's ``flatten()``."""
    form_errors: list[str] = []
    field_errors: dict[str, list[str]] = {}
    for error in errors:
        path = list(error.instance_path)
        kind = error.kind
        if not path and isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            path = [kind.property]
        message = _zod_message(error, schema)
        _add(field_errors.setdefault(str(path[0]), []) if path else form_errors, message)
    return {"formErrors": form_errors, "fieldErrors": field_errors}


def _add(messages: list[str], message: str) -> None:
    """Add a message unless one that begins alike says it already (the fuller one stays).

    A value that fails its format and its pattern (a zone-less timestamp) is one problem.
    """
    for index, said in enumerate(messages):
        if said.startswith(message):
            return
        if message.startswith(said):
            messages[index] = message
            return
    messages.append(message)


class SchemaChecker:
    """One compiled schema: a fast yes, and Zod-style issues for a no."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = schema
        self._validator = jsonschema_rs.Draft202012Validator(dict(schema), validate_formats=True)

    def issues(self, instance: Any) -> Issues | None:
        """``None`` when the instance is valid; the flattened issues otherwise."""
        if self._validator.is_valid(instance):
            return None
        return flatten(self._validator.iter_errors(instance), self._schema)


class RequestValidator:
    """The request-body and header checkers of every operation of a spec, compiled once.

    An operation's header parameters become one object schema keyed by header name, so a
    header that breaks its schema is reported under its own name in ``fieldErrors``.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._checkers: dict[str, SchemaChecker] = {}
        self._headers: dict[str, tuple[tuple[str, ...], SchemaChecker]] = {}
        for operation in craftkit_spec.iter_operations(spec):
            body = operation.definition.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                self._checkers[operation.operation_id] = SchemaChecker(schema)
            headers = [
                p for p in operation.definition.get("parameters", []) if p.get("in") == "header"
            ]
            if headers:
                names = tuple(p["name"] for p in headers)
                checker = SchemaChecker(
                    {
                        "type": "object",
                        "properties": {p["name"]: p["schema"] for p in headers},
                        "required": [p["name"] for p in headers if p.get("required")],
                    }
                )
                self._headers[operation.operation_id] = (names, checker)

    def issues(self, operation_id: str, body: Any) -> Issues | None:
        """Check one operation's body; ``None`` when it is valid."""
        return self._checkers[operation_id].issues(body)

    def header_issues(self, operation_id: str, headers: Mapping[str, str]) -> Issues | None:
        """Check the headers an operation declares (``headers`` looked up case-insensitively)."""
        declared = self._headers.get(operation_id)
        if declared is None:
            return None
        names, checker = declared
        given = {name: headers[name] for name in names if name in headers}
        return checker.issues(given)
