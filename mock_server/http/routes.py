"""The public API's endpoints. Each one translates: read the request, call the store, answer.

Validation order (notes B.2): authentication first, then the body (``invalid_json`` →
``invalid_request``), then the resource (``404``), then its state (``409``), then email
configuration (``503``) and the send (``502``).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

import craftkit_spec
from mock_server.http import bodies
from mock_server.http.bodies import JSONResponse
from mock_server.http.requests import (
    client_ip,
    looked_up_link,
    origin,
    project,
    read_json,
    settings_of,
    store_of,
)
from mock_server.model import errors
from mock_server.model.timestamps import parse_timestamp
from mock_server.operations.store import MisconfiguredError

_DEFAULT_CHANNEL = craftkit_spec.fact("CreateShareRequest", "channel", "x-default")
_OUT_OF_RANGE = "Invalid datetime: outside the years 0001 to 9999 once converted to UTC"


def _expiry(body: dict[str, Any]) -> datetime | None:
    """The body's ``expiresAt`` as an instant; one Python cannot hold is a validation error."""
    text = body.get("expiresAt")
    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except ValueError:
        raise errors.InvalidRequest(
            issues={"formErrors": [], "fieldErrors": {"expiresAt": [_OUT_OF_RANGE]}}
        ) from None


async def health(request: Request) -> Response:
    """``GET /health``: ``ok`` once the store answers (with Redis, a ping).

    While the store cannot be reached this answers ``500`` naming it, like every request.
    """
    try:
        await store_of(request).ping()
    except MisconfiguredError as exc:
        raise errors.Internal(str(exc)) from None
    return JSONResponse({"status": "ok"})


async def render_template(request: Request) -> Response:
    """``POST /v1/templates/{slug}/render``: 202 new, 200 replay of an idempotency key."""
    view = project(request)
    body = await read_json(request, "renderTemplate")
    header_key = request.headers.get("idempotency-key")
    options: dict[str, Any] = body.get("options") or {}
    render, state, created = await store_of(request).submit_render(
        view,
        slug=request.path_params["slug"],
        data=body["data"],
        version=options.get("versionNumber"),
        idempotency_key=header_key or body.get("jobId"),
        filename=options.get("filename"),
    )
    headers = {"Idempotency-Key": header_key} if header_key else None
    content = bodies.render_submission(render, state, origin(request), settings_of(request))
    return JSONResponse(content, status_code=202 if created else 200, headers=headers)


async def get_render(request: Request) -> Response:
    """``GET /v1/renders/{id}``."""
    view = project(request)
    render, state = await store_of(request).get_render(view, request.path_params["id"])
    return JSONResponse(bodies.render_body(render, state, origin(request), settings_of(request)))


def _pdf_response(render_id: str, pdf: bytes) -> Response:
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{render_id}.pdf"'},
    )


async def download_render(request: Request) -> Response:
    """``GET /v1/renders/{id}/download``: the whole PDF, or a clean error."""
    view = project(request)
    render, pdf = await store_of(request).download(view, request.path_params["id"])
    return _pdf_response(render.id, pdf)


async def create_share(request: Request) -> Response:
    """``POST /v1/renders/{id}/shares``."""
    view = project(request)
    body = await read_json(request, "createShare")
    created = await store_of(request).create_share(
        view,
        request.path_params["id"],
        channel=body.get("channel", _DEFAULT_CHANNEL),
        recipient_email=body.get("recipientEmail"),
        message=body.get("message"),
        expires_at=_expiry(body),
        origin=origin(request),
    )
    return JSONResponse(bodies.created_share(created), status_code=201)


async def list_shares(request: Request) -> Response:
    """``GET /v1/renders/{id}/shares``: newest first, revoked included."""
    view = project(request)
    listing = await store_of(request).list_shares(view, request.path_params["id"], origin(request))
    encoder: bodies.ShareListEncoder = request.app.state.share_lists
    return Response(encoder.body(listing), media_type="application/json")


async def revoke_share(request: Request) -> Response:
    """``DELETE /v1/renders/{id}/shares/{shareId}``: once."""
    view = project(request)
    share = await store_of(request).revoke_share(
        view, request.path_params["id"], request.path_params["shareId"]
    )
    return JSONResponse(bodies.revoked_share(share))


