"""Exception handlers: every refusal the app raises, answered as the API's one envelope.

An ``ApiError`` is its own answer; Starlette's 404 (no route) and 405 (wrong method) are
translated into the API's codes; a store outage names the store; a client gone mid-body is
answered quietly. Anything else is the middleware's to answer (and journal) as ``500``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mock_server.engines.interface import StoreUnavailable
from mock_server.http.bodies import JSONResponse
from mock_server.http.middleware import store_unreachable
from mock_server.http.requests import store_of
from mock_server.model import errors

Handler = Callable[[Request, Exception], Awaitable[Response]]


def error_response(error: errors.ApiError) -> Response:
    """The envelope of an error, with its status and headers."""
    return JSONResponse(error.envelope(), status_code=error.status, headers=error.headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method), in the API's envelope."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error: errors.ApiError = errors.MethodNotAllowed(
            f"{request.method} is not allowed here", headers=dict(exc.headers or {})
        )
    elif exc.status_code == 404:
        error = errors.NotFound(f"No route for {request.url.path}")
    else:
        error = errors.ApiError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]  # an instance-level override
    return error_response(error)


async def _store_down(request: Request, exc: Exception) -> Response:
    """The store cannot be reached: the envelope, naming the store, within its timeout."""
    assert isinstance(exc, StoreUnavailable)
    return error_response(store_unreachable(store_of(request).description, exc))


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client left before its body arrived: nobody to answer, nothing to log."""
    return Response(status_code=400)


def exception_handlers() -> Mapping[type[Exception], Handler]:
    """The app's handlers, by the exception each answers."""
    return {
        errors.ApiError: _api_error,
        StoreUnavailable: _store_down,
        ClientDisconnect: _client_gone,
        HTTPException: _http_error,
    }
