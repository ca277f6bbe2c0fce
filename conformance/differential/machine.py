"""The same sequences against a target and the reference mock, step by step, side by side.

A run first probes the points API_NOTES Part B leaves to each deployment (``probes``: an
unknown method, an expiry with an offset, email switched off): a difference there is a
decision, reported and never failed, and the reference is set up like the target where
state depends on it (email off). A render is submitted and replayed (``steps``). The core
steps then run once, in a sequence of their own; after them a hypothesis state machine
draws short sequences of share operations, links, downloads, events and (on a mock)
submissions. Every step runs on the target, then on the reference (``sides``), and the two
answers are compared in normal form (``verdict``, ``normal``); the share lists are compared
after every step. The first departure ends the sequence, and with a shrinking profile
hypothesis then finds the shortest sequence that still departs; a legitimate difference is
reported once and the sequence goes on.
"""

from __future__ import annotations

import contextlib
import functools
import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    run_state_machine_as_test,
)
from hypothesis.stateful import rule as step

from conformance.client import Exchange
from conformance.config import UTF8_CHARACTERS, RunConfig
from conformance.differential.deliveries import compare_deliveries
from conformance.differential.lockstep import DiffResult, Diverged, Lockstep, Side, noted
from conformance.differential.probes import oversize_steps, probe_decisions, provision
from conformance.differential.steps import (
    MESSAGE_MAX,
    Made,
    begin_sequence,
    compare_lists,
    deleted_project_key,
    email_is_on,
    faults_on,
    keyed_call,
    keyed_operations,
    read_steps,
    render_once,
    render_seeded,
    since,
    submit_render,
)
from conformance.runner import ConformanceSession
from conformance.target import RESEND_TEST_RECIPIENT, VISITORS, control_headers

NON_ASCII = "\u00e9"
"""A character of the Basic Multilingual Plane UTF-8 writes in two bytes (notes B.16)."""
PAST = "2001-01-01T00:00:00Z"
"""An expiry long passed: accepted, and the share never resolves (notes B.3)."""


def _shown(message: str | None, longest: int = 40) -> str:
    """A message as a step's name shows it: whole when short, else its start and length."""
    if message is None or len(message) <= longest:
        return repr(message)
    return f"{message[:20]!r}… ({len(message)} characters)"


def _json_object(exchange: Exchange) -> dict[str, Any]:
    """The answer's JSON object, or ``{}`` for anything else (its difference is reported)."""
    try:
        body = exchange.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _hours(hours: int | None) -> str:
    return "never" if hours is None else f"{hours}h"


def _future(hours: int) -> str:
    instant = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


