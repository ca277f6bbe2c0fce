"""A webhook receiver for partners' tests: a real HTTP server that checks and keeps deliveries.

The handler code a partner wants to test reacts to Craftkit's deliveries; this receiver is
the other end of a sandbox's subscription, on a free loopback port, in a thread of the test
process. It verifies each delivery's signature the way the contract tells receivers to
(HMAC-SHA256 of the raw body, keyed with the secret, compared in constant time), keeps every
delivery in order, and lets a test wait for one or refuse some to see them retried::

    with Sandbox.create(url) as sandbox, WebhookReceiver("s3cret") as receiver:
        sandbox.subscribe(receiver.url, "s3cret", events=["document.viewed"])
        ...  # open a share link
        delivery = receiver.wait_for("document.viewed", timeout=5)
        assert delivery.body["shareId"] == share_id
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["ReceivedDelivery", "WebhookReceiver", "WebhookTimeout", "verify_signature"]

MAX_BODY_BYTES = 4 * 1024 * 1024
"""Larger deliveries (far above any the contract describes) are answered 413, not kept."""


def verify_signature(secret: str | bytes, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is HMAC-SHA256 of the raw ``body`` under ``secret`` (hex).

    Compared in constant time, so a receiver's answer says nothing about a forged signature.
    """
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


STOP_POLL_SECONDS = 0.05
"""How often the serving thread looks for ``close``: how long closing takes at most.

The standard library's default, half a second, was most of a short test's teardown."""


class WebhookTimeout(AssertionError):  # noqa: N818  # read as "raise WebhookTimeout"
    """``wait_for`` saw no such delivery in time; the message lists what did arrive."""


@dataclass(frozen=True)
class ReceivedDelivery:
    """One delivery as it arrived: headers, the raw body, and what the receiver made of it."""

    headers: dict[str, str]
    """Header names in lower case."""
    raw: bytes
    verified: bool
    """Whether the signature matched the receiver's secret."""
    answered: int
    """The status the receiver answered (refused deliveries are kept too)."""
    received_at: float = field(default_factory=time.time)

    @property
    def event(self) -> str | None:
        """The ``x-craftkit-event`` header."""
        return self.headers.get("x-craftkit-event")

    @property
    def delivery_id(self) -> str | None:
        """The ``x-craftkit-delivery-id`` header (the same on every retry)."""
        return self.headers.get("x-craftkit-delivery-id")

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body (an empty dict when it is not a JSON object)."""
        try:
            parsed = json.loads(self.raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


class _Server(ThreadingHTTPServer):
    request_queue_size = 256
    """Connections waiting to be accepted: a mock with several workers sends many at once."""


class WebhookReceiver:
    """An HTTP server on a free loopback port that verifies and collects deliveries."""

    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.secret = secret
        self._lock = threading.Condition()
        self._received: list[ReceivedDelivery] = []
        self._refusals: list[int] = []
        self._server = _Server((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.subscription: dict[str, Any] | None = None
        """The subscription pointing here, when a fixture made it."""

    @property
    def url(self) -> str:
        """Where to point a subscription."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhooks/craftkit"

    # ---- what tests do --------------------------------------------------------------

    def refuse(self, count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` deliveries with ``status`` (to see them retried)."""
        with self._lock:
            self._refusals.extend([status] * count)

    @property
    def deliveries(self) -> list[ReceivedDelivery]:
        """Every delivery received so far, in arrival order (refused and unverified too)."""
        with self._lock:
            return list(self._received)

    def wait_for(
        self,
        event: str,
        timeout: float = 5.0,
        *,
        count: int = 1,
        verified: bool = True,
        **fields: Any,
    ) -> ReceivedDelivery:
        """The ``count``-th delivery of ``event`` whose body has ``fields``, once it arrived.

        Only deliveries with a valid signature count unless ``verified=False``; the last one
        found is returned. ``WebhookTimeout`` lists what arrived when none came in time.
        """

        def matching() -> list[ReceivedDelivery]:
            return [
                d
                for d in self._received
                if d.event == event
                and (d.verified or not verified)
                and all(d.body.get(k) == v for k, v in fields.items())
            ]

        deadline = time.monotonic() + timeout
        with self._lock:
            while len(found := matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(d.event, d.answered, d.verified) for d in self._received]
                    raise WebhookTimeout(
                        f"{count} delivery(ies) of {event} with {fields} did not arrive within "
                        f"{timeout} s; received (event, answered, verified): {seen}"
                    )
                self._lock.wait(left)
            return found[count - 1]

    # ---- the server -----------------------------------------------------------------

    def _keep(self, headers: dict[str, str], raw: bytes) -> int:
        verified = verify_signature(self.secret, raw, headers.get("x-craftkit-signature", ""))
        with self._lock:
            answer = self._refusals.pop(0) if self._refusals else 200
            self._received.append(ReceivedDelivery(headers, raw, verified, answer))
            self._lock.notify_all()
        return answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self.send_response(413)
                    self.end_headers()
                    return
                raw = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                self.send_response(receiver._keep(headers, raw))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: a test's output is not an access log."""

        return Handler

    def start(self) -> WebhookReceiver:
        """Serve in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                args=(STOP_POLL_SECONDS,),
                name="webhook-receiver",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
