"""The mock's control API (``/_mock/...``), described in mock-control.yaml.

Tests drive what the public API cannot (projects and keys, a render's status, the clock,
faults) and read what it hides (the outbox, the journal). Bodies are checked against
mock-control.yaml's schemas with the same compiled validators as the public API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server import domain, present
from mock_server.store import Faults
from mock_server.wire import JSONResponse, origin, read_json, store_of


async def _control_json(
    request: Request, operation_id: str, *, optional: bool = False
) -> dict[str, Any]:
    return await read_json(request, operation_id, validator="control_validator", optional=optional)


async def reset(request: Request) -> Response:
    """``POST /_mock/reset``: back to the seed, real time, default faults."""
    store = store_of(request)
    store.reset()
    store.clock.reset()
    return Response(status_code=204)


async def create_project(request: Request) -> Response:
    """``POST /_mock/projects``."""
    body = await _control_json(request, "mockCreateProject", optional=True)
    project, api_key = store_of(request).create_project(body.get("name"))
    return JSONResponse(
        {"projectId": project.id, "name": project.name, "apiKey": api_key}, status_code=201
    )


async def delete_project(request: Request) -> Response:
    """``DELETE /_mock/projects/{projectId}``."""
    store_of(request).delete_project(request.path_params["projectId"])
    return Response(status_code=204)


async def create_render(request: Request) -> Response:
    """``POST /_mock/renders``: a render already in the status asked for."""
    body = await _control_json(request, "mockCreateRender")
    store = store_of(request)
    project = store.authenticate(body["apiKey"])
    render, state = store.control_create_render(
        project,
        status=body.get("status", "succeeded"),
        slug=body.get("templateSlug", "invoice"),
        data=body.get("data", {}),
    )
    return JSONResponse(
        present.render_body(render, state, origin(request), store.settings), status_code=201
    )


async def set_render_status(request: Request) -> Response:
    """``POST /_mock/renders/{id}/status``."""
    body = await _control_json(request, "mockSetRenderStatus")
    store = store_of(request)
    render, state = store.force_render_status(request.path_params["id"], body["status"])
    return JSONResponse(present.render_body(render, state, origin(request), store.settings))


def _clock_body(request: Request) -> dict[str, Any]:
    clock = store_of(request).clock
    return {"now": domain.format_timestamp(clock.now()), "frozen": clock.frozen}


async def clock(request: Request) -> Response:
    """``GET``/``POST /_mock/clock``: read, advance, set or freeze the clock."""
    if request.method == "POST":
        body = await _control_json(request, "mockSetClock")
        mock_clock = store_of(request).clock
        if "advanceSeconds" in body:
            mock_clock.advance(float(body["advanceSeconds"]))
        elif "now" in body:
            mock_clock.set(datetime.fromisoformat(body["now"].replace("Z", "+00:00")))
        else:
            mock_clock.freeze(bool(body["frozen"]))
    return JSONResponse(_clock_body(request))


async def emails(request: Request) -> Response:
    """``GET /_mock/emails``: the outbox, oldest first."""
    outbox = [
        {
            "id": sent.id,
            "from": sent.email.sender,
            "to": sent.email.to,
            "subject": sent.email.subject,
            "text": sent.email.text,
            "html": sent.email.html,
            "renderId": sent.email.render_id,
            "shareId": sent.email.share_id,
            "sentAt": domain.format_timestamp(sent.sent_at),
        }
        for sent in store_of(request).outbox
    ]
    return JSONResponse({"emails": outbox})


def _faults_body(faults: Faults) -> dict[str, Any]:
    return {
        "emailTransport": faults.email_transport,
        "emailSendFails": faults.email_send_fails,
        "storageFails": faults.storage_fails,
        "queueUnavailable": faults.queue_unavailable,
        "rateLimitPerMinute": faults.rate_limit_per_minute,
    }


_FAULT_FIELDS = {
    "emailTransport": "email_transport",
    "emailSendFails": "email_send_fails",
    "storageFails": "storage_fails",
    "queueUnavailable": "queue_unavailable",
    "rateLimitPerMinute": "rate_limit_per_minute",
}


async def faults(request: Request) -> Response:
    """``GET``/``PUT /_mock/faults``."""
    store = store_of(request)
    if request.method == "PUT":
        body = await _control_json(request, "mockSetFaults")
        for wire_name, attribute in _FAULT_FIELDS.items():
            if wire_name in body:
                setattr(store.faults, attribute, body[wire_name])
        if "rateLimitPerMinute" in body:
            store.clear_rate_windows()
    return JSONResponse(_faults_body(store.faults))


async def journal(request: Request) -> Response:
    """``GET /_mock/requests``: newest first."""
    entries = [
        {
            "method": e.method,
            "path": e.path,
            "status": e.status,
            "time": domain.format_timestamp(e.at),
        }
        for e in store_of(request).journal
    ]
    return JSONResponse({"requests": entries})


def control_routes() -> list[BaseRoute]:
    """The control API's routes."""
    return [
        Route("/_mock/reset", reset, methods=["POST"]),
        Route("/_mock/projects", create_project, methods=["POST"]),
        Route("/_mock/projects/{projectId}", delete_project, methods=["DELETE"]),
        Route("/_mock/renders", create_render, methods=["POST"]),
        Route("/_mock/renders/{id}/status", set_render_status, methods=["POST"]),
        Route("/_mock/clock", clock, methods=["GET", "POST"]),
        Route("/_mock/emails", emails, methods=["GET"]),
        Route("/_mock/faults", faults, methods=["GET", "PUT"]),
        Route("/_mock/requests", journal, methods=["GET"]),
    ]
