"""General behaviour: health, unknown ids, oversize bodies, routing errors in the envelope."""

from __future__ import annotations

import uuid

import craftkit_spec
from conformance.context import Context
from conformance.failures import expect, expect_error, expect_status
from conformance.rules import rule


@rule("HEALTH", 'GET /health answers 200 {"status": "ok"}.', source="notes A", needs=())
def health(ctx: Context) -> None:
    exchange = ctx.call("GET", "/health", key=None)
    body = expect_status(exchange, 200, "GET /health")
    expect(body == {"status": "ok"}, f"/health answered {body}", '{"status": "ok"}', exchange)


@rule(
    "UNKNOWN-RENDER-404",
    "A render id that names nothing is 404 not_found on every render operation.",
    source="seed 000, seed 002 (404 not_found)",
)
def unknown_render(ctx: Context) -> None:
    missing = f"/v1/renders/{uuid.uuid4()}"
    for method, suffix, body in (
        ("GET", "", None),
        ("GET", "/download", None),
        ("GET", "/shares", None),
        ("POST", "/shares", {}),
        ("POST", "/email", {"to": "delivered@resend.dev"}),
        ("GET", "/engagement", None),
        ("POST", "/events", {"eventType": "viewed"}),
    ):
        exchange = ctx.call(method, missing + suffix, json=body)
        if suffix == "/email" and ctx.email_off_first(exchange, "emailing an unknown render"):
            continue
        expect_error(exchange, 404, "not_found", "an unknown render")


@rule(
    "MALFORMED-ID-404",
    "An id that is not a UUID is 404 not_found, never a 5xx.",
    source="assumption (an id that cannot exist is an unknown resource: openapi.yaml RenderId)",
)
def malformed_id(ctx: Context) -> None:
    for render_id in ("not-a-uuid", "0193c2c3", "%F0%9F%98%80", "x" * 300):
        expect_error(
            ctx.call("GET", f"/v1/renders/{render_id}"),
            404,
            "not_found",
            f"the id {render_id[:20]!r}",
        )


@rule(
    "PAYLOAD-TOO-LARGE",
    "A body over 1 MiB is 413 payload_too_large.",
    source="notes B.6",
    needs=("key", "render", "write"),
)
def payload_too_large(ctx: Context) -> None:
    body = b'{"message": "' + b"x" * craftkit_spec.body_limit() + b'"}'
    render_id = ctx.target.render()
    for path in (
        f"/v1/renders/{render_id}/shares",
        f"/v1/renders/{render_id}/email",
        f"/v1/renders/{render_id}/events",
        "/v1/templates/invoice/render",
    ):
        exchange = ctx.call(
            "POST", path, content=body, headers={"Content-Type": "application/json"}
        )
        expect_error(exchange, 413, "payload_too_large", f"a body over 1 MiB to {path}")


@rule(
    "ROUTING-ERRORS",
    "An unknown path is 404 and a wrong method 405 with Allow, both in the error envelope.",
    source="notes B.10 (405 with Allow for a known path, 404 for an unknown one)",
)
def routing_errors(ctx: Context) -> None:
    expect_error(
        ctx.call("GET", "/v1/conformance-no-such-path"), 404, "not_found", "an unknown path"
    )
    wrong = ctx.call("PUT", f"/v1/renders/{uuid.uuid4()}/shares", json={})
    expect_error(wrong, 405, "method_not_allowed", "PUT on the share list")
    expect(
        "allow" in wrong.response_headers, "405 without an Allow header", "Allow: GET, POST", wrong
    )