async def email_render(request: Request) -> Response:
    """``POST /v1/renders/{id}/email``: write the email share, then send it."""
    view = project(request)
    body = await read_json(request, "emailRender")
    sent = await store_of(request).email_render(
        view,
        request.path_params["id"],
        to=body["to"],
        recipient_name=body.get("recipientName"),
        message=body.get("message"),
        expires_at=_expiry(body),
        origin=origin(request),
    )
    return JSONResponse(bodies.emailed_share(sent), status_code=201)


async def record_event(request: Request) -> Response:
    """``POST /v1/renders/{id}/events``: de-duplicated per type and source IP."""
    view = project(request)
    body = await read_json(request, "recordRenderEvent")
    recorded = await store_of(request).record_render_event(
        view,
        request.path_params["id"],
        body["eventType"],
        client_ip(request),
        body.get("metadata"),
        request.headers.get("user-agent"),
    )
    return JSONResponse({"recorded": recorded})


async def engagement(request: Request) -> Response:
    """``GET /v1/renders/{id}/engagement``."""
    view = project(request)
    found = await store_of(request).engagement(view, request.path_params["id"])
    return JSONResponse(bodies.engagement_body(found))


_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>Shared document: {title}</title></head>
<body>
<main>
<h1>{title}</h1>
{note}
<p><a href="{download}">Download the PDF</a></p>
</main>
</body>
</html>
"""


def _counts(request: Request) -> bool:
    """Whether a link request is a recipient's event: ``HEAD`` records nothing (notes B.12)."""
    return request.method != "HEAD"


async def share_page(request: Request) -> Response:
    """``GET /share/{token}``: the recipient's page; counts a (de-duplicated) view."""
    token = request.path_params["token"]
    store = store_of(request)
    view, share, render = await store.resolve_share(token, looked_up_link(request, token))
    if _counts(request):
        await store.record_share_event(
            view, share, render, "viewed", client_ip(request), request.headers.get("user-agent")
        )
    note = f"<p>{html.escape(share.message)}</p>" if share.message else ""
    page = _PAGE.format(
        title=html.escape(render.template_name),
        note=note,
        download=html.escape(f"/share/{token}/download", quote=True),
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


async def share_download(request: Request) -> Response:
    """``GET /share/{token}/download``: the PDF; counts a (de-duplicated) download."""
    store = store_of(request)
    token = request.path_params["token"]
    view, share, render = await store.resolve_share(token, looked_up_link(request, token))
    pdf = await store.pdf(view, render)
    if _counts(request):
        await store.record_share_event(
            view, share, render, "downloaded", client_ip(request), request.headers.get("user-agent")
        )
    return _pdf_response(render.id, pdf)


Endpoint = Callable[[Request], Awaitable[Response]]

ENDPOINTS: dict[str, Endpoint] = {
    "getHealth": health,
    "renderTemplate": render_template,
    "getRender": get_render,
    "downloadRender": download_render,
    "listShares": list_shares,
    "createShare": create_share,
    "revokeShare": revoke_share,
    "emailRender": email_render,
    "recordRenderEvent": record_event,
    "getRenderEngagement": engagement,
    "viewSharePage": share_page,
    "downloadSharedPdf": share_download,
}
"""Each of the spec's operations, by its ``operationId``, and the endpoint that serves it."""


def _by_method(endpoints: dict[str, Endpoint]) -> Endpoint:
    """One endpoint for a path with several methods, so a 405 lists all of them in Allow."""

    async def endpoint(request: Request) -> Response:
        return await endpoints[request.method if request.method != "HEAD" else "GET"](request)

    return endpoint


def api_routes() -> list[BaseRoute]:
    """The public API's routes: the spec's paths and methods, each with its endpoint."""
    paths: dict[str, dict[str, Endpoint]] = {}
    for operation in craftkit_spec.iter_operations(craftkit_spec.load_resolved()):
        paths.setdefault(operation.path, {})[operation.method.upper()] = ENDPOINTS[
            operation.operation_id
        ]
    return [
        Route(
            path,
            next(iter(endpoints.values())) if len(endpoints) == 1 else _by_method(endpoints),
            methods=list(endpoints),
        )
        for path, endpoints in paths.items()
    ]
