"""Webhooks: a sandbox's events arrive signed at a real receiver, retried on the project's clock.

Every test runs on both engines (the ``mock_url`` fixture), through the public API and the
control API only, with ``WebhookReceiver`` as the partner's end.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jsonschema
import pytest

import craftkit_spec
from mock_server.operations.webhooks import HOLD_MS
from mock_server.testing import Sandbox, SandboxError, WebhookReceiver, verify_signature

SECRET = "whsec_test_0123456789"
RULES = craftkit_spec.webhook_rules()
ALL_EVENTS = [*RULES.render_events, *RULES.document_events]


@pytest.fixture
def sandbox(mock_url: str) -> Iterator[Sandbox]:
    with Sandbox.create(mock_url) as made:
        yield made


@pytest.fixture
def receiver(sandbox: Sandbox) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as made:
        made.subscription = sandbox.subscribe(made.url, SECRET, events=ALL_EVENTS)
        yield made


def _share(sandbox: Sandbox, **body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/shares",
        headers=sandbox.headers,
        json=body,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _logged(sandbox: Sandbox, event: str, attempts: int) -> dict[str, Any]:
    """The project's one delivery of ``event`` once its log shows ``attempts`` attempts.

    The receiver sees an attempt a moment before the mock has recorded its answer.
    """
    deadline = time.monotonic() + 10
    while True:
        [logged] = [d for d in sandbox.deliveries() if d["event"] == event]
        if len(logged["attempts"]) >= attempts or time.monotonic() > deadline:
            return logged
        time.sleep(0.01)


def _webhook_schema(name: str) -> dict[str, Any]:
    spec = craftkit_spec.load_resolved()
    schema: dict[str, Any] = spec["webhooks"][name]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    return schema


def test_create_view_revoke_arrive_signed_with_the_contract_headers(
    sandbox: Sandbox, receiver: WebhookReceiver
) -> None:
    share = _share(sandbox)
    assert httpx.get(share["shareUrl"]).status_code == 200
    revoke = httpx.delete(
        f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/shares/{share['id']}",
        headers=sandbox.headers,
    )
    assert revoke.status_code == 200
    rules = craftkit_spec.webhook_rules()
    schema = _webhook_schema("document.event")
    for event, actor in (
        ("document.share_created", "partner"),
        ("document.viewed", "recipient"),
        ("document.share_revoked", "partner"),
    ):
        got = receiver.wait_for(event, timeout=10, shareId=share["id"])
        assert got.verified
        assert verify_signature(SECRET, got.raw, got.headers["x-craftkit-signature"])
        assert re.fullmatch(rules.signature_pattern, got.headers["x-craftkit-signature"])
        assert re.fullmatch(rules.timestamp_pattern, got.headers["x-craftkit-timestamp"])
        assert uuid.UUID(got.headers["x-craftkit-delivery-id"])
        assert got.headers["user-agent"] == rules.user_agent
        assert got.headers["content-type"] == "application/json"
        jsonschema.validate(got.body, schema)
        assert got.body["event"] == event == got.event
        assert got.body["renderId"] == sandbox.render_id
        assert got.body["actorKind"] == actor
    engagement = httpx.get(
        f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/engagement", headers=sandbox.headers
    ).json()
    viewed = receiver.wait_for("document.viewed", shareId=share["id"])
    assert viewed.body["eventId"] in {e["id"] for e in engagement["recent"]}


def test_a_refused_delivery_is_retried_when_the_clock_moves_with_the_same_id(
    sandbox: Sandbox, receiver: WebhookReceiver
) -> None:
    sandbox.freeze()
    receiver.refuse(1, status=500)
    share = _share(sandbox)
    first = receiver.wait_for("document.share_created", verified=False, shareId=share["id"])
    assert first.answered == 500
    logged = _logged(sandbox, "document.share_created", 1)
    assert logged["status"] == "pending"
    assert logged["attempts"][0]["statusCode"] == 500
    retry_after = craftkit_spec.webhook_rules().retry_delays_seconds[0]
    sandbox.advance(retry_after - 1)
    assert len([d for d in receiver.deliveries if d.delivery_id == first.delivery_id]) == 1
    sandbox.advance(1)
    second = receiver.wait_for("document.share_created", count=2, shareId=share["id"])
    assert second.delivery_id == first.delivery_id
    assert second.raw == first.raw
    delivered = _logged(sandbox, "document.share_created", 2)
    assert delivered["id"] == first.delivery_id
    assert delivered["status"] == "delivered"
    assert [a["statusCode"] for a in delivered["attempts"]] == [500, 200]


def test_a_delivery_is_abandoned_after_the_last_attempt(
    sandbox: Sandbox, receiver: WebhookReceiver
) -> None:
    rules = craftkit_spec.webhook_rules()
    sandbox.freeze()
    receiver.refuse(rules.max_attempts, status=503)
    share = _share(sandbox)
    receiver.wait_for("document.share_created", verified=False, shareId=share["id"])
    for attempt, delay in enumerate(rules.retry_delays_seconds, start=2):
        _logged(sandbox, "document.share_created", attempt - 1)  # scheduled before the move
        sandbox.advance(delay)
        receiver.wait_for(
            "document.share_created", count=attempt, verified=False, shareId=share["id"]
        )
    logged = _logged(sandbox, "document.share_created", rules.max_attempts)
    assert logged["status"] == "abandoned"
    assert len(logged["attempts"]) == rules.max_attempts
    assert logged["nextAttemptAt"] is None
    resent = sandbox.resend(logged["id"])
    assert resent["status"] == "pending"
    again = receiver.wait_for(
        "document.share_created", count=rules.max_attempts + 1, shareId=share["id"]
    )
    assert again.delivery_id == logged["id"]


def test_render_events_follow_the_project_clock(sandbox: Sandbox, mock_url: str) -> None:
    with WebhookReceiver(SECRET) as receiver:
        sandbox.subscribe(receiver.url, SECRET)  # the default: the render events
        sandbox.freeze()
        submitted = httpx.post(
            f"{mock_url}/v1/templates/invoice/render", headers=sandbox.headers, json={"data": {}}
        )
        assert submitted.status_code in (201, 202), submitted.text
        render_id = submitted.json()["id"]
        sandbox.advance(60)
        got = receiver.wait_for("render.succeeded", timeout=10, renderId=render_id)
        jsonschema.validate(got.body, _webhook_schema("render.event"))
        assert got.body["status"] == "succeeded"
        failed = sandbox.new_render(status="failed")
        assert receiver.wait_for("render.failed", renderId=failed).body["errorMessage"]
        _share(sandbox)  # a share event: not subscribed by default
        assert {d.event for d in receiver.deliveries} == {"render.succeeded", "render.failed"}


def test_email_sent_and_opened(sandbox: Sandbox, receiver: WebhookReceiver) -> None:
    sent = httpx.post(
        f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/email",
        headers=sandbox.headers,
        json={"to": "client@example.com"},
    )
    assert sent.status_code == 201, sent.text
    share_id = sent.json()["id"]
    receiver.wait_for("document.share_created", shareId=share_id)
    receiver.wait_for("document.email_sent", shareId=share_id)
    [email] = sandbox.emails()
    opened = sandbox.open_email(email["id"])
    got = receiver.wait_for("document.email_opened", shareId=share_id)
    assert got.body["eventId"] == opened["eventId"]
    assert got.body["actorKind"] == "recipient"


def test_partner_events_carry_their_metadata(sandbox: Sandbox, receiver: WebhookReceiver) -> None:
    recorded = httpx.post(
        f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/events",
        headers=sandbox.headers,
        json={"eventType": "printed", "metadata": {"printer": "lobby"}},
    )
    assert recorded.json() == {"recorded": True}
    got = receiver.wait_for("document.printed")
    assert got.body["metadata"] == {"printer": "lobby"}
    assert got.body["shareId"] is None
    assert got.body["actorKind"] == "partner"


def test_subscriptions_are_listed_changed_and_deleted_without_their_secret(
    sandbox: Sandbox, receiver: WebhookReceiver
) -> None:
    assert receiver.subscription is not None
    [listed] = sandbox.webhooks()
    assert listed == receiver.subscription
    assert SECRET not in str(listed)
    paused = sandbox.change_webhook(listed["id"], active=False)
    assert paused["active"] is False
    _share(sandbox)
    assert sandbox.deliveries() == []
    sandbox.change_webhook(listed["id"], active=True, secret="another-secret")
    share = _share(sandbox)
    unverified = receiver.wait_for("document.share_created", verified=False, shareId=share["id"])
    assert not unverified.verified  # signed with the new secret
    assert verify_signature(
        "another-secret", unverified.raw, unverified.headers["x-craftkit-signature"]
    )
    sandbox.unsubscribe(listed["id"])
    assert sandbox.webhooks() == []
    with pytest.raises(SandboxError, match="404"):
        sandbox.unsubscribe(listed["id"])


@pytest.mark.parametrize(
    "url", ["http://10.0.0.8/hook", "http://example.com/hook", "ftp://127.0.0.1/x", "nothing"]
)
def test_only_loopback_receivers_by_default(sandbox: Sandbox, url: str) -> None:
    with pytest.raises(SandboxError, match="400"):
        sandbox.subscribe(url, SECRET)


def test_a_dead_receiver_is_an_attempt_logged_with_its_reason(sandbox: Sandbox) -> None:
    with WebhookReceiver(SECRET) as gone:
        url = gone.url  # nothing listens there any more
    sandbox.subscribe(url, SECRET, events=["document.share_created"])
    _share(sandbox)
    logged = _logged(sandbox, "document.share_created", 1)
    attempt = logged["attempts"][0]
    assert attempt["statusCode"] is None
    assert attempt["error"]
    assert logged["status"] == "pending"
    assert logged["nextAttemptAt"] is not None


def test_a_receiver_that_holds_the_attempt_never_holds_the_request(sandbox: Sandbox) -> None:
    """The share is answered while the receiver still sits on its delivery."""
    arrived, release = threading.Event(), threading.Event()

    class Holding(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.set()
            release.wait(30)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Holding)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        sandbox.subscribe(url, SECRET, events=["document.share_created"])
        first = _share(sandbox)
        assert arrived.wait(10), "the delivery never reached the receiver"
        assert not release.is_set()
        second = _share(sandbox)  # answered while the first delivery is still held
        assert second["id"] != first["id"]
        release.set()
        deadline = time.monotonic() + 10
        while {d["status"] for d in sandbox.deliveries()} != {"delivered"}:
            assert time.monotonic() < deadline, sandbox.deliveries()
            time.sleep(0.01)
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_retry_falls_due_when_the_clock_moved_while_its_attempt_was_answered(
    sandbox: Sandbox,
) -> None:
    # The test moves the clock while the receiver holds the first attempt, then refuses it:
    # the retry is due (a minute after the attempt) on the clock as it now stands.
    arrived, release, attempts = threading.Event(), threading.Event(), []

    class Refusing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            attempts.append(self.headers["x-craftkit-delivery-id"])
            arrived.set()
            release.wait(30)
            self.send_response(503 if len(attempts) == 1 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sandbox.freeze()
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        sandbox.subscribe(url, SECRET, events=["document.share_created"])
        _share(sandbox)
        assert arrived.wait(10), "the delivery never reached the receiver"
        sandbox.advance(60)  # while the attempt is still held
        release.set()
        # Well before a process's hold on the project runs out and it looks again anyway.
        deadline = time.monotonic() + HOLD_MS / 2000
        while len(attempts) < 2:
            assert time.monotonic() < deadline, sandbox.deliveries()
            time.sleep(0.01)
        assert attempts[0] == attempts[1]
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_another_project_sees_none_of_the_deliveries(
    mock_url: str, sandbox: Sandbox, receiver: WebhookReceiver
) -> None:
    with Sandbox.create(mock_url) as other:
        _share(other)
        share = _share(sandbox)
        receiver.wait_for("document.share_created", shareId=share["id"])
        assert other.deliveries() == []
        assert all(d.body["renderId"] != other.render_id for d in receiver.deliveries)
