"""Webhooks: the deliveries a deployment sends for what the run did, checked as they arrive.

Each rule acts through the public API and waits for the deliveries its actions must cause at
the run's listener: one per action, signed over the raw body, with the contract's headers
and body, retried with the same delivery id, and never about another project.
"""

from __future__ import annotations

import functools
from typing import Any

import craftkit_spec
from conformance.context import Context
from conformance.failures import expect, fail, skip
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


@rule(
    "WEBHOOK-SHARE-EVENTS",
    "Creating, opening and revoking a share each sends one signed delivery (document.share_created, document.viewed, document.share_revoked) naming the share, with the contract's headers and body.",
    source="notes A (outgoing webhooks)",
    needs=("key", "render", "write", "webhooks"),
)
def share_events_are_delivered(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    created = ctx.create_share(render_id, message="webhooks")
    ctx.open_link(ctx.share_url(created))
    ctx.revoke(render_id, created["id"])
    for event in ("document.share_created", "document.viewed", "document.share_revoked"):
        delivery, every = _arrival(ctx, event, shareId=created["id"])
        _conforms(ctx, delivery)
        expect(
            delivery.body.get("renderId") == render_id,
            f"The {event} delivery names another render",
            f"renderId {render_id}",
        )
        _one_per_action(event, every, "action")


@rule(
    "WEBHOOK-EMAIL-EVENTS",
    "Emailing a render sends one signed document.share_created and one document.email_sent delivery naming the email's share.",
    source="notes A (outgoing webhooks)",
    needs=("key", "render", "email", "webhooks"),
)
def email_events_are_delivered(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    _, sent = send_email(ctx, render_id)
    for event in ("document.share_created", "document.email_sent"):
        delivery, every = _arrival(ctx, event, shareId=sent["id"])
        _conforms(ctx, delivery)
        _one_per_action(event, every, "email")


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
        listener.refuse(1)
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
    needs=("key", "other_key", "render", "write", "webhooks"),
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