class LockstepMachine(RuleBasedStateMachine):
    """Share operations, links, downloads, events and (on a mock) submissions, on both sides.

    ``run`` (the two sides) and the run's flags are given to a subclass made for each run
    (``bound_to``); every sequence starts in ``begin``, its one ``@initialize`` step.
    """

    run: ClassVar[Lockstep]
    can_render: ClassVar[bool]
    writes: ClassVar[bool]
    events: ClassVar[bool]
    both_mocks: ClassVar[bool]
    past_expiries: ClassVar[bool]
    email_on: ClassVar[bool]
    same_limit: ClassVar[bool]
    shares = Bundle("shares")

    @classmethod
    def bound_to(cls, run: Lockstep, config: RunConfig) -> type[LockstepMachine]:
        """The machine for one run, its flags read from what the probes found."""
        target = run.target.session.target
        writes = not config.read_only
        bound: type[LockstepMachine] = type(
            "BoundLockstepMachine",
            (cls,),
            {
                "run": run,
                "can_render": "template" in target.capabilities,
                "writes": writes,
                "events": writes and target.is_mock,
                "both_mocks": target.is_mock,
                "past_expiries": target.is_mock,
                "email_on": email_is_on(run),
                "same_limit": not any("notes B.6" in d.source for d in run.divergences),
            },
        )
        bound.TestCase.settings = config.profile.machine_settings()
        return bound

    def __init__(self) -> None:
        super().__init__()
        self.target, self.reference = self.run.target, self.run.reference

    @initialize()
    def begin(self) -> None:
        """A sequence begins: the lists and engagement as they are, on both sides."""
        begin_sequence(self.run)

    def _remember(self, ours: Exchange, theirs: Exchange) -> Made | None:
        """Both sides' share (id and link), when both made one; revoked at the end."""
        if ours.status != 201:
            return None
        made: Made = {}
        for side, exchange in ((self.target, ours), (self.reference, theirs)):
            body = _json_object(exchange)
            if isinstance(body.get("id"), str):
                side.session.target.remember_share(side.render, body["id"])
            # An answer without the share's id or link: its difference is reported already.
            with contextlib.suppress(KeyError, TypeError):
                made[side.label] = (body["id"], side.session.context.share_url(body))
        return made if len(made) == 2 else None

    def _name(self, made: Made) -> str:
        return self.target.correlator.names.get(made[self.target.label][0], "a share")

    @precondition(lambda self: self.writes)
    @step(
        target=shares,
        channel=st.sampled_from(["link", "email"]),
        message=st.none() | st.text(UTF8_CHARACTERS, max_size=30),
        expiry=st.sampled_from([None, -24, 1]),
    )
    def create(self, channel: str, message: str | None, expiry: int | None) -> Made | None:
        """A share created on both sides (an email share too), then its link opened."""
        return self._create(channel, message, expiry)

    def _create(self, channel: str, message: str | None, expiry: int | None) -> Made | None:
        if expiry is not None and expiry < 0 and not self.past_expiries:
            return None  # a share that expired already: not compared (see _past_untested)
        body: dict[str, Any] = {"channel": channel}
        if channel == "email":
            body["recipientEmail"] = RESEND_TEST_RECIPIENT
        if message is not None:
            body["message"] = message
        if expiry is not None:
            body["expiresAt"] = _future(expiry)
            for side in (self.target, self.reference):
                side.correlator.sent_instant(body["expiresAt"])
        ours, theirs = self.run.both(
            f"create(channel={channel!r}, message={_shown(message)}, expiresIn={_hours(expiry)})",
            "/v1/renders/{id}/shares",
            "post",
            lambda side: side.call("POST", f"/v1/renders/{side.render}/shares", json=body),
        )
        made = self._remember(ours, theirs)
        if made is not None:
            self._open(made, download=False)  # a new link opens (or 404s, once expired)
        return made

    @precondition(lambda self: self.email_on and self.writes)
    @step(target=shares, message=st.none() | st.just("Here is your copy."))
    def email(self, message: str | None) -> Made | None:
        """The render emailed on both sides."""
        return self._email(message)

    def _email(self, message: str | None, expires_at: str | None = None) -> Made | None:
        body: dict[str, Any] = {"to": RESEND_TEST_RECIPIENT}
        if message is not None:
            body["message"] = message
        if expires_at is not None:
            body["expiresAt"] = expires_at
            for side in (self.target, self.reference):
                side.correlator.sent_instant(expires_at)
        shown = f", expiresAt={expires_at!r}" if expires_at else ""
        ours, theirs = self.run.both(
            f"email(message={message!r}{shown})",
            "/v1/renders/{id}/email",
            "post",
            lambda side: side.call("POST", f"/v1/renders/{side.render}/email", json=body),
        )
        return self._remember(ours, theirs)

    @step(made=shares)
    def revoke(self, made: Made | None) -> None:
        """A share revoked on both sides, then its link opened (a revoked link 404s)."""
        if made is None:
            return
        self.run.both(
            f"revoke({self._name(made)})",
            "/v1/renders/{id}/shares/{shareId}",
            "delete",
            lambda side: side.call(
                "DELETE", f"/v1/renders/{side.render}/shares/{made[side.label][0]}"
            ),
        )
        self._open(made, download=False)  # a revoked link 404s at once

    @step(made=shares)
    def revoke_twice(self, made: Made | None) -> None:
        """Revoke, then revoke again: the second must be refused alike on both sides."""
        if made is not None:
            self.revoke(made)
            self.revoke(made)

    @step(made=shares)
    def revoke_concurrently(self, made: Made | None) -> None:
        """Two revokes of one share at once on each side: exactly one may win."""
        if made is None:
            return

        def both_at_once(side: Side) -> list[Exchange]:
            path = f"/v1/renders/{side.render}/shares/{made[side.label][0]}"
            with ThreadPoolExecutor(2) as pool:
                return list(pool.map(lambda _: side.call("DELETE", path), range(2)))

        self.run.at_once(
            f"revoke({self._name(made)}) twice at once",
            "/v1/renders/{id}/shares/{shareId}",
            "delete",
            both_at_once,
        )

    @step(made=shares, download=st.booleans())
    def open_link(self, made: Made | None, download: bool) -> None:
        """A share's link (or its PDF) opened on both sides."""
        if made is not None:
            self._open(made, download)

    def _open(self, made: Made, download: bool, address: str | None = None) -> None:
        suffix = "/download" if download else ""
        headers = {"X-Forwarded-For": address} if address else None
        shown = f", from={address!r}" if address else ""
        self.run.both(
            f"open_link({self._name(made)}, download={download}{shown})",
            "/share/{token}" + suffix,
            "get",
            lambda side: side.session.client.request(
                "GET", made[side.label][1] + suffix, headers=headers
            ),
        )

    def core(self) -> None:
        """The core of the API, once per run, before the drawn sequences.

        The drawn sequences then stay short, and quick to shrink. The lists are compared
        after each step. The errors on purpose, reads of the render and its PDF, a link,
        an expired link and a longest message; the link opened twice and downloaded,
        events and the engagement, the foreign and not-ready renders tried, two revokes
        at once and a third; an email, and on a mock the outboxes and a refused send.
        """
        read_steps(self.run)
        compare_lists(self.run)
        if not self.writes:
            return
        if self.same_limit:
            oversize_steps(self.run)
        kept = self._create("link", None, None)
        compare_lists(self.run)
        if self.past_expiries:
            self._create("link", None, -24)
            compare_lists(self.run)
        else:
            self._past_untested()
        self._create("link", "m" * MESSAGE_MAX, None)
        compare_lists(self.run)
        self._create("link", NON_ASCII * MESSAGE_MAX, None)  # characters, not bytes (B.16)
        compare_lists(self.run)
        if kept is not None:
            self._open(kept, download=False)  # a second view within 5 minutes: no count
            self._open(kept, download=True)
            compare_lists(self.run)
            self._views_from_two_addresses(kept)
            if self.events:
                self.record_event()
            self.engagement()
            if self.target.not_ready is not None:
                self._through_other_render(kept)
            self.revoke_concurrently(kept)
            compare_lists(self.run)
            self.revoke(kept)  # once more: refused alike
            self._open(kept, download=True)  # a revoked link's PDF 404s too
            compare_lists(self.run)
        if self.target.not_ready is not None:
            self._share_not_ready()
            self.run.both(
                "download_render() of a render that has not succeeded",
                "/v1/renders/{id}/download",
                "get",
                lambda side: side.call("GET", f"/v1/renders/{side.not_ready}/download"),
            )
            if self.email_on:  # with email off, which refusal comes first is open (B.2)
                self.run.both(
                    "email() of a render that has not succeeded",
                    "/v1/renders/{id}/email",
                    "post",
                    lambda side: side.call(
                        "POST",
                        f"/v1/renders/{side.not_ready}/email",
                        json={"to": RESEND_TEST_RECIPIENT},
                    ),
                )
        sent = self._email(None) if self.email_on else None
        if self.email_on:  # an emailed share's expiry is the share's (listed; dead once past)
            expiring = self._email(None, PAST if self.past_expiries else _future(1))
            compare_lists(self.run)
            if expiring is not None:
                self._open(expiring, download=False)
        compare_lists(self.run)
        if sent is not None and self.both_mocks:
            self._outboxes()
            self._email_failing()
            compare_lists(self.run)
        if self.both_mocks:
            self._faults()

    def _past_untested(self) -> None:
        """Shares that expired already are compared only between two mocks.

        A deployment may refuse a past ``expiresAt`` (notes B.3) or leave expired rows out of
        its lists (notes B.4); a row missing from a list cannot be told from a lost one in a
        comparison, so ``run``'s rules and state model, which follow either choice, judge them.
        """
        self.run.untested.append(
            "shares that expired already (a past expiresAt, expired rows in lists): a "
            "deployment may refuse them (notes B.3) or leave them out of its lists (notes "
            "B.4); run checks them (LINK-EXPIRED-404, EMAIL-EXPIRY, STATE-MODEL)"
        )

    def _views_from_two_addresses(self, made: Made) -> None:
        """Views from two addresses count twice: the address is part of what is de-duplicated.

        Only a mock is known to take ``X-Forwarded-For`` as the visitor's address; behind a
        deployment's proxy the header may be ignored, and from outside that cannot be told
        from de-duplication that ignores the address. The report says so.
        """
        if not self.both_mocks:
            self.run.untested.append(
                "views from two addresses (de-duplication per source address, notes A): the "
                "target is not a mock, so whether it takes X-Forwarded-For is unknown"
            )
            return
        for address in VISITORS:
            self._open(made, download=False, address=address)
        compare_lists(self.run)

    def _faults(self) -> None:
        """Failure paths only a mock can be made to take, switched on alike on both sides.

        The not-ready render read; a deleted project's key on every keyed operation; the
        seeded templates that refuse (a draft, a manifest); storage, the queue and email
        down; then one request a minute, and every keyed operation, health and a link
        over it.
        """
        self.run.both(
            "get_render() of a render that has not succeeded",
            "/v1/renders/{id}",
            "get",
            lambda side: side.call("GET", f"/v1/renders/{side.not_ready}"),
        )
        deleted = {side.label: deleted_project_key(side) for side in (self.target, self.reference)}
        for method, path in keyed_operations():
            self.run.both(
                f"{method} {path} with a deleted project's key",
                path,
                method.lower(),
                keyed_call(method, path, lambda side: deleted[side.label]),
            )
        for slug, what in (
            ("draft-letter", "no published version"),
            ("certificate", "a manifest"),
        ):
            self.run.both(
                f"submit_render() of a seeded template with {what}",
                "/v1/templates/{slug}/render",
                "post",
                functools.partial(render_seeded, slug=slug),
            )
        with faults_on(self.target, self.reference, storageFails=True):
            self.run.both(
                "download_render() while storage fails",
                "/v1/renders/{id}/download",
                "get",
                lambda side: side.call("GET", f"/v1/renders/{side.render}/download"),
            )
            made = self._create("link", None, None)
            if made is not None:
                self._open(made, download=True)
        with faults_on(self.target, self.reference, queueUnavailable=True):
            self.run.both(
                "submit_render() while the queue is down",
                "/v1/templates/{slug}/render",
                "post",
                lambda side: side.call("POST", "/v1/templates/invoice/render", json={"data": {}}),
            )
        if self.email_on:
            with faults_on(self.target, self.reference, emailTransport="none"):
                self._email("with email switched off")
        link = self._create("link", None, None)
        with faults_on(self.target, self.reference, rateLimitPerMinute=1):
            self.engagement()  # the one request the minute allows
            for method, path in keyed_operations():
                self.run.both(
                    f"{method} {path} over one request a minute",
                    path,
                    method.lower(),
                    keyed_call(method, path, lambda side: side.session.target.key),
                )
            self.run.both(
                "health() with the key, over one request a minute",
                "/health",
                "get",
                lambda side: side.call("GET", "/health"),
            )
            if link is not None:
                self._open(link, download=False)
                self._open(link, download=True)

    def _outboxes(self) -> None:
        """The mail each side kept (both are mocks): same mail, same words, same link."""

        def outbox(side: Side) -> Exchange:
            project = side.session.target.projects[side.session.target.key or ""]
            return side.session.client.request(
                "GET", f"/_mock/projects/{project}/emails", headers=control_headers()
            )

        self.run.both("the outboxes", "/_mock/projects/{projectId}/emails", "get", outbox)

    def _email_failing(self) -> None:
        """An email the provider refuses (both are mocks): 502 alike, and the share stays."""
        with faults_on(self.target, self.reference, emailSendFails=True):
            self._email("refused")

    # Whether an event counts depends on the same address's events of the last five
    # minutes: a deployment's render has a history the reference cannot know.
    @precondition(lambda self: self.events)
    @step(kind=st.sampled_from(["viewed", "downloaded", "printed"]))
    def record_event(self, kind: str = "printed") -> None:
        """A recipient event reported through the API on both sides."""
        self.run.both(
            f"record_event({kind!r})",
            "/v1/renders/{id}/events",
            "post",
            lambda side: side.call(
                "POST", f"/v1/renders/{side.render}/events", json={"eventType": kind}
            ),
        )

    @step()
    def engagement(self) -> None:
        """The render's engagement since the sequence began, on both sides."""
        self.run.both(
            "engagement()",
            "/v1/renders/{id}/engagement",
            "get",
            lambda side: since(
                side.call("GET", f"/v1/renders/{side.render}/engagement"), side.engaged
            ),
        )

    def _through_other_render(self, made: Made) -> None:
        self.run.both(
            f"revoke({self._name(made)}) through another render of the project",
            "/v1/renders/{id}/shares/{shareId}",
            "delete",
            lambda side: side.call(
                "DELETE", f"/v1/renders/{side.not_ready}/shares/{made[side.label][0]}"
            ),
        )

    def _share_not_ready(self) -> None:
        answers = self.run.both(
            "create() on a render that has not succeeded",
            "/v1/renders/{id}/shares",
            "post",
            lambda side: side.call("POST", f"/v1/renders/{side.not_ready}/shares", json={}),
        )
        for side, answer in zip((self.target, self.reference), answers, strict=True):
            if answer.status == 201:  # both wrong alike: still cleaned up
                side.session.target.remember_share(side.not_ready or "", answer.json()["id"])

    # On a deployment each submission really renders: there, render_once covers it.
    @precondition(
        lambda self: self.can_render and self.writes and self.target.session.target.is_mock
    )
    @step(replay=st.booleans())
    def submit_render(self, replay: bool) -> None:
        """A render submitted (and replayed) on both mocks."""
        submit_render(self.run, replay)

    @invariant()
    def lists_agree(self) -> None:
        """After every step, both sides list the same shares alike."""
        compare_lists(self.run)


