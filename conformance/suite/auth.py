"""Authentication: the key is checked first, and its faults answer 401 (403 for a deleted project)."""

from __future__ import annotations

import uuid

import craftkit_spec
from conformance.context import Context
from conformance.failures import expect_error
from conformance.rules import rule

UNKNOWN_KEY = "ck_test_conformance_unknown_000000000000"


def authenticated_calls(ctx: Context, render_id: str | None = None) -> list[tuple[str, str]]:
    """(method, path) for every operation that takes the key, its ids filled in."""
    filler = {"id": render_id or str(uuid.uuid4()), "shareId": str(uuid.uuid4()), "slug": "invoice"}
    calls = []
    for operation in craftkit_spec.iter_operations(craftkit_spec.load_resolved()):
        if operation.is_authenticated:
            calls.append((operation.method.upper(), operation.path.format(**filler)))
    return calls


@rule(
    "AUTH-MISSING-KEY",
    "Every authenticated operation answers 401 unauthorized without an Authorization header.",
    source="seed 000, seed 002 (error tables); notes A (auth)",
    needs=(),
)
def missing_key(ctx: Context) -> None:
    for method, path in authenticated_calls(ctx):
        body: dict[str, str] | None = {} if method == "POST" else None
        expect_error(ctx.call(method, path, key=None, json=body), 401, "unauthorized", "no key")


@rule(
    "AUTH-MALFORMED-KEY",
    "A malformed Authorization header (wrong scheme, no key) answers 401 unauthorized.",
    source="seed 000 (401: missing/invalid/revoked key); notes A",
    needs=(),
)
def malformed_key(ctx: Context) -> None:
    path = f"/v1/renders/{uuid.uuid4()}/shares"
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Token ck_test_abc", "ck_test_abc"):
        exchange = ctx.call("GET", path, key=None, headers={"Authorization": header})
        expect_error(exchange, 401, "unauthorized", f"Authorization: {header}")


@rule(
    "AUTH-UNKNOWN-KEY",
    "A well-formed key that names no project answers 401 unauthorized.",
    source="seed 000, seed 002 (401); notes A",
    needs=(),
)
def unknown_key(ctx: Context) -> None:
    exchange = ctx.call("GET", f"/v1/renders/{uuid.uuid4()}", key=UNKNOWN_KEY)
    expect_error(exchange, 401, "unauthorized", "an unknown key")


@rule(
    "AUTH-FIRST",
    "Authentication is checked before anything else: a bad key with a bad body is 401, not 400.",
    source="notes A (a missing, malformed or unknown key is 401; notes B.2 makes auth first the one ordering every deployment keeps)",
    needs=(),
)
def auth_first(ctx: Context) -> None:
    path = f"/v1/renders/{uuid.uuid4()}/shares"
    exchange = ctx.call(
        "POST", path, key=None, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    expect_error(exchange, 401, "unauthorized", "no key and an invalid JSON body")
    exchange = ctx.call("POST", path, key=UNKNOWN_KEY, json={"channel": "fax"})
    expect_error(exchange, 401, "unauthorized", "an unknown key and an invalid body")


@rule(
    "AUTH-DELETED-PROJECT",
    "A key whose project was deleted answers 403 forbidden.",
    source="seed 002 (403 forbidden); notes A",
    needs=("mock",),
)
def deleted_project(ctx: Context) -> None:
    project_id, key = ctx.target.new_project()
    render_id = ctx.target.mock_render(key=key)
    ctx.target.control("DELETE", f"/projects/{project_id}")
    for method, path in authenticated_calls(ctx, render_id):
        body: dict[str, str] | None = {} if method == "POST" else None
        expect_error(
            ctx.call(method, path, key=key, json=body), 403, "forbidden", "a deleted project's key"
        )
