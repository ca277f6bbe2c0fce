"""What partners import into their own tests: real servers, the ``Sandbox`` client, fixtures.

- ``Sandbox``: one project of a test's own on a running mock, and its control calls.
- ``serve(app)``: the mock in a thread on a free loopback port, for the length of a block.
- ``MockProcess`` (``craftkit-mock`` as a process of its own), ``RedisServer`` (a real
  ``redis-server`` on a free loopback port), ``free_port``.
- ``WebhookReceiver``: a local server that verifies and collects a sandbox's webhook
  deliveries (``wait_for``, ``refuse``); ``verify_signature`` as the contract tells receivers.
- ``pytest_plugin``: the ``craftkit_mock_url``, ``craftkit_sandbox`` and
  ``craftkit_webhooks`` fixtures, installed with the package.

Names load on first use, so the pytest plugin that imports this package costs nothing until
a fixture is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mock_server.testing.sandbox import Sandbox, SandboxError
    from mock_server.testing.servers import (
        MockProcess,
        RedisServer,
        ThreadedServer,
        free_port,
        serve,
    )
    from mock_server.testing.webhooks import (
        ReceivedDelivery,
        WebhookReceiver,
        WebhookTimeout,
        verify_signature,
    )

__all__ = [
    "MockProcess",
    "ReceivedDelivery",
    "RedisServer",
    "Sandbox",
    "SandboxError",
    "ThreadedServer",
    "WebhookReceiver",
    "WebhookTimeout",
    "free_port",
    "serve",
    "verify_signature",
]

_HOMES = {
    "Sandbox": "sandbox",
    "SandboxError": "sandbox",
    "MockProcess": "servers",
    "RedisServer": "servers",
    "ThreadedServer": "servers",
    "free_port": "servers",
    "serve": "servers",
    "ReceivedDelivery": "webhooks",
    "WebhookReceiver": "webhooks",
    "WebhookTimeout": "webhooks",
    "verify_signature": "webhooks",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"mock_server.testing.{home}"), name)
