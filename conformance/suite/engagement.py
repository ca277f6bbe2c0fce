"""Engagement (optional surface): recipient events, de-duplicated, and the counts."""

from __future__ import annotations

import craftkit_spec
from conformance.context import Context
from conformance.failures import expect, expect_error, expect_status, skip
from conformance.rules import rule

KINDS = set(craftkit_spec.enum("EventType"))
RECENT = craftkit_spec.fact("Engagement", "recent", "maxItems")
WINDOW_MINUTES = craftkit_spec.dedup_window_seconds() // 60


@rule(
    "ENGAGEMENT-COUNTS",
    f"Events are recorded once per type and address within {WINDOW_MINUTES} minutes; engagement shows a count for each of the {len(KINDS)} event types, their total and at most {RECENT} recent events, newest first.",
    source="notes A (engagement)",
    needs=("key", "render", "write"),
)
def counts(ctx: Context) -> None:
    render_id = ctx.target.fresh_render()
    path = f"/v1/renders/{render_id}"
    first = ctx.call("POST", f"{path}/events", json={"eventType": "printed"})
    if first.status == 404:
        skip("the deployment has no engagement surface (events answer 404 for an existing render)")
    recorded = expect_status(first, 200, "recording an event")
    if ctx.target.is_mock:
        ctx.target.advance_clock(1)  # distinct instants, so the order of recent shows
    expect_status(
        ctx.call("POST", f"{path}/events", json={"eventType": "downloaded"}), 200, "a second event"
    )
    again = expect_status(
        ctx.call("POST", f"{path}/events", json={"eventType": "printed"}), 200, "repeating it"
    )
    if ctx.target.is_mock:
        expect(
            recorded == {"recorded": True},
            f"the first event answered {recorded}",
            '{"recorded": true}',
            first,
        )
        expect(again == {"recorded": False}, f"the repeat answered {again}", '{"recorded": false}')
    bad = ctx.call(
        "POST", f"{path}/events", content=b"{", headers={"Content-Type": "application/json"}
    )
    expect_error(bad, 400, "invalid_json", "an event body that is not JSON")
    wrong = ctx.call("POST", f"{path}/events", json={"eventType": "clicked"})
    expect_error(wrong, 400, "invalid_request", "an unknown eventType")
    exchange = ctx.call("GET", f"{path}/engagement")
    body = expect_status(exchange, 200, "reading engagement")
    expect(
        set(body["counts"]) == KINDS,
        f"counts has keys {sorted(body['counts'])}",
        f"all of {sorted(KINDS)}",
        exchange,
    )
    expect(
        body["total"] == sum(body["counts"].values()),
        "total is not the sum of counts",
        "the sum of counts",
        exchange,
    )
    expect(
        body["counts"]["printed"] >= 1, "the printed event is not counted", "printed >= 1", exchange
    )
    times = [event["createdAt"] for event in body["recent"]]
    expect(len(times) <= RECENT, f"{len(times)} recent events", f"at most {RECENT}", exchange)
    expect(
        len(times) == min(body["total"], RECENT),
        f"{len(times)} recent events for a total of {body['total']}",
        f"min(total, {RECENT})",
        exchange,
    )
    clicks = sum(row["clickCount"] for row in ctx.list_shares(render_id))
    expect(
        body["linkOpens"] == clicks,
        f"linkOpens is {body['linkOpens']} while the render's links were opened {clicks} times",
        "the sum of the shares' clickCount",
        exchange,
    )
    expect(
        times == sorted(times, reverse=True),
        "recent events are not newest first",
        "newest first",
        exchange,
    )
