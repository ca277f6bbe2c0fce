"""The mock's control API (``/_mock/...``), described in mock-control.yaml.

Tests drive what the public API cannot (projects and keys, a render's status, the clock,
faults) and read what it hides (the outbox, the journal). Every one of those exists twice:
under ``/_mock/projects/{projectId}/…`` for one project, which is what parallel test
runs use, and at ``/_mock/…`` for the whole mock, for a single user. Bodies are checked
against mock-control.yaml's schemas with the same compiled validators as the public API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import craftkit_spec
from mock_server.http import bodies
from mock_server.http.bodies import JSONResponse
from mock_server.http.har import har_of
from mock_server.http.requests import client_ip, origin, read_json, settings_of, store_of
from mock_server.model import errors, faults
from mock_server.model.clock import ClockRangeError, ClockState, real_now
from mock_server.model.timestamps import format_timestamp
from mock_server.operations.callers import ProjectView
from mock_server.operations.traffic import Traffic


async def _control_json(
    request: Request, operation_id: str, *, optional: bool = False
) -> dict[str, Any]:
    return await read_json(request, operation_id, validator="control_validator", optional=optional)


async def _named_project(request: Request) -> ProjectView | None:
    """The project a ``/_mock/projects/{projectId}/…`` path names (404 if none); else None."""
    project_id = request.path_params.get("projectId")
    return None if project_id is None else await store_of(request).project(project_id)


async def reset(request: Request) -> Response:
    """``POST /_mock/reset``: everything back to the seed, real time, default faults."""
    await store_of(request).reset()
    return Response(status_code=204)


async def reset_project(request: Request) -> Response:
    """``POST /_mock/projects/{projectId}/reset``: one project back to its start."""
    await store_of(request).reset_project(request.path_params["projectId"])
    return Response(status_code=204)


async def create_project(request: Request) -> Response:
    """``POST /_mock/projects``."""
    body = await _control_json(request, "mockCreateProject", optional=True)
    project, api_key = await store_of(request).create_project(body.get("name"))
    return JSONResponse(
        {"projectId": project.id, "name": project.name, "apiKey": api_key}, status_code=201
    )


async def delete_project(request: Request) -> Response:
    """``DELETE /_mock/projects/{projectId}``."""
    await store_of(request).delete_project(request.path_params["projectId"])
    return Response(status_code=204)


async def create_render(request: Request) -> Response:
    """``POST /_mock/renders`` (by key) or ``/_mock/projects/{projectId}/renders``."""
    store = store_of(request)
    view = await _named_project(request)
    if view is None:
        body = await _control_json(request, "mockCreateRender")
        view = await store.project_of_key(body["apiKey"])
    else:
        body = await _control_json(request, "mockCreateProjectRender", optional=True)
    render, state = await store.control_create_render(
        view,
        status=body.get("status", "succeeded"),
        slug=body.get("templateSlug", "invoice"),
        data=body.get("data", {}),
    )
    return JSONResponse(
        bodies.render_body(render, state, origin(request), settings_of(request)), status_code=201
    )


async def set_render_status(request: Request) -> Response:
    """``POST /_mock/renders/{id}/status``."""
    body = await _control_json(request, "mockSetRenderStatus")
    store = store_of(request)
    render, state = await store.force_render_status(request.path_params["id"], body["status"])
    return JSONResponse(bodies.render_body(render, state, origin(request), settings_of(request)))


def _clock_change(body: dict[str, Any]) -> Callable[[ClockState, datetime], ClockState]:
    """The change a ``mockSetClock`` body asks for, as a function of the clock and real time."""
    if "advanceSeconds" in body:
        seconds = float(body["advanceSeconds"])
        return lambda clock, real: clock.advanced(seconds, real)
    if "now" in body:
        instant = datetime.fromisoformat(body["now"].replace("Z", "+00:00"))
        return lambda clock, real: clock.set_to(instant, real)
    frozen = bool(body["frozen"])
    return lambda clock, real: clock.frozen_as(frozen, real)


async def clock(request: Request) -> Response:
    """``GET``/``POST`` a clock: the shared one, or a project's (which then runs on its own)."""
    view = await _named_project(request)
    store = store_of(request)
    project_id = None if view is None else view.project.id
    if request.method == "POST":
        body = await _control_json(request, "mockSetClock")
        try:
            state = await store.change_clock(project_id, _clock_change(body))
        except ClockRangeError as exc:
            field = next(iter(body))
            raise errors.InvalidRequest(
                issues={"formErrors": [], "fieldErrors": {field: [str(exc)]}}
            ) from None
    else:
        state = (await store.shared()).clock if view is None else view.clock
    return JSONResponse({"now": format_timestamp(state.now(real_now())), "frozen": state.frozen})


async def emails(request: Request) -> Response:
    """The outbox, oldest first: a project's, or the whole mock's filtered by the query."""
    view = await _named_project(request)
    query = request.query_params
    kept = await store_of(request).emails(
        view.project.id if view is not None else query.get("projectId"),
        render_id=query.get("renderId"),
        to=query.get("to"),
    )
    return JSONResponse({"emails": [bodies.email_body(entry) for entry in kept]})


