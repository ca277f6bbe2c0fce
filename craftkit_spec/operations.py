"""Reading facts out of a resolved spec: its operations and the error codes each can answer.

Error responses are written as the shared envelope narrowed by ``allOf`` branches, each of
which may constrain ``error.code`` with an ``enum``; the codes a response can carry are the
intersection of those enums. Tools that need "which codes may ``409`` carry on this
operation" ask here rather than parse descriptions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from craftkit_spec.schemas import branches

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@dataclass(frozen=True)
class Operation:
    """One operation of the spec, with its resolved definition."""

    path: str
    method: str
    operation_id: str
    definition: Mapping[str, Any]

    @property
    def responses(self) -> Mapping[str, Any]:
        """The operation's responses, keyed by status code as written (``"404"``)."""
        responses: Mapping[str, Any] = self.definition.get("responses", {})
        return responses

    @property
    def is_authenticated(self) -> bool:
        """Whether the operation takes the bearer key (an explicit ``security: []`` opts out)."""
        return self.definition.get("security") != []


def iter_operations(spec: Mapping[str, Any]) -> Iterator[Operation]:
    """Yield every operation of a resolved spec, in document order."""
    for path, item in spec.get("paths", {}).items():
        for method in HTTP_METHODS:
            definition = item.get(method)
            if definition is not None:
                yield Operation(path, method, definition["operationId"], definition)


def iter_webhooks(spec: Mapping[str, Any]) -> Iterator[Operation]:
    """Yield every webhook of a resolved spec (``path`` is the webhook's name), in order."""
    for name, item in spec.get("webhooks", {}).items():
        for method in HTTP_METHODS:
            definition = item.get(method)
            if definition is not None:
                yield Operation(name, method, definition["operationId"], definition)


def _code_enums(schema: Mapping[str, Any]) -> Iterator[frozenset[str]]:
    """Yield each ``enum`` that constrains ``error.code`` in the envelope's allOf trees.

    Both the envelope's own branches and those of its ``error`` are looked at.
    """
    for branch in branches(schema):
        for part in branches(branch.get("properties", {}).get("error", {})):
            code = part.get("properties", {}).get("code", {})
            if "enum" in code:
                yield frozenset(code["enum"])
            if "const" in code:
                yield frozenset([code["const"]])


def error_codes(response: Mapping[str, Any]) -> frozenset[str]:
    """Return the error codes a resolved (error) response object allows.

    Empty when the response has no JSON error envelope (a success response, say).
    """
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return frozenset()
    allowed: frozenset[str] | None = None
    for enum in _code_enums(schema):
        allowed = enum if allowed is None else allowed & enum
    return allowed or frozenset()


def error_table(spec: Mapping[str, Any]) -> dict[tuple[str, int], frozenset[str]]:
    """Map (operationId, status) to the error codes that status may carry."""
    table: dict[tuple[str, int], frozenset[str]] = {}
    for operation in iter_operations(spec):
        for status, response in operation.responses.items():
            codes = error_codes(response)
            if codes:
                table[(operation.operation_id, int(status))] = codes
    return table
