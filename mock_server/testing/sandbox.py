"""A test's own project on a running mock, and the control calls a test makes on it.

Partners' tests (and the shipped pytest fixtures) use this instead of the whole-mock control
calls, so that any number of tests, workers and teams share one mock without seeing each
other's clock, faults, mail or requests::

    with Sandbox.create("http://127.0.0.1:4010") as sandbox:
        httpx.post(f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/shares",
                   headers=sandbox.headers, json={})
        sandbox.advance(3600)
        assert sandbox.emails() == []

The project is deleted when the block ends.
"""

from __future__ import annotations

import functools
import os
import ssl
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from mock_server.settings import CONTROL_TOKEN_HEADER

__all__ = ["Sandbox", "SandboxError"]

CONTROL_TOKEN_VARIABLE = "CRAFTKIT_MOCK_CONTROL_TOKEN"


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """One TLS context for every client this process makes, built on first use.

    httpx builds a context per client, reading the whole CA bundle each time (about 30 ms);
    a partner's suite makes a client per test (its Sandbox), so that was seconds per run.
    A context is safe to share between clients and threads; httpx's own function builds
    it, so SSL_CERT_FILE and SSL_CERT_DIR still count.
    """
    return httpx.create_ssl_context()


class SandboxError(RuntimeError):
    """A control call was refused; the message carries the mock's answer."""


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Sandbox:
    """One project on a mock: its key, a succeeded render, and its clock, faults and outbox."""

    def __init__(
        self, base_url: str, project_id: str, api_key: str, render_id: str, client: httpx.Client
    ) -> None:
        self.base_url = base_url
        self.project_id = project_id
        self.api_key = api_key
        self.render_id = render_id
        self._client = client

    @classmethod
    def create(
        cls,
        base_url: str,
        name: str | None = None,
        timeout: float = 10.0,
        control_token: str | None = None,
    ) -> Sandbox:
        """A fresh project on the mock at ``base_url``, with one succeeded render.

        ``control_token`` (default: ``$CRAFTKIT_MOCK_CONTROL_TOKEN``) is sent to a mock that
        requires one for its control API.
        """
        base_url = base_url.rstrip("/")
        token = control_token or os.environ.get(CONTROL_TOKEN_VARIABLE)
        headers = {CONTROL_TOKEN_HEADER: token} if token else {}
        client = httpx.Client(
            base_url=f"{base_url}/_mock", timeout=timeout, headers=headers, verify=shared_tls()
        )
        try:
            project = cls._checked(client.post("/projects", json={"name": name} if name else {}))
            sandbox = cls(base_url, project["projectId"], project["apiKey"], "", client)
            sandbox.render_id = sandbox.new_render()
        except BaseException:
            client.close()
            raise
        return sandbox

    @staticmethod
    def _checked(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise SandboxError(
                f"{response.request.method} {response.request.url} answered "
                f"{response.status_code}: {response.text}"
            )
        return response.json() if response.content else None

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        return self._checked(
            self._client.request(method, f"/projects/{self.project_id}{path}", json=json)
        )

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of the project's key."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def new_render(
        self, status: str = "succeeded", template_slug: str = "invoice", data: Any = None
    ) -> str:
        """A render of the project already in ``status``; its id."""
        body = {"status": status, "templateSlug": template_slug, "data": data or {}}
        render_id: str = self._call("POST", "/renders", body)["id"]
        return render_id

    # ---- time ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """The project's current time."""
        return _instant(self._call("GET", "/clock")["now"])

    def advance(self, seconds: float) -> datetime:
        """Move the project's clock (expiry, the 5-minute view window, its rate limit)."""
        return _instant(self._call("POST", "/clock", {"advanceSeconds": seconds})["now"])

    def set_time(self, instant: datetime | str) -> datetime:
        """Jump the project's clock to an instant (a timezone-aware ``datetime`` or ISO text)."""
        text = instant if isinstance(instant, str) else instant.isoformat()
        return _instant(self._call("POST", "/clock", {"now": text})["now"])

    def freeze(self, frozen: bool = True) -> datetime:
        """Stop the project's time (or let it run again)."""
        return _instant(self._call("POST", "/clock", {"frozen": frozen})["now"])

    # ---- faults and inspection ------------------------------------------------------------

    def faults(self) -> dict[str, Any]:
        """The faults in force for the project."""
        faults: dict[str, Any] = self._call("GET", "/faults")
        return faults

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Switch the project's faults by their wire names (``emailSendFails=True``, ...)."""
        faults: dict[str, Any] = self._call("PUT", "/faults", changes)
        return faults

    def emails(self) -> list[dict[str, Any]]:
        """The mail the project sent, oldest first."""
        emails: list[dict[str, Any]] = self._call("GET", "/emails")["emails"]
        return emails

    def requests(self) -> list[dict[str, Any]]:
        """The project's public requests, newest first."""
        entries: list[dict[str, Any]] = self._call("GET", "/requests")["requests"]
        return entries

    def open_email(self, email_id: str) -> dict[str, Any]:
        """Open a kept email as its recipient would (records ``email_opened``)."""
        opened: dict[str, Any] = self._call("POST", f"/emails/{email_id}/open")
        return opened

    # ---- webhooks -----------------------------------------------------------------------

    def subscribe(
        self, url: str, secret: str, events: list[str] | None = None, active: bool = True
    ) -> dict[str, Any]:
        """Subscribe a receiver to the project's events (default: the render events)."""
        body: dict[str, Any] = {"url": url, "secret": secret, "active": active}
        if events is not None:
            body["events"] = events
        subscription: dict[str, Any] = self._call("POST", "/webhooks", body)
        return subscription

    def webhooks(self) -> list[dict[str, Any]]:
        """The project's subscriptions, oldest first (secrets are never shown)."""
        found: list[dict[str, Any]] = self._call("GET", "/webhooks")["subscriptions"]
        return found

    def change_webhook(self, subscription_id: str, **changes: Any) -> dict[str, Any]:
        """Change a subscription's ``url``, ``secret``, ``events`` or ``active``."""
        changed: dict[str, Any] = self._call("PATCH", f"/webhooks/{subscription_id}", changes)
        return changed

    def unsubscribe(self, subscription_id: str) -> None:
        """Delete a subscription."""
        self._call("DELETE", f"/webhooks/{subscription_id}")

    def deliveries(self) -> list[dict[str, Any]]:
        """The project's webhook deliveries, newest first, each with its attempts."""
        found: list[dict[str, Any]] = self._call("GET", "/webhook-deliveries")["deliveries"]
        return found

    def resend(self, delivery_id: str) -> dict[str, Any]:
        """Attempt a delivery again at once."""
        again: dict[str, Any] = self._call("POST", f"/webhook-deliveries/{delivery_id}/resend")
        return again

    # ---- lifecycle ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the project's renders, shares, mail, journal, clock and faults; keep its key.

        A new succeeded render replaces ``render_id``.
        """
        self._call("POST", "/reset")
        self.render_id = self.new_render()

    def close(self) -> None:
        """Close the client and keep the project (another client, or a later run, uses it)."""
        self._client.close()

    def delete(self) -> None:
        """Delete the project (its key then answers 403) and close the client."""
        try:
            self._call("DELETE", "")
        finally:
            self._client.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.delete()
