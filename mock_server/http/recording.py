"""One exchange kept as it passes, for the project's HAR export (``…/requests.har``).

The journal says which requests a project made; a partner who wants to check what their
integration did (``craftkit-conformance check``) needs the exchanges themselves. So the
middleware hands each project request's messages to a ``Recording``, which keeps the
request's and the answer's headers and text bodies up to ``RECORDED_BODY_BYTES`` each (a
PDF, or a longer body, is left out and marked so), with every key and share token replaced
by a stand-in of its shape (``Pseudonyms``): the export opens nothing, yet still
tells one key or link from another. The record is JSON (compressed when long), kept with the
journal entry and bounded with it.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import orjson
from starlette.types import Message, Scope

from mock_server.model.ids import Pseudonyms

RECORDED_BODY_BYTES = 16_384
"""The longest body a recorded exchange keeps (request and answer each).

About 40 rows of a share list: standing in for every token of a longer one on each read
would cost the mock more than making the list (bench/run.py's 100-row list).
"""
COMPRESSED_FROM = 2048
"""A record longer than this is kept compressed; a shorter one is not worth the time."""
_TEXTUAL = ("application/json", "text/", "application/problem+json", "application/x-www-form")


def _textual(content_type: str) -> bool:
    return content_type.lower().startswith(_TEXTUAL)


class _Body:
    def __init__(self) -> None:
        self.data = bytearray()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= RECORDED_BODY_BYTES:
            self.data += chunk
        else:
            self.data.clear()


class Recording:
    """The request and its answer, from the messages the middleware passes on."""

    def __init__(self, scope: Scope, pseudonyms: Pseudonyms) -> None:
        self._scope = scope
        self._pseudonyms = pseudonyms
        self.started = time.time()
        self._sent = _Body()
        self._answered = _Body()
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []

    def received(self, message: Message) -> None:
        """A message of the request (its body chunks)."""
        if message["type"] == "http.request":
            self._sent.add(message.get("body", b""))

    def sent(self, message: Message) -> None:
        """A message of the answer (its start, its body chunks)."""
        if message["type"] == "http.response.start":
            self._status = message["status"]
            self._headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self._answered.add(message.get("body", b""))

    @property
    def status(self) -> int:
        """The answer's status, once it started."""
        return self._status

    def _hide(self, text: str) -> str:
        return self._pseudonyms.apply(text)

    def _headers_of(self, raw: list[tuple[bytes, bytes]]) -> list[list[str]]:
        return [[k.decode("latin-1"), self._hide(v.decode("latin-1"))] for k, v in raw]

    def _text(self, body: _Body, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The body as text, or ``None`` when it is left out (binary, over the bound)."""
        if body.size == 0:
            return ""
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        if body.size > RECORDED_BODY_BYTES or not _textual(content_type.decode("latin-1")):
            return None
        try:
            return self._hide(body.data.decode("utf-8"))
        except UnicodeDecodeError:
            return None

    def record(self) -> bytes:
        """The exchange, encoded: what the HAR export reads back (``exchange_of``)."""
        scope = self._scope
        request_headers = list(scope.get("headers", []))
        query = scope.get("query_string", b"").decode("latin-1")
        kept: dict[str, Any] = {
            "started": self.started,
            "ended": time.time(),
            "method": scope["method"],
            "path": self._hide(scope["path"]) + (f"?{self._hide(query)}" if query else ""),
            "requestHeaders": self._headers_of(request_headers),
            "requestBody": self._text(self._sent, request_headers),
            "requestSize": self._sent.size,
            "status": self._status,
            "responseHeaders": self._headers_of(self._headers),
            "responseBody": self._text(self._answered, self._headers),
            "responseSize": self._answered.size,
        }
        encoded = orjson.dumps(kept)
        if len(encoded) <= COMPRESSED_FROM:
            return b"j" + encoded
        return b"z" + zlib.compress(encoded, 1)


def exchange_of(recorded: bytes) -> dict[str, Any]:
    """A recorded exchange back (the dictionary ``Recording.record`` encoded)."""
    body = recorded[1:]
    found: dict[str, Any] = orjson.loads(zlib.decompress(body) if recorded[:1] == b"z" else body)
    return found
