"""Who may drive the control API: the control token, and no web page.

The control API resets sandboxes, moves clocks and shows an outbox of working share links,
so it must not answer a web page that a tester happens to have open. A browser sends
cross-site requests a server cannot tell from its own tests' only by their headers; so,
as dev servers check their ``Host``:

- With ``CRAFTKIT_MOCK_CONTROL_TOKEN`` every control call must carry the token (a page
  cannot know it).
- Without one (loopback), a call must name the mock by a loopback name in its ``Host``, or
  a host in ``CRAFTKIT_MOCK_ALLOWED_HOSTS`` (DNS rebinding points another name here);
- any call carrying a cross-site ``Origin`` (one that is not a loopback or allowed host) or
  ``Sec-Fetch-Site: cross-site`` is refused;
- and a body must be sent as ``application/json``, which no page can send cross-site
  without a preflight this mock never approves.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.types import Scope

from mock_server.model import errors
from mock_server.settings import CONTROL_TOKEN_HEADER, Settings, is_loopback

_TOKEN = CONTROL_TOKEN_HEADER.lower()


class ControlGuard:
    """Decides, from a control request's headers alone, whether it may pass."""

    def __init__(self, settings: Settings) -> None:
        self._token = settings.control_token
        self._hosts = frozenset(host.lower() for host in settings.allowed_hosts)

    def _ours(self, host: str) -> bool:
        return is_loopback(host) or host.lower() in self._hosts

    def refusal(self, scope: Scope) -> errors.ApiError | None:
        """Why the request may not pass, or ``None``."""
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        if self._token is not None:
            given = headers.get(_TOKEN, "").encode("latin-1")
            if not hmac.compare_digest(given, self._token.encode("utf-8")):
                return errors.Unauthorized(
                    f"The control API needs the {CONTROL_TOKEN_HEADER} header "
                    "(this mock runs with CRAFTKIT_MOCK_CONTROL_TOKEN)"
                )
        else:
            host = _hostname(headers.get("host", ""))
            if not self._ours(host):
                return errors.Forbidden(
                    f"The control API answers requests to this mock by a loopback name, not "
                    f"{host or 'no Host'!r}; add the name to CRAFTKIT_MOCK_ALLOWED_HOSTS to "
                    "use it"
                )
        origin = headers.get("origin")
        if origin is not None and not (origin != "null" and self._ours(_hostname(origin))):
            return errors.Forbidden(f"The control API answers no web page (Origin {origin})")
        if headers.get("sec-fetch-site") == "cross-site":
            return errors.Forbidden("The control API answers no web page (a cross-site fetch)")
        if _has_body(headers) and not _is_json(headers.get("content-type", "")):
            return errors.InvalidRequest(
                "A control call's body must be sent as application/json",
                issues={"formErrors": ["Content-Type must be application/json"], "fieldErrors": {}},
            )
        return None


def _hostname(value: str) -> str:
    """The host of a ``Host`` header (``name:port``, ``[::1]:port``) or of an ``Origin``."""
    if "://" in value:
        return urlsplit(value).hostname or ""
    return urlsplit(f"//{value}").hostname or ""


def _has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length", "0").strip()
    return (length.isdigit() and int(length) > 0) or "transfer-encoding" in headers


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
