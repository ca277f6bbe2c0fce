"""What the spec says each response may be, compiled once, checked on every response.

For an exchange the suite records, this finds the operation (method and path template),
then checks the status is documented, the content type matches, the JSON body fits the
schema, required headers are present and fit theirs, and an error's ``code`` is one that
status may carry for that operation. It also tallies which (operation, status, code) triples
were seen, for the report's error-code coverage.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
import orjson

import craftkit_spec


@dataclass(frozen=True)
class Violation:
    """One way a response departs from the spec."""

    operation_id: str
    status: int
    problem: str


@dataclass
class _Response:
    media: dict[str, jsonschema_rs.Validator | None]
    headers: dict[str, tuple[bool, jsonschema_rs.Validator]]
    codes: frozenset[str]


@dataclass
class _Operation:
    operation_id: str
    method: str
    pattern: re.Pattern[str]
    responses: dict[int, _Response] = field(default_factory=dict)


def _compile(schema: Mapping[str, Any]) -> jsonschema_rs.Validator:
    return jsonschema_rs.Draft202012Validator(dict(schema), validate_formats=True)


class ResponseContract:
    """The response side of openapi.yaml, ready to check exchanges against."""

    def __init__(self, spec: Mapping[str, Any] | None = None) -> None:
        spec = spec or craftkit_spec.load_resolved()
        self.declared: dict[tuple[str, int], frozenset[str]] = craftkit_spec.error_table(spec)
        self.observed: Counter[tuple[str, int, str]] = Counter()
        self._operations: list[_Operation] = []
        for operation in craftkit_spec.iter_operations(spec):
            regex = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(operation.path))
            compiled = _Operation(
                operation.operation_id, operation.method.upper(), re.compile(f"^{regex}$")
            )
            for status, response in operation.responses.items():
                media = {
                    media_type: _compile(content["schema"])
                    if media_type == "application/json"
                    else None
                    for media_type, content in response.get("content", {}).items()
                }
                headers = {
                    name.lower(): (bool(header.get("required")), _compile(header["schema"]))
                    for name, header in response.get("headers", {}).items()
                }
                codes = craftkit_spec.error_codes(response)
                compiled.responses[int(status)] = _Response(media, headers, codes)
            self._operations.append(compiled)

    def _find(self, method: str, path: str) -> _Operation | None:
        candidates = [
            op for op in self._operations if op.method == method.upper() and op.pattern.match(path)
        ]
        # A literal segment beats a parameter: the longest template wins.
        return max(candidates, key=lambda op: len(op.pattern.pattern), default=None)

    def _find_mirrored(self, method: str, path: str) -> _Operation | None:
        found = self._find(method, path)
        if found is None and method.upper() == "HEAD":
            found = self._find("GET", path)
        return found

    def operation_id(self, method: str, path: str) -> str | None:
        """The operation a request is to (HEAD is the GET it mirrors), ``None`` for none."""
        found = self._find_mirrored(method, path)
        return None if found is None else found.operation_id

    def check_status(self, method: str, path: str, status: int) -> list[Violation]:
        """Whether the status is documented, for an answer whose body was not recorded."""
        operation = self._find_mirrored(method, path)
        if operation is None or status in operation.responses:
            return []
        return [_undocumented(operation, status)]

    def check(
        self, method: str, path: str, status: int, headers: Mapping[str, str], body: bytes
    ) -> list[Violation]:
        """Every way this response breaks the spec (empty when it conforms)."""
        operation = self._find(method, path)
        if operation is None:
            self._tally("-", status, body)  # a route the spec has no operation for (405, 404)
            return []
        response = operation.responses.get(status)
        if response is None:
            return [_undocumented(operation, status)]
        problems: list[str] = []
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if response.media and content_type not in response.media:
            problems.append(
                f"Content-Type {content_type or '(none)'} is not one of {', '.join(response.media)}"
            )
        validator = response.media.get(content_type)
        parsed: Any = None
        if content_type == "application/json":
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                problems.append(f"the body is not JSON: {exc}")
            else:
                if validator is not None:
                    problems += [
                        f"body{_pointer(error.instance_path)}: {error.message}"
                        for error in validator.iter_errors(parsed)
                    ]
        lowered = {name.lower(): value for name, value in headers.items()}
        for name, (required, header_validator) in response.headers.items():
            if name not in lowered:
                if required:
                    problems.append(f"required header {name} is missing")
                continue
            value = lowered[name]
            as_number = int(value) if value.isdigit() else None
            if not (
                header_validator.is_valid(value)
                or (as_number is not None and header_validator.is_valid(as_number))
            ):
                problems.append(f"header {name}: {lowered[name]!r} does not fit its schema")
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            code = parsed["error"].get("code")
            if isinstance(code, str):
                self.observed[(operation.operation_id, status, code)] += 1
        return [Violation(operation.operation_id, status, problem) for problem in problems]

    def _tally(self, operation_id: str, status: int, body: bytes) -> None:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            self.observed[(operation_id, status, error["code"])] += 1

    def unprovoked(self) -> list[tuple[str, int, str]]:
        """Declared (operation, status, code) triples no response showed."""
        seen = set(self.observed)
        return sorted(
            (op, status, code)
            for (op, status), codes in self.declared.items()
            for code in codes
            if (op, status, code) not in seen
        )

    def undeclared(self) -> list[tuple[str, int, str]]:
        """Observed (operation, status, code) triples the spec does not declare."""
        return sorted(
            (op, status, code)
            for (op, status, code) in self.observed
            if op != "-" and code not in self.declared.get((op, status), frozenset())
        )

    def codes_provoked(self) -> set[str]:
        """Every error code seen at least once."""
        return {code for (_, _, code) in self.observed}


def _pointer(path: Any) -> str:
    return "".join(f"/{part}" for part in path)


def _undocumented(operation: _Operation, status: int) -> Violation:
    documented = ", ".join(str(s) for s in sorted(operation.responses))
    return Violation(
        operation.operation_id,
        status,
        f"status {status} is not documented (documented: {documented})",
    )
