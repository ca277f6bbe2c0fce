"""The ``resend`` transport makes the real HTTP call, against a local stand-in for Resend."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mock_server import Settings, create_app
from mock_server.model.errors import EmailSendFailed
from mock_server.operations.email import EmailDispatcher, EmailRoute, compose
from mock_server.testing import serve
from tests.conftest import ACME_KEY, SUCCEEDED_RENDER


class FakeResend:
    """Resend's ``POST /emails``: accepts, or rejects the way Resend does."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.reject_with: tuple[int, dict[str, Any]] | None = None

    async def emails(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.json()))
        if self.reject_with is not None:
            status, body = self.reject_with
            return JSONResponse(body, status_code=status)
        return JSONResponse({"id": f"re_{len(self.received)}"})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/emails", self.emails, methods=["POST"])])


@pytest.fixture
def resend() -> Iterator[tuple[FakeResend, str]]:
    fake = FakeResend()
    with serve(fake.app()) as url:
        yield fake, url


def _mock_with(resend_url: str, **extra: str) -> Any:
    environment = {
        "CRAFTKIT_MOCK_EMAIL_TRANSPORT": "resend",
        "RESEND_BASE_URL": resend_url,
        "RESEND_API_KEY": "re_test_123",
        "EMAIL_FROM": "Docs <docs@example.com>",
        **extra,
    }
    return serve(create_app(Settings.from_env(environment)))


def _email(base_url: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/renders/{SUCCEEDED_RENDER}/email",
        headers={"Authorization": f"Bearer {ACME_KEY}"},
        json={"to": "delivered@resend.dev", "recipientName": "Jane", "message": "Hello there"},
    )


def test_email_is_posted_to_resend_with_key_sender_and_bodies(
    resend: tuple[FakeResend, str],
) -> None:
    fake, url = resend
    with _mock_with(url) as base_url:
        response = _email(base_url)
    assert response.status_code == 201
    assert response.json()["emailMessageId"] == "re_1"
    ((headers, body),) = fake.received
    assert headers["authorization"] == "Bearer re_test_123"
    assert body["from"] == "Docs <docs@example.com>"
    assert body["to"] == ["delivered@resend.dev"]
    assert response.json()["shareUrl"] in body["text"]
    assert response.json()["shareUrl"] in body["html"]
    assert "Jane" in body["text"]
    assert "Hello there" in body["html"]
    assert body["subject"]


def test_resend_rejection_is_502_with_its_message_and_the_share_stays(
    resend: tuple[FakeResend, str],
) -> None:
    fake, url = resend
    fake.reject_with = (
        422,
        {"statusCode": 422, "name": "invalid_from_address", "message": "Invalid `from` field."},
    )
    with _mock_with(url) as base_url:
        response = _email(base_url)
        shares = httpx.get(
            f"{base_url}/v1/renders/{SUCCEEDED_RENDER}/shares",
            headers={"Authorization": f"Bearer {ACME_KEY}"},
        ).json()["shares"]
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "email_send_failed"
    assert "Invalid `from` field." in error["message"]
    assert [share["channel"] for share in shares] == ["email"]


def test_unreachable_resend_is_502() -> None:
    with serve(Starlette()) as dead:
        pass  # started and stopped: nothing listens there any more
    with _mock_with(dead) as base_url:
        response = _email(base_url)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "email_send_failed"


def test_resend_without_api_key_is_not_configured(resend: tuple[FakeResend, str]) -> None:
    fake, url = resend
    with _mock_with(url, RESEND_API_KEY="") as base_url:
        response = _email(base_url)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "email_not_configured"
    assert fake.received == []


def test_a_resend_that_never_answers_is_a_502_that_says_it_timed_out() -> None:
    """A real socket that accepts and never answers; the message names the timeout."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        mail = compose(
            sender="Docs <docs@example.com>", to="delivered@resend.dev", recipient_name=None,
            message=None, share_url="http://x/share/cks_1", document_name="Invoice",
            render_id="r", share_id="s",
        )  # fmt: skip

        async def send() -> str:
            settings = Settings(resend_base_url=url, resend_api_key="re_test")
            dispatcher = EmailDispatcher(settings, timeout=0.3)
            try:
                return await dispatcher.send(EmailRoute(mail.sender, "resend"), mail)
            finally:
                await dispatcher.aclose()

        with pytest.raises(EmailSendFailed) as failed:
            asyncio.run(send())
    assert failed.value.status == 502
    assert str(failed.value.message).endswith("(ReadTimeout)")
