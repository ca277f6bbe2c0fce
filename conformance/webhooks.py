"""The run's webhook listener, and what the contract says each delivery must be.

Against a deployment the implementer points a subscription at ``--webhook-listen`` with
``--webhook-secret``; against the mock the run subscribes its own project to a listener on a
free loopback port. The listener keeps every delivery as it arrived (headers and the raw
body, which the signature covers) and can refuse the next ones, so a rule sees a retry.
``problems`` checks one delivery against the spec's ``webhooks``: signature, headers and
their formats, the body's schema, and ``x-craftkit-event`` equal to the body's ``event``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema_rs

import craftkit_spec

MAX_DELIVERY_BYTES = 4 * 1024 * 1024
"""A larger delivery is answered 413 and kept as a problem of its own."""


STOP_POLL_SECONDS = 0.05
"""How often the listening thread looks for ``close``: how long closing takes at most.

The standard library's default, half a second, twice per ``diff`` (the target's listener
and the reference's), was a third of a short comparison."""


@dataclass(frozen=True)
class Received:
    """One delivery as it arrived."""

    headers: dict[str, str]
    """Header names in lower case."""
    raw: bytes
    answered: int
    at: float

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body, or an empty dict when it is not a JSON object."""
        try:
            parsed = json.loads(self.raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    @property
    def event(self) -> str | None:
        """The body's ``event``."""
        event = self.body.get("event")
        return event if isinstance(event, str) else None

    def curl(self, url: str) -> str:
        """A curl line that replays this delivery to a receiver, byte for byte."""
        headers = " ".join(
            f"-H '{name}: {value}'"
            for name, value in self.headers.items()
            if name.startswith("x-craftkit-") or name in ("content-type", "user-agent")
        )
        body = self.raw.decode("utf-8", "replace").replace("'", "'\\''")
        return f"curl -X POST {headers} --data-binary '{body}' {url}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class WebhookListener:
    """An HTTP server that keeps every delivery, answering 2xx unless told to refuse."""

    def __init__(self, host: str, port: int, secret: str) -> None:
        self.secret = secret
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._refusals: list[tuple[Callable[[Received], bool], list[int]]] = []
        self._server = _Server((host, port), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(STOP_POLL_SECONDS,), daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Where the mock is told to deliver."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/craftkit-conformance"

    @property
    def received(self) -> list[Received]:
        """Every delivery so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def refuse(self, count: int, when: Callable[[Received], bool] = lambda _: True) -> None:
        """Answer the next ``count`` deliveries that ``when`` picks 500, so they are retried.

        A rule names the delivery it means: a late delivery of an earlier rule's action
        must not take the refusal meant for this one (seen with three runs at once).
        """
        with self._lock:
            self._refusals.append((when, [count]))

    def wait(self, found: Callable[[list[Received]], Received | None], timeout: float) -> Any:
        """What ``found`` picks from the deliveries once it picks one; ``None`` at the timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while (picked := found(self._received)) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(left)
            return picked

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _keep(self, headers: dict[str, str], raw: bytes) -> int:
        with self._lock:
            delivery = Received(headers, raw, 200, time.time())
            for when, left in self._refusals:
                if left[0] > 0 and when(delivery):
                    left[0] -= 1
                    delivery = dataclasses.replace(delivery, answered=500)
                    break
            self._refusals = [(when, left) for when, left in self._refusals if left[0] > 0]
            self._received.append(delivery)
            self._lock.notify_all()
        return delivery.answered

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_DELIVERY_BYTES:
                    self.send_response(413)
                    self.end_headers()
                    return
                raw = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                self.send_response(listener._keep(headers, raw))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: the report says what arrived."""

        return Handler


class DeliveryContract:
    """The spec's webhooks, compiled once: which body schema and header formats apply."""

    def __init__(self) -> None:
        spec = craftkit_spec.load_resolved()
        self._by_event: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
        for webhook in craftkit_spec.iter_webhooks(spec):
            media = webhook.definition["requestBody"]["content"]["application/json"]
            validator = jsonschema_rs.validator_for(media["schema"])
            headers = [p for p in webhook.definition["parameters"] if p["in"] == "header"]
            event_schema = next(p for p in headers if p["name"] == "x-craftkit-event")["schema"]
            for event in event_schema["enum"]:
                self._by_event[event] = (validator, headers)

    def problems(self, delivery: Received, secret: str) -> list[str]:
        """Every way the delivery departs from the contract (an empty list: none)."""
        found: list[str] = []
        headers = delivery.headers
        expected = hmac.new(secret.encode("utf-8"), delivery.raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("x-craftkit-signature", "")):
            found.append("x-craftkit-signature is not HMAC-SHA256 of the raw body under the secret")
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            found.append(f"Content-Type is {headers.get('content-type')!r}, not application/json")
        event = delivery.event
        if event not in self._by_event:
            found.append(f"the body's event {event!r} is none the contract names")
            return found
        validator, parameters = self._by_event[event]
        named = headers.get("x-craftkit-event")
        if named != event:
            found.append(f"x-craftkit-event is {named!r}, the body's event {event!r}")
        for parameter in parameters:
            name = parameter["name"].lower()
            value = headers.get(name)
            if value is None:
                found.append(f"the {parameter['name']} header is missing")
                continue
            schema = parameter["schema"]
            if "const" in schema and value != schema["const"]:
                found.append(f"{parameter['name']} is {value!r}, not {schema['const']!r}")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                found.append(f"{parameter['name']} {value!r} does not match {schema['pattern']}")
            if schema.get("format") == "uuid" and not _is_uuid(value):
                found.append(f"{parameter['name']} {value!r} is not a UUID")
        for error in validator.iter_errors(delivery.body):
            found.append(f"body: {error.message}")
        return found


def _is_uuid(value: str) -> bool:
    return re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", value) is not None
