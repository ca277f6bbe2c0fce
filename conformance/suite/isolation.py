"""Projects never see each other: another project's render or share is 404, never 403."""

from __future__ import annotations

from conformance.context import Context
from conformance.failures import expect, expect_error
from conformance.rules import rule
from conformance.target import RESEND_TEST_RECIPIENT

_READS: tuple[tuple[str, str], ...] = (
    ("GET", ""),
    ("GET", "/download"),
    ("GET", "/shares"),
    ("GET", "/engagement"),
)
_WRITES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("POST", "/shares", {}),
    ("POST", "/email", {"to": RESEND_TEST_RECIPIENT}),
    ("POST", "/events", {"eventType": "viewed"}),
)


@rule(
    "ISOLATION-RENDERS",
    "Another project's render answers 404 not_found (never 403) on every render operation, both ways.",
    source="notes A (keys are project-scoped; 404 never 403); seed 000 (404 not_found)",
    needs=("key", "other_key", "other_render", "render"),
)
def renders_are_isolated(ctx: Context) -> None:
    pairs = (
        (ctx.target.key, ctx.target.other_render()),
        (ctx.target.other_key, ctx.target.render()),
    )
    for key, foreign_render in pairs:
        for method, suffix in _READS:
            exchange = ctx.call(method, f"/v1/renders/{foreign_render}{suffix}", key=key)
            expect_error(exchange, 404, "not_found", "another project's render")
        for method, suffix, body in _WRITES:
            exchange = ctx.call(method, f"/v1/renders/{foreign_render}{suffix}", key=key, json=body)
            if suffix == "/email" and ctx.email_off_first(exchange, "emailing another's render"):
                continue
            expect_error(exchange, 404, "not_found", "another project's render")


@rule(
    "ISOLATION-SHARES",
    "Another project cannot revoke a share: 404 not_found, and the share keeps resolving.",
    source="notes A (project scoping); seed 000 (revoke 404)",
    needs=("key", "other_key", "other_render", "render", "write"),
)
def shares_are_isolated(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    created = ctx.create_share(render_id, message="isolation")
    foreign = ctx.revoke(render_id, created["id"], key=ctx.target.other_key)
    expect_error(foreign, 404, "not_found", "revoking through another project's key")
    through_own = ctx.revoke(ctx.target.other_render(), created["id"], key=ctx.target.other_key)
    expect_error(through_own, 404, "not_found", "revoking through the other project's own render")
    page = ctx.open_link(ctx.share_url(created))
    expect(
        page.status == 200,
        f"the share stopped resolving: {page.summary()}",
        "HTTP 200 from the share link",
        page,
    )
    rows = ctx.list_shares(render_id)
    row = next(r for r in rows if r["id"] == created["id"])
    expect(row["revokedAt"] is None, "the share was revoked by another project", "revokedAt null")
