"""pytest fixtures for partners' integration tests against the mock, installed with the package.

- ``craftkit_mock_url`` (session): the base URL of a mock. With ``--craftkit-mock-url`` or
  ``CRAFTKIT_MOCK_URL`` it is that running mock (shared by every worker and every team);
  otherwise a mock is started in-process for the session, one per pytest-xdist worker,
  with its settings from the environment as ``craftkit-mock`` takes them.
- ``craftkit_sandbox`` (function): a fresh project of its own on that mock for each test,
  with a key, a succeeded render and its own clock, faults, outbox and journal
  (``mock_server.testing.Sandbox``); deleted when the test ends.
- ``craftkit_webhooks`` (function): a ``WebhookReceiver`` on a free loopback port,
  subscribed to every event of the test's sandbox, verifying each delivery's signature
  (``wait_for("document.viewed")``, ``refuse()`` to see a retry).

Tests that use only these never see each other's doing, so ``pytest -n 8`` is safe.

pytest loads this plugin into every session of an environment that has the mock installed,
including a partner's sessions that use none of it: it imports nothing beyond pytest until a
fixture is used (``tests/mock/test_partner_install.py`` measures it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mock_server.testing.sandbox import Sandbox
    from mock_server.testing.webhooks import WebhookReceiver

MOCK_URL_VARIABLE = "CRAFTKIT_MOCK_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--craftkit-mock-url``: use a running mock instead of one per session."""
    group = parser.getgroup("craftkit-mock", "Craftkit reference mock")
    group.addoption(
        "--craftkit-mock-url",
        default=None,
        help=f"Base URL of a running craftkit-mock to share (default: ${MOCK_URL_VARIABLE}, "
        "else a mock started in-process for the session).",
    )


@pytest.fixture(scope="session")
def craftkit_mock_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The base URL of the mock the session's tests use."""
    given = request.config.getoption("--craftkit-mock-url") or os.environ.get(MOCK_URL_VARIABLE)
    if given:
        yield str(given).rstrip("/")
        return
    from mock_server.app import create_app
    from mock_server.testing.servers import serve

    with serve(create_app()) as base_url:
        yield base_url


@pytest.fixture
def craftkit_sandbox(request: pytest.FixtureRequest, craftkit_mock_url: str) -> Iterator[Sandbox]:
    """A project of this test's own on the mock, deleted afterwards."""
    from mock_server.testing.sandbox import Sandbox

    with Sandbox.create(craftkit_mock_url, name=request.node.nodeid[-200:]) as sandbox:
        yield sandbox


WEBHOOK_SECRET = "craftkit-test-webhook-secret"
"""The secret ``craftkit_webhooks`` subscribes with (``craftkit_webhooks.secret``)."""


@pytest.fixture
def craftkit_webhooks(craftkit_sandbox: Sandbox) -> Iterator[WebhookReceiver]:
    """A receiver of every webhook event of this test's sandbox; ``.subscription`` is it."""
    import craftkit_spec
    from mock_server.testing.webhooks import WebhookReceiver

    rules = craftkit_spec.webhook_rules()
    with WebhookReceiver(WEBHOOK_SECRET) as receiver:
        receiver.subscription = craftkit_sandbox.subscribe(
            receiver.url, WEBHOOK_SECRET, events=[*rules.render_events, *rules.document_events]
        )
        yield receiver
