"""Renders: submission, idempotency, progress to succeeded, and their errors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import craftkit_spec
from conformance.context import Context
from conformance.failures import expect, expect_error, expect_status, skip
from conformance.rules import rule

STATUSES = craftkit_spec.enum("RenderStatus")
TERMINAL = STATUSES[-2:]
ORDER = {status: min(rank, len(STATUSES) - 2) for rank, status in enumerate(STATUSES)}
"""Forward order of the spec's statuses (queued, rendering, then either ending)."""


def _template(ctx: Context) -> tuple[str, dict[str, Any]]:
    config = ctx.target.config
    return config.template_slug or "invoice", config.template_data or {"suite": "conformance"}


@rule(
    "RENDER-SUBMIT",
    "A new render answers 202 with status queued, an absolute pollUrl, null downloadUrl and errorMessage.",
    source="notes A (POST /v1/templates/{slug}/render)",
    needs=("key", "template", "write"),
)
def submit(ctx: Context) -> None:
    slug, data = _template(ctx)
    exchange = ctx.call("POST", f"/v1/templates/{slug}/render", json={"data": data})
    body = expect_status(exchange, 202, "submitting a render")
    expect(
        body["status"] == "queued",
        f"a new render has status {body['status']!r}",
        '"queued"',
        exchange,
    )
    expect(
        body["pollUrl"].endswith(f"/v1/renders/{body['id']}")
        and body["pollUrl"].startswith("http"),
        f"pollUrl {body['pollUrl']!r} does not address the render",
        "an absolute URL ending /v1/renders/{id}",
        exchange,
    )
    expect(body["downloadUrl"] is None, "a new render has a downloadUrl", "null", exchange)
    expect(body["errorMessage"] is None, "a new render has an errorMessage", "null", exchange)


@rule(
    "RENDER-IDEMPOTENT-PER-PROJECT",
    "An Idempotency-Key is the project's own: another project's submission with the same key makes a render of its own (202), never answers the first project's.",
    source="notes A (idempotency: the same key in the same project; keys are project-scoped)",
    needs=("key", "other_key", "template", "write"),
)
def idempotent_per_project(ctx: Context) -> None:
    slug, data = _template(ctx)
    headers = {"Idempotency-Key": f"conformance-{uuid.uuid4()}"}
    path = f"/v1/templates/{slug}/render"
    first = ctx.call("POST", path, json={"data": data}, headers=headers)
    mine = expect_status(first, 202, "a submission with a new key")
    other = ctx.call("POST", path, json={"data": data}, headers=headers, key=ctx.target.other_key)
    theirs = expect_status(other, 202, "another project's submission with the same key")
    expect(
        theirs["id"] != mine["id"],
        "another project's submission with the same key answered the first project's render",
        "a render of its own",
        other,
    )


@rule(
    "RENDER-IDEMPOTENT",
    "Replaying an Idempotency-Key in the same project answers 200 with the same render (same id, createdAt, pollUrl, as GET shows it), and both answers echo the key.",
    source="notes A (idempotency); notes B.15 (the key echoed)",
    needs=("key", "template", "write"),
)
def idempotent(ctx: Context) -> None:
    slug, data = _template(ctx)
    headers = {"Idempotency-Key": f"conformance-{uuid.uuid4()}"}
    first = ctx.call("POST", f"/v1/templates/{slug}/render", json={"data": data}, headers=headers)
    created = expect_status(first, 202, "the first submission with a new key")
    again = ctx.call("POST", f"/v1/templates/{slug}/render", json={"data": data}, headers=headers)
    replay = expect_status(again, 200, "replaying the same Idempotency-Key")
    expect(
        replay["id"] == created["id"],
        "the replay made a different render",
        f"id {created['id']}",
        again,
    )
    for exchange in (first, again):
        echoed = exchange.response_headers.get("idempotency-key")
        if echoed != headers["Idempotency-Key"]:
            ctx.deviate(
                f"the answer echoes Idempotency-Key {echoed!r}",
                repr(headers["Idempotency-Key"]),
                exchange,
                "notes B.15",
            )
    if replay["status"] != "failed":
        expect(
            replay["errorMessage"] is None,
            f"the replay of a {replay['status']} render has errorMessage {replay['errorMessage']!r}",
            "null",
            again,
        )
    fetched = expect_status(ctx.call("GET", f"/v1/renders/{created['id']}"), 200, "reading it")
    for name in ("createdAt", "pollUrl"):
        for answer, what in ((replay, "the replay"), (fetched, "GET")):
            expect(
                answer[name] == created[name],
                f"{name} is {created[name]!r} on submission but {answer[name]!r} in {what}",
                f"the same {name}",
                ctx.client.transcript.exchanges[-1],
            )


