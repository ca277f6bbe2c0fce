"""Recorded traffic read in: HAR files and NDJSON of exchanges.

HAR comes from browsers, mitmproxy, Playwright, k6 or the mock's export; each entry becomes
the ``Exchange`` the rest of the suite already reports.

An entry keeps when it started and ended (seconds), so the checker can tell what an answer
could have known: a revoke that ended before a link was opened, or two revokes in flight at
once. A body the recorder left out (a browser leaves out binary ones) is marked unknown,
and only what needs no body is checked for it.

NDJSON, one JSON object per line::

    {"method": "GET", "url": "https://api.example.com/v1/renders/…",
     "requestHeaders": {"authorization": "Bearer …"}, "requestBody": "",
     "status": 200, "responseHeaders": {"content-type": "application/json"},
     "responseBody": "{…}", "startedAt": "2026-12-01T10:00:00.000Z", "durationMs": 12}

``requestBodyBase64``/``responseBodyBase64`` may stand for the bodies, ``responseBody``
may be absent (unknown), and without ``startedAt`` the file's order is the order of events.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from conformance.client import Exchange

MAX_BODY_BYTES = 4 * 1024 * 1024
"""A body longer than this is not kept (its checks that need a body are skipped).

Larger than any answer of the API but a PDF, so every JSON answer is checked whole.
"""


class TrafficError(ValueError):
    """A file that is not traffic this reader knows; the message says what is wrong."""


@dataclass(frozen=True)
class Observed:
    """One exchange as it was seen: when it started and ended, and whether its body is known.

    ``body_known`` is ``False`` when the recorder left the answer's body out, or it was over
    the bound.
    """

    exchange: Exchange
    started: float
    ended: float
    body_known: bool = True


def _instant(text: object, fallback: float) -> float:
    if not isinstance(text, str):
        return fallback
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return fallback


def _headers(listed: object) -> dict[str, str]:
    """HAR's ``[{name, value}]`` or a mapping, as one lower-cased mapping."""
    if isinstance(listed, Mapping):
        return {str(k).lower(): str(v) for k, v in listed.items()}
    found: dict[str, str] = {}
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, Mapping) and "name" in item:
            name = str(item["name"]).lower()
            if name.startswith(":"):  # HTTP/2 pseudo-headers some recorders keep
                continue
            value = str(item.get("value", ""))
            found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def _body(text: object, encoding: object = None) -> bytes | None:
    if not isinstance(text, str):
        return None
    if encoding == "base64":
        try:
            raw = base64.b64decode(text, validate=False)
        except ValueError:
            return None
    else:
        raw = text.encode("utf-8")
    return raw if len(raw) <= MAX_BODY_BYTES else None


def _har_entry(entry: Mapping[str, Any], index: int) -> Observed:
    request, response = entry.get("request") or {}, entry.get("response") or {}
    if not isinstance(request, Mapping) or not isinstance(response, Mapping):
        raise TrafficError(f"HAR entry {index} has no request or response object")
    posted = request.get("postData") or {}
    content = response.get("content") or {}
    body = _body(content.get("text"), content.get("encoding"))
    status = int(response.get("status") or 0)
    # A body the recorder did not keep: known to be empty only when it says so.
    empty = content.get("size") == 0 or status in (204, 304) or request.get("method") == "HEAD"
    started = _instant(entry.get("startedDateTime"), float(index))
    took = entry.get("time")
    ended = started + (float(took) / 1000 if isinstance(took, int | float) and took > 0 else 0)
    exchange = Exchange(
        str(request.get("method", "GET")).upper(),
        str(request.get("url", "")),
        _headers(request.get("headers")),
        _body(posted.get("text"), posted.get("encoding")) or b"",
        status,
        _headers(response.get("headers")),
        body or b"",
    )
    return Observed(exchange, started, ended, body is not None or empty)


def read_har(data: Mapping[str, Any]) -> list[Observed]:
    """Every entry of a HAR log, in the order the requests started."""
    log = data.get("log")
    entries = log.get("entries") if isinstance(log, Mapping) else None
    if not isinstance(entries, list):
        raise TrafficError("not a HAR file: no log.entries")
    seen = [_har_entry(entry, index) for index, entry in enumerate(entries)]
    return sorted(seen, key=lambda observed: observed.started)  # stable: ties keep file order


def _ndjson_line(item: Mapping[str, Any], index: int) -> Observed:
    if "method" not in item or "url" not in item or "status" not in item:
        raise TrafficError(f"line {index + 1} lacks method, url or status")
    request_body = _body(item.get("requestBodyBase64"), "base64")
    if request_body is None:
        request_body = _body(item.get("requestBody")) or b""
    body = _body(item.get("responseBodyBase64"), "base64")
    if body is None:
        body = _body(item.get("responseBody"))
    started = _instant(item.get("startedAt"), float(index))
    took = item.get("durationMs")
    ended = started + (float(took) / 1000 if isinstance(took, int | float) and took > 0 else 0)
    exchange = Exchange(
        str(item["method"]).upper(),
        str(item["url"]),
        _headers(item.get("requestHeaders") or {}),
        request_body,
        int(item["status"]),
        _headers(item.get("responseHeaders") or {}),
        body or b"",
    )
    return Observed(exchange, started, ended, body is not None)


def read_ndjson(lines: Iterable[str]) -> Iterator[Observed]:
    """Each exchange of an NDJSON stream, in its order."""
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise TrafficError(f"line {index + 1} is not JSON: {exc}") from None
        if not isinstance(item, Mapping):
            raise TrafficError(f"line {index + 1} is not a JSON object")
        yield _ndjson_line(item, index)


def read_traffic(path: Path) -> list[Observed]:
    """A traffic file, HAR or NDJSON, told apart by its content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrafficError(f"cannot read {path}: {exc}") from None
    head = text.lstrip()[:1]
    if head == "{":
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None  # NDJSON: several objects, one per line
        if isinstance(whole, Mapping) and "log" in whole:
            return read_har(whole)
    return list(read_ndjson(text.splitlines()))
