"""An example partner webhook handler, tested against the mock's signed deliveries.

``handle_delivery`` is the partner's code: it verifies the signature over the raw body the
way the webhook docs tell receivers to, ignores a delivery id it has already processed, and
reacts to the event. The ``craftkit_webhooks`` fixture is a real HTTP receiver subscribed to
every event of the test's sandbox; the tests feed what it received to the handler.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from mock_server.testing import Sandbox, WebhookReceiver


class Handler:
    """The partner's webhook handler: verify, de-duplicate, act."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode("utf-8")
        self.seen: set[str] = set()
        self.viewed: list[str] = []

    def handle(self, headers: dict[str, str], raw: bytes) -> int:
        """What the endpoint answers: 401 for a bad signature, else 200."""
        expected = hmac.new(self._secret, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("x-craftkit-signature", "")):
            return 401
        delivery_id = headers["x-craftkit-delivery-id"]
        if delivery_id in self.seen:
            return 200  # a retry of a delivery already processed
        self.seen.add(delivery_id)
        event: dict[str, Any] = json.loads(raw)
        if event["event"] == "document.viewed":
            self.viewed.append(event["shareId"])
        return 200


def test_the_recipient_viewed_the_agreement(
    craftkit_sandbox: Sandbox, craftkit_webhooks: WebhookReceiver
) -> None:
    box = craftkit_sandbox
    with httpx.Client(base_url=box.base_url, headers=box.headers) as api:
        share = api.post(f"/v1/renders/{box.render_id}/shares", json={}).json()
        assert httpx.get(share["shareUrl"]).status_code == 200
        api.delete(f"/v1/renders/{box.render_id}/shares/{share['id']}").raise_for_status()
    created = craftkit_webhooks.wait_for("document.share_created", shareId=share["id"])
    viewed = craftkit_webhooks.wait_for("document.viewed", shareId=share["id"])
    revoked = craftkit_webhooks.wait_for("document.share_revoked", shareId=share["id"])
    handler = Handler(craftkit_webhooks.secret)
    for delivery in (created, viewed, revoked):
        assert handler.handle(delivery.headers, delivery.raw) == 200
    assert handler.viewed == [share["id"]]
    assert handler.handle(viewed.headers, viewed.raw[:-1] + b" ") == 401  # tampered


def test_a_refused_delivery_comes_again_with_the_same_id(
    craftkit_sandbox: Sandbox, craftkit_webhooks: WebhookReceiver
) -> None:
    box = craftkit_sandbox
    box.freeze()  # time moves only when the test moves it
    craftkit_webhooks.refuse(1, status=503)
    with httpx.Client(base_url=box.base_url, headers=box.headers) as api:
        share = api.post(f"/v1/renders/{box.render_id}/shares", json={}).json()
    first = craftkit_webhooks.wait_for("document.share_created", shareId=share["id"])
    box.advance(60)  # the first retry is due a minute after the first attempt
    again = craftkit_webhooks.wait_for("document.share_created", count=2, shareId=share["id"])
    assert again.delivery_id == first.delivery_id
    handler = Handler(craftkit_webhooks.secret)
    assert handler.handle(first.headers, first.raw) == 200
    assert handler.handle(again.headers, again.raw) == 200
    assert len(handler.seen) == 1  # processed once
