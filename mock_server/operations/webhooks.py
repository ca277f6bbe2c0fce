"""Outgoing webhooks: the events the mock records become signed deliveries to subscribers.

A request that records an event (a share made or revoked, an email sent, a link viewed, a
render ending) only writes deliveries into the project's ledger; nothing here is sent while
a request waits. A dispatcher task in every mock process claims the work that has fallen due
on each project's clock (the ledger hands each attempt to one process only), sends it with
the contract's headers and signature, and records what the receiver answered. So a slow or
dead receiver costs the mock one pending attempt, never a request's time, and a test that
moves a project's clock makes its retries due at once.

Receivers are loopback addresses only, unless the operator lists other hosts
(``CRAFTKIT_MOCK_WEBHOOK_HOSTS``): a shared mock must not become a way into the network it
runs in. Redirects are not followed, for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

import craftkit_spec
from mock_server.engines.interface import Engine, StoreUnavailable
from mock_server.model import errors, rules
from mock_server.model.clock import ClockState, real_now
from mock_server.model.records import TERMINAL_STATUSES, EngagementEvent, Render, RenderState
from mock_server.model.timestamps import format_timestamp
from mock_server.model.webhooks import (
    Attempt,
    Delivery,
    RetryRule,
    SecretSealer,
    Subscription,
    after_attempt,
    receiver_allowed,
    resent,
    signature,
)
from mock_server.operations import background
from mock_server.settings import Settings

if TYPE_CHECKING:
    from mock_server.operations.callers import ProjectView

TICK_SECONDS = 0.2
"""How often a process looks for webhook work that fell due without it being told."""
HOLD_MS = 5000
"""A project with work out on lease is looked at again this soon (real time) at the latest."""
CLAIM_LIMIT = 32
"""Deliveries one look at a project claims."""
CONCURRENCY = 64
"""Attempts one process has in flight at once."""
_log = logging.getLogger("mock_server.webhooks")


def _real_ms() -> int:
    return int(time.time() * 1000)


def _invalid(field: str, message: str) -> errors.InvalidRequest:
    return errors.InvalidRequest(issues={"formErrors": [], "fieldErrors": {field: [message]}})


class Webhooks:
    """The project's subscriptions, the events that become deliveries, and the dispatcher."""

    def __init__(self, *, settings: Settings, engine: Engine, sealer: SecretSealer) -> None:
        facts = craftkit_spec.webhook_rules()
        self._rule = RetryRule(
            tuple(timedelta(seconds=s) for s in facts.retry_delays_seconds), facts.max_attempts
        )
        self._render_events = facts.render_events
        self._user_agent = facts.user_agent
        self._timeout = settings.webhook_timeout
        self._lease_ms = int((settings.webhook_timeout + 15) * 1000)
        self._hosts = frozenset(settings.webhook_hosts)
        self._public_pdfs = settings.s3_public_url
        self._engine = engine
        self._ledger = engine.webhooks
        self._sealer = sealer
        self._kick = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._attempts: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    # ---- subscriptions (the control API) ----------------------------------------------

    def _checked_url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _invalid("url", "must be an absolute http(s) URL")
        if not receiver_allowed(parts.hostname, self._hosts):
            raise _invalid(
                "url",
                f"{parts.hostname} is not a loopback address: this mock delivers only to "
                "loopback receivers unless its operator allows the host "
                "(CRAFTKIT_MOCK_WEBHOOK_HOSTS)",
            )
        return url

    async def subscribe(
        self, view: ProjectView, *, url: str, secret: str, events: list[str], active: bool
    ) -> Subscription:
        """A new subscription of the project (``409`` when it holds all it may)."""
        nonce, sealed = self._sealer.seal(secret)
        now = view.now()
        subscription = Subscription(
            id=str(uuid.uuid4()),
            project_id=view.project.id,
            url=self._checked_url(url),
            events=tuple(dict.fromkeys(events)),
            active=active,
            created_at=now,
            sealed_secret=sealed,
            seal_nonce=nonce,
        )
        if not await self._ledger.put_subscription(subscription):
            raise errors.Conflict("The project holds all the webhook subscriptions it may")
        return subscription

    async def subscription(self, view: ProjectView, subscription_id: str) -> Subscription:
        """One of the project's subscriptions; ``404`` otherwise."""
        for subscription in await self._ledger.subscriptions(view.project.id):
            if subscription.id == subscription_id:
                return subscription
        raise errors.NotFound("Webhook subscription not found")

    async def change(
        self, view: ProjectView, subscription_id: str, changes: dict[str, Any]
    ) -> Subscription:
        """The subscription with the fields given changed (a new secret sealed afresh)."""
        changed = await self.subscription(view, subscription_id)
        if "url" in changes:
            changed = replace(changed, url=self._checked_url(changes["url"]))
        if "events" in changes:
            changed = replace(changed, events=tuple(dict.fromkeys(changes["events"])))
        if "active" in changes:
            changed = replace(changed, active=bool(changes["active"]))
        if "secret" in changes:
            nonce, sealed = self._sealer.seal(changes["secret"])
            changed = replace(changed, sealed_secret=sealed, seal_nonce=nonce)
        await self._ledger.put_subscription(changed)
        return changed

    async def unsubscribe(self, view: ProjectView, subscription_id: str) -> None:
        """Delete a subscription; its pending deliveries are abandoned when they fall due."""
        if not await self._ledger.delete_subscription(view.project.id, subscription_id):
            raise errors.NotFound("Webhook subscription not found")

    async def subscriptions(self, view: ProjectView) -> list[Subscription]:
        """The project's subscriptions, oldest first."""
        return await self._ledger.subscriptions(view.project.id)

    async def deliveries(self, view: ProjectView) -> list[Delivery]:
        """The project's delivery log, newest first."""
        return await self._ledger.deliveries(view.project.id)

    async def resend(self, view: ProjectView, delivery_id: str) -> Delivery:
        """Attempt a delivery again at once (same id and body, a fresh retry budget)."""
        found = await self._ledger.delivery(view.project.id, delivery_id)
        if found is None:
            raise errors.NotFound("Webhook delivery not found")
        again = resent(found, view.now())
        await self._ledger.schedule(view.project.id, [again], [])
        await self._wake(view.project.id)
        return again

    # ---- events -----------------------------------------------------------------------

    async def document_event(
        self,
        view: ProjectView,
        render: Render,
        event: EngagementEvent,
        *,
        actor: str,
        source_ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        """Deliver an engagement event the project just recorded (``document.*``)."""
        body: dict[str, Any] = {
            "event": f"document.{event.event_type}",
            "renderId": render.id,
            "templateId": render.template_slug,
            "eventId": event.id,
            "eventType": event.event_type,
            "actorKind": actor,
            "createdAt": format_timestamp(event.created_at),
            "shareId": event.share_id,
            "sourceIp": source_ip,
            "userAgent": user_agent,
        }
        metadata = event.metadata
        if metadata is not None:
            body["metadata"] = metadata
        await self._emit(view.project.id, view.now(), body)

    async def render_submitted(self, view: ProjectView, render: Render) -> None:
        """Watch a new render until its end, if anyone wants to hear of it."""
        subscriptions = await self._ledger.subscriptions(view.project.id)
        if not any(s.wants(e) for s in subscriptions for e in self._render_events):
            return
        state = rules.render_state(render, view.now())
        if state.status in TERMINAL_STATUSES:
            await self._render_ended(view.project.id, view.now(), render, state)
        elif render.forced_status is None:
            ends = render.created_at + render.queue_for + render.render_for
            await self._ledger.schedule(view.project.id, [], [(render.id, ends)])
            await self._wake_at(view.project.id, view.clock, ends)

    async def render_forced(self, view: ProjectView, before: RenderState, render: Render) -> None:
        """A render put into a status by hand: its end, if it has just come to one."""
        state = rules.render_state(render, view.now())
        await self._ledger.unwatch(view.project.id, render.id)
        if state.status in TERMINAL_STATUSES and before.status not in TERMINAL_STATUSES:
            await self._render_ended(view.project.id, view.now(), render, state)

    async def _render_ended(
        self, project_id: str, now: datetime, render: Render, state: RenderState
    ) -> None:
        public = self._public_pdfs if state.status == "succeeded" else None
        body = {
            "event": f"render.{state.status}",
            "renderId": render.id,
            "templateId": render.template_slug,
            "status": state.status,
            "createdAt": format_timestamp(render.created_at),
            "completedAt": format_timestamp(state.completed_at or now),
            "downloadUrl": f"{public}/{project_id}/{render.id}.pdf" if public else None,
            "errorMessage": state.error_message,
        }
        await self._emit(project_id, now, body)

    async def _emit(self, project_id: str, now: datetime, body: dict[str, Any]) -> None:
        """One delivery per subscription that wants the event, due at once."""
        event = body["event"]
        wanted = [s for s in await self._ledger.subscriptions(project_id) if s.wants(event)]
        if not wanted:
            return
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        deliveries = [
            Delivery(str(uuid.uuid4()), project_id, s.id, event, payload, now, "pending", now)
            for s in wanted
        ]
        await self._ledger.schedule(project_id, deliveries, [])
        await self._wake(project_id)

    async def clock_moved(self, project_id: str | None) -> None:
        """Look at the project (``None``: every project) again: work may have fallen due."""
        await self._ledger.wake(None if project_id is None else [project_id], _real_ms())
        self._kick.set()

    async def _wake(self, project_id: str) -> None:
        await self._ledger.wake([project_id], _real_ms())
        self._kick.set()

    async def _wake_at(self, project_id: str, clock: ClockState, at: datetime) -> None:
        real = clock.real_ms_when(at)
        if real is not None:
            await self._ledger.wake([project_id], real)

    # ---- the dispatcher ---------------------------------------------------------------

    async def run(self) -> None:
        """Deliver what falls due, for as long as the process serves (a lifespan task)."""
        while True:
            self._kick.clear()
            try:
                for project_id in await self._ledger.due_projects(_real_ms(), CLAIM_LIMIT):
                    await self._look(project_id)
            except StoreUnavailable:
                pass  # the store's keeper reports the outage; the work waits in the store
            except Exception:  # one bad record must not stop every project's deliveries
                _log.exception("Webhook dispatch failed; trying again")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns a wake-up that
            # lands with a cancellation and drops the cancellation, and the worker never stops.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_SECONDS):
                    await self._kick.wait()

    async def _look(self, project_id: str) -> None:
        """Claim and start the project's due work; say when to look at it next."""
        held = _real_ms() + HOLD_MS
        await self._ledger.hold(project_id, held)
        stored = await self._engine.project(project_id)
        if stored is None or stored.project.deleted:
            await self._ledger.settle(project_id, held)
            return
        clock = stored.clock or stored.shared.clock
        now = clock.now(real_now())
        claimed = await self._ledger.claim(project_id, now, self._lease_ms, CLAIM_LIMIT)
        for render_id in claimed.renders:
            await self._render_due(project_id, render_id, now, clock)
        if claimed.deliveries:
            subscriptions = {s.id: s for s in await self._ledger.subscriptions(project_id)}
            for delivery in claimed.deliveries:
                await self._slots.acquire()
                task = asyncio.create_task(
                    self._attempt(delivery, subscriptions.get(delivery.subscription_id), clock)
                )
                self._attempts.add(task)
                task.add_done_callback(self._attempt_done)
        if len(claimed.deliveries) >= CLAIM_LIMIT:
            await self._ledger.wake([project_id], _real_ms())
            self._kick.set()
        elif claimed.next_due is not None:
            await self._wake_at(project_id, clock, claimed.next_due)
        elif claimed.leased == 0:
            await self._ledger.settle(project_id, held)

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._attempts.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            _log.error("A webhook attempt failed: %r", task.exception())

    async def _render_due(
        self, project_id: str, render_id: str, now: datetime, clock: ClockState
    ) -> None:
        render = await self._engine.render(project_id, render_id)
        if render is None:
            return
        state = rules.render_state(render, now)
        if state.status in TERMINAL_STATUSES:
            await self._render_ended(project_id, now, render, state)
        elif render.forced_status is None:  # the clock went back: watch again
            ends = render.created_at + render.queue_for + render.render_for
            await self._ledger.schedule(project_id, [], [(render_id, ends)])
            await self._wake_at(project_id, clock, ends)

    async def _attempt(
        self, delivery: Delivery, subscription: Subscription | None, clock: ClockState
    ) -> None:
        """Send one attempt and record it; schedule the next when it failed."""
        at = clock.now(real_now())
        if subscription is None:
            attempt = Attempt(at, None, 0, "the subscription was deleted")
            done = replace(after_attempt(delivery, attempt, self._rule), state="abandoned")
            await self._ledger.finish(replace(done, next_attempt_at=None))
            return
        attempt = await self._send(delivery, subscription, at)
        done = after_attempt(delivery, attempt, self._rule)
        await self._ledger.finish(done)
        if done.next_attempt_at is not None:
            # The clock as it stands now: a test may have moved it while the receiver took
            # its time to answer, and then the retry is due at once.
            stored = await self._engine.project(delivery.project_id)
            if stored is not None:
                clock = stored.clock or stored.shared.clock
            await self._wake_at(delivery.project_id, clock, done.next_attempt_at)

    async def _send(self, delivery: Delivery, subscription: Subscription, at: datetime) -> Attempt:
        host = urlsplit(subscription.url).hostname or ""
        if not receiver_allowed(host, self._hosts):
            return Attempt(at, None, 0, f"{host} is not an allowed receiver on this process")
        secret = self._sealer.open(subscription.seal_nonce, subscription.sealed_secret)
        if secret is None:
            return Attempt(at, None, 0, "the secret was sealed by a process with another secret")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            "x-craftkit-event": delivery.event,
            "x-craftkit-signature": signature(secret, delivery.payload),
            "x-craftkit-timestamp": str(int(at.timestamp())),
            "x-craftkit-delivery-id": delivery.id,
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self._timeout):
                request = self._http().stream(
                    "POST", subscription.url, content=delivery.payload, headers=headers
                )
                async with request as response:
                    status = response.status_code
        except TimeoutError:
            error = f"no answer within {self._timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = int((time.perf_counter() - started) * 1000)
        if status is not None and not 200 <= status < 300:
            error = f"answered {status}"
        return Attempt(at, status, latency, error)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=16),
            )
        return self._client

    async def aclose(self) -> None:
        """Stop the attempts in flight (their leases run out) and close the client."""
        await background.stop(list(self._attempts))
        if self._client is not None:
            await self._client.aclose()
