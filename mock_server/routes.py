"""The public API's endpoints. Each one translates: read the request, call the store, answer.

Validation order (notes B.2): authentication first, then the body (``invalid_json`` →
``invalid_request``), then the resource (``404``), then its state (``409``), then email
configuration (``503``) and the send (``502``).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

import craftkit_spec
from mock_server import domain, errors, present
from mock_server.wire import (
    JSONResponse,
    authenticate,
    client_ip,
    looked_up_link,
    origin,
    read_json,
    store_of,
)


def _share_base(request: Request, share_domain: str | None) -> str:
    settings = store_of(request).settings
    return domain.share_base(
        custom_domain=share_domain,
        share_base_url=settings.share_base_url,
        app_url=settings.app_url,
        request_origin=origin(request),
    )


_DEFAULT_CHANNEL = craftkit_spec.fact("CreateShareRequest", "channel", "x-default")
_OUT_OF_RANGE = "Invalid datetime: outside the years 0001 to 9999 once converted to UTC"


def _expiry(body: dict[str, Any]) -> datetime | None:
    """The body's ``expiresAt`` as an instant; one Python cannot hold is a validation error."""
    text = body.get("expiresAt")
    if text is None:
        return None
    try:
        return domain.parse_timestamp(text)
    except ValueError:
        raise errors.InvalidRequest(
            issues={"formErrors": [], "fieldErrors": {"expiresAt": [_OUT_OF_RANGE]}}
        ) from None


async def health(request: Request) -> Response:
    """``GET /health``: ``ok`` once the store answers (with Redis, a ping).

    While the store cannot be reached this answers ``500`` naming it, like every request.
    """
    await store_of(request).engine.ping()
    return JSONResponse({"status": "ok"})


async def render_template(request: Request) -> Response:
    """``POST /v1/templates/{slug}/render``: 202 new, 200 replay of an idempotency key."""
    box = await authenticate(request)
    body = await read_json(request, "renderTemplate")
    header_key = request.headers.get("idempotency-key")
    options: dict[str, Any] = body.get("options") or {}
    store = store_of(request)
    render, state, created = await store.submit_render(
        box,
        slug=request.path_params["slug"],
        data=body["data"],
        version=options.get("versionNumber"),
        idempotency_key=header_key or body.get("jobId"),
        filename=options.get("filename"),
    )
    headers = {"Idempotency-Key": header_key} if header_key else None
    content = present.render_submission(render, state, origin(request), store.settings)
    return JSONResponse(content, status_code=202 if created else 200, headers=headers)


async def get_render(request: Request) -> Response:
    """``GET /v1/renders/{id}``."""
    box = await authenticate(request)
    store = store_of(request)
    render, state = await store.get_render(box, request.path_params["id"])
    return JSONResponse(present.render_body(render, state, origin(request), store.settings))


def _pdf_response(render_id: str, pdf: bytes) -> Response:
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{render_id}.pdf"'},
    )


async def download_render(request: Request) -> Response:
    """``GET /v1/renders/{id}/download``: the whole PDF, or a clean error."""
    box = await authenticate(request)
    render, pdf = await store_of(request).download(box, request.path_params["id"])
    return _pdf_response(render.id, pdf)


async def create_share(request: Request) -> Response:
    """``POST /v1/renders/{id}/shares``."""
    box = await authenticate(request)
    body = await read_json(request, "createShare")
    share, token = await store_of(request).create_share(
        box,
        request.path_params["id"],
        channel=body.get("channel", _DEFAULT_CHANNEL),
        recipient_email=body.get("recipientEmail"),
        message=body.get("message"),
        expires_at=_expiry(body),
    )
    base = _share_base(request, box.project.share_domain)
    return JSONResponse(present.created_share(share, token, base), status_code=201)


async def list_shares(request: Request) -> Response:
    """``GET /v1/renders/{id}/shares``: newest first, revoked included."""
    box = await authenticate(request)
    store = store_of(request)
    rows = await store.list_shares(box, request.path_params["id"])
    base = _share_base(request, box.project.share_domain)
    encoder: present.ShareListEncoder = request.app.state.share_lists
    return Response(encoder.body(rows, base), media_type="application/json")


async def shares(request: Request) -> Response:
    """``/v1/renders/{id}/shares``: one route for both methods, so 405 lists both in Allow."""
    if request.method == "POST":
        return await create_share(request)
    return await list_shares(request)


async def revoke_share(request: Request) -> Response:
    """``DELETE /v1/renders/{id}/shares/{shareId}``: once."""
    box = await authenticate(request)
    share = await store_of(request).revoke_share(
        box, request.path_params["id"], request.path_params["shareId"]
    )
    assert share.revoked_at is not None
    return JSONResponse({"id": share.id, "revokedAt": domain.format_timestamp(share.revoked_at)})


async def email_render(request: Request) -> Response:
    """``POST /v1/renders/{id}/email``: write the email share, then send it."""
    box = await authenticate(request)
    body = await read_json(request, "emailRender")
    base = _share_base(request, box.project.share_domain)
    sent = await store_of(request).email_render(
        box,
        request.path_params["id"],
        to=body["to"],
        recipient_name=body.get("recipientName"),
        message=body.get("message"),
        expires_at=_expiry(body),
        link=lambda token: present.share_url(base, token),
        transport_for=request.app.state.email.transport_for,
    )
    content = {
        "id": sent.share.id,
        "shareToken": sent.token,
        "shareUrl": sent.share_url,
        "emailMessageId": sent.message_id,
        "sentAt": domain.format_timestamp(sent.sent_at),
    }
    return JSONResponse(content, status_code=201)


async def record_event(request: Request) -> Response:
    """``POST /v1/renders/{id}/events``: de-duplicated per type and source IP."""
    box = await authenticate(request)
    body = await read_json(request, "recordRenderEvent")
    recorded = await store_of(request).record_render_event(
        box,
        request.path_params["id"],
        body["eventType"],
        client_ip(request),
        body.get("metadata"),
    )
    return JSONResponse({"recorded": recorded})


async def engagement(request: Request) -> Response:
    """``GET /v1/renders/{id}/engagement``."""
    box = await authenticate(request)
    view = await store_of(request).engagement(box, request.path_params["id"])
    return JSONResponse(present.engagement_body(view))


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
    box, share, render = await store.resolve_share(token, looked_up_link(request, token))
    if _counts(request):
        await store.record_share_event(box, share, "viewed", client_ip(request))
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
    box, share, render = await store.resolve_share(token, looked_up_link(request, token))
    pdf = store.pdf(box, render)
    if _counts(request):
        await store.record_share_event(box, share, "downloaded", client_ip(request))
    return _pdf_response(render.id, pdf)


def api_routes() -> list[BaseRoute]:
    """The public API's routes."""
    return [
        Route("/health", health, methods=["GET"]),
        Route("/v1/templates/{slug}/render", render_template, methods=["POST"]),
        Route("/v1/renders/{id}", get_render, methods=["GET"]),
        Route("/v1/renders/{id}/download", download_render, methods=["GET"]),
        Route("/v1/renders/{id}/shares", shares, methods=["GET", "POST"]),
        Route("/v1/renders/{id}/shares/{shareId}", revoke_share, methods=["DELETE"]),
        Route("/v1/renders/{id}/email", email_render, methods=["POST"]),
        Route("/v1/renders/{id}/events", record_event, methods=["POST"]),
        Route("/v1/renders/{id}/engagement", engagement, methods=["GET"]),
        Route("/share/{token}", share_page, methods=["GET"]),
        Route("/share/{token}/download", share_download, methods=["GET"]),
    ]