def run_lockstep(
    target_config: RunConfig, reference_config: RunConfig, fail_fast: bool = False
) -> DiffResult:
    """Compare the target with the reference: probes, then the profile's sequences."""
    started = time.perf_counter()
    with ConformanceSession(target_config) as ours, ConformanceSession(reference_config) as theirs:
        run = Lockstep(Side("target", ours), Side("reference", theirs))
        if target_config.template_slug or ours.target.is_mock:
            slug = target_config.template_slug or "invoice"
            data = target_config.template_data or {}
            run.target.template = (slug, data)
            run.reference.template = (slug, data) if ours.target.is_mock else ("invoice", {})
        run.fail_fast = fail_fast
        run.going_on = True  # the steps that run once report each departure and go on
        provision(run)
        probe_decisions(run)
        render_once(run)
        machine = LockstepMachine.bound_to(run, target_config)
        try:
            core = machine()  # a sequence of its own: the core steps, once
            core.begin()
            core.core()
        except Diverged as diverged:  # only once the run has reported all it may
            run.divergences.append(diverged.divergence)
        if not target_config.read_only and not run.done:
            compare_deliveries(run, target_config.webhook_wait)
        run.going_on = False  # a drawn sequence ends at a departure, so it can shrink
        # Then the drawn sequences, unless the run reported all it may or nothing may be
        # created; each departure they find that the core did not is reported too.
        if not target_config.read_only and not run.done:
            seeded = hypothesis_seed(target_config.seed)(machine)
            notes = io.StringIO()
            try:
                with with_reporter(lambda message: print(message, file=notes)):
                    run_state_machine_as_test(seeded, settings=machine.TestCase.settings)
            except Diverged as diverged:
                found = diverged.divergence
                reported = {noted(d.source, d.differences) for d in run.divergences}
                if noted(found.source, found.differences) not in reported:
                    run.divergences.append(found)
        ours.close()
        theirs.close()
        cleanup = f"target: {ours.cleanup}; reference: {theirs.cleanup}"
        requests = ours.client.requests_sent + theirs.client.requests_sent
    return DiffResult(
        target_url=target_config.base_url,
        reference_url=reference_config.base_url,
        profile=target_config.profile.name,
        seed=target_config.seed,
        divergences=run.divergences,
        sequences=run.sequences,
        steps=run.steps,
        seconds=time.perf_counter() - started,
        requests=requests,
        cleanup=cleanup,
        untested=run.untested,
    )
