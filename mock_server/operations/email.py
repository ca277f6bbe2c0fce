"""Email: compose the share email, choose how it leaves, and send it.

Routes, chosen per send from the project's faults and the settings: ``outbox`` keeps mail
in the project's outbox for the control API to show (the default; the store keeps it);
``resend`` makes the real HTTP call to ``{RESEND_BASE_URL}/emails``; with ``none`` (or
``resend`` without ``RESEND_API_KEY`` and a sender) email is not configured and the API
answers ``503 email_not_configured``. The ``emailSendFails`` fault makes any route reject
the send, as Resend does for an unverified domain, so the ``502`` path can be exercised
without a provider. A provider rejection becomes ``EmailSendFailed`` carrying the
provider's own message.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mock_server.model.errors import EmailNotConfigured, EmailSendFailed
from mock_server.model.faults import Faults
from mock_server.model.records import OutgoingEmail
from mock_server.settings import Settings

if TYPE_CHECKING:
    import httpx

OUTBOX_SENDER = "Craftkit <no-reply@craftkit.dev>"


def compose(
    *,
    sender: str,
    to: str,
    recipient_name: str | None,
    message: str | None,
    share_url: str,
    document_name: str,
    render_id: str,
    share_id: str,
) -> OutgoingEmail:
    """The share email: greets the recipient, carries the message, links the share."""
    greeting = f"Hello {recipient_name}," if recipient_name else "Hello,"
    lines = [greeting, "", f"A document has been shared with you: {document_name}."]
    if message:
        lines += ["", message]
    lines += ["", f"Open it here: {share_url}", ""]
    safe_url = html.escape(share_url, quote=True)
    note = f"<p>{html.escape(message)}</p>" if message else ""
    body = (
        f"<p>{html.escape(greeting)}</p>"
        f"<p>A document has been shared with you: {html.escape(document_name)}.</p>"
        f"{note}"
        f'<p><a href="{safe_url}">Open the document</a></p>'
        f"<p>{safe_url}</p>"
    )
    return OutgoingEmail(
        sender=sender,
        to=to,
        subject=f"Shared document: {document_name}",
        text="\n".join(lines),
        html=body,
        render_id=render_id,
        share_id=share_id,
    )


@dataclass(frozen=True, slots=True)
class EmailRoute:
    """How one email leaves: from whom, and by which transport."""

    sender: str
    transport: Literal["outbox", "resend", "reject"]


class EmailDispatcher:
    """Chooses each send's route from the faults and settings, and sends through Resend."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        """The HTTP client for Resend, made on first use (httpx is slow to import)."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout))
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client, if one was made."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def route(self, faults: Faults, project_sender: str | None) -> EmailRoute:
        """The route for a project's faults and own sender (``emailFrom``).

        ``EmailNotConfigured`` when email is off, or Resend lacks a key or a sender.
        """
        settings = self._settings
        if faults.email_transport == "none":
            raise EmailNotConfigured()
        if faults.email_transport == "resend":
            sender = project_sender or settings.email_from
            if not settings.resend_api_key or not sender:
                raise EmailNotConfigured(
                    "Email is not configured: set RESEND_API_KEY and EMAIL_FROM"
                )
            transport: Literal["outbox", "resend", "reject"] = "resend"
        else:
            sender = project_sender or settings.email_from or OUTBOX_SENDER
            transport = "outbox"
        return EmailRoute(sender, "reject" if faults.email_send_fails else transport)

    async def send(self, route: EmailRoute, email: OutgoingEmail) -> str:
        """Send through Resend (or reject, under the fault); the provider's message id."""
        if route.transport == "reject":
            domain = email.sender.rsplit("@", 1)[-1].rstrip(">")
            raise EmailSendFailed(
                f"Resend rejected the email (403): The {domain} domain is not verified "
                "(simulated by the emailSendFails fault)"
            )
        assert route.transport == "resend", "the outbox is kept by the store"
        return await self._resend(email)

    async def _resend(self, email: OutgoingEmail) -> str:
        """Post to Resend; a non-2xx answer or a network failure is ``EmailSendFailed``."""
        import httpx

        settings = self._settings
        payload = {
            "from": email.sender,
            "to": [email.to],
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
        }
        try:
            response = await self._http().post(
                f"{settings.resend_base_url.rstrip('/')}/emails",
                json=payload,
                headers={"Authorization": f"Bearer {settings.resend_api_key}"},
            )
        except httpx.HTTPError as exc:
            # Timeouts carry no message of their own; the exception's kind says what happened.
            said = f": {exc}" if str(exc) else ""
            raise EmailSendFailed(
                f"Resend could not be reached ({type(exc).__name__}{said})"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not response.is_success:
            detail = body.get("message") if isinstance(body, dict) else None
            reason = detail or response.text[:200]
            raise EmailSendFailed(f"Resend rejected the email ({response.status_code}): {reason}")
        message_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise EmailSendFailed("Resend answered without a message id")
        return message_id
