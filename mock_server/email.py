"""Email delivery: compose the share email, then hand it to a transport.

Transports: ``outbox`` keeps mail in the project's outbox for the control API to show (the
default); ``resend`` makes the real HTTP call to ``{RESEND_BASE_URL}/emails``; with ``none``
email is not configured and the API answers ``503 email_not_configured``. A provider rejection
becomes ``EmailSendFailed`` carrying the provider's own message.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from mock_server.errors import EmailSendFailed

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A composed email, ready for a transport."""

    sender: str
    to: str
    subject: str
    text: str
    html: str
    render_id: str
    share_id: str


@dataclass(frozen=True, slots=True)
class SentEmail:
    """An email as the outbox keeps it."""

    id: str
    email: OutgoingEmail
    sent_at: datetime


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


class EmailTransport(Protocol):
    """Delivers one email; returns the provider's message id or raises EmailSendFailed."""

    async def send(self, email: OutgoingEmail) -> str:
        """Send, returning the message id."""
        ...


class ResendTransport:
    """Resend's HTTP API: ``POST {base}/emails`` with a bearer key."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, api_key: str) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/emails"
        self._api_key = api_key

    async def send(self, email: OutgoingEmail) -> str:
        """Post the email; a non-2xx answer or a network failure is EmailSendFailed."""
        payload = {
            "from": email.sender,
            "to": [email.to],
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
        }
        import httpx

        try:
            response = await self._client.post(
                self._url, json=payload, headers={"Authorization": f"Bearer {self._api_key}"}
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
