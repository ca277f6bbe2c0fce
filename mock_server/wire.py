"""Reading requests and writing responses: the HTTP edge every endpoint shares.

Authentication, the bounded JSON body, the caller's address and the JSON response class
live here once, so endpoints only translate and the store never sees an HTTP object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mock_server import errors
from mock_server.store import Link, Sandbox, Store
from mock_server.validation import RequestValidator


class JSONResponse(Response):
    """A JSON response serialised with orjson (several times faster than the stdlib)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise the content."""
        return orjson.dumps(content)


def store_of(request: Request) -> Store:
    """The app's store."""
    store: Store = request.app.state.store
    return store


def bearer_key(header: str) -> str | None:
    """The key of ``Bearer <key>`` (the scheme in any case, as HTTP says); ``None`` if malformed."""
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        return None
    return key


SANDBOX_STATE = "craftkit_sandbox"
"""Where the gate leaves the sandbox it found for the request's key: ``(key, sandbox)``."""
LINK_STATE = "craftkit_link"
"""Where the gate leaves what it found for a share link's token: ``(token, link)``."""


def looked_up_link(request: Request, token: str) -> Link | None:
    """The gate's lookup of this token, if it made one."""
    found = request.scope.get("state", {}).get(LINK_STATE)
    return found[1] if found is not None and found[0] == token else None


async def authenticate(request: Request) -> Sandbox:
    """The sandbox of the request's bearer key (the gate has usually looked it up already).

    401 when the key is missing, malformed or unknown; 403 for a deleted project.
    """
    header = request.headers.get("authorization")
    if header is None:
        raise errors.Unauthorized("Missing Authorization header")
    key = bearer_key(header)
    if key is None:
        raise errors.Unauthorized("Authorization must be 'Bearer <API key>'")
    store = store_of(request)
    found = request.scope.get("state", {}).get(SANDBOX_STATE)
    if found is not None and found[0] == key:
        return store.authorize(found[1])
    return await store.authenticate(key)


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


def parse_json(
    raw: bytes,
    validator: RequestValidator,
    operation_id: str,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Parse a body and check it, and the operation's headers, against the spec.

    ``invalid_json`` when it is not JSON (bad syntax, invalid UTF-8, lone surrogates, nesting
    past 1024 levels), first; then ``invalid_request`` with Zod-style issues when a declared
    header or the body does not fit.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidJson(f"Body is not valid JSON: {exc}") from None
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
    raw = await read_body(request, store_of(request).settings.max_body_bytes)
    if optional and not raw.strip():
        return {}
    checker: RequestValidator = getattr(request.app.state, validator)
    return parse_json(raw, checker, operation_id, request.headers)


def client_ip(request: Request) -> str:
    """The caller's address: the first X-Forwarded-For hop when trusted, else the peer."""
    if store_of(request).settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


def origin(request: Request) -> str:
    """The origin the request was sent to (``http://127.0.0.1:4010``)."""
    return f"{request.url.scheme}://{request.url.netloc}"
