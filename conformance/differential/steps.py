"""The steps a lockstep run is made of, each a function of the run (``sides.Lockstep``).

Errors on purpose and reads; the share lists compared after each step; a render submitted,
replayed and (on two mocks) let finish; the ``downloadUrl`` followed; and the failure paths
only a mock can be made to take, switched on alike on both sides.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson

import craftkit_spec
from conformance.client import Exchange
from conformance.differential.lockstep import Diverged, Lockstep, Side
from conformance.differential.normal import (
    Correlator,
)
from conformance.differential.verdict import error_code, is_whole_pdf
from conformance.target import RESEND_TEST_RECIPIENT


def begin_sequence(run: Lockstep) -> None:
    """A new sequence: fresh names, a render on each side, and the shares it has already."""
    run.log = []
    run.history = []
    run.sequences += 1
    for side in (run.target, run.reference):
        side.correlator = Correlator()
        side.render = side.session.target.fresh_render()
        side.correlator.preset(side.render, "render")
        # Read leniently: a side that answers these wrongly differs in the first comparison.
        listed = side.call("GET", f"/v1/renders/{side.render}/shares").json()
        rows = listed.get("shares") if isinstance(listed, dict) else None
        side.baseline = {row["id"] for row in rows or [] if isinstance(row, dict) and "id" in row}
        if side.session.target.is_mock:
            side.engaged = {}  # a render made for the sequence: its counts are all its own
            continue
        engaged = side.call("GET", f"/v1/renders/{side.render}/engagement").json()
        side.engaged = engaged if isinstance(engaged, dict) else {}


def email_is_on(run: Lockstep) -> bool:
    """Whether the target sends email (the B.11 probe found it on)."""
    return not any(d.source == "notes B.11" for d in run.divergences)


def read_steps(run: Lockstep) -> None:
    """The steps that change nothing: each error on purpose, and a read of the render."""
    for kind in sorted(_ERRORS):
        operation_path, method, act = _ERRORS[kind]
        allowed = _ERRORS_ALLOWED.get(kind)
        run.both(f"error_on_purpose({kind!r})", operation_path, method, act, allowed=allowed)
    if email_is_on(run):
        # With email off, which refusal comes first is each deployment's own (notes B.2).
        run.both(
            "error_on_purpose('an address that is no address')",
            "/v1/renders/{id}/email",
            "post",
            lambda side: side.call(
                "POST", f"/v1/renders/{side.render}/email", json={"to": "no-address"}
            ),
        )
    if run.target.foreign is not None:
        run.both(
            "error_on_purpose('another project's render')",
            "/v1/renders/{id}",
            "get",
            lambda side: side.call("GET", f"/v1/renders/{side.foreign}"),
        )
    if run.target.template is not None:
        run.both(
            "error_on_purpose('render data that is not an object')",
            "/v1/templates/{slug}/render",
            "post",
            lambda side: side.call(
                "POST", f"/v1/templates/{slug(side)}/render", json={"data": "d1ff"}
            ),
        )
    run.both("health()", "/health", "get", lambda side: side.call("GET", "/health", key=False))
    run.both(
        "get_render()",
        "/v1/renders/{id}",
        "get",
        lambda side: side.call("GET", f"/v1/renders/{side.render}"),
    )
    follow_download_url(
        run, "get_render()", lambda side: side.call("GET", f"/v1/renders/{side.render}")
    )
    run.both(
        "download_render()",
        "/v1/renders/{id}/download",
        "get",
        lambda side: side.call("GET", f"/v1/renders/{side.render}/download"),
    )


def slug(side: Side) -> str:
    """The slug of the template the side renders (where the run has one)."""
    assert side.template is not None
    return side.template[0]


def follow_download_url(run: Lockstep, of: str, show: Callable[[Side], Exchange]) -> None:
    """Follow the ``downloadUrl`` a render shows: on each side it must serve the whole PDF.

    The URL may be the API's own route or public storage, so the step compares what it
    serves, not how: its status, and whether the body is a whole PDF. The key goes only to
    the API's own origin.
    """

    def followed(side: Side) -> Exchange:
        shown = show(side)
        body = shown.json()
        url = body.get("downloadUrl") if isinstance(body, dict) else None
        if not isinstance(url, str):
            return shown  # compared as it came: the other side shows a URL, or none either
        own = urlsplit(url)[:2] == urlsplit(side.session.client.base_url)[:2]
        got = side.session.client.request("GET", url, key=side.session.target.key if own else None)
        whole = is_whole_pdf(got)
        return replace(
            got,
            response_headers={"content-type": "application/json"},
            response_body=orjson.dumps({"serves a whole PDF": whole}),
        )

    run.both(f"follow downloadUrl of {of}", "/v1/renders/{id}/download", "get", followed)


def compare_lists(run: Lockstep) -> None:
    """Both sides' share lists of the sequence's render (a check after each step)."""

    def listing(side: Side) -> Exchange:
        exchange = side.call("GET", f"/v1/renders/{side.render}/shares")
        return _without(exchange, side.baseline)

    run.both("list_shares()", "/v1/renders/{id}/shares", "get", listing)
    run.log.pop()  # a check after a step, not a step of its own
    run.steps -= 1
    if run.target.not_ready is not None:

        def other_listing(side: Side) -> Exchange:
            return side.call("GET", f"/v1/renders/{side.not_ready}/shares")

        # Another render of the project lists none of the sequence's shares.
        run.both("list_shares() of another render", "/v1/renders/{id}/shares", "get", other_listing)
        run.log.pop()
        run.steps -= 1


Made = dict[str, tuple[str, str]]
"""A share both sides made: each side's share id and link, by the side's label."""


_MISSING = "00000000-0000-7000-8000-00000000d1ff"
MESSAGE_MAX: int = craftkit_spec.fact("CreateShareRequest", "message", "maxLength")


def _valid_body(operation: craftkit_spec.Operation) -> Any:
    """The smallest body the spec accepts for an operation (``None`` when it takes none).

    Its required fields, each with the first value its schema enumerates; an address is
    Resend's test recipient.
    """
    request = operation.definition.get("requestBody")
    if request is None:
        return None
    schema = craftkit_spec.merged(request["content"]["application/json"]["schema"])
    fields = craftkit_spec.declared_properties(schema)
    body: dict[str, Any] = {}
    for name in schema.get("required", []):
        field = craftkit_spec.merged(fields[name])
        body[name] = RESEND_TEST_RECIPIENT if field.get("format") == "email" else field["enum"][0]
    return body


_RENDER_PATH = "/v1/renders/{id}"
_RENDER_OPERATIONS: tuple[tuple[str, str, str, Any], ...] = tuple(
    (
        operation.method.upper(),
        operation.path,
        operation.path.removeprefix(_RENDER_PATH).replace("{shareId}", _MISSING),
        _valid_body(operation),
    )
    for operation in craftkit_spec.iter_operations(craftkit_spec.load_resolved())
    if operation.path == _RENDER_PATH or operation.path.startswith(_RENDER_PATH + "/")
)
"""Every operation on a render, from the spec: method, path template, the suffix after the
id, and a valid body."""


def _on_render(
    method: str, suffix: str, body: Any, *, render: str | None = None, key: bool = True
) -> Callable[[Side], Exchange]:
    return lambda side: side.call(
        method, f"/v1/renders/{render or side.render}{suffix}", key=key, json=body
    )


Allowed = tuple[str, Callable[[Exchange], bool]] | None
"""A step's own decision and what its other choice looks like (``Lockstep.both``)."""


