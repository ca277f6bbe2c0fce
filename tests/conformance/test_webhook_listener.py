"""A deployment's deliveries at ``--webhook-listen``: ``run``'s rules and ``diff`` check them.

Against the mock the suite subscribes a listener of its own; against a deployment the
implementer subscribes the project to the address given with ``--webhook-listen``. Here the
deployment is the mock with its control API hidden, set up (projects, a render, the
subscription) through a backdoor only this test knows, and its deliveries go to that address.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import pytest

import craftkit_spec
from conformance.config import PROFILES, RunConfig
from conformance.differential.machine import run_lockstep
from conformance.runner import ConformanceSession, select_rules
from conformance.webhooks import WebhookListener
from mock_server import create_app
from mock_server.testing import free_port, serve
from tests.support.variants import LiveLike

FEW = replace(PROFILES["quick"], name="few", state_machine_examples=1, state_machine_steps=4)
BACKDOOR = {"X-Test-Backdoor": "set-up"}


@dataclass(frozen=True)
class Deployment:
    """What an implementer knows of their deployment: its address, keys, a render, a hook."""

    base_url: str
    api_key: str
    other_api_key: str
    render_id: str
    other_render_id: str | None
    listen: str
    secret: str

    def config(self, profile: object = FEW) -> RunConfig:
        return RunConfig(
            base_url=self.base_url,
            profile=profile,  # type: ignore[arg-type]
            api_key=self.api_key,
            other_api_key=self.other_api_key,
            render_id=self.render_id,
            other_render_id=self.other_render_id,
            webhook_listen=self.listen,
            webhook_secret=self.secret,
            webhook_wait=5.0,
        )


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with (
        serve(LiveLike(backdoor="set-up")) as base_url,
        httpx.Client(base_url=f"{base_url}/_mock", headers=BACKDOOR) as control,
    ):
        own, other = (
            control.post("/projects", json={"name": name}).json() for name in ("own", "other")
        )
        renders = [
            control.post(
                f"/projects/{project['projectId']}/renders",
                json={"status": "succeeded", "data": {}},
            ).json()["id"]
            for project in (own, other)
        ]
        port, secret = free_port(), secrets.token_hex(16)
        rules = craftkit_spec.webhook_rules()
        control.post(
            f"/projects/{own['projectId']}/webhooks",
            json={
                "url": f"http://127.0.0.1:{port}/hooks",
                "secret": secret,
                "events": [*rules.render_events, *rules.document_events],
            },
        ).raise_for_status()
        yield Deployment(
            base_url,
            own["apiKey"],
            other["apiKey"],
            renders[0],
            renders[1],
            f"127.0.0.1:{port}",
            secret,
        )


def test_run_checks_a_deployments_deliveries_at_the_listen_address(
    deployment: Deployment,
) -> None:
    """Every WEBHOOK rule that needs no mock passes; the retry rule is skipped.

    The render rule renders the template given; the retry rule, which refuses a delivery
    and moves the clock, needs the mock.
    """
    session = ConformanceSession(replace(deployment.config(), template_slug="invoice"))
    rules = [r for r in select_rules() if r.id.startswith("WEBHOOK-")]
    for each in rules:
        session.run_rule(each)
    outcomes = {r.rule.id: r.outcome for r in session.finish().results}
    assert outcomes == {
        "WEBHOOK-SHARE-EVENTS": "passed",
        "WEBHOOK-EMAIL-EVENTS": "passed",
        "WEBHOOK-PARTNER-EVENTS": "passed",
        "WEBHOOK-OWN-PROJECT": "passed",
        "WEBHOOK-RETRY-SAME-ID": "skipped",
        "WEBHOOK-RENDER-EVENTS": "passed",
    }, outcomes


def test_run_fails_a_deployment_whose_secret_is_not_the_one_given(
    deployment: Deployment,
) -> None:
    """The listener checks signatures with the secret given: another one fails the rule."""
    config = replace(deployment.config(), webhook_secret="not-the-subscriptions-secret")
    session = ConformanceSession(config)
    session.run_rule(next(r for r in select_rules() if r.id == "WEBHOOK-SHARE-EVENTS"))
    [outcome] = session.finish().results
    assert outcome.outcome == "failed"
    assert "departs from the contract" in outcome.title, outcome.title


def test_diff_compares_a_deployments_deliveries_with_the_mocks(deployment: Deployment) -> None:
    """The deliveries after the core agree with the reference mock's: nothing diverges."""
    with serve(create_app()) as reference:
        result = run_lockstep(deployment.config(), RunConfig(base_url=reference, profile=FEW))
    assert result.divergences == [], [(d.title, d.differences) for d in result.divergences]
    assert not any("webhook" in reason for reason in result.untested), result.untested


def test_diff_says_deliveries_were_not_compared_without_a_listener(
    deployment: Deployment,
) -> None:
    config = replace(deployment.config(), webhook_listen=None, webhook_secret=None)
    with serve(create_app()) as reference:
        result = run_lockstep(config, RunConfig(base_url=reference, profile=FEW))
    assert result.passed
    assert any("--webhook-listen" in reason for reason in result.untested), result.untested


def test_rules_crossing_projects_are_skipped_without_a_render_of_the_other_project(
    deployment: Deployment,
) -> None:
    """With no --other-render-id and no template the run cannot make one: skipped, and why."""
    session = ConformanceSession(replace(deployment.config(), other_render_id=None))
    crossing = ("ISOLATION-RENDERS", "ISOLATION-SHARES", "WEBHOOK-OWN-PROJECT")
    for each in select_rules(only=crossing):
        session.run_rule(each)
    results = session.finish().results
    assert {r.outcome for r in results} == {"skipped"}, [(r.rule.id, r.title) for r in results]
    assert all("--other-render-id" in (r.reason or "") for r in results)


def test_a_refusal_goes_to_the_delivery_it_names_not_to_whatever_arrives_first() -> None:
    """A late delivery of an earlier action must not take the refusal a rule set up.

    Three runs at once on one mock showed it: WEBHOOK-RETRY-SAME-ID failed because an
    earlier rule's delivery arrived between the refusal and the share it was meant for.
    """
    listener = WebhookListener("127.0.0.1", free_port(), "secret")
    try:
        listener.refuse(1, when=lambda d: d.body.get("renderId") == "r-2")
        answers = [
            httpx.post(listener.url, json={"event": "document.viewed", "renderId": rid}).status_code
            for rid in ("r-1", "r-2", "r-2")
        ]
    finally:
        listener.close()
    assert answers == [200, 500, 200]
    assert [d.answered for d in listener.received] == [200, 500, 200]
