"""Reading requests: the caller the middleware found, the bounded JSON body, the address.

Endpoints read every request through these, so the store never sees an HTTP object and no
endpoint looks a key up again: the middleware left the caller (and a share link's lookup)
on the request's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request

from mock_server.model import errors
from mock_server.operations.callers import Caller, Link, NoKey, ProjectView, require_project
from mock_server.operations.store import Store
from mock_server.operations.validation import RequestValidator
from mock_server.settings import Settings

CALLER = "craftkit_caller"
"""Where the middleware leaves the request's ``Caller`` on the scope's state."""
LINK = "craftkit_link"
"""Where the middleware leaves a share link's lookup: ``(token, Link | None)``."""


def store_of(request: Request) -> Store:
    """The app's store."""
    store: Store = request.app.state.store
    return store


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def bearer_key(header: str) -> str | None:
    """The key of ``Bearer <key>`` (the scheme in any case, as HTTP says); ``None`` if malformed."""
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        return None
    return key


def caller(request: Request) -> Caller:
    """Who the request comes from, as the middleware found it."""
    found: Caller = request.scope.get("state", {}).get(CALLER, NoKey())
    return found


def project(request: Request) -> ProjectView:
    """The caller's project: ``401`` without a valid key, ``403`` when it was deleted."""
    return require_project(caller(request))


def looked_up_link(request: Request, token: str) -> Link | None:
    """The middleware's lookup of this token, if it made one."""
    found = request.scope.get("state", {}).get(LINK)
    return found[1] if found is not None and found[0] == token else None


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes whether or not it was announced."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.PayloadTooLarge(f"Request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"Request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _values_within(value: Any, limit: int) -> bool:
    """Whether a parsed body holds at most ``limit`` JSON values (keys not counted)."""
    pending, seen = [value], 0
    while pending:
        item = pending.pop()
        seen += 1
        if seen > limit:
            return False
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def parse_json(
    raw: bytes,
    validator: RequestValidator,
    operation_id: str,
    headers: Mapping[str, str] | None = None,
    max_values: int | None = None,
) -> dict[str, Any]:
    """Parse a body and check it, and the operation's headers, against the spec.

    ``invalid_json`` when it is not JSON (bad syntax, invalid UTF-8, lone surrogates, nesting
    past 1024 levels), first; ``413`` when it holds more than ``max_values`` values (a
    megabyte of empty arrays is 24 MB of objects); then ``invalid_request`` with Zod-style
    issues when a declared header or the body does not fit.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidJson(f"Body is not valid JSON: {exc}") from None
    # Each value takes a character and a separator: a shorter body cannot hold too many.
    if (
        max_values is not None
        and len(raw) >= 2 * max_values
        and not _values_within(body, max_values)
    ):
        raise errors.PayloadTooLarge(f"Request body holds more than {max_values} JSON values")
    issues = validator.header_issues(operation_id, headers or {})
    if issues is None:
        issues = validator.issues(operation_id, body)
    if issues is not None:
        raise errors.InvalidRequest(issues=issues)
    assert isinstance(body, dict)  # the schemas of every request body are objects
    return body


async def read_json(
    request: Request, operation_id: str, *, validator: str = "validator", optional: bool = False
) -> dict[str, Any]:
    """Read the body and check it against ``operation_id``'s schema.

    ``validator`` names the app-state validator (the public API's, or the control API's);
    ``optional`` bodies may be empty and then read as ``{}``.
    """
    settings = settings_of(request)
    raw = await read_body(request, settings.max_body_bytes)
    if optional and not raw.strip():
        return {}
    checker: RequestValidator = getattr(request.app.state, validator)
    return parse_json(raw, checker, operation_id, request.headers, settings.max_body_values)


def client_ip(request: Request) -> str:
    """The caller's address: the first X-Forwarded-For hop when trusted, else the peer."""
    if settings_of(request).trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


def origin(request: Request) -> str:
    """The origin the request was sent to (``http://127.0.0.1:4010``)."""
    return f"{request.url.scheme}://{request.url.netloc}"