def _email_off_first(answer: Exchange) -> bool:
    """A deployment without email refusing before it looks at the render (notes B.14)."""
    return answer.status == 503 and error_code(answer) == "email_not_configured"


def _another_4xx(answer: Exchange) -> bool:
    """A body not sent as JSON refused with another 4xx (notes B.13)."""
    return 400 <= answer.status < 500


_EMAIL_OFF_FIRST: Allowed = ("notes B.14", _email_off_first)
BAD_EXPIRIES: tuple[object, ...] = (1798761599, "2026-12-31 23:59:59Z", "2026-12-31")
"""``expiresAt`` values that are no ISO 8601 date-time with a zone (notes B.17)."""

_ERRORS: dict[str, tuple[str, str, Callable[[Side], Exchange]]] = {
    **{
        f"no key: {method} {path}": (
            path,
            method.lower(),
            _on_render(method, suffix, body, key=False),
        )
        for method, path, suffix, body in _RENDER_OPERATIONS
    },
    **{
        f"unknown render: {method} {path}": (
            path,
            method.lower(),
            _on_render(method, suffix, body, render=_MISSING),
        )
        for method, path, suffix, body in _RENDER_OPERATIONS
    },
    "no key: POST /v1/templates/{slug}/render": (
        "/v1/templates/{slug}/render",
        "post",
        lambda side: side.call(
            "POST", "/v1/templates/invoice/render", key=False, json={"data": {}}
        ),
    ),
    "unknown template": (
        "/v1/templates/{slug}/render",
        "post",
        lambda side: side.call(
            "POST", "/v1/templates/no-such-template-d1ff/render", json={"data": {}}
        ),
    ),
    "message too long": (
        "/v1/renders/{id}/shares",
        "post",
        lambda side: side.call(
            "POST", f"/v1/renders/{side.render}/shares", json={"message": "m" * (MESSAGE_MAX + 1)}
        ),
    ),
    "a body that is not JSON": (
        "/v1/renders/{id}/shares",
        "post",
        lambda side: side.session.client.request(
            "POST",
            f"/v1/renders/{side.render}/shares",
            key=side.session.target.key,
            content=b"channel=link",
            headers={"Content-Type": "text/plain"},
        ),
    ),
    "a body that is not JSON, sent as JSON": (
        "/v1/renders/{id}/shares",
        "post",
        lambda side: side.session.client.request(
            "POST",
            f"/v1/renders/{side.render}/shares",
            key=side.session.target.key,
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        ),
    ),
    **{
        f"an expiresAt that is no ISO 8601 date-time ({value!r})": (
            "/v1/renders/{id}/shares",
            "post",
            _on_render("POST", "/shares", {"expiresAt": value}),
        )
        for value in BAD_EXPIRIES
    },
    "an unknown event type": (
        "/v1/renders/{id}/events",
        "post",
        lambda side: side.call(
            "POST", f"/v1/renders/{side.render}/events", json={"eventType": "d1ff-unknown"}
        ),
    ),
    "unknown key": (
        "/v1/renders/{id}",
        "get",
        lambda side: side.session.client.request(
            "GET", f"/v1/renders/{side.render}", key="ck_test_craftkitdiffnobodyholdsthis"
        ),
    ),
}
"""Errors on purpose: where each is declared, and the request that provokes it."""

