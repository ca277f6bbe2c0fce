"""An example partner test suite: a client's share flow tested against the Craftkit mock.

Each test gets a sandbox of its own (``craftkit_sandbox``: a project, its key, a succeeded
render, and its own clock, faults, outbox and journal), so the suite runs in parallel
against one shared mock:

    CRAFTKIT_MOCK_URL=http://127.0.0.1:4010 pytest -n 4 examples/python

Without ``CRAFTKIT_MOCK_URL`` each pytest worker starts a mock of its own in-process.
The "client" here is a few lines of httpx; yours is whatever your application uses, pointed
at the mock's base URL instead of https://api.craftkit.dev.
"""

from __future__ import annotations

from datetime import timedelta

import httpx

from mock_server.testing import Sandbox


def client(sandbox: Sandbox) -> httpx.Client:
    """The application's API client, configured with the mock's URL and the sandbox's key."""
    return httpx.Client(base_url=sandbox.base_url, headers=sandbox.headers, timeout=10)


def test_a_shared_link_opens_and_counts_one_view(craftkit_sandbox: Sandbox) -> None:
    with client(craftkit_sandbox) as api:
        share = api.post(f"/v1/renders/{craftkit_sandbox.render_id}/shares", json={}).json()
        for _ in range(3):
            assert httpx.get(share["shareUrl"]).status_code == 200
        rows = api.get(f"/v1/renders/{craftkit_sandbox.render_id}/shares").json()["shares"]
    assert rows[0]["clickCount"] == 1  # one address within 5 minutes counts once


def test_a_link_stops_working_at_its_expiry(craftkit_sandbox: Sandbox) -> None:
    expiry = craftkit_sandbox.now() + timedelta(minutes=30)
    with client(craftkit_sandbox) as api:
        share = api.post(
            f"/v1/renders/{craftkit_sandbox.render_id}/shares",
            json={"expiresAt": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")},
        ).json()
    assert httpx.get(share["shareUrl"]).status_code == 200
    craftkit_sandbox.advance(31 * 60)  # this project's time only
    assert httpx.get(share["shareUrl"]).status_code == 404


def test_emailing_a_document_sends_a_working_link(craftkit_sandbox: Sandbox) -> None:
    with client(craftkit_sandbox) as api:
        sent = api.post(
            f"/v1/renders/{craftkit_sandbox.render_id}/email",
            json={"to": "client@example.com", "recipientName": "Jane"},
        )
    assert sent.status_code == 201
    [mail] = craftkit_sandbox.emails()
    assert mail["to"] == "client@example.com"
    assert mail["text"].startswith("Hello Jane,")
    assert httpx.get(sent.json()["shareUrl"]).status_code == 200


def test_a_rejected_send_is_reported_and_the_share_stays(craftkit_sandbox: Sandbox) -> None:
    craftkit_sandbox.set_faults(emailSendFails=True)
    with client(craftkit_sandbox) as api:
        sent = api.post(
            f"/v1/renders/{craftkit_sandbox.render_id}/email", json={"to": "client@example.com"}
        )
        rows = api.get(f"/v1/renders/{craftkit_sandbox.render_id}/shares").json()["shares"]
    assert sent.status_code == 502
    assert sent.json()["error"]["code"] == "email_send_failed"
    assert [row["channel"] for row in rows] == ["email"]
    assert craftkit_sandbox.emails() == []


def test_email_not_configured_is_a_503(craftkit_sandbox: Sandbox) -> None:
    craftkit_sandbox.set_faults(emailTransport="none")
    with client(craftkit_sandbox) as api:
        sent = api.post(
            f"/v1/renders/{craftkit_sandbox.render_id}/email", json={"to": "client@example.com"}
        )
    assert sent.status_code == 503
    assert sent.json()["error"]["code"] == "email_not_configured"


def test_a_share_is_revoked_once(craftkit_sandbox: Sandbox) -> None:
    with client(craftkit_sandbox) as api:
        share = api.post(f"/v1/renders/{craftkit_sandbox.render_id}/shares", json={}).json()
        path = f"/v1/renders/{craftkit_sandbox.render_id}/shares/{share['id']}"
        assert api.delete(path).status_code == 200
        assert api.delete(path).status_code == 404
    assert httpx.get(share["shareUrl"]).status_code == 404


def test_the_client_backs_off_when_throttled(craftkit_sandbox: Sandbox) -> None:
    craftkit_sandbox.set_faults(rateLimitPerMinute=1)
    with client(craftkit_sandbox) as api:
        path = f"/v1/renders/{craftkit_sandbox.render_id}"
        assert api.get(path).status_code == 200
        throttled = api.get(path)
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        craftkit_sandbox.advance(60)
        assert api.get(path).status_code == 200


def test_the_journal_shows_what_the_client_sent(craftkit_sandbox: Sandbox) -> None:
    with client(craftkit_sandbox) as api:
        api.get(f"/v1/renders/{craftkit_sandbox.render_id}")
        api.get("/v1/renders/no-such-render")
    journal = craftkit_sandbox.requests()
    assert [(e["method"], e["status"]) for e in journal] == [("GET", 404), ("GET", 200)]


def test_a_reset_starts_the_sandbox_afresh(craftkit_sandbox: Sandbox) -> None:
    with client(craftkit_sandbox) as api:
        old = craftkit_sandbox.render_id
        api.post(f"/v1/renders/{old}/shares", json={})
        craftkit_sandbox.reset()
        assert api.get(f"/v1/renders/{old}").status_code == 404  # the key still works
        rows = api.get(f"/v1/renders/{craftkit_sandbox.render_id}/shares").json()["shares"]
    assert rows == []
