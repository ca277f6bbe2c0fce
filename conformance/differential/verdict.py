"""Who is right, and how the two answers of one step differ.

``compare`` puts two answers side by side in normal form (``normal``): status, documented
headers, content type, a PDF's completeness, the error code (and a 409's named status), then
every field with correlated ids and tokens and timestamps as relations. ``judge`` names the
source that decides a difference: the resolved spec's ``x-source`` of what the reference
answered, of the header that differs, or the list of error codes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import craftkit_spec
from conformance.client import Exchange
from conformance.differential.normal import (
    Correlator,
    changed_instant,
    differences,
    extra_fields,
    opposite_order,
    without_fields,
)
from conformance.judge import cited, is_decision
from conformance.judge import judge as judge_sources


@functools.cache
def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = craftkit_spec.load_resolved()["paths"]
    return paths


def _response(operation_path: str, method: str, status: int) -> dict[str, Any]:
    operation = _paths().get(operation_path, {}).get(method.lower(), {})
    response: dict[str, Any] = operation.get("responses", {}).get(str(status), {})
    return response


def _sources(operation_path: str, method: str, status: int) -> list[str]:
    operation = _paths().get(operation_path, {}).get(method.lower(), {})
    response = _response(operation_path, method, status)
    sources = response.get("x-source") or operation.get("x-source") or []
    return [str(s) for s in sources]


@functools.cache
def known_codes() -> tuple[list[str], str]:
    """Every error code of the API, and where the list comes from."""
    schema = craftkit_spec.load_resolved()["components"]["schemas"]["ErrorCode"]
    return [str(c) for c in schema["enum"]], ", ".join(schema.get("x-source", ["the spec"]))


def _judged(sources: list[str]) -> tuple[str, bool]:
    """The sources as cited, and whether they make the difference a choice (the one judge)."""
    if not sources:
        return "the spec's declared behaviour", False
    judgement = judge_sources([s for source in sources for s in cited(source)] or sources)
    return ", ".join(sources), not judgement.departs


@dataclass(frozen=True)
class Difference:
    """How one step's two answers differ: what to show, and what a verdict turns on."""

    title: str
    found: list[tuple[str, Any, Any]]
    header: str | None = None
    """The documented header present on one side only (its own source decides)."""
    code: str | None = None
    """The target's error code, where the codes differ."""
    extra: bool = False
    """Only fields the target sends besides the reference's differ."""


def judge(
    operation_path: str,
    method: str,
    reference_status: int,
    target_status: int,
    difference: Difference | None = None,
) -> tuple[str, bool]:
    """The source of what the reference answered, and whether it is only a Part B decision.

    A decision shapes how a request is answered, not whether it succeeds: where one side
    refuses what the other does, the target departs from the contract whatever the answer's
    source. A documented header is judged by its own source (or, with none, whether the
    spec requires it), and an error code the API gives another meaning departs from the
    list of codes whatever decided the status.
    """
    if (reference_status < 400) != (target_status < 400):
        operation = _paths().get(operation_path, {}).get(method.lower(), {})
        facts = [str(s) for s in operation.get("x-source", []) if not is_decision(str(s))]
        return ", ".join(facts) or "the operation's declared behaviour", False
    response = _response(operation_path, method, reference_status)
    if difference is not None and difference.extra:
        return "the spec closes no object: a deployment may send fields besides its own", True
    if difference is not None and difference.header is not None:
        header = response.get("headers", {}).get(difference.header, {})
        if header.get("x-source"):
            return _judged([str(s) for s in header["x-source"]])
        if not header.get("required", False):
            return f"the spec makes {difference.header} optional", True
    if difference is not None and difference.code is not None:
        codes, source = known_codes()
        if difference.code in codes and difference.code not in craftkit_spec.error_codes(response):
            return f"{source}: {difference.code} is not a code of this answer", False
    return _judged(_sources(operation_path, method, reference_status))


RENDER_STATUSES: tuple[str, ...] = craftkit_spec.enum("RenderStatus")


def _statuses_named(exchange: Exchange) -> list[str]:
    """The render statuses an error's message names."""
    body = exchange.json()
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = message if isinstance(message, str) else ""
    return [status for status in RENDER_STATUSES if re.search(rf"\b{status}\b", text)]


def error_code(exchange: Exchange) -> str | None:
    """An error answer's code, if it has one in the envelope."""
    body = exchange.json()
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None


def documented_headers(operation_path: str, method: str, status: int) -> tuple[str, ...]:
    """The headers the spec documents for an answer (their presence is the contract)."""
    operation = _paths().get(operation_path, {}).get(method.lower(), {})
    return tuple(operation.get("responses", {}).get(str(status), {}).get("headers", {}))