_ERRORS_ALLOWED: dict[str, Allowed] = {
    "a body that is not JSON": ("notes B.13", _another_4xx),
    "unknown render: POST /v1/renders/{id}/email": _EMAIL_OFF_FIRST,
}
"""The errors on purpose a deployment may answer otherwise, and how (their decisions)."""


def since(exchange: Exchange, before: dict[str, Any]) -> Exchange:
    """An engagement answer less what the render had when the sequence began."""
    body = exchange.json()
    if exchange.status != 200 or not isinstance(body, dict) or not before:
        return exchange
    try:
        old = before["counts"]
        counts = {kind: n - old.get(kind, 0) for kind, n in body["counts"].items()}
        known = {event["id"] for event in before["recent"]}
        since = {
            **body,
            "counts": counts,
            "linkOpens": body["linkOpens"] - before["linkOpens"],
            "total": body["total"] - before["total"],
            "recent": [event for event in body["recent"] if event["id"] not in known],
        }
    except (KeyError, TypeError, AttributeError):
        return exchange  # a malformed answer is compared as it came
    return replace(exchange, response_body=orjson.dumps(since))


def render_seeded(side: Side, slug: str) -> Exchange:
    """A render of one of the mock's seeded templates, with empty data."""
    return side.call("POST", f"/v1/templates/{slug}/render", json={"data": {}})


@contextlib.contextmanager
def faults_on(*sides: Side, **faults: Any) -> Iterator[None]:
    """Faults switched on for the sides' projects (mocks), and back as they were after."""
    before = [side.session.target.in_project("GET", "/faults").json() for side in sides]
    for side in sides:
        side.session.target.set_faults(**faults)
    try:
        yield
    finally:
        for side, was in zip(sides, before, strict=True):
            side.session.target.set_faults(**{name: was.get(name) for name in faults})


def deleted_project_key(side: Side) -> str:
    """The key of a project made and deleted at once on the side's mock."""
    target = side.session.target
    project, key = target.new_project("diff (deleted)")
    target.control("DELETE", f"/projects/{project}")
    target.projects.pop(key, None)  # gone already: nothing left to clean up
    return key


@functools.cache
def keyed_operations() -> tuple[tuple[str, str], ...]:
    """(method, path template) of every operation that takes a key, from the spec."""
    return tuple(
        (operation.method.upper(), operation.path)
        for operation in craftkit_spec.iter_operations(craftkit_spec.load_resolved())
        if operation.is_authenticated
    )


