"""Webhooks: the deliveries a deployment sends for what the run did, checked as they arrive.

Each rule acts through the public API and waits for the deliveries its actions must cause at
the run's listener: one per action, signed over the raw body, with the contract's headers
and body, retried with the same delivery id, and never about another project.
"""

from __future__ import annotations

import functools
import ipaddress
import secrets
from typing import Any

import craftkit_spec
from conformance.client import Exchange
from conformance.context import Context
from conformance.failures import expect, expect_status, fail, skip
from conformance.rules import rule
from conformance.suite.email import send_email
from conformance.webhooks import DeliveryContract, Received, WebhookListener


@functools.cache
def _contract() -> DeliveryContract:
    return DeliveryContract()


def _listener(ctx: Context) -> WebhookListener:
    listener = ctx.target.webhooks
    if listener is None:
        skip("no webhook listener")
    return listener


def _arrival(
    ctx: Context, event: str, count: int = 1, **fields: Any
) -> tuple[Received, list[Received]]:
    """The ``count``-th delivery of ``event`` whose body has ``fields``, and all of them."""
    listener = _listener(ctx)

    def matching(received: list[Received]) -> list[Received]:
        return [
            d
            for d in received
            if d.event == event and all(d.body.get(k) == v for k, v in fields.items())
        ]

    found = listener.wait(
        lambda received: m[count - 1] if len(m := matching(received)) >= count else None,
        ctx.target.config.webhook_wait,
    )
    if found is None:
        seen = [(d.event, d.body.get("shareId")) for d in listener.received][-10:]
        fail(
            f"No {event} delivery arrived for {fields}"
            + (f" (attempt {count})" if count > 1 else ""),
            f"a {event} delivery within {ctx.target.config.webhook_wait:g} s of the action",
            evidence=f"the last deliveries that did arrive (event, shareId): {seen}",
        )
    return found, matching(listener.received)


def _one_per_action(event: str, every: list[Received], action: str) -> None:
    """Every delivery of one action shares one delivery id (retries included)."""
    ids = {d.headers.get("x-craftkit-delivery-id") for d in every}
    expect(
        len(ids) == 1,
        f"One {action} was delivered as {len(ids)} {event} deliveries",
        "one delivery per action (its retries share its delivery id)",
    )


def _conforms(ctx: Context, delivery: Received) -> None:
    listener = _listener(ctx)
    problems = _contract().problems(delivery, listener.secret)
    if problems:
        fail(
            f"A {delivery.event} delivery departs from the contract",
            "a delivery signed over its raw body, with the contract's headers and body",
            evidence="\n".join(problems) + "\nreplay it: " + delivery.curl("<your receiver>"),
        )


def _engagement_event(ctx: Context, render_id: str, delivery: Received) -> None:
    """The delivery's ``eventId`` is the engagement event it reports, at the same instant."""
    body = delivery.body
    recent = ctx.call("GET", f"/v1/renders/{render_id}/engagement").json().get("recent") or []
    recorded = next((e for e in recent if e.get("id") == body.get("eventId")), None)
    expect(
        recorded is not None,
        f"The {delivery.event} delivery's eventId is no engagement event of the render",
        "eventId: the id GET /v1/renders/{id}/engagement lists for the event",
    )
    assert recorded is not None
    for field in ("eventType", "shareId", "createdAt"):
        expect(
            recorded.get(field) == body.get(field),
            f"The {delivery.event} delivery's {field} is {body.get(field)!r}, its engagement "
            f"event's {recorded.get(field)!r}",
            "the engagement event's own value",
        )


def _delivered(
    ctx: Context, event: str, action: str, actor: str | None = None, **fields: Any
) -> Received:
    """The delivery one action owes: arrived, within the contract, one, by its actor."""
    delivery, every = _arrival(ctx, event, **fields)
    _conforms(ctx, delivery)
    _one_per_action(event, every, action)
    if actor is not None:
        _acted_by(delivery, actor)
    return delivery


def _acted_by(delivery: Received, actor: str) -> None:
    expect(
        delivery.body.get("actorKind") == actor,
        f"The {delivery.event} delivery's actorKind is {delivery.body.get('actorKind')!r}",
        f"{actor} ({'a recipient acted through a link or mail' if actor == 'recipient' else 'the integration acted through the API'})",
    )


