"""``craftkit-conformance proxy``: forwards traffic to the API unchanged and checks it.

Each request goes upstream as it came (method, path, query, headers, the body streamed as
it arrives; hop-by-hop headers stay on their own hop, and ``Host`` becomes the upstream's
unless ``keep_host``), and the answer comes back as upstream sent it, streamed, nothing
added. A copy of each body up to ``MAX_BODY_BYTES`` is kept only until the exchange is
checked; a longer body is passed on whole but its body checks are skipped. Nothing is
logged: no access log, so no key and no share token is ever written anywhere but the
reports.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from conformance.client import Exchange
from conformance.passive.checker import PassiveChecker
from conformance.passive.traffic import MAX_BODY_BYTES, Observed

HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    )
)


class _Kept:
    """The first ``MAX_BODY_BYTES`` of a body, and whether there was more."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.over = False

    def add(self, chunk: bytes) -> None:
        if self.over:
            return
        if len(self.data) + len(chunk) > MAX_BODY_BYTES:
            self.over = True
            self.data.clear()  # a body cut short would fail checks it does not deserve
        else:
            self.data += chunk


def _decoded(body: bytes, encoding: str) -> bytes | None:
    """The body as its ``Content-Encoding`` says, or ``None`` for one this cannot undo."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            return zlib.decompress(body)
    except zlib.error:
        return None
    return None


class CheckingProxy:
    """The ASGI application: every exchange forwarded, then fed to the checker."""

    def __init__(
        self,
        upstream: str,
        checker: PassiveChecker,
        on_start: Callable[[], Awaitable[None]] | None = None,
        keep_host: bool = False,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.checker = checker
        self.on_start = on_start
        # Kept, the API sees the proxy's address: the links it mints (a share's URL) point
        # back through the proxy, so opening them is checked too. A deployment behind
        # virtual hosting needs its own name instead (the default, as mitmproxy's).
        self._dropped = HOP_BY_HOP if keep_host else HOP_BY_HOP | {b"host"}
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(120, connect=10),
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            )
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass lifespan and HTTP through; anything else (websockets) is not the API's."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.on_start is not None:
                    await self.on_start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.time()
        query = scope.get("query_string", b"")
        target = self.upstream + scope["raw_path"].decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in self._dropped]
        sent = _Kept()

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    sent.add(chunk)
                    yield chunk
                if not message.get("more_body"):
                    return

        length = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
        chunked = any(k.lower() == b"transfer-encoding" for k, _ in scope["headers"])
        content: bytes | AsyncIterator[bytes] | None = None
        if length is not None and length.isdigit() and int(length) <= MAX_BODY_BYTES:
            # A body of known, bounded length goes in one piece: sent after the headers as
            # a second small write, it would wait out the peer's delayed ACK.
            content = b"".join([chunk async for chunk in body()])
        elif length is not None or chunked:
            content = body()
        client = self._http()
        request = client.build_request(scope["method"], target, headers=headers, content=content)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            await _answer_unreachable(send, f"upstream {self.upstream} did not answer: {exc!r}")
            return
        answered = _Kept()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                answered.add(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            # Its end, before the client can have it: a request the client sends once it
            # has this answer then starts after it, as it did.
            ended = time.time()
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()
        self._check(scope, target, headers, sent, response, answered, started, ended)

    def _check(
        self,
        scope: Scope,
        target: str,
        headers: list[tuple[bytes, bytes]],
        sent: _Kept,
        response: httpx.Response,
        answered: _Kept,
        started: float,
        ended: float,
    ) -> None:
        body = (
            None
            if answered.over
            else _decoded(bytes(answered.data), response.headers.get("content-encoding", ""))
        )
        exchange = Exchange(
            scope["method"],
            target,
            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers},
            b"" if sent.over else bytes(sent.data),
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            body or b"",
        )
        self.checker.feed(Observed(exchange, started, ended, body is not None))


async def _answer_unreachable(send: Send, message: str) -> None:
    payload: dict[str, Any] = {"error": {"code": "upstream_unreachable", "message": message}}
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
