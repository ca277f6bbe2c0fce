"""Failure paths only the mock can be made to take: throttling, storage and queue faults."""

from __future__ import annotations

from conformance.context import Context
from conformance.failures import expect, expect_error, expect_status
from conformance.rules import rule
from conformance.suite.auth import authenticated_calls


@rule(
    "FAULT-RATE-LIMIT",
    "Throttled requests answer 429 rate_limited with a Retry-After in seconds.",
    source="notes A (rate_limited); notes B.7 (429 with Retry-After)",
    needs=("mock",),
)
def rate_limit(ctx: Context) -> None:
    render_id = ctx.target.render()
    created = ctx.create_share(render_id)
    path = f"/v1/renders/{render_id}"
    ctx.target.set_faults(rateLimitPerMinute=2)
    try:
        answers = [ctx.call("GET", path) for _ in range(3)]
        # One window per project: its keyed calls, whatever they ask for, and its share links.
        over = [
            ctx.call(method, url, json={} if method == "POST" else None)
            for method, url in authenticated_calls(ctx, render_id)
        ]
        over += [
            ctx.call("GET", "/health"),
            ctx.open_link(ctx.share_url(created)),
            ctx.open_link(ctx.share_url(created), "/download"),
        ]
        # Another project's window is its own.
        if ctx.target.other_key:
            other = ctx.call("GET", "/health", key=ctx.target.other_key)
            expect_status(other, 200, "a call of another project while this one is throttled")
    finally:
        ctx.target.set_faults(rateLimitPerMinute=None)
    expect(
        [a.status for a in answers[:2]] == [200, 200],
        "requests under the limit were refused",
        "HTTP 200 twice",
        answers[0],
    )
    for limited in [answers[2], *over]:
        expect_error(limited, 429, "rate_limited", "a request over the limit")
        retry = limited.response_headers.get("retry-after", "")
        expect(retry.isdigit(), f"Retry-After is {retry!r}", "a whole number of seconds", limited)


@rule(
    "FAULT-STORAGE",
    "A storage read failure during download is a clean 500 internal in the envelope, never a partial 200.",
    source="seed 002 (500 internal; the asset is buffered)",
    needs=("mock",),
)
def storage(ctx: Context) -> None:
    render_id = ctx.target.render()
    created = ctx.create_share(render_id)
    ctx.target.set_faults(storageFails=True)
    try:
        exchange = ctx.call("GET", f"/v1/renders/{render_id}/download")
        shared = ctx.open_link(ctx.share_url(created), "/download")
    finally:
        ctx.target.set_faults(storageFails=False)
    expect_error(exchange, 500, "internal", "a download while storage fails")
    expect_error(shared, 500, "internal", "a shared download while storage fails")


@rule(
    "FAULT-QUEUE",
    "A submission the queue cannot take is 503 queue_unavailable.",
    source="notes A (503 queue_unavailable)",
    needs=("mock",),
)
def queue(ctx: Context) -> None:
    ctx.target.set_faults(queueUnavailable=True)
    try:
        exchange = ctx.call("POST", "/v1/templates/invoice/render", json={"data": {}})
    finally:
        ctx.target.set_faults(queueUnavailable=False)
    expect_error(exchange, 503, "queue_unavailable", "a render while the queue is down")
    after = ctx.call("POST", "/v1/templates/invoice/render", json={"data": {}})
    expect_status(after, 202, "a render once the queue is back")