def stated_headers(operation_path: str, method: str, status: int) -> tuple[str, ...]:
    """The documented headers whose value the spec states, not only their presence.

    A ``pattern``, ``const`` or ``enum`` states it: their values are compared too.
    """
    operation = _paths().get(operation_path, {}).get(method.lower(), {})
    headers = operation.get("responses", {}).get(str(status), {}).get("headers", {})
    return tuple(
        name
        for name, header in headers.items()
        if {"pattern", "const", "enum"} & set(craftkit_spec.merged(header.get("schema", {})))
    )


def compare(
    target: Correlator,
    reference: Correlator,
    ours: Exchange,
    theirs: Exchange,
    documented: tuple[str, ...] = (),
    step: str = "",
    stated: tuple[str, ...] = (),
) -> Difference | None:
    """How the two answers of one step differ in normal form; ``None`` when they agree.

    ``documented`` names the headers the spec gives this answer: each must be present on
    both sides or on neither (values such as a length or a wait are each side's own), and
    those of ``stated``, whose value the spec states (``Content-Disposition``), must have
    the same value once ids are correlated.
    ``step`` names where timestamps were met, for the report.
    """
    if ours.status != theirs.status:
        return Difference("the status differs", [("status", ours.status, theirs.status)])
    for name in documented:
        present = (name.lower() in ours.response_headers, name.lower() in theirs.response_headers)
        if present[0] != present[1]:
            return Difference(
                "a documented header differs", [(f"header {name}", *present)], header=name
            )
        if all(present) and name in stated:
            values = (
                target.text(ours.response_headers[name.lower()], f"header {name}"),
                reference.text(theirs.response_headers[name.lower()], f"header {name}"),
            )
            if values[0] != values[1]:
                return Difference(
                    "a documented header's value differs",
                    [(f"header {name}", *values)],
                    header=name,
                )
    ours_type = ours.response_headers.get("content-type", "").split(";")[0]
    theirs_type = theirs.response_headers.get("content-type", "").split(";")[0]
    if ours_type != theirs_type:
        return Difference("the content type differs", [("content-type", ours_type, theirs_type)])
    if ours_type == "application/pdf":
        found = [
            (what, check(ours), check(theirs))
            for what, check in _PDF_CHECKS.items()
            if check(ours) != check(theirs)
        ]
        return Difference("the PDF answer differs", found) if found else None
    if ours_type != "application/json":
        return None
    if ours.status >= 400:
        a, b = error_code(ours), error_code(theirs)
        if a != b:
            return Difference("the error code differs", [("error.code", a, b)], code=a)
        if ours.status == 409:
            # The contract has a 409's message name the render's current status.
            named = (_statuses_named(ours), _statuses_named(theirs))
            if named[0] != named[1]:
                return Difference("the message names another status", [("error.message", *named)])
        return None
    seen = (len(target.times), len(reference.times))
    root = f"{step}: $" if step else "$"
    ours_body, theirs_body = ours.json(), theirs.json()
    # Fields only the target sends are set aside before anything is named or timed, so
    # the rest still lines up; they are reported last, as the deployment's own.
    extra = extra_fields(ours_body, theirs_body)
    if extra:
        ours_body = without_fields(ours_body, {path for path, _ in extra})
    found = differences(target.normal(ours_body, root), reference.normal(theirs_body, root))
    if found:
        return Difference("the answer differs", found)
    flipped = opposite_order(target, reference, min(seen))
    if flipped is not None:
        return Difference(
            "two timestamps are in opposite order",
            [(f"{flipped[0]} vs {flipped[1]}", "before", "after")],
        )
    changed = changed_instant(target, reference, min(seen))
    if changed is None and extra:
        return Difference(
            "the target sends fields the reference does not",
            [(path, value, "(absent)") for path, value in extra],
            extra=True,
        )
    if changed is not None:
        return Difference(
            "one thing's timestamp changed between answers",
            [(f"{changed[0]}, then at {changed[1]}", "changed", "unchanged")],
        )
    return None


def _disposition(exchange: Exchange) -> str:
    return exchange.response_headers.get("content-disposition", "").split(";")[0].strip()


def is_whole_pdf(exchange: Exchange) -> bool:
    """Whether the body is a PDF from its header to its end marker (not truncated)."""
    body = exchange.response_body
    return body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")


_PDF_CHECKS: dict[str, Callable[[Exchange], object]] = {
    "a whole PDF (%PDF- … %%EOF)": is_whole_pdf,
    "Content-Disposition": _disposition,
    "Content-Length given": lambda e: "content-length" in e.response_headers,
}
"""What two PDF answers must share (their bytes are each implementation's own)."""
