"""The public share link: opens while active, counts views, and 404s once revoked or expired."""

from __future__ import annotations

import html
from datetime import UTC, timedelta

import craftkit_spec
from conformance.context import Context
from conformance.failures import expect, expect_status, skip
from conformance.rules import rule
from conformance.suite.downloads import check_pdf
from conformance.target import VISITORS

WINDOW = craftkit_spec.dedup_window_seconds()
WINDOW_MINUTES = WINDOW // 60


def _clicks(ctx: Context, render_id: str, share_id: str) -> int:
    row = next(r for r in ctx.list_shares(render_id) if r["id"] == share_id)
    count: int = row["clickCount"]
    return count


@rule(
    "LINK-OPENS",
    "An active share link answers 200 with an HTML page that shows the message.",
    source="seed 000 (shareUrl); notes B.1 (the page)",
    needs=("key", "render", "write"),
)
def link_opens(ctx: Context) -> None:
    created = ctx.create_share(ctx.target.render(), message="Signed <copy> & sealed")
    made = ctx.client.transcript.exchanges[-1]
    expect(
        created["shareUrl"].endswith(f"/share/{created['shareToken']}"),
        f"shareUrl {created['shareUrl']!r} is not {{shareBase}}/share/{{shareToken}}",
        "{shareBase}/share/{shareToken}",
        made,
        "seed 000 (shareUrl)",
    )
    page = ctx.open_link(ctx.share_url(created))
    expect_status(page, 200, "opening an active share link", "notes B.1")
    expect(
        page.response_headers.get("content-type", "").startswith("text/html"),
        f"the page is {page.response_headers.get('content-type')!r}",
        "text/html",
        page,
        "notes B.1",
    )
    text = page.response_body.decode("utf-8", errors="replace")
    expect(
        html.escape("Signed <copy> & sealed") in text,
        "the page does not show the message (HTML-escaped)",
        "the message",
        page,
        "notes B.1",
    )


@rule(
    "LINK-DOWNLOAD",
    "An active share link's /download gives the PDF with the documented headers.",
    source="notes B.1 (the link's download); seed 002 (the PDF and its headers)",
    needs=("key", "render", "write"),
)
def link_download(ctx: Context) -> None:
    render_id = ctx.target.render()
    created = ctx.create_share(render_id)
    check_pdf(
        ctx.open_link(ctx.share_url(created), "/download"),
        render_id,
        "downloading through the link",
        status_source="notes B.1",
    )


@rule(
    "LINK-REVOKED-404",
    "A revoked share's link stops resolving at once: 404.",
    source="seed 000 (the public URL stops resolving immediately)",
    needs=("key", "render", "write"),
)
def revoked_link(ctx: Context) -> None:
    render_id = ctx.target.render()
    created = ctx.create_share(render_id)
    expect_status(ctx.open_link(ctx.share_url(created)), 200, "opening the link before revoking")
    expect_status(ctx.revoke(render_id, created["id"]), 200, "revoking")
    for suffix in ("", "/download"):
        gone = ctx.open_link(ctx.share_url(created), suffix)
        expect(
            gone.status == 404, f"a revoked link{suffix} answers {gone.status}", "HTTP 404", gone
        )


@rule(
    "LINK-EXPIRED-404",
    "A share whose expiresAt has passed is created, stays listed with revokedAt null, and its link is 404.",
    source="seed 000 (expiresAt); notes B.3 (a past expiry is accepted), B.4",
    needs=("key", "render", "write"),
)
def expired_link(ctx: Context) -> None:
    render_id = ctx.target.render()
    made = ctx.call(
        "POST",
        f"/v1/renders/{render_id}/shares",
        json={"expiresAt": "2001-01-01T00:00:00Z"},
    )
    created = expect_status(made, 201, "creating a share that expired already", "notes B.3")
    ctx.target.remember_share(render_id, created["id"], ctx.target.key)
    gone = ctx.open_link(ctx.share_url(created))
    expect(
        gone.status == 404, f"an expired link answers {gone.status}", "HTTP 404", gone, "seed 000"
    )
    row = next((r for r in ctx.list_shares(render_id) if r["id"] == created["id"]), None)
    expect(row is not None, "an expired share is left out of the list", "listed", None, "notes B.4")
    assert row is not None
    expect(
        row["revokedAt"] is None,
        "an expired share shows revokedAt",
        "null (expired is not revoked)",
        None,
        "notes B.4",
    )
    revoked = ctx.revoke(render_id, created["id"])
    expect_status(revoked, 200, "revoking an expired share once", "notes B.4")


