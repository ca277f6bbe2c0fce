"""Shares: create, list newest first with revoked rows, revoke exactly once."""

from __future__ import annotations

import itertools
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import craftkit_spec
from conformance.context import Context
from conformance.failures import expect, expect_error, expect_status, is_error, skip
from conformance.rules import rule
from conformance.target import RESEND_TEST_RECIPIENT

TIMESTAMP = re.compile(craftkit_spec.timestamp_pattern())
REVOKE_REASON = craftkit_spec.revoke_reason()


@rule(
    "SHARE-CREATE",
    "A share is created 201 with the defaults: channel link, null fields, a cks_ token inside shareUrl.",
    source="seed 000 (Create a share)",
    needs=("key", "render", "write"),
)
def create(ctx: Context) -> None:
    render_id = ctx.target.render()
    exchange = ctx.call("POST", f"/v1/renders/{render_id}/shares", json={})
    body: dict[str, Any] = expect_status(exchange, 201, "creating a share with {}")
    ctx.target.remember_share(render_id, body["id"])
    for field, value in (
        ("channel", "link"),
        ("recipientEmail", None),
        ("message", None),
        ("expiresAt", None),
        ("revokedAt", None),
    ):
        expect(
            body[field] == value,
            f"{field} is {body[field]!r} on a default share",
            repr(value),
            exchange,
        )
    token = body["shareToken"]
    expect(token.startswith("cks_"), f"shareToken {token!r}", "a token starting cks_", exchange)
    expect(
        body["shareUrl"].endswith(f"/share/{token}"),
        f"shareUrl {body['shareUrl']!r} does not end with /share/{{shareToken}}",
        "{shareBase}/share/{shareToken}",
        exchange,
    )
    base = ctx.target.config.share_base_url
    if base:
        expect(
            body["shareUrl"] == f"{base.rstrip('/')}/share/{token}",
            f"shareUrl {body['shareUrl']!r} is not on the share host",
            f"{base.rstrip('/')}/share/{token}",
            exchange,
        )
    expect(
        bool(TIMESTAMP.match(body["createdAt"])),
        f"createdAt {body['createdAt']!r}",
        "YYYY-MM-DDTHH:MM:SS.mmmZ",
        exchange,
    )


@rule(
    "SHARE-ECHO",
    "A share echoes its message, recipientEmail and expiresAt, normalised to milliseconds and Z.",
    source="seed 000; notes A (timestamps normalised); notes B.3 (recipientEmail on a link)",
    needs=("key", "render", "write"),
)
def echo(ctx: Context) -> None:
    render_id = ctx.target.render()
    body = {
        "channel": "link",
        "recipientEmail": RESEND_TEST_RECIPIENT,
        "message": "Here is your signed agreement.",
        "expiresAt": "2099-12-31T23:59:59Z",
    }
    exchange = ctx.call("POST", f"/v1/renders/{render_id}/shares", json=body)
    created = expect_status(exchange, 201, "creating a share")
    ctx.target.remember_share(render_id, created["id"])
    expect(
        created["message"] == body["message"], "message not echoed", repr(body["message"]), exchange
    )
    expect(
        created["recipientEmail"] == body["recipientEmail"],
        "recipientEmail not echoed",
        repr(body["recipientEmail"]),
        exchange,
    )
    expect(
        created["expiresAt"] == "2099-12-31T23:59:59.000Z",
        f"expiresAt came back {created['expiresAt']!r}",
        "2099-12-31T23:59:59.000Z",
        exchange,
    )


@rule(
    "SHARE-EMAIL-NEEDS-RECIPIENT",
    "channel email without recipientEmail is 400 invalid_request with issues.",
    source="seed 000 (400 invalid_request); notes B.3 (issues.fieldErrors.recipientEmail)",
    needs=("key", "render", "write"),
)
def email_channel_needs_recipient(ctx: Context) -> None:
    exchange = ctx.call(
        "POST", f"/v1/renders/{ctx.target.render()}/shares", json={"channel": "email"}
    )
    error = expect_error(exchange, 400, "invalid_request", "channel email without recipientEmail")
    issues = error.get("issues")
    expect(
        isinstance(issues, dict), "invalid_request carries no issues", "Zod-style issues", exchange
    )
    if ctx.target.is_mock:
        assert isinstance(issues, dict)
        expect(
            "recipientEmail" in issues.get("fieldErrors", {}),
            "issues.fieldErrors does not name recipientEmail",
            "issues.fieldErrors.recipientEmail",
            exchange,
        )


