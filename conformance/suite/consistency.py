"""One truth across operations: what two calls both return agrees, and parents are checked.

A share is returned by create (or email), by the list and by revoke; each value they share
must be the same everywhere. A share is reached only through its own render, even within
one project. And a recipient's HEAD is not a recipient's visit.
"""

from __future__ import annotations

from typing import Any

from conformance.context import Context
from conformance.failures import expect, expect_error, expect_status, skip
from conformance.rules import rule
from conformance.target import RESEND_TEST_RECIPIENT


def _row(ctx: Context, render_id: str, share_id: str) -> dict[str, Any]:
    rows = [row for row in ctx.list_shares(render_id) if row["id"] == share_id]
    expect(len(rows) == 1, f"the share {share_id} is listed {len(rows)} times", "once")
    return rows[0]


def _agree(ctx: Context, what: str, first: dict[str, Any], then: dict[str, Any]) -> None:
    for name in first.keys() & then.keys():
        expect(
            first[name] == then[name],
            f"{name} is {first[name]!r} in {what} but {then[name]!r} in the list",
            f"the same {name} everywhere",
            ctx.client.transcript.exchanges[-1],
        )


@rule(
    "VALUES-AGREE",
    "Create, email, list and revoke return the same id, token, URL, createdAt, expiresAt and revokedAt for one share.",
    source="seed 000 (the share's fields in each response); seed 001 (the list)",
    needs=("key", "render", "write"),
)
def values_agree(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    created = ctx.create_share(
        render_id,
        message="Agreed",
        recipientEmail=RESEND_TEST_RECIPIENT,
        expiresAt="2099-01-02T03:04:05.678Z",
    )
    _agree(ctx, "the create answer", created, _row(ctx, render_id, created["id"]))
    revoke = ctx.revoke(render_id, created["id"])
    revoked = expect_status(revoke, 200, "revoking the share")
    listed = _row(ctx, render_id, created["id"])
    expect(
        listed["revokedAt"] == revoked["revokedAt"],
        f"revokedAt is {revoked['revokedAt']!r} in the revoke answer but "
        f"{listed['revokedAt']!r} in the list",
        "the same revokedAt",
        ctx.client.transcript.exchanges[-1],
    )
    if "email" not in ctx.target.capabilities:
        return
    sent = ctx.call("POST", f"/v1/renders/{render_id}/email", json={"to": RESEND_TEST_RECIPIENT})
    if sent.status == 503 and not ctx.target.is_mock:
        ctx.note(
            "email is not configured on the target: the email answer was not compared (notes B.11)"
        )
        return
    emailed = expect_status(sent, 201, "emailing the render")
    ctx.target.remember_share(render_id, emailed["id"])
    _agree(ctx, "the email answer", emailed, _row(ctx, render_id, emailed["id"]))


@rule(
    "WRONG-PARENT-404",
    "A share reached through another render of the same project is 404 not_found, and the share is left as it was.",
    source="seed 000 (404 not_found: unknown share for the render)",
    needs=("key", "render", "write"),
)
def wrong_parent(ctx: Context) -> None:
    owner = ctx.target.fresh_render()
    other = ctx.target.second_render()
    if other is None:
        skip("a second render of the key's project is needed: pass --not-ready-render-id")
    created = ctx.create_share(owner, message="mine")
    wrong = ctx.revoke(other, created["id"])
    expect_error(wrong, 404, "not_found", "revoking a share through another render")
    listed = _row(ctx, owner, created["id"])
    expect(
        listed["revokedAt"] is None,
        "a revoke through the wrong render revoked the share",
        "revokedAt null",
        ctx.client.transcript.exchanges[-1],
    )
    expect_status(ctx.open_link(ctx.share_url(created)), 200, "opening the link afterwards")


@rule(
    "LINK-HEAD-NOT-COUNTED",
    "HEAD on a share link or its download answers as GET would and counts no view or download.",
    source="notes B.12",
    needs=("key", "render", "write"),
)
def head_not_counted(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    created = ctx.create_share(render_id)
    url = ctx.share_url(created)
    for suffix in ("", "/download"):
        head = ctx.client.request("HEAD", url + suffix)
        expect(
            head.status == 200, f"HEAD {suffix or 'link'} answered {head.status}", "HTTP 200", head
        )
    clicks = _row(ctx, render_id, created["id"])["clickCount"]
    expect(clicks == 0, f"HEAD requests counted {clicks} views", "clickCount 0")
    engagement = ctx.call("GET", f"/v1/renders/{render_id}/engagement")
    if engagement.status == 404:
        skip("no engagement surface to read downloads from; views were checked")
    counts = expect_status(engagement, 200, "reading engagement")["counts"]
    expect(
        counts.get("downloaded") == 0,
        f"HEAD on the download counted {counts.get('downloaded')} downloads",
        "downloaded 0",
        engagement,
    )
