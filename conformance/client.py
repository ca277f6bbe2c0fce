"""The suite's HTTP client: every exchange recorded, checked against the spec, replayable.

Each rule runs with a fresh transcript, so a failure can show the exact requests that led
to it, the response received, and a curl line per request. Requests are paced to
``--max-rps`` so the suite is safe to point at production.
"""

from __future__ import annotations

import functools
import hashlib
import shlex
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from conformance.responses import ResponseContract, Violation

SECRET_HEADERS = ("authorization",)
_BODY_LIMIT = 2000


@dataclass(frozen=True)
class Exchange:
    """One request and the response it got."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    violations: tuple[Violation, ...] = ()

    def curl(self, *, reveal_secrets: bool = False) -> str:
        """A curl line that repeats the request (the key shown as $CRAFTKIT_API_KEY)."""
        words = ["curl", "-i", "-X", self.method]
        for name, value in self.request_headers.items():
            lowered = name.lower()
            if lowered in (
                "host",
                "content-length",
                "accept-encoding",
                "connection",
                "user-agent",
                "accept",
            ):
                continue
            if lowered in SECRET_HEADERS and not reveal_secrets:
                # In double quotes, so the shell puts the key in from the environment.
                words += ["-H", f'"Authorization: {_redact(value)}"']
                continue
            words += ["-H", shlex.quote(f"{name.title()}: {value}")]
        if len(self.request_body) > _BODY_LIMIT:  # too long to read: sent from a file, whole
            words += ["--data-binary", shlex.quote(f"@{_body_file(self.request_body)}")]
        elif self.request_body:
            text = self.request_body.decode("utf-8", errors="replace")
            words += ["--data-raw", shlex.quote(text)]
        words.append(shlex.quote(self.url))
        return " ".join(words)

    def json(self) -> Any:
        """The response body parsed as JSON, or ``None`` when it is not JSON."""
        try:
            return orjson.loads(self.response_body)
        except orjson.JSONDecodeError:
            return None

    def summary(self) -> str:
        """``METHOD path → status``."""
        return f"{self.method} {urlsplit(self.url).path} → {self.status}"

    def body_text(self, limit: int = _BODY_LIMIT) -> str:
        """The response body for a report: text, or a note for binary."""
        content_type = self.response_headers.get("content-type", "")
        if "json" in content_type or "text" in content_type:
            text = self.response_body.decode("utf-8", errors="replace")
            if len(text) <= limit:
                return text
            if "json" in content_type:
                shortened = _abridged_json(self.response_body, limit)
                if shortened is not None:
                    return shortened
            return text[:limit] + "…(truncated)"
        return f"<{len(self.response_body)} bytes of {content_type or 'unknown type'}>"


_LONGEST_STRING = 120
_MOST_ITEMS = 10


def _abridged_json(body: bytes, limit: int) -> str | None:
    """A long JSON body shortened inside its values, so what is shown is still JSON.

    Long strings keep their start and say how long they were; long arrays their first items
    and how many more there were. Nothing is cut in the middle of a token. ``None`` when the
    body does not parse.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None

    def shorten(inner: Any, longest: int, most: int) -> Any:
        if isinstance(inner, str) and len(inner) > longest:
            return f"{inner[: longest // 2]}…({len(inner)} characters)"
        if isinstance(inner, list):
            kept = [shorten(item, longest, most) for item in inner[:most]]
            return kept + ([f"…({len(inner) - most} more)"] if len(inner) > most else [])
        if isinstance(inner, dict):
            return {key: shorten(item, longest, most) for key, item in inner.items()}
        return inner

    text = ""
    for longest, most in ((_LONGEST_STRING, _MOST_ITEMS), (40, 3), (16, 1)):
        text = orjson.dumps(shorten(value, longest, most)).decode()
        if len(text) <= limit:
            break
    return text


def _body_file(body: bytes) -> Path:
    """A request body kept in a file a curl line sends (``--data-binary @file``).

    Named by its digest, so the same body is one file however often it is shown; in the
    temporary folder, never the current one.
    """
    folder = Path(tempfile.gettempdir()) / "craftkit-conformance-bodies"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{hashlib.sha256(body).hexdigest()[:32]}.body"
    if not path.exists():
        path.write_bytes(body)
    return path


def _redact(value: str) -> str:
    scheme, _, _ = value.partition(" ")
    return "Bearer $CRAFTKIT_API_KEY" if scheme.lower() == "bearer" else "[redacted]"


@dataclass
class Transcript:
    """The exchanges of one rule (or one state-machine example)."""

    exchanges: list[Exchange] = field(default_factory=list)

    def clear(self) -> None:
        """Start again (a new example)."""
        self.exchanges.clear()


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """One TLS context for every client this process makes, built on first use.

    httpx builds a context per client, reading the whole CA bundle each time (about 30 ms);
    the suite makes a client per rule, so that was seconds per run. A context is safe to share
    between clients and threads; httpx's own function builds it, so SSL_CERT_FILE and
    SSL_CERT_DIR still count.
    """
    return httpx.create_ssl_context()


class Pacer:
    """At most ``rate`` requests per second across threads (None: unlimited)."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def wait(self) -> None:
        """Block until the next request may go."""
        if not self._interval:
            return
        with self._lock:
            now = self._clock()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            self._sleep(delay)


class RecordingClient:
    """httpx with a transcript, spec checks and pacing."""

    def __init__(
        self,
        base_url: str,
        contract: ResponseContract,
        pacer: Pacer,
        *,
        share_base_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.share_base_url = (share_base_url or base_url).rstrip("/")
        self.contract = contract
        self.pacer = pacer
        self.transcript = Transcript()
        self.spec_violations: list[Exchange] = []
        self.requests_sent = 0
        self.external_requests = 0  # sent by schemathesis, in its own process
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, verify=shared_tls())

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def unrecorded(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A set-up call (a probe, the mock's control API) outside the transcript and checks.

        It goes over the same pooled connections: a client per call made each one open a
        connection and read the CA bundle again, a second of a quick run.
        """
        return self._http.request(method, url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        key: str | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        check_contract: bool = True,
    ) -> Exchange:
        """Send one request (``url`` absolute or a path on the API) and record it."""
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        sent_headers = dict(headers or {})
        if key is not None:
            sent_headers["Authorization"] = f"Bearer {key}"
        self.pacer.wait()
        self.requests_sent += 1
        response = self._http.request(method, url, json=json, content=content, headers=sent_headers)
        request = response.request
        path = urlsplit(url).path
        violations: tuple[Violation, ...] = ()
        if check_contract and not path.startswith("/_mock"):
            violations = tuple(
                self.contract.check(
                    method, path, response.status_code, response.headers, response.content
                )
            )
        exchange = Exchange(
            method=method,
            url=url,
            request_headers=dict(request.headers.items()),
            request_body=request.content,
            status=response.status_code,
            response_headers={k.lower(): v for k, v in response.headers.items()},
            response_body=response.content,
            violations=violations,
        )
        self.transcript.exchanges.append(exchange)
        if violations:
            self.spec_violations.append(exchange)
        return exchange