@rule(
    "RENDER-LIFECYCLE",
    "A render moves only forward, queued → rendering → succeeded, and then has completedAt and a downloadUrl.",
    source="notes A (GET /v1/renders/{id})",
    needs=("key", "template", "write"),
)
def lifecycle(ctx: Context) -> None:
    slug, data = _template(ctx)
    body = expect_status(
        ctx.call("POST", f"/v1/templates/{slug}/render", json={"data": data}), 202, "submitting"
    )
    seen = [body["status"]]
    deadline = time.monotonic() + ctx.target.config.render_timeout
    while True:  # poll at least once: a render may already be done when submitted
        exchange = ctx.call("GET", f"/v1/renders/{body['id']}")
        render = expect_status(exchange, 200, "polling the render")
        expect(
            ORDER[render["status"]] >= ORDER[seen[-1]],
            f"the status went back from {seen[-1]} to {render['status']}",
            "queued → rendering → succeeded | failed",
            exchange,
        )
        seen.append(render["status"])
        expect(
            render["pollUrl"] == body["pollUrl"] and render["createdAt"] == body["createdAt"],
            "pollUrl or createdAt differ between the submission and GET",
            f"pollUrl {body['pollUrl']}, createdAt {body['createdAt']}",
            exchange,
        )
        if render["status"] != "failed":
            expect(
                render["errorMessage"] is None,
                f"a {render['status']} render has errorMessage {render['errorMessage']!r}",
                "null",
                exchange,
            )
        if seen[-1] in TERMINAL or time.monotonic() >= deadline:
            break
        if ctx.target.is_mock:
            ctx.target.advance_clock(1)
        else:
            time.sleep(1)
    expect(seen[-1] == "succeeded", f"the render ended {seen[-1]!r} (seen: {seen})", '"succeeded"')
    expect(
        render["completedAt"] is not None,
        "a succeeded render has no completedAt",
        "a timestamp",
        exchange,
    )
    expect(
        render["downloadUrl"] is not None,
        "a succeeded render has no downloadUrl",
        "a URL",
        exchange,
    )


@rule(
    "RENDER-ERRORS",
    "An unknown template is 404 template_not_found, an unknown version 404 version_not_found, a body without data 400 invalid_request.",
    source="notes A (render errors)",
    needs=("key", "write"),
)
def render_errors(ctx: Context) -> None:
    slug, data = _template(ctx)
    unknown = ctx.call(
        "POST",
        f"/v1/templates/conformance-no-such-{uuid.uuid4().hex[:8]}/render",
        json={"data": {}},
    )
    expect_error(unknown, 404, "template_not_found", "an unknown template")
    missing = ctx.call("POST", f"/v1/templates/{slug}/render", json={"options": {}})
    expect_error(missing, 400, "invalid_request", "a body without data")
    if "template" in ctx.target.capabilities:
        version = ctx.call(
            "POST",
            f"/v1/templates/{slug}/render",
            json={"data": data, "options": {"versionNumber": 999999}},
        )
        expect_error(version, 404, "version_not_found", "a version the template does not have")
    bad_json = ctx.call(
        "POST",
        f"/v1/templates/{slug}/render",
        content=b"{",
        headers={"Content-Type": "application/json"},
    )
    expect_error(bad_json, 400, "invalid_json", "a body that is not JSON")


@rule(
    "RENDER-TEMPLATE-STATES",
    "data that breaks the manifest is 400 invalid_input_data; a template without a published version is 409 no_published_version.",
    source="notes A (render errors); the mock's seeded certificate and draft-letter templates",
    needs=("mock",),
)
def template_states(ctx: Context) -> None:
    invalid = ctx.call("POST", "/v1/templates/certificate/render", json={"data": {}})
    if invalid.status == 404:
        skip("the mock's seed has no certificate template")
    error = expect_error(invalid, 400, "invalid_input_data", "data that does not fit the manifest")
    expect(
        isinstance(error.get("issues"), dict),
        "invalid_input_data carries no issues",
        "issues",
        invalid,
    )
    draft = ctx.call("POST", "/v1/templates/draft-letter/render", json={"data": {}})
    if draft.status == 404:
        skip("the mock's seed has no draft-letter template")
    expect_error(draft, 409, "no_published_version", "a template with no published version")
