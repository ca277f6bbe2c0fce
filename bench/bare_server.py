"""The ceiling: one Starlette JSON endpoint under the same uvicorn settings as the mock."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def ok(request: Request) -> Response:
    """A constant JSON answer."""
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/ok", ok)])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )
