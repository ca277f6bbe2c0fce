"""A project's recorded exchanges as HAR 1.2, the format browsers and proxies write.

So the partner's traffic against the mock can be read by ``craftkit-conformance check`` or
any HAR viewer. Entries come oldest first, as HAR lists them; a body the recording left
out (binary, or over its bound) has no ``text``, which readers take as unknown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mock_server.engines.interface import JournalEntry
from mock_server.http.recording import exchange_of

CREATOR = {"name": "craftkit-mock", "version": "1"}


def _instant(seconds: float) -> str:
    """An instant to the microsecond (HAR allows any fraction).

    At a millisecond, one request's end and the next one's start would often read as the
    same instant, and a checker could not tell which came first.
    """
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _pairs(headers: list[list[str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def _header(headers: list[list[str]], name: str) -> str:
    return next((v for k, v in headers if k.lower() == name), "")


def _entry(kept: dict[str, Any], origin: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": kept["method"],
        "url": origin + kept["path"],
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _pairs(kept["requestHeaders"]),
        "queryString": [],
        "headersSize": -1,
        "bodySize": kept["requestSize"],
    }
    if kept["requestSize"]:
        request["postData"] = {
            "mimeType": _header(kept["requestHeaders"], "content-type"),
            **({"text": kept["requestBody"]} if kept["requestBody"] is not None else {}),
        }
    content: dict[str, Any] = {
        "size": kept["responseSize"],
        "mimeType": _header(kept["responseHeaders"], "content-type"),
    }
    if kept["responseBody"] is not None:
        content["text"] = kept["responseBody"]
    milliseconds = max(0.0, (kept["ended"] - kept["started"]) * 1000)
    return {
        "startedDateTime": _instant(kept["started"]),
        "time": round(milliseconds, 3),  # milliseconds, to the microsecond
        "request": request,
        "response": {
            "status": kept["status"],
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _pairs(kept["responseHeaders"]),
            "content": content,
            "redirectURL": _header(kept["responseHeaders"], "location"),
            "headersSize": -1,
            "bodySize": kept["responseSize"],
        },
        "cache": {},
        "timings": {"send": 0, "wait": round(milliseconds, 3), "receive": 0},
    }


def har_of(entries: list[JournalEntry], origin: str) -> dict[str, Any]:
    """The journal's recorded exchanges (newest first, as the journal keeps them) as HAR."""
    recorded = [exchange_of(e.exchange) for e in reversed(entries) if e.exchange is not None]
    recorded.sort(key=lambda kept: kept["started"])
    return {
        "log": {
            "version": "1.2",
            "creator": CREATOR,
            "entries": [_entry(kept, origin) for kept in recorded],
        }
    }