def _came_from(delivery: Received, sent: Exchange) -> None:
    """``sourceIp`` and ``userAgent``, where given, are those the action came with."""
    body = delivery.body
    address = body.get("sourceIp")
    if address is not None:
        try:
            ipaddress.ip_address(str(address))
        except ValueError:
            fail(
                f"The {delivery.event} delivery's sourceIp {address!r} is no IP address",
                "the address the action came from, or null",
            )
    agent = body.get("userAgent")
    headers = {name.lower(): value for name, value in sent.request_headers.items()}
    expect(
        agent is None or agent == headers.get("user-agent"),
        f"The {delivery.event} delivery's userAgent is {agent!r}",
        f"the User-Agent the action came with ({headers.get('user-agent')!r}), or null",
    )


@rule(
    "WEBHOOK-SHARE-EVENTS",
    "Creating, opening, downloading through and revoking a share each sends one signed delivery (document.share_created, document.viewed, document.downloaded, document.share_revoked) naming the share and the engagement event, by the actor who acted, with the contract's headers and body.",
    source="notes A (outgoing webhooks)",
    needs=("key", "render", "write", "webhooks"),
)
def share_events_are_delivered(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    created = ctx.create_share(render_id, message="webhooks")
    page = ctx.open_link(ctx.share_url(created))
    pdf = ctx.open_link(ctx.share_url(created), "/download")
    ctx.revoke(render_id, created["id"])
    acts = {
        "document.share_created": ("partner", None),
        "document.viewed": ("recipient", page),
        "document.downloaded": ("recipient", pdf),
        "document.share_revoked": ("partner", None),
    }
    for event, (actor, sent) in acts.items():
        delivery = _delivered(ctx, event, "action", actor, shareId=created["id"])
        expect(
            delivery.body.get("renderId") == render_id,
            f"The {event} delivery names another render",
            f"renderId {render_id}",
        )
        _engagement_event(ctx, render_id, delivery)
        if sent is not None:
            _came_from(delivery, sent)


@rule(
    "WEBHOOK-PARTNER-EVENTS",
    "Reporting an event through POST /v1/renders/{id}/events sends one signed delivery of that event, by the partner, carrying the metadata reported.",
    source="notes A (outgoing webhooks: actorKind partner for what the integration reported; metadata)",
    needs=("key", "render", "write", "webhooks"),
)
def reported_events_are_delivered(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    metadata = {"reportedBy": "craftkit-conformance", "run": secrets.token_hex(8)}
    exchange = ctx.call(
        "POST",
        f"/v1/renders/{render_id}/events",
        json={"eventType": "printed", "metadata": metadata},
    )
    answer = expect_status(exchange, 200, "reporting a printed event")
    if answer.get("recorded") is False:
        skip("the render's printed event was de-duplicated (one reported within 5 minutes)")
    delivery = _delivered(
        ctx, "document.printed", "report", "partner", renderId=render_id, metadata=metadata
    )
    _engagement_event(ctx, render_id, delivery)


@rule(
    "WEBHOOK-EMAIL-EVENTS",
    "Emailing a render sends one signed document.share_created and one document.email_sent delivery naming the email's share; on the mock, opening the mail sends document.email_opened by the recipient.",
    source="notes A (outgoing webhooks)",
    needs=("key", "render", "email", "webhooks"),
)
def email_events_are_delivered(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    _, sent = send_email(ctx, render_id)
    for event in ("document.share_created", "document.email_sent"):
        _delivered(ctx, event, "email", "partner", shareId=sent["id"])
    if ctx.target.is_mock:  # only the mock's outbox lets the run open the mail it sent
        ctx.target.open_email(str(sent["emailMessageId"]))
        opened, _ = _arrival(ctx, "document.email_opened", shareId=sent["id"])
        _conforms(ctx, opened)
        _acted_by(opened, "recipient")
        _engagement_event(ctx, render_id, opened)


@rule(
    "WEBHOOK-RENDER-EVENTS",
    "A render that ends sends one signed render.succeeded (or render.failed) delivery naming it, whose status, completedAt, downloadUrl and errorMessage agree with GET /v1/renders/{id}, and whose templateId is the one its document.* deliveries carry.",
    source="notes A (outgoing webhooks: render.event)",
    needs=("key", "template", "write", "webhooks"),
)
def render_events_are_delivered(ctx: Context) -> None:
    succeeded = ctx.target.new_render()
    delivery = _render_ended(ctx, succeeded, "succeeded")
    created = ctx.create_share(succeeded, message="webhooks: templateId")
    shared, _ = _arrival(ctx, "document.share_created", shareId=created["id"])
    expect(
        shared.body.get("templateId") == delivery.body.get("templateId"),
        f"One render's deliveries name two templates: {delivery.body.get('templateId')!r} "
        f"(render.succeeded) and {shared.body.get('templateId')!r} (document.share_created)",
        "the template the render was made from, in every delivery about it",
    )
    if ctx.target.is_mock:  # a render that fails on purpose is the mock's alone
        _render_ended(ctx, ctx.target.mock_render(status="failed"), "failed")


def _render_ended(ctx: Context, render_id: str, status: str) -> Received:
    event = f"render.{status}"
    delivery = _delivered(ctx, event, "render", renderId=render_id)
    body = delivery.body
    shown = ctx.call("GET", f"/v1/renders/{render_id}").json()
    expect(
        body.get("status") == status,
        f"The {event} delivery's status is {body.get('status')!r}",
        status,
    )
    for field in ("completedAt", "errorMessage"):
        expect(
            body.get(field) is None or body.get(field) == shown.get(field),
            f"The {event} delivery's {field} is {body.get(field)!r}, the render's "
            f"{shown.get(field)!r}",
            f"the render's {field} (GET /v1/renders/{{id}}), or absent",
        )
    expect(
        body.get("downloadUrl") in (None, shown.get("downloadUrl"))
        and (status == "succeeded" or body.get("downloadUrl") is None),
        f"The {event} delivery's downloadUrl is {body.get('downloadUrl')!r}",
        "null on failure or without public delivery, else the render's own downloadUrl",
    )
    return delivery


@rule(
    "WEBHOOK-RETRY-SAME-ID",
    "A delivery the receiver refuses is attempted again with the same x-craftkit-delivery-id and the same body.",
    source="notes A (outgoing webhooks: a delivery id stable across retries)",
    needs=("key", "render", "write", "webhooks", "mock"),
)
def a_retry_keeps_its_delivery_id(ctx: Context) -> None:
    listener = _listener(ctx)
    render_id = ctx.target.fresh_render()
    ctx.target.freeze_clock(True)
    try:
        listener.refuse(
            1,
            when=lambda d: (
                d.event == "document.share_created" and d.body.get("renderId") == render_id
            ),
        )
        created = ctx.create_share(render_id, message="webhook retry")
        first, _ = _arrival(ctx, "document.share_created", shareId=created["id"])
        expect(first.answered == 500, "The refused attempt was not the first", "a refused attempt")
        ctx.target.advance_clock(craftkit_spec.webhook_rules().retry_delays_seconds[0])
        second, _ = _arrival(ctx, "document.share_created", 2, shareId=created["id"])
    finally:
        ctx.target.freeze_clock(False)
    _conforms(ctx, second)
    expect(
        second.headers.get("x-craftkit-delivery-id") == first.headers.get("x-craftkit-delivery-id"),
        "A retry came with another x-craftkit-delivery-id",
        f"the first attempt's id {first.headers.get('x-craftkit-delivery-id')}",
    )
    expect(
        second.raw == first.raw, "A retry came with another body", "the same body, byte for byte"
    )


@rule(
    "WEBHOOK-OWN-PROJECT",
    "Deliveries for the run's project never concern another project's renders or shares.",
    source="notes A (keys are project-scoped; outgoing webhooks are per project)",
    needs=("key", "other_key", "other_render", "render", "write", "webhooks"),
)
def deliveries_stay_in_their_project(ctx: Context) -> None:
    listener = _listener(ctx)
    foreign_render = ctx.target.other_render()
    foreign = ctx.create_share(foreign_render, key=ctx.target.other_key, message="other project")
    own = ctx.create_share(ctx.target.fresh_render(), message="own project")
    _arrival(ctx, "document.share_created", shareId=own["id"])
    leaked = [
        d
        for d in listener.received
        if d.body.get("renderId") == foreign_render or d.body.get("shareId") == foreign["id"]
    ]
    expect(
        not leaked,
        "A delivery concerned another project",
        "nothing about the other project's render or share at this project's receiver",
    )
