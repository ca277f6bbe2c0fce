"""Email: an email-channel share sent through Resend, and its failure paths.

Against a live deployment mail goes only to Resend's test address
(``delivered+craftkit-conformance@resend.dev``), which accepts and delivers nowhere.
"""

from __future__ import annotations

import craftkit_spec
from conformance.context import Context
from conformance.failures import expect, expect_error, expect_status, skip
from conformance.rules import rule
from conformance.target import RESEND_TEST_RECIPIENT


def send_email(ctx: Context, render_id: str, **body: object) -> tuple[int, dict[str, object]]:
    """Email a render to Resend's test address; skipped where the deployment has no email."""
    payload = {"to": RESEND_TEST_RECIPIENT, **body}
    exchange = ctx.call("POST", f"/v1/renders/{render_id}/email", json=payload)
    if exchange.status == 503 and not ctx.target.is_mock:
        skip("the deployment answers 503 email_not_configured: email is not set up there")
    sent = expect_status(exchange, 201, "emailing a render")
    ctx.target.remember_share(render_id, sent["id"])
    return exchange.status, sent


@rule(
    "EMAIL-SEND",
    "Emailing a render answers 201 with the share and Resend's message id, and lists an email-channel share.",
    source="seed 000 (Email a render)",
    needs=("key", "render", "email"),
)
def send(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    _, sent = send_email(
        ctx, render_id, recipientName="Jane Doe", message="Here is your signed agreement."
    )
    expect(str(sent["shareToken"]).startswith("cks_"), "shareToken does not start cks_", "cks_…")
    expect(bool(sent["emailMessageId"]), "no emailMessageId", "Resend's message id")
    expect(
        str(sent["shareUrl"]).endswith(f"/share/{sent['shareToken']}"),
        "shareUrl does not carry the token",
        "…/share/{shareToken}",
    )
    row = next((r for r in ctx.list_shares(render_id) if r["id"] == sent["id"]), None)
    expect(row is not None, "the emailed share is not listed", "an email-channel row in the list")
    assert row is not None
    expect(row["channel"] == "email", f"the emailed share has channel {row['channel']!r}", "email")
    expect(
        row["recipientEmail"] == RESEND_TEST_RECIPIENT,
        f"recipientEmail is {row['recipientEmail']!r}",
        RESEND_TEST_RECIPIENT,
    )


NAME_MAX = craftkit_spec.fact("EmailRenderRequest", "recipientName", "maxLength")
MESSAGE_MAX = craftkit_spec.fact("EmailRenderRequest", "message", "maxLength")


@rule(
    "EMAIL-VALIDATION",
    f"A missing or invalid `to`, a recipientName over {NAME_MAX} or a message over {MESSAGE_MAX} characters is 400 invalid_request; bad JSON 400 invalid_json.",
    source="seed 000 (Email a render: fields and errors)",
    needs=("key", "render", "email"),
)
def validation(ctx: Context) -> None:
    path = f"/v1/renders/{ctx.target.render()}/email"
    for body in (
        {},
        {"to": "not-an-address"},
        {"to": RESEND_TEST_RECIPIENT, "recipientName": "n" * (NAME_MAX + 1)},
        {"to": RESEND_TEST_RECIPIENT, "message": "m" * (MESSAGE_MAX + 1)},
    ):
        expect_error(
            ctx.call("POST", path, json=body), 400, "invalid_request", f"the body {str(body)[:60]}"
        )
    bad = ctx.call("POST", path, content=b"{", headers={"Content-Type": "application/json"})
    expect_error(bad, 400, "invalid_json", "a body that is not JSON")


@rule(
    "EMAIL-NAME-LIMIT",
    f"A recipientName of exactly {NAME_MAX} characters is accepted.",
    source=f"seed 000 (recipientName max {NAME_MAX})",
    needs=("key", "render", "email"),
)
def name_limit(ctx: Context) -> None:
    send_email(ctx, ctx.target.render(), recipientName="n" * NAME_MAX)


@rule(
    "EMAIL-NOT-READY",
    "Emailing a render that has not succeeded is 409 not_ready.",
    source="seed 000 (409 not_ready)",
    needs=("key", "not_ready_render", "email"),
)
def not_ready(ctx: Context) -> None:
    exchange = ctx.call(
        "POST",
        f"/v1/renders/{ctx.target.not_ready_render()}/email",
        json={"to": RESEND_TEST_RECIPIENT},
    )
    if not ctx.email_off_first(exchange, "emailing an unfinished render"):
        expect_error(exchange, 409, "not_ready", "emailing an unfinished render")


@rule(
    "EMAIL-NOT-CONFIGURED",
    "Without an email transport the call is 503 email_not_configured and creates no share.",
    source="seed 000 (503 email_not_configured)",
    needs=("mock",),
)
def not_configured(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    ctx.target.set_faults(emailTransport="none")
    try:
        exchange = ctx.call(
            "POST", f"/v1/renders/{render_id}/email", json={"to": RESEND_TEST_RECIPIENT}
        )
    finally:
        ctx.target.set_faults(emailTransport="outbox")
    expect_error(exchange, 503, "email_not_configured", "emailing with no transport")
    expect(
        ctx.list_shares(render_id) == [],
        "a share was created although nothing could be sent",
        "no share",
    )


@rule(
    "EMAIL-SEND-FAILED",
    "When the provider rejects the send the call is 502 email_send_failed with its message, and the email share stays listed.",
    source="seed 000 (502 email_send_failed); notes B.5 (the share stays)",
    needs=("mock",),
)
def send_failed(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    ctx.target.set_faults(emailSendFails=True)
    try:
        exchange = ctx.call(
            "POST", f"/v1/renders/{render_id}/email", json={"to": RESEND_TEST_RECIPIENT}
        )
    finally:
        ctx.target.set_faults(emailSendFails=False)
    error = expect_error(exchange, 502, "email_send_failed", "a rejected send")
    expect(
        bool(error["message"]),
        "the 502 carries no provider message",
        "the provider's message",
        exchange,
    )
    rows = ctx.list_shares(render_id)
    expect(
        [r["channel"] for r in rows] == ["email"],
        f"after a failed send the list is {[r['channel'] for r in rows]}",
        "one email-channel share",
    )
    ctx.target.remember_share(render_id, rows[0]["id"])


@rule(
    "EMAIL-CONTENT",
    "The sent mail goes to `to`, greets recipientName, and carries the message and the shareUrl in text and HTML.",
    source="seed 000 (recipientName used in the greeting; message in the body)",
    needs=("mock",),
)
def content(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    _, sent = send_email(ctx, render_id, recipientName="Jane Doe", message="Signed copy attached.")
    mail = next((m for m in ctx.target.outbox() if m["shareId"] == sent["id"]), None)
    expect(mail is not None, "no mail in the outbox for the emailed share", "one outbox email")
    assert mail is not None
    expect(
        mail["to"] == RESEND_TEST_RECIPIENT,
        f"the mail went to {mail['to']!r}",
        RESEND_TEST_RECIPIENT,
    )
    expect(
        mail["id"] == sent["emailMessageId"],
        "emailMessageId is not the sent mail's id",
        str(mail["id"]),
    )
    for part in ("text", "html"):
        for needle in ("Jane Doe", "Signed copy attached.", str(sent["shareUrl"])):
            expect(
                needle in mail[part],
                f"the {part} body lacks {needle!r}",
                f"{needle!r} in the {part} body",
            )


@rule(
    "EMAIL-EXPIRY",
    "An email's expiresAt is the share's: listed as sent (normalised), and its link dead once it has passed.",
    source="seed 000 (Email a render: expiresAt); notes A (timestamps normalised); notes B.3 (a past expiry is accepted), B.4 (expired shares stay listed)",
    needs=("key", "render", "email"),
)
def email_expiry(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    past = "2001-01-01T00:00:00Z"
    exchange = ctx.call(
        "POST",
        f"/v1/renders/{render_id}/email",
        json={"to": RESEND_TEST_RECIPIENT, "expiresAt": past},
    )
    if exchange.status == 503 and not ctx.target.is_mock:
        skip("the deployment answers 503 email_not_configured: email is not set up there")
    sent = expect_status(exchange, 201, "emailing a render with a past expiresAt", "notes B.3")
    ctx.target.remember_share(render_id, sent["id"])
    link = ctx.open_link(ctx.share_url(sent))
    expect(link.status == 404, f"its expired link answers {link.status}", "HTTP 404", link)
    row = next((r for r in ctx.list_shares(render_id) if r["id"] == sent["id"]), None)
    listing = ctx.client.transcript.exchanges[-1]
    # Its link is dead, so the expiry was kept: a list without the row is notes B.4's choice.
    expect(
        row is not None, "the expired emailed share is not listed", "listed", listing, "notes B.4"
    )
    assert row is not None
    expect(
        row["expiresAt"] == "2001-01-01T00:00:00.000Z",
        f"the emailed share's expiresAt is {row['expiresAt']!r}",
        '"2001-01-01T00:00:00.000Z"',
        listing,
    )
