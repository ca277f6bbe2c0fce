"""The points API_NOTES Part B leaves to each deployment, probed before any sequence.

A difference at a probe is that decision taken otherwise only when the target's answer is
what the other choice looks like; any other difference departs from the contract.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import orjson

import craftkit_spec
from conformance.client import Exchange
from conformance.differential.lockstep import Lockstep, Side
from conformance.differential.steps import slug
from conformance.differential.verdict import RENDER_STATUSES, error_code, known_codes
from conformance.target import RESEND_TEST_RECIPIENT


def provision(run: Lockstep) -> None:
    """The renders besides each sequence's own, where the run can have them on both sides.

    One that has not succeeded, and one of another project.
    """
    own = run.target.session.target
    if own.is_mock:
        for side in (run.target, run.reference):
            side.not_ready = side.session.target.not_ready_render()
    elif own.config.not_ready_render_id:
        # The reference's is made in the same status, so a 409's message can name it alike.
        run.target.not_ready = own.not_ready_render()
        shown = run.target.call("GET", f"/v1/renders/{run.target.not_ready}").json()
        status = shown.get("status") if isinstance(shown, dict) else None
        made_as = status if status in RENDER_STATUSES and status != "succeeded" else "queued"
        run.reference.not_ready = run.reference.session.target.mock_render(status=made_as)
    if "other_render" in own.capabilities:
        for side in (run.target, run.reference):
            side.foreign = side.session.target.other_render()
            side.correlator.preset(side.foreign, "foreign-render")


def probe_decisions(run: Lockstep) -> None:
    """The Part B points, each on its own before any sequence, so state stays in step."""
    for side in (run.target, run.reference):
        side.render = side.session.target.render()
    shares = "/v1/renders/{id}/shares"
    run.probe(
        "an unknown method on a share list (PATCH)",
        shares,
        "patch",
        lambda side: side.call("PATCH", f"/v1/renders/{side.render}/shares", json={}),
        "notes B.10",
        lambda answer: _answers(answer, 404, "not_found"),
    )
    # Not a probe: 401 before anything else is the one order every deployment keeps (notes
    # A; B.2 makes no other), so answering the body first departs.
    run.log = []
    run.both(
        "a body that is not JSON, sent without a key",
        shares,
        "post",
        lambda side: side.session.client.request(
            "POST",
            f"/v1/renders/{side.render}/shares",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        ),
    )
    if run.target.session.config.read_only:
        return  # the other points are probed by creating a share or sending an email
    offset = (datetime.now(UTC) + timedelta(days=1)).astimezone(timezone(timedelta(hours=2)))
    run.probe(
        "a share whose expiresAt has a UTC offset",
        shares,
        "post",
        lambda side: side.call(
            "POST",
            f"/v1/renders/{side.render}/shares",
            json={"expiresAt": offset.strftime("%Y-%m-%dT%H:%M:%S+02:00")},
        ),
        "notes B.8",
        lambda answer: _answers(answer, 400, "invalid_request"),
    )
    email_off = run.probe(
        "an email to Resend's test address",
        "/v1/renders/{id}/email",
        "post",
        lambda side: side.call(
            "POST", f"/v1/renders/{side.render}/email", json={"to": RESEND_TEST_RECIPIENT}
        ),
        "notes B.11",
        lambda answer: _answers(answer, 503, "email_not_configured"),
    )
    if email_off is not None and email_off.target.status == 503:
        # The target has no email: the reference goes without too, so sequences stay in step.
        run.reference.session.target.set_faults(emailTransport="none")
    run.probe(
        "a body of more than 1 MiB",
        shares,
        "post",
        lambda side: side.call(
            "POST",
            f"/v1/renders/{side.render}/shares",
            json={"channel": "link", "padding": _OVERSIZE},
        ),
        "notes B.6",
        _oversize_taken,
    )
    run.probe(
        "HEAD on a new link, then the link's click count",
        "/share/{token}",
        "head",
        _head_then_count,
        "notes B.12",
        _counted_once,
    )


_OVERSIZE = "x" * (craftkit_spec.body_limit() + 1)
"""Padding that puts a body over the 1 MiB limit of notes B.6."""


def oversize_steps(run: Lockstep) -> None:
    """A body over the limit to each other operation that takes one (the probe sent a share).

    Only where the target kept the reference's limit at the probe: with a larger one, such a
    body would be read and acted on.
    """
    posts: list[tuple[str, str, Callable[[Side], str]]] = [
        ("email", "/v1/renders/{id}/email", lambda side: f"/v1/renders/{side.render}/email"),
        (
            "record_event",
            "/v1/renders/{id}/events",
            lambda side: f"/v1/renders/{side.render}/events",
        ),
    ]
    if run.target.template is not None:
        posts.append(
            (
                "submit_render",
                "/v1/templates/{slug}/render",
                lambda side: f"/v1/templates/{slug(side)}/render",
            )
        )
    for name, path, url in posts:
        run.both(
            f"{name}() with a body over 1 MiB",
            path,
            "post",
            functools.partial(_post_oversize, url=url),
        )


def _post_oversize(side: Side, url: Callable[[Side], str]) -> Exchange:
    return side.call("POST", url(side), json={"padding": _OVERSIZE})


def _oversize_taken(answer: Exchange) -> bool:
    """Whether an oversize body met another limit (read, then judged) or another refusal.

    A 413 with a code of its own is the other choice; one with a code the API gives another
    meaning is not.
    """
    if answer.status in (201, 400):
        return True
    return answer.status == 413 and error_code(answer) not in known_codes()[0]


def _answers(answer: Exchange, status: int, code: str) -> bool:
    """Whether an answer is the error ``status``/``code`` in the envelope."""
    return answer.status == status and error_code(answer) == code


def _counted_once(answer: Exchange) -> bool:
    """Whether the probed link's row shows the HEAD counted as a view."""
    body = answer.json()
    rows = body.get("shares") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        return False
    return bool(rows[0].get("clickCount") == 1)


def _head_then_count(side: Side) -> Exchange:
    """Create a link (remembered for cleanup), HEAD it, and read its row in the list."""
    made = side.call("POST", f"/v1/renders/{side.render}/shares", json={})
    body = made.json()
    if made.status != 201 or not isinstance(body, dict) or "id" not in body:
        return made
    side.session.target.remember_share(side.render, body["id"])
    if "shareUrl" not in body and not side.session.config.share_base_url:
        return made  # nothing to open: the answers differ already
    side.session.client.request("HEAD", side.session.context.share_url(body))
    listed = side.call("GET", f"/v1/renders/{side.render}/shares")
    try:
        rows = [row for row in listed.json()["shares"] if row["id"] == body["id"]]
    except (KeyError, TypeError):
        return listed  # a malformed list is compared as it came
    return replace(listed, response_body=orjson.dumps({"shares": rows}))
