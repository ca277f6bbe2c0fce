"""Choosing how an email leaves: the transport the project's faults name, and the sender.

``none`` (or ``resend`` without ``RESEND_API_KEY`` and a sender) is ``503
email_not_configured``; the ``emailSendFails`` fault makes any transport reject the send, as
Resend does for an unverified domain, so the ``502`` path can be exercised without a provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mock_server.email import EmailTransport, OutgoingEmail, ResendTransport
from mock_server.errors import EmailNotConfigured, EmailSendFailed
from mock_server.faults import Faults
from mock_server.settings import Settings

if TYPE_CHECKING:
    import httpx

OUTBOX_SENDER = "Craftkit <no-reply@craftkit.dev>"


class OutboxTransport:
    """Keeps the mail in a project's outbox, readable through the control API."""

    def __init__(self, keep: Callable[[OutgoingEmail], Awaitable[str]]) -> None:
        self._keep = keep

    async def send(self, email: OutgoingEmail) -> str:
        """Keep the email; its outbox id is the message id."""
        return await self._keep(email)


class RejectingTransport:
    """Rejects every send the way Resend rejects a send from an unverified domain."""

    async def send(self, email: OutgoingEmail) -> str:
        """Always fail."""
        raise EmailSendFailed(
            f"Resend rejected the email (403): The {email.sender.rsplit('@', 1)[-1].rstrip('>')} "
            "domain is not verified (simulated by the emailSendFails fault)"
        )


class EmailDispatcher:
    """Picks the transport and sender for each send from the current faults and settings."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        """The HTTP client for Resend, made on first use (httpx is slow to import)."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client, if one was made."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def transport_for(
        self,
        faults: Faults,
        project_sender: str | None,
        outbox: Callable[[OutgoingEmail], Awaitable[str]],
    ) -> tuple[str, EmailTransport]:
        """The sender and transport for a project's faults and own sender (``emailFrom``).

        ``outbox`` keeps a mail in the project's outbox. ``EmailNotConfigured`` when email is
        off, or Resend lacks a key or a sender.
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
            transport: EmailTransport = ResendTransport(
                self._http(), settings.resend_base_url, settings.resend_api_key
            )
        else:
            sender = project_sender or settings.email_from or OUTBOX_SENDER
            transport = OutboxTransport(outbox)
        if faults.email_send_fails:
            return sender, RejectingTransport()
        return sender, transport