async def fault_switches(request: Request) -> Response:
    """``GET``/``PUT`` faults: the shared switches, or a project's own over them."""
    view = await _named_project(request)
    store = store_of(request)
    project_id = None if view is None else view.project.id
    if request.method == "PUT":
        body = await _control_json(request, "mockSetFaults")
        await store.set_faults(faults.from_wire(body), project_id)
    if project_id is None:
        return JSONResponse(faults.to_wire(await store.shared_faults()))
    return JSONResponse(faults.to_wire((await store.project(project_id)).faults))


async def journal(request: Request) -> Response:
    """The public requests answered, newest first: a project's, or the whole mock's."""
    view = await _named_project(request)
    traffic: Traffic = request.app.state.traffic
    entries = await traffic.journal(None if view is None else view.project.id)
    return JSONResponse({"requests": [bodies.journal_body(entry) for entry in entries]})


async def journal_har(request: Request) -> Response:
    """The project's recorded exchanges as HAR, oldest first, keys and tokens stood in for."""
    view = await _named_project(request)
    assert view is not None  # the route names a project
    traffic: Traffic = request.app.state.traffic
    entries = await traffic.journal(view.project.id)
    return JSONResponse(har_of(entries, origin(request)))


async def _project_view(request: Request) -> ProjectView:
    return await store_of(request).project(request.path_params["projectId"])


def _default_events() -> list[str]:
    """The events a new subscription names when it names none (mock-control.yaml)."""
    events: list[str] = craftkit_spec.control_component("CreateWebhookRequest")["properties"][
        "events"
    ]["default"]
    return events


async def webhooks(request: Request) -> Response:
    """``GET``/``POST`` ``/_mock/projects/{projectId}/webhooks``."""
    view = await _project_view(request)
    hooks = store_of(request).webhooks
    if request.method == "GET":
        listed = [bodies.subscription_body(s) for s in await hooks.subscriptions(view)]
        return JSONResponse({"subscriptions": listed})
    body = await _control_json(request, "mockCreateWebhook")
    subscription = await hooks.subscribe(
        view,
        url=body["url"],
        secret=body["secret"],
        events=body.get("events", _default_events()),
        active=body.get("active", True),
    )
    return JSONResponse(bodies.subscription_body(subscription), status_code=201)


async def webhook(request: Request) -> Response:
    """``PATCH``/``DELETE`` one subscription."""
    view = await _project_view(request)
    hooks = store_of(request).webhooks
    subscription_id = request.path_params["subscriptionId"]
    if request.method == "DELETE":
        await hooks.unsubscribe(view, subscription_id)
        return Response(status_code=204)
    body = await _control_json(request, "mockUpdateWebhook")
    changed = await hooks.change(view, subscription_id, body)
    return JSONResponse(bodies.subscription_body(changed))


async def webhook_deliveries(request: Request) -> Response:
    """``GET /_mock/projects/{projectId}/webhook-deliveries``: newest first."""
    view = await _project_view(request)
    found = await store_of(request).webhooks.deliveries(view)
    return JSONResponse({"deliveries": [bodies.delivery_body(d) for d in found]})


async def resend_delivery(request: Request) -> Response:
    """``POST …/webhook-deliveries/{deliveryId}/resend``."""
    view = await _project_view(request)
    again = await store_of(request).webhooks.resend(view, request.path_params["deliveryId"])
    return JSONResponse(bodies.delivery_body(again), status_code=202)


async def open_email(request: Request) -> Response:
    """``POST /_mock/projects/{projectId}/emails/{emailId}/open``."""
    view = await _project_view(request)
    event, render_id = await store_of(request).email_opened(
        view, request.path_params["emailId"], client_ip(request), request.headers.get("user-agent")
    )
    return JSONResponse(
        {"eventId": event.id, "shareId": event.share_id, "renderId": render_id}, status_code=201
    )


def control_routes() -> list[BaseRoute]:
    """The control API's routes: per project, then for the whole mock."""
    project = "/_mock/projects/{projectId}"
    return [
        Route("/_mock/projects", create_project, methods=["POST"]),
        Route(project, delete_project, methods=["DELETE"]),
        Route(f"{project}/reset", reset_project, methods=["POST"]),
        Route(f"{project}/renders", create_render, methods=["POST"]),
        Route(f"{project}/clock", clock, methods=["GET", "POST"]),
        Route(f"{project}/faults", fault_switches, methods=["GET", "PUT"]),
        Route(f"{project}/emails", emails, methods=["GET"]),
        Route(f"{project}/requests", journal, methods=["GET"]),
        Route(f"{project}/requests.har", journal_har, methods=["GET"]),
        Route(f"{project}/emails/{{emailId}}/open", open_email, methods=["POST"]),
        Route(f"{project}/webhooks", webhooks, methods=["GET", "POST"]),
        Route(f"{project}/webhooks/{{subscriptionId}}", webhook, methods=["PATCH", "DELETE"]),
        Route(f"{project}/webhook-deliveries", webhook_deliveries, methods=["GET"]),
        Route(
            f"{project}/webhook-deliveries/{{deliveryId}}/resend", resend_delivery, methods=["POST"]
        ),
        Route("/_mock/reset", reset, methods=["POST"]),
        Route("/_mock/renders", create_render, methods=["POST"]),
        Route("/_mock/renders/{id}/status", set_render_status, methods=["POST"]),
        Route("/_mock/clock", clock, methods=["GET", "POST"]),
        Route("/_mock/emails", emails, methods=["GET"]),
        Route("/_mock/faults", fault_switches, methods=["GET", "PUT"]),
        Route("/_mock/requests", journal, methods=["GET"]),
    ]