def keyed_call(
    method: str, path: str, key: Callable[[Side], str | None]
) -> Callable[[Side], Exchange]:
    """A step's request: the operation on the side's render, a missing share, the invoice."""

    def act(side: Side) -> Exchange:
        url = path.format(id=side.render, shareId=_MISSING, slug="invoice")
        body: dict[str, Any] | None = {} if method == "POST" else None
        return side.session.client.request(method, url, key=key(side), json=body)

    return act


def _submit(side: Side, key: str, api_key: str | None = None) -> Exchange:
    """The side's template rendered with its data, under an idempotency key.

    With ``api_key`` (another project's), as that project.
    """
    assert side.template is not None
    slug, data = side.template
    return side.session.client.request(
        "POST",
        f"/v1/templates/{slug}/render",
        key=api_key or side.session.target.key,
        json={"data": data},
        headers={"Idempotency-Key": key},
    )


def submit_render(run: Lockstep, replay: bool) -> str:
    """A render submitted, and (``replay``) again with the same key; the key."""
    key = f"diff-{uuid.uuid4()}"
    run.both(
        "submit_render()", "/v1/templates/{slug}/render", "post", lambda side: _submit(side, key)
    )
    if replay:
        run.both(
            "submit_render() again, same key",
            "/v1/templates/{slug}/render",
            "post",
            lambda side: _progress_hidden(_submit(side, key)),
        )
        if run.target.session.target.other_key and run.target.session.target.is_mock:
            run.both(
                "submit_render() with the same key from another project",
                "/v1/templates/{slug}/render",
                "post",
                lambda side: _progress_hidden(_submit(side, key, side.session.target.other_key)),
            )
    return key


_SETTLE_STEP_SECONDS = 5
_SETTLE_STEPS = 60
"""How the mocks' clocks move on until a submitted render has finished (5 minutes at most)."""


def settle_render(run: Lockstep, key: str) -> None:
    """On two mocks: time moves on alike until the target's render has finished.

    Then the same key shows the finished render whole (no longer hidden as timing), ``GET``
    shows it as the submission did, and its ``downloadUrl`` serves the PDF.
    """
    ids: dict[str, str] = {}
    for side in (run.target, run.reference):
        body = _submit(side, key).json()
        ids[side.label] = str(body.get("id") or "") if isinstance(body, dict) else ""
    if not all(ids.values()):
        return  # an answer without the render's id: the submission's difference says so
    for _ in range(_SETTLE_STEPS):
        shown = run.target.call("GET", f"/v1/renders/{ids[run.target.label]}").json()
        if isinstance(shown, dict) and shown.get("status") in ("succeeded", "failed"):
            break
        for side in (run.target, run.reference):
            side.session.target.advance_clock(_SETTLE_STEP_SECONDS)
    again = "submit_render() again, same key, once it has finished"
    run.both(again, "/v1/templates/{slug}/render", "post", lambda side: _submit(side, key))
    follow_download_url(run, again, lambda side: _submit(side, key))
    run.both(
        "get_render() of the submitted render",
        "/v1/renders/{id}",
        "get",
        lambda side: side.call("GET", f"/v1/renders/{ids[side.label]}"),
    )


def render_once(run: Lockstep) -> None:
    """A submission and its replay, once per run, before the sequences.

    A deployment renders for real, so there the sequences leave submissions out. On two
    mocks the render is then let finish (``settle_render``).
    """
    if run.target.template is None or run.target.session.config.read_only:
        return
    run.log = []
    try:
        key = submit_render(run, replay=True)
        if run.target.session.target.is_mock:
            settle_render(run, key)
    except Diverged as diverged:
        run.divergences.append(diverged.divergence)


def _progress_hidden(exchange: Exchange) -> Exchange:
    """A replayed submission without the render's progress (timing on either side).

    Its code, id, poll URL and creation time are compared.
    """
    body = exchange.json()
    if not isinstance(body, dict):
        return exchange
    hidden = {k: v for k, v in body.items() if k not in ("status", "downloadUrl", "errorMessage")}
    return replace(exchange, response_body=orjson.dumps(hidden))


def _without(exchange: Exchange, baseline: set[str]) -> Exchange:
    """A share list without the rows that were there before the sequence began."""
    body = exchange.json()
    if exchange.status != 200 or not isinstance(body, dict) or "shares" not in body:
        return exchange
    rows = [row for row in body["shares"] if row.get("id") not in baseline]
    return replace(exchange, response_body=orjson.dumps({**body, "shares": rows}))