@rule(
    "LINK-EXPIRES-ON-TIME",
    "A share resolves until its expiresAt and not from that instant on (the mock's clock moved past it).",
    source="seed 000 (after this instant the share resolves to not-found)",
    needs=("mock",),
)
def expires_on_time(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    now = ctx.target.clock_now()
    expiry = (now + timedelta(seconds=60)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    created = ctx.create_share(render_id, expiresAt=expiry)
    expect_status(ctx.open_link(ctx.share_url(created)), 200, "opening the link before its expiry")
    ctx.target.advance_clock(61)
    gone = ctx.open_link(ctx.share_url(created))
    expect(gone.status == 404, f"the link answers {gone.status} after its expiry", "HTTP 404", gone)


@rule(
    "LINK-NOT-FOUND-UNIFORM",
    "Unknown, revoked and expired links answer the very same 404, so none can be told apart.",
    source="notes B.1; notes B.3 (a past expiry is accepted)",
    needs=("key", "render", "write"),
)
def uniform_404(ctx: Context) -> None:
    render_id = ctx.target.render()
    revoked = ctx.create_share(render_id)
    ctx.revoke(render_id, revoked["id"])
    unknown = dict(revoked, shareToken="cks_" + "0" * 43)
    dead = [unknown, revoked]
    made = ctx.call(
        "POST", f"/v1/renders/{render_id}/shares", json={"expiresAt": "2001-01-01T00:00:00Z"}
    )
    if made.status == 201:
        dead.append(made.json())
        ctx.target.remember_share(render_id, dead[-1]["id"])
    else:  # no expired share to open: the unknown and the revoked link are still compared
        ctx.deviate("a share that expired already is refused", "HTTP 201", made, "notes B.3")
    answers = [ctx.open_link(ctx.share_url(share)) for share in dead]
    shapes = {(a.status, a.response_body) for a in answers}
    expect(
        len(shapes) == 1,
        "unknown, revoked and expired links answer differently",
        "one identical 404",
        answers[-1],
    )
    expect(
        answers[0].status == 404,
        f"an unknown link answers {answers[0].status}",
        "HTTP 404",
        answers[0],
    )


@rule(
    "LINK-CLICK-COUNT",
    f"Opening a link counts one view in clickCount; repeated views from one address within {WINDOW_MINUTES} minutes count once.",
    source=f"seed 001 (clickCount); notes A (de-duplicated within {WINDOW_MINUTES} minutes)",
    needs=("key", "render", "write"),
)
def click_count(ctx: Context) -> None:
    render_id = ctx.target.render()
    created = ctx.create_share(render_id)
    expect(_clicks(ctx, render_id, created["id"]) == 0, "a new share has clicks", "clickCount 0")
    for _ in range(3):
        expect_status(ctx.open_link(ctx.share_url(created)), 200, "opening the link")
    count = _clicks(ctx, render_id, created["id"])
    expect(
        count == 1,
        f"three views from one address counted {count}",
        "clickCount 1",
        ctx.client.transcript.exchanges[-1],
    )


@rule(
    "LINK-CLICK-WINDOW",
    f"A view from the same address counts again once {WINDOW_MINUTES} minutes have passed, not before.",
    source=f"notes A (de-duplicated within {WINDOW_MINUTES} minutes)",
    needs=("mock",),
)
def click_window(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    created = ctx.create_share(render_id)
    ctx.open_link(ctx.share_url(created))
    ctx.target.advance_clock(WINDOW - 1)
    ctx.open_link(ctx.share_url(created))
    expect(
        _clicks(ctx, render_id, created["id"]) == 1,
        f"a view {WINDOW - 1} s later counted again",
        "clickCount 1",
    )
    ctx.target.advance_clock(2)
    ctx.open_link(ctx.share_url(created))
    count = _clicks(ctx, render_id, created["id"])
    expect(
        count == 2,
        f"a view {WINDOW + 1} s later left clickCount {count}",
        "clickCount 2",
        ctx.client.transcript.exchanges[-1],
    )


@rule(
    "LINK-CLICK-PER-ADDRESS",
    "Views from two addresses count twice within the de-duplication window (the address is part of what is de-duplicated).",
    source="notes A (de-duplicated per share, event type and source IP)",
    needs=("key", "render", "write"),
)
def click_per_address(ctx: Context) -> None:
    render_id = ctx.target.render()
    created = ctx.create_share(render_id)
    for address in VISITORS:
        page = ctx.client.request(
            "GET", ctx.share_url(created), headers={"X-Forwarded-For": address}
        )
        expect_status(page, 200, f"opening the link from {address}")
    count = _clicks(ctx, render_id, created["id"])
    if count == 1 and not ctx.target.is_mock:
        skip(
            "views from two X-Forwarded-For addresses counted once: the deployment either takes "
            "no X-Forwarded-For (its proxy decides the address) or ignores the address when "
            "it de-duplicates; from outside the two cannot be told apart"
        )
    expect(
        count == 2,
        f"views from two addresses (one of them twice) counted {count}",
        "clickCount 2",
        ctx.client.transcript.exchanges[-1],
    )