MESSAGE_MAX = craftkit_spec.fact("CreateShareRequest", "message", "maxLength")


@rule(
    "SHARE-MESSAGE-LIMIT",
    f"A message of {MESSAGE_MAX} characters is accepted and one of {MESSAGE_MAX + 1} is 400 invalid_request.",
    source=f"seed 000 (message max {MESSAGE_MAX})",
    needs=("key", "render", "write"),
)
def message_limit(ctx: Context) -> None:
    render_id = ctx.target.render()
    created = ctx.create_share(render_id, message="m" * MESSAGE_MAX)
    expect(
        len(created["message"]) == MESSAGE_MAX,
        f"the {MESSAGE_MAX}-character message was not kept whole",
        f"{MESSAGE_MAX} characters",
    )
    longer = {"message": "m" * (MESSAGE_MAX + 1)}
    exchange = ctx.call("POST", f"/v1/renders/{render_id}/shares", json=longer)
    expect_error(exchange, 400, "invalid_request", f"a {MESSAGE_MAX + 1}-character message")


@rule(
    "SHARE-BAD-BODY",
    "A body that is not JSON is 400 invalid_json whatever its Content-Type, and creates nothing; one of the wrong shape is 400 invalid_request with issues.",
    source="seed 000 (400 invalid_json, invalid_request); notes A (issues); notes B.13 (any Content-Type)",
    needs=("key", "render", "write"),
)
def bad_body(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    path = f"/v1/renders/{render_id}/shares"
    before = {row["id"] for row in ctx.list_shares(render_id)}
    for raw in (b"{", b"not json", b'{"message": '):
        exchange = ctx.call("POST", path, content=raw, headers={"Content-Type": "application/json"})
        expect_error(exchange, 400, "invalid_json", f"the body {raw!r}", "seed 000 (invalid_json)")
    # Read as {} (a share created) is the classic slip of a server that parses by type.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        exchange = ctx.call("POST", path, content=b"{bad", headers=headers)
        what = f"the body {{bad sent as {content_type}"
        expect(
            400 <= exchange.status < 500,
            f"{what}: {exchange.summary()}",
            "a 4xx (the body is no share request)",
            exchange,
            "seed 000 (400 for a body that is not a share request)",
        )
        if not is_error(exchange, 400, "invalid_json"):
            ctx.deviate(
                f"{what}: {exchange.summary()} with another code",
                "400 invalid_json (the mock reads any Content-Type)",
                exchange,
                "notes B.13",
            )
    expect(
        [row for row in ctx.list_shares(render_id) if row["id"] not in before] == [],
        "a body that is not JSON created a share",
        "no share on the render",
        ctx.client.transcript.exchanges[-1],
    )
    for body in (
        {"channel": "fax"},
        {"message": 42},
        {"expiresAt": "next week"},
        {"recipientEmail": "nope"},
    ):
        exchange = ctx.call("POST", path, json=body)
        error = expect_error(exchange, 400, "invalid_request", f"the body {body}")
        expect(
            isinstance(error.get("issues"), dict),
            "invalid_request carries no issues",
            "issues",
            exchange,
        )


@rule(
    "SHARE-NOT-READY",
    "Sharing a render that has not succeeded is 409 not_ready.",
    source="seed 000 (409 not_ready)",
    needs=("key", "not_ready_render", "write"),
)
def not_ready(ctx: Context) -> None:
    exchange = ctx.call("POST", f"/v1/renders/{ctx.target.not_ready_render()}/shares", json={})
    expect_error(exchange, 409, "not_ready", "sharing an unfinished render")


@rule(
    "SHARE-LIST-ORDER",
    f"The list is newest first and includes revoked shares, with revokedAt and revokedReason {REVOKE_REASON}.",
    source="seed 000, seed 001 (List shares)",
    needs=("key", "render", "write"),
)
def list_order(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    made = [ctx.create_share(render_id, message=f"order {index}") for index in range(3)]
    revoked = ctx.revoke(render_id, made[1]["id"])
    expect_status(revoked, 200, "revoking the middle share")
    rows = ctx.list_shares(render_id)
    exchange = ctx.client.transcript.exchanges[-1]
    times = [row["createdAt"] for row in rows]
    expect(
        times == sorted(times, reverse=True),
        f"createdAt is not newest first: {times}",
        "non-increasing createdAt",
        exchange,
    )
    position = {row["id"]: index for index, row in enumerate(rows)}
    ids = [share["id"] for share in made]
    expect(
        all(i in position for i in ids),
        "a created share is missing from the list (revoked ones included)",
        f"ids {ids}",
        exchange,
    )
    for older, newer in itertools.pairwise(made):
        if older["createdAt"] < newer["createdAt"]:
            expect(
                position[newer["id"]] < position[older["id"]],
                "an older share is listed before a newer one",
                "newest first",
                exchange,
            )
    row = rows[position[made[1]["id"]]]
    expect(
        row["revokedAt"] is not None,
        "the revoked share has revokedAt null",
        "a timestamp",
        exchange,
    )
    expect(
        row["revokedReason"] == REVOKE_REASON,
        f"revokedReason is {row['revokedReason']!r}",
        REVOKE_REASON,
        exchange,
    )
    active = rows[position[made[2]["id"]]]
    expect(active["revokedAt"] is None, "an active share has revokedAt", "null", exchange)
    expect(
        active["shareToken"] == made[2]["shareToken"],
        "the list shows another token",
        "the token from create",
        exchange,
    )
    expect(
        active["shareUrl"] == made[2]["shareUrl"],
        "the list shows another shareUrl",
        "the shareUrl from create",
        exchange,
    )


@rule(
    "SHARE-REVOKE-ONCE",
    "A share is revoked once: 200 with id and revokedAt, then 404 not_found; an unknown share is 404.",
    source="seed 000 (Revoke a share)",
    needs=("key", "render", "write"),
)
def revoke_once(ctx: Context) -> None:
    render_id = ctx.target.render()
    created = ctx.create_share(render_id)
    first = ctx.revoke(render_id, created["id"])
    body = expect_status(first, 200, "the first revoke")
    expect(body["id"] == created["id"], "the revoke answered another id", created["id"], first)
    expect(
        bool(TIMESTAMP.match(body["revokedAt"])),
        f"revokedAt {body['revokedAt']!r}",
        "a timestamp",
        first,
    )
    expect_error(ctx.revoke(render_id, created["id"]), 404, "not_found", "the second revoke")
    expect_error(
        ctx.revoke(render_id, str(uuid.uuid4())), 404, "not_found", "revoking an unknown share"
    )


@rule(
    "SHARE-REVOKE-CONCURRENT",
    "Of many concurrent revokes of one share exactly one answers 200; the rest 404.",
    source="seed 000 (a share can be revoked once)",
    needs=("key", "render", "write"),
)
def revoke_concurrently(ctx: Context) -> None:
    render_id = ctx.target.render()
    created = ctx.create_share(render_id)
    count = ctx.profile.concurrency
    with ThreadPoolExecutor(max_workers=min(count, 32)) as pool:
        answers = list(pool.map(lambda _: ctx.revoke(render_id, created["id"]), range(count)))
    winners = [a for a in answers if a.status == 200]
    others = {a.status for a in answers if a.status != 200}
    expect(
        len(winners) == 1,
        f"{len(winners)} of {count} concurrent revokes answered 200",
        "exactly one 200",
        winners[1] if len(winners) > 1 else answers[0],
    )
    expect(others <= {404}, f"the losing revokes answered {sorted(others)}", "404 not_found")


@rule(
    "SHARE-EXPIRY-OFFSET",
    "An expiresAt with an offset is accepted and comes back in UTC with milliseconds and Z.",
    source="notes B.8 (offsets accepted); notes A (timestamps come back in UTC with milliseconds and Z)",
    needs=("key", "render", "write"),
)
def expiry_offset(ctx: Context) -> None:
    render_id = ctx.target.render()
    exchange = ctx.call(
        "POST",
        f"/v1/renders/{render_id}/shares",
        json={"expiresAt": "2030-06-01T12:00:00.250+02:00"},
    )
    if exchange.status == 400:
        ctx.deviate("an expiresAt with an offset is refused", "HTTP 201", exchange, "notes B.8")
        return
    created = expect_status(exchange, 201, "creating a share expiring at an offset")
    ctx.target.remember_share(render_id, created["id"])
    expect(
        created["expiresAt"] == "2030-06-01T10:00:00.250Z",
        f"the expiry came back as {created['expiresAt']!r}",
        '"2030-06-01T10:00:00.250Z"',
        exchange,
        "notes A (timestamps come back in UTC with milliseconds and Z)",
    )


NON_ASCII = "\u00e9"
"""A character of the Basic Multilingual Plane that UTF-8 writes in two bytes (notes B.16)."""


@rule(
    "SHARE-LIMITS-IN-CHARACTERS",
    f"The message limit counts characters, not bytes: {MESSAGE_MAX} '\u00e9' are accepted and {MESSAGE_MAX + 1} refused.",
    source=f"seed 000 (message max {MESSAGE_MAX} chars); notes B.16 (characters of the Basic Multilingual Plane)",
    needs=("key", "render", "write"),
)
def limits_in_characters(ctx: Context) -> None:
    render_id = ctx.target.render()
    path = f"/v1/renders/{render_id}/shares"
    longest = ctx.call("POST", path, json={"message": NON_ASCII * MESSAGE_MAX})
    created = expect_status(longest, 201, f"a message of {MESSAGE_MAX} two-byte characters")
    ctx.target.remember_share(render_id, created["id"])
    expect(
        created["message"] == NON_ASCII * MESSAGE_MAX,
        "the message was not kept whole",
        f"{MESSAGE_MAX} characters",
        longest,
    )
    longer = ctx.call("POST", path, json={"message": NON_ASCII * (MESSAGE_MAX + 1)})
    expect_error(longer, 400, "invalid_request", f"a message of {MESSAGE_MAX + 1} characters")


@rule(
    "SHARE-LIST-OWN-RENDER",
    "A render's list holds its own shares and none of another render of the same project.",
    source="seed 000, seed 001 (List shares: the render's shares)",
    needs=("key", "render", "write"),
)
def list_own_render(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    other = ctx.target.second_render()
    if other is None or other == render_id:
        skip(
            "needs a second render of the project (--not-ready-render-id, or a template to render)"
        )
    created = ctx.create_share(render_id, message="own render")
    own = {row["id"] for row in ctx.list_shares(render_id)}
    expect(created["id"] in own, "the render's list misses its share", "the share listed")
    listed = ctx.call("GET", f"/v1/renders/{other}/shares")
    rows = expect_status(listed, 200, "listing another render's shares")["shares"]
    expect(
        created["id"] not in {row["id"] for row in rows},
        "another render of the project lists the share",
        "each render lists its own shares only",
        listed,
    )


BAD_EXPIRIES: tuple[object, ...] = (
    1798761599,
    "2026-12-31 23:59:59Z",
    "2026-12-31",
    "2026-12-31T23:59:59",
)
"""``expiresAt`` values that are no ISO 8601 date-time with a zone (notes B.17, B.8)."""
OUT_OF_RANGE = "0001-01-01T00:00:00+01:00"
"""An offset that puts the instant before year 1 in UTC (notes B.17)."""


@rule(
    "SHARE-EXPIRY-NOT-ISO",
    "An expiresAt that is not an ISO 8601 date-time with a zone (a number, a space for T, a date alone, no zone), or whose instant falls outside years 0001-9999 in UTC, is 400 invalid_request and stores nothing.",
    source="seed 000 (expiresAt: ISO-8601 timestamp); notes B.8, B.17",
    needs=("key", "render", "write"),
)
def expiry_not_iso(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    path = f"/v1/renders/{render_id}/shares"
    before = {row["id"] for row in ctx.list_shares(render_id)}
    for value in BAD_EXPIRIES:
        exchange = ctx.call("POST", path, json={"expiresAt": value})
        expect_error(exchange, 400, "invalid_request", f"expiresAt {value!r}")
    offsets = ctx.call("POST", path, json={"expiresAt": "2030-06-01T12:00:00+02:00"})
    if offsets.status == 201:  # the deployment takes offsets (notes B.8): they must stay in range
        ctx.target.remember_share(render_id, offsets.json()["id"])
        before.add(offsets.json()["id"])
        exchange = ctx.call("POST", path, json={"expiresAt": OUT_OF_RANGE})
        expect_error(exchange, 400, "invalid_request", f"expiresAt {OUT_OF_RANGE!r}")
    else:
        ctx.note(
            "the deployment refuses offsets (notes B.8): the out-of-range offset was not tried"
        )
    listed = ctx.call("GET", path)
    rows = expect_status(listed, 200, "listing the render's shares after the refusals")["shares"]
    expect(
        {row["id"] for row in rows} == before,
        "a refused expiresAt stored a share",
        "no new share",
        listed,
    )
