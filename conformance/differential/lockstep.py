"""The same sequences against a target and the reference mock, step by step, side by side.

A run first probes the points API_NOTES Part B leaves to each deployment (an unknown method,
an expiry with an offset, email switched off): a difference there is a decision, reported
and never failed, and the reference is set up like the target where state depends on it
(email off). The core steps then run once, in a sequence of their own; after them a
hypothesis state machine draws short sequences of share operations, links, downloads,
events and (on a mock) submissions. Every step runs on the target, then on the reference,
and the two answers are compared in normal form (``normal``): same status, same error code,
same fields with correlated ids and tokens, timestamps in the same order, and the share
lists equal after every step. The first step that differs ends the sequence; with a
shrinking profile hypothesis then finds the shortest sequence that still differs.
"""

from __future__ import annotations

import functools
import io
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    run_state_machine_as_test,
)
from hypothesis.stateful import rule as step

import craftkit_spec
from conformance.client import Exchange
from conformance.config import RunConfig
from conformance.differential.normal import Correlator, differences, opposite_order
from conformance.runner import ConformanceSession
from conformance.target import RESEND_TEST_RECIPIENT, control_headers


@dataclass(frozen=True)
class Divergence:
    """The first step at which the target answers otherwise than the reference."""

    title: str
    step: int
    sequence: tuple[str, ...]
    target: Exchange
    reference: Exchange
    differences: tuple[tuple[str, Any, Any], ...]
    source: str
    decision: bool

    @property
    def verdict(self) -> str:
        """Who is right, as the source decides."""
        if self.decision:
            return (
                f"a legitimate difference: {self.source} is a decision a deployment may take "
                "otherwise (reported, not failed)"
            )
        return f"the target departs from the contract ({self.source})"


@dataclass
class DiffResult:
    """A whole differential run."""

    target_url: str
    reference_url: str
    profile: str
    seed: int
    divergences: list[Divergence]
    sequences: int
    steps: int
    seconds: float
    requests: int
    cleanup: str

    @property
    def passed(self) -> bool:
        """Nothing differs beyond Part B decisions."""
        return all(d.decision for d in self.divergences)


class _Diverged(Exception):  # noqa: N818  # read as "raise _Diverged(divergence)"
    """Ends a sequence at its first divergence (hypothesis then shrinks the sequence)."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.title)
        self.divergence = divergence


@dataclass
class Side:
    """One server in the comparison, and what the current sequence knows of it."""

    label: str
    session: ConformanceSession
    correlator: Correlator = field(default_factory=Correlator)
    render: str = ""
    baseline: set[str] = field(default_factory=set)
    template: tuple[str, dict[str, Any]] | None = None
    not_ready: str | None = None
    """A render of the project that has not succeeded, where the run has one."""
    foreign: str | None = None
    """A render of another project, where the run has a second key."""
    engaged: dict[str, Any] = field(default_factory=dict)
    """The render's engagement when the sequence began (a deployment's render has history)."""

    def call(
        self,
        method: str,
        path: str,
        *,
        key: bool = True,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        """A request with the side's key (or none)."""
        chosen = self.session.target.key if key else None
        return self.session.client.request(method, path, key=chosen, json=json, headers=headers)


# ---- where the contract says a behaviour comes from ------------------------------------


@functools.cache
def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = craftkit_spec.load_resolved()["paths"]
    return paths


def _sources(operation_path: str, method: str, status: int) -> list[str]:
    operation = _paths().get(operation_path, {}).get(method.lower(), {})
    response = operation.get("responses", {}).get(str(status), {})
    sources = response.get("x-source") or operation.get("x-source") or []
    return [str(s) for s in sources]


def judge(
    operation_path: str, method: str, reference_status: int, target_status: int
) -> tuple[str, bool]:
    """The source of what the reference answered, and whether it is only a Part B decision.

    A decision shapes how a request is answered, not whether it succeeds: where one side
    refuses what the other does, the target departs from the contract whatever the answer's
    source.
    """
    sources = _sources(operation_path, method, reference_status)
    if (reference_status < 400) != (target_status < 400):
        operation = _paths().get(operation_path, {}).get(method.lower(), {})
        facts = [str(s) for s in operation.get("x-source", []) if not str(s).startswith("notes B.")]
        return ", ".join(facts) or "the operation's declared behaviour", False
    if not sources:
        return "the spec's declared behaviour", False
    decision = all(s.startswith("notes B.") for s in sources)
    return ", ".join(sources), decision


# ---- comparing one step -----------------------------------------------------------------


_RENDER_STATUSES: tuple[str, ...] = craftkit_spec.enum("RenderStatus")


def _statuses_named(exchange: Exchange) -> list[str]:
    """The render statuses an error's message names."""
    body = exchange.json()
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = message if isinstance(message, str) else ""
    return [status for status in _RENDER_STATUSES if re.search(rf"\b{status}\b", text)]


def _error_code(exchange: Exchange) -> str | None:
    body = exchange.json()
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None


def documented_headers(operation_path: str, method: str, status: int) -> tuple[str, ...]:
    """The headers the spec documents for an answer (their presence is the contract)."""
    operation = _paths().get(operation_path, {}).get(method.lower(), {})
    return tuple(operation.get("responses", {}).get(str(status), {}).get("headers", {}))


def compare(
    target: Side,
    reference: Side,
    ours: Exchange,
    theirs: Exchange,
    documented: tuple[str, ...] = (),
) -> tuple[str, list[tuple[str, Any, Any]]] | None:
    """How the two answers of one step differ in normal form; ``None`` when they agree.

    ``documented`` names the headers the spec gives this answer: each must be present on
    both sides or on neither (values such as a length or a wait are each side's own).
    """
    if ours.status != theirs.status:
        return "the status differs", [("status", ours.status, theirs.status)]
    headers = [
        (f"header {name}", name.lower() in ours.response_headers, present)
        for name in documented
        if (present := name.lower() in theirs.response_headers)
        != (name.lower() in ours.response_headers)
    ]
    if headers:
        return "a documented header differs", headers
    ours_type = ours.response_headers.get("content-type", "").split(";")[0]
    theirs_type = theirs.response_headers.get("content-type", "").split(";")[0]
    if ours_type != theirs_type:
        return "the content type differs", [("content-type", ours_type, theirs_type)]
    if ours_type == "application/pdf":
        found = [
            (what, check(ours), check(theirs))
            for what, check in _PDF_CHECKS.items()
            if check(ours) != check(theirs)
        ]
        return ("the PDF answer differs", found) if found else None
    if ours_type != "application/json":
        return None
    if ours.status >= 400:
        a, b = _error_code(ours), _error_code(theirs)
        if a != b:
            return "the error code differs", [("error.code", a, b)]
        if ours.status == 409:
            # The contract has a 409's message name the render's current status.
            named = (_statuses_named(ours), _statuses_named(theirs))
            if named[0] != named[1]:
                return "the message names another status", [("error.message", *named)]
        return None
    seen = (len(target.correlator.times), len(reference.correlator.times))
    found = differences(
        target.correlator.normal(ours.json()), reference.correlator.normal(theirs.json())
    )
    if found:
        return "the answer differs", found
    flipped = opposite_order(target.correlator, reference.correlator, min(seen))
    if flipped is not None:
        return "two timestamps are in opposite order", [
            (f"{flipped[0]} vs {flipped[1]}", "before", "after")
        ]
    return None


def _disposition(exchange: Exchange) -> str:
    return exchange.response_headers.get("content-disposition", "").split(";")[0].strip()


_PDF_CHECKS: dict[str, Callable[[Exchange], object]] = {
    "a whole PDF (%PDF- … %%EOF)": lambda e: (
        e.response_body.startswith(b"%PDF-") and e.response_body.rstrip().endswith(b"%%EOF")
    ),
    "Content-Disposition": _disposition,
    "Content-Length given": lambda e: "content-length" in e.response_headers,
}
"""What two PDF answers must share (their bytes are each implementation's own)."""


# ---- the run ----------------------------------------------------------------------------


@dataclass
class Lockstep:
    """Both sides, the steps of the current sequence, and every divergence found."""

    target: Side
    reference: Side
    divergences: list[Divergence] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    sequences: int = 0
    steps: int = 0

    def both(
        self,
        name: str,
        operation_path: str,
        method: str,
        act: Callable[[Side], Exchange],
    ) -> tuple[Exchange, Exchange]:
        """Run one step on both sides and compare; raise at the first difference."""
        self.log.append(f"{len(self.log) + 1}. {name}")
        self.steps += 1
        ours, theirs = act(self.target), act(self.reference)
        documented = documented_headers(operation_path, method, theirs.status)
        found = compare(self.target, self.reference, ours, theirs, documented)
        if found is not None:
            title, diffs = found
            source, is_decision = judge(operation_path, method, theirs.status, ours.status)
            raise _Diverged(
                Divergence(
                    f"{name}: {title}",
                    len(self.log),
                    tuple(self.log),
                    ours,
                    theirs,
                    tuple(diffs),
                    source,
                    is_decision,
                )
            )
        return ours, theirs

    def probe(
        self,
        name: str,
        operation_path: str,
        method: str,
        act: Callable[[Side], Exchange],
        decision: str,
        taken: Callable[[Exchange], bool],
    ) -> Divergence | None:
        """A Part B point: the run goes on whatever the target answers.

        A difference is the decision taken otherwise when the target's answer is what that
        other choice looks like (``taken``); any other difference departs from the contract
        like one in a sequence. A share either side made is remembered for the cleanup.
        """
        self.log = []
        answers: dict[str, Exchange] = {}

        def recorded(side: Side) -> Exchange:
            answers[side.label] = act(side)
            return answers[side.label]

        found: Divergence | None = None
        try:
            self.both(name, operation_path, method, recorded)
        except _Diverged as diverged:
            found = diverged.divergence
            if taken(found.target):
                found = replace(found, source=decision, decision=True)
            self.divergences.append(found)
        for side in (self.target, self.reference):
            answer = answers.get(side.label)
            made = answer.json() if answer is not None and answer.status == 201 else None
            if isinstance(made, dict) and isinstance(made.get("id"), str):
                side.session.target.remember_share(side.render, made["id"])
        return found


def _future(hours: int) -> str:
    instant = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def provision(run: Lockstep) -> None:
    """The renders besides each sequence's own, where the run can have them on both sides.

    One that has not succeeded, and one of another project.
    """
    own = run.target.session.target
    if own.is_mock or own.config.not_ready_render_id:
        for side in (run.target, run.reference):
            side.not_ready = side.session.target.not_ready_render()
    if own.other_key and (own.is_mock or "template" in own.capabilities):
        for side in (run.target, run.reference):
            side.foreign = side.session.target.other_render()
            side.correlator.preset(side.foreign, "foreign-render")


def probe_decisions(run: Lockstep) -> None:
    """The Part B points, each on its own before any sequence, so state stays in step."""
    for side in (run.target, run.reference):
        side.render = side.session.target.render()
    shares = "/v1/renders/{id}/shares"
    run.probe(
        "an unknown method on a share list (PATCH)",
        shares,
        "patch",
        lambda side: side.call("PATCH", f"/v1/renders/{side.render}/shares", json={}),
        "notes B.10",
        lambda answer: _answers(answer, 404, "not_found"),
    )
    run.probe(
        "a body that is not JSON, sent without a key",
        shares,
        "post",
        lambda side: side.session.client.request(
            "POST",
            f"/v1/renders/{side.render}/shares",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        ),
        "notes B.2",
        lambda answer: _answers(answer, 400, "invalid_json"),
    )
    if run.target.session.config.read_only:
        return  # the other points are probed by creating a share or sending an email
    offset = (datetime.now(UTC) + timedelta(days=1)).astimezone(timezone(timedelta(hours=2)))
    run.probe(
        "a share whose expiresAt has a UTC offset",
        shares,
        "post",
        lambda side: side.call(
            "POST",
            f"/v1/renders/{side.render}/shares",
            json={"expiresAt": offset.strftime("%Y-%m-%dT%H:%M:%S+02:00")},
        ),
        "notes B.8",
        lambda answer: _answers(answer, 400, "invalid_request"),
    )
    email_off = run.probe(
        "an email to Resend's test address",
        "/v1/renders/{id}/email",
        "post",
        lambda side: side.call(
            "POST", f"/v1/renders/{side.render}/email", json={"to": RESEND_TEST_RECIPIENT}
        ),
        "notes B.11",
        lambda answer: _answers(answer, 503, "email_not_configured"),
    )
    if email_off is not None and email_off.target.status == 503:
        # The target has no email: the reference goes without too, so sequences stay in step.
        run.reference.session.target.set_faults(emailTransport="none")
    run.probe(
        "a body of more than 1 MiB",
        shares,
        "post",
        lambda side: side.call(
            "POST",
            f"/v1/renders/{side.render}/shares",
            json={"channel": "link", "padding": "x" * (1024 * 1024 + 1)},
        ),
        "notes B.6",
        lambda answer: answer.status in (201, 400),  # a larger limit: read, then judged
    )
    run.probe(
        "HEAD on a new link, then the link's click count",
        "/share/{token}",
        "head",
        _head_then_count,
        "notes B.12",
        _counted_once,
    )


def _answers(answer: Exchange, status: int, code: str) -> bool:
    """Whether an answer is the error ``status``/``code`` in the envelope."""
    return answer.status == status and _error_code(answer) == code


def _counted_once(answer: Exchange) -> bool:
    """Whether the probed link's row shows the HEAD counted as a view."""
    body = answer.json()
    rows = body.get("shares") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        return False
    return bool(rows[0].get("clickCount") == 1)


def _head_then_count(side: Side) -> Exchange:
    """Create a link (remembered for cleanup), HEAD it, and read its row in the list."""
    made = side.call("POST", f"/v1/renders/{side.render}/shares", json={})
    body = made.json()
    if made.status != 201 or not isinstance(body, dict) or "id" not in body:
        return made
    side.session.target.remember_share(side.render, body["id"])
    if "shareUrl" not in body and not side.session.config.share_base_url:
        return made  # nothing to open: the answers differ already
    side.session.client.request("HEAD", side.session.context.share_url(body))
    listed = side.call("GET", f"/v1/renders/{side.render}/shares")
    try:
        rows = [row for row in listed.json()["shares"] if row["id"] == body["id"]]
    except (KeyError, TypeError):
        return listed  # a malformed list is compared as it came
    return replace(listed, response_body=orjson.dumps({"shares": rows}))


class LockstepBase(RuleBasedStateMachine):
    """What a lockstep machine offers besides its rules: the core steps, run once."""

    def core(self) -> None:
        """The core steps (see ``build_machine``)."""
        raise NotImplementedError


def build_machine(run: Lockstep, config: RunConfig) -> type[LockstepBase]:
    """The lockstep state machine of this run."""
    target, reference = run.target, run.reference
    can_render = "template" in target.session.target.capabilities
    writes = not config.read_only
    events = writes and target.session.target.is_mock
    both_mocks = target.session.target.is_mock
    email_on = not any(d.source == "notes B.11" for d in run.divergences)

    class LockstepMachine(LockstepBase):
        shares = Bundle("shares")

        def __init__(self) -> None:
            super().__init__()
            begin_sequence(run)

        def _remember(self, ours: Exchange, theirs: Exchange) -> Made | None:
            """Both sides' share (id and link), when both made one; revoked at the end."""
            if ours.status != 201:
                return None
            made: Made = {}
            for side, exchange in ((target, ours), (reference, theirs)):
                body = exchange.json()
                side.session.target.remember_share(side.render, body["id"])
                made[side.label] = (body["id"], side.session.context.share_url(body))
            return made

        @staticmethod
        def _name(made: Made) -> str:
            return target.correlator.names.get(made[target.label][0], "a share")

        @precondition(lambda self: writes)
        @step(
            target=shares,
            channel=st.sampled_from(["link", "email"]),
            message=st.none() | st.text(st.characters(codec="utf-8"), max_size=30),
            expiry=st.sampled_from([None, -24, 1]),
        )
        def create(self, channel: str, message: str | None, expiry: int | None) -> Made | None:
            return self._create(channel, message, expiry)

        def _create(self, channel: str, message: str | None, expiry: int | None) -> Made | None:
            body: dict[str, Any] = {"channel": channel}
            if channel == "email":
                body["recipientEmail"] = RESEND_TEST_RECIPIENT
            if message is not None:
                body["message"] = message
            if expiry is not None:
                body["expiresAt"] = _future(expiry)
                for side in (target, reference):
                    side.correlator.sent_instant(body["expiresAt"])
            ours, theirs = run.both(
                f"create(channel={channel!r}, message={message!r}, expiresIn={expiry!r}h)",
                "/v1/renders/{id}/shares",
                "post",
                lambda side: side.call("POST", f"/v1/renders/{side.render}/shares", json=body),
            )
            made = self._remember(ours, theirs)
            if made is not None:
                self._open(made, download=False)  # a new link opens (or 404s, once expired)
            return made

        @precondition(lambda self: email_on and writes)
        @step(target=shares, message=st.none() | st.just("Here is your copy."))
        def email(self, message: str | None) -> Made | None:
            return self._email(message)

        def _email(self, message: str | None) -> Made | None:
            body: dict[str, Any] = {"to": RESEND_TEST_RECIPIENT}
            if message is not None:
                body["message"] = message
            ours, theirs = run.both(
                f"email(message={message!r})",
                "/v1/renders/{id}/email",
                "post",
                lambda side: side.call("POST", f"/v1/renders/{side.render}/email", json=body),
            )
            return self._remember(ours, theirs)

        @step(made=shares)
        def revoke(self, made: Made | None) -> None:
            if made is None:
                return
            run.both(
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

            def both_at_once(side: Side) -> Exchange:
                path = f"/v1/renders/{side.render}/shares/{made[side.label][0]}"
                with ThreadPoolExecutor(2) as pool:
                    answers = list(pool.map(lambda _: side.call("DELETE", path), range(2)))
                won = [answer for answer in answers if answer.status == 200]
                if len(won) > 1:  # shown as such: a reference never has two winners
                    return replace(won[1], response_body=orjson.dumps({"winners": len(won)}))
                return won[0] if won else answers[0]

            run.both(
                f"revoke({self._name(made)}) twice at once",
                "/v1/renders/{id}/shares/{shareId}",
                "delete",
                both_at_once,
            )

        @step(made=shares, download=st.booleans())
        def open_link(self, made: Made | None, download: bool) -> None:
            if made is not None:
                self._open(made, download)

        def _open(self, made: Made, download: bool) -> None:
            suffix = "/download" if download else ""
            run.both(
                f"open_link({self._name(made)}, download={download})",
                "/share/{token}" + suffix,
                "get",
                lambda side: side.session.client.request("GET", made[side.label][1] + suffix),
            )

        def core(self) -> None:
            """The core of the API, once per run, before the drawn sequences.

            The drawn sequences then stay short, and quick to shrink. The lists are compared
            after each step. The errors on purpose, reads of the render and its PDF, a link,
            an expired link and a longest message; the link opened twice and downloaded,
            events and the engagement, the foreign and not-ready renders tried, two revokes
            at once and a third; an email, and on a mock the outboxes and a refused send.
            """
            read_steps(run)
            compare_lists(run)
            if not writes:
                return
            kept = self._create("link", None, None)
            compare_lists(run)
            self._create("link", None, -24)
            compare_lists(run)
            self._create("link", "m" * _MESSAGE_MAX, None)
            compare_lists(run)
            if kept is not None:
                self._open(kept, download=False)  # a second view within 5 minutes: no count
                self._open(kept, download=True)
                compare_lists(run)
                if events:
                    self.record_event()
                self.engagement()
                if target.not_ready is not None:
                    self._through_other_render(kept)
                self.revoke_concurrently(kept)
                compare_lists(run)
                self.revoke(kept)  # once more: refused alike
                compare_lists(run)
            if target.not_ready is not None:
                self._share_not_ready()
                run.both(
                    "download_render() of a render that has not succeeded",
                    "/v1/renders/{id}/download",
                    "get",
                    lambda side: side.call("GET", f"/v1/renders/{side.not_ready}/download"),
                )
            sent = self._email(None) if email_on else None
            compare_lists(run)
            if sent is not None and both_mocks:
                self._outboxes()
                self._email_failing()
                compare_lists(run)
            if both_mocks:
                self._rate_limited()

        def _outboxes(self) -> None:
            """The mail each side kept (both are mocks): same mail, same words, same link."""

            def outbox(side: Side) -> Exchange:
                project = side.session.target.sandboxes[side.session.target.key or ""]
                return side.session.client.request(
                    "GET", f"/_mock/projects/{project}/emails", headers=control_headers()
                )

            run.both("the outboxes", "/_mock/projects/{projectId}/emails", "get", outbox)

        def _rate_limited(self) -> None:
            """One request a minute (both are mocks): the second is a 429, alike."""
            for side in (target, reference):
                side.session.target.set_faults(rateLimitPerMinute=1)
            try:
                for attempt in ("first", "second"):
                    run.both(
                        f"get_render() with one request a minute allowed, {attempt}",
                        "/v1/renders/{id}",
                        "get",
                        lambda side: side.call("GET", f"/v1/renders/{side.render}"),
                    )
            finally:
                for side in (target, reference):
                    side.session.target.set_faults(rateLimitPerMinute=None)

        def _email_failing(self) -> None:
            """An email the provider refuses (both are mocks): 502 alike, and the share stays."""
            for side in (target, reference):
                side.session.target.set_faults(emailSendFails=True)
            try:
                self._email("refused")
            finally:
                for side in (target, reference):
                    side.session.target.set_faults(emailSendFails=False)

        # Whether an event counts depends on the same address's events of the last five
        # minutes: a deployment's render has a history the reference cannot know.
        @precondition(lambda self: events)
        @step(kind=st.sampled_from(["viewed", "downloaded", "printed"]))
        def record_event(self, kind: str = "printed") -> None:
            run.both(
                f"record_event({kind!r})",
                "/v1/renders/{id}/events",
                "post",
                lambda side: side.call(
                    "POST", f"/v1/renders/{side.render}/events", json={"eventType": kind}
                ),
            )

        @step()
        def engagement(self) -> None:
            run.both(
                "engagement()",
                "/v1/renders/{id}/engagement",
                "get",
                lambda side: _since(
                    side.call("GET", f"/v1/renders/{side.render}/engagement"), side.engaged
                ),
            )

        def _through_other_render(self, made: Made) -> None:
            run.both(
                f"revoke({self._name(made)}) through another render of the project",
                "/v1/renders/{id}/shares/{shareId}",
                "delete",
                lambda side: side.call(
                    "DELETE", f"/v1/renders/{side.not_ready}/shares/{made[side.label][0]}"
                ),
            )

        def _share_not_ready(self) -> None:
            answers = run.both(
                "create() on a render that has not succeeded",
                "/v1/renders/{id}/shares",
                "post",
                lambda side: side.call("POST", f"/v1/renders/{side.not_ready}/shares", json={}),
            )
            for side, answer in zip((target, reference), answers, strict=True):
                if answer.status == 201:  # both wrong alike: still cleaned up
                    side.session.target.remember_share(side.not_ready or "", answer.json()["id"])

        # On a deployment each submission really renders: there, render_once covers it.
        @precondition(lambda self: can_render and writes and target.session.target.is_mock)
        @step(replay=st.booleans())
        def submit_render(self, replay: bool) -> None:
            submit_render(run, replay)

        @invariant()
        def lists_agree(self) -> None:
            compare_lists(run)

    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if config.profile.shrink:
        phases.append(Phase.shrink)
    LockstepMachine.TestCase.settings = settings(
        phases=phases,
        max_examples=config.profile.state_machine_examples,
        stateful_step_count=config.profile.state_machine_steps,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    return LockstepMachine


def begin_sequence(run: Lockstep) -> None:
    """A new sequence: fresh names, a render on each side, and the shares it has already."""
    run.log = []
    run.sequences += 1
    for side in (run.target, run.reference):
        side.correlator = Correlator()
        side.render = side.session.target.fresh_render()
        side.correlator.preset(side.render, "render")
        # Read leniently: a side that answers these wrongly differs in the first comparison.
        listed = side.call("GET", f"/v1/renders/{side.render}/shares").json()
        rows = listed.get("shares") if isinstance(listed, dict) else None
        side.baseline = {row["id"] for row in rows or [] if isinstance(row, dict) and "id" in row}
        engaged = side.call("GET", f"/v1/renders/{side.render}/engagement").json()
        side.engaged = engaged if isinstance(engaged, dict) else {}


def read_steps(run: Lockstep) -> None:
    """The steps that change nothing: each error on purpose, and a read of the render."""
    for kind in sorted(_ERRORS):
        operation_path, method, act = _ERRORS[kind]
        run.both(f"error_on_purpose({kind!r})", operation_path, method, act)
    if run.target.foreign is not None:
        run.both(
            "error_on_purpose('another project's render')",
            "/v1/renders/{id}",
            "get",
            lambda side: side.call("GET", f"/v1/renders/{side.foreign}"),
        )
    run.both(
        "get_render()",
        "/v1/renders/{id}",
        "get",
        lambda side: side.call("GET", f"/v1/renders/{side.render}"),
    )
    run.both(
        "download_render()",
        "/v1/renders/{id}/download",
        "get",
        lambda side: side.call("GET", f"/v1/renders/{side.render}/download"),
    )


def compare_lists(run: Lockstep) -> None:
    """Both sides' share lists of the sequence's render (a check after each step)."""

    def listing(side: Side) -> Exchange:
        exchange = side.call("GET", f"/v1/renders/{side.render}/shares")
        return _without(exchange, side.baseline)

    run.both("list_shares()", "/v1/renders/{id}/shares", "get", listing)
    run.log.pop()  # a check after a step, not a step of its own
    run.steps -= 1


Made = dict[str, tuple[str, str]]
"""A share both sides made: each side's share id and link, by the side's label."""

_MISSING = "00000000-0000-7000-8000-00000000d1ff"
_MESSAGE_MAX: int = craftkit_spec.fact("CreateShareRequest", "message", "maxLength")
_RENDER_OPERATIONS: tuple[tuple[str, str, str, Any], ...] = (
    ("GET", "/v1/renders/{id}", "", None),
    ("GET", "/v1/renders/{id}/download", "/download", None),
    ("GET", "/v1/renders/{id}/shares", "/shares", None),
    ("POST", "/v1/renders/{id}/shares", "/shares", {}),
    ("DELETE", "/v1/renders/{id}/shares/{shareId}", f"/shares/{_MISSING}", None),
    ("POST", "/v1/renders/{id}/email", "/email", {"to": RESEND_TEST_RECIPIENT}),
    ("POST", "/v1/renders/{id}/events", "/events", {"eventType": "printed"}),
    ("GET", "/v1/renders/{id}/engagement", "/engagement", None),
)
"""Every operation on a render: method, path template, suffix after the id, and a valid body."""


def _on_render(
    method: str, suffix: str, body: Any, *, render: str | None = None, key: bool = True
) -> Callable[[Side], Exchange]:
    return lambda side: side.call(
        method, f"/v1/renders/{render or side.render}{suffix}", key=key, json=body
    )


_ERRORS: dict[str, tuple[str, str, Callable[[Side], Exchange]]] = {
    **{
        f"no key: {method} {path}": (
            path,
            method.lower(),
            _on_render(method, suffix, body, key=False),
        )
        for method, path, suffix, body in _RENDER_OPERATIONS
    },
    **{
        f"unknown render: {method} {path}": (
            path,
            method.lower(),
            _on_render(method, suffix, body, render=_MISSING),
        )
        for method, path, suffix, body in _RENDER_OPERATIONS
    },
    "no key: POST /v1/templates/{slug}/render": (
        "/v1/templates/{slug}/render",
        "post",
        lambda side: side.call(
            "POST", "/v1/templates/invoice/render", key=False, json={"data": {}}
        ),
    ),
    "unknown template": (
        "/v1/templates/{slug}/render",
        "post",
        lambda side: side.call(
            "POST", "/v1/templates/no-such-template-d1ff/render", json={"data": {}}
        ),
    ),
    "message too long": (
        "/v1/renders/{id}/shares",
        "post",
        lambda side: side.call(
            "POST", f"/v1/renders/{side.render}/shares", json={"message": "m" * (_MESSAGE_MAX + 1)}
        ),
    ),
    "a body that is not JSON": (
        "/v1/renders/{id}/shares",
        "post",
        lambda side: side.session.client.request(
            "POST",
            f"/v1/renders/{side.render}/shares",
            key=side.session.target.key,
            content=b"channel=link",
            headers={"Content-Type": "text/plain"},
        ),
    ),
    "unknown key": (
        "/v1/renders/{id}",
        "get",
        lambda side: side.session.client.request(
            "GET", f"/v1/renders/{side.render}", key="ck_test_craftkitdiffnobodyholdsthis"
        ),
    ),
}
"""Errors on purpose: where each is declared, and the request that provokes it."""


def _since(exchange: Exchange, before: dict[str, Any]) -> Exchange:
    """An engagement answer less what the render had when the sequence began."""
    body = exchange.json()
    if exchange.status != 200 or not isinstance(body, dict) or not before:
        return exchange
    try:
        old = before["counts"]
        counts = {kind: n - old.get(kind, 0) for kind, n in body["counts"].items()}
        known = {event["id"] for event in before["recent"]}
        since = {
            **body,
            "counts": counts,
            "linkOpens": body["linkOpens"] - before["linkOpens"],
            "total": body["total"] - before["total"],
            "recent": [event for event in body["recent"] if event["id"] not in known],
        }
    except (KeyError, TypeError, AttributeError):
        return exchange  # a malformed answer is compared as it came
    return replace(exchange, response_body=orjson.dumps(since))


def submit_render(run: Lockstep, replay: bool) -> None:
    """A render submitted, and (``replay``) again with the same key."""
    key = f"diff-{uuid.uuid4()}"

    def submit(side: Side) -> Exchange:
        assert side.template is not None
        slug, data = side.template
        return side.call(
            "POST",
            f"/v1/templates/{slug}/render",
            json={"data": data},
            headers={"Idempotency-Key": key},
        )

    run.both("submit_render()", "/v1/templates/{slug}/render", "post", submit)
    if replay:
        run.both(
            "submit_render() again, same key",
            "/v1/templates/{slug}/render",
            "post",
            lambda side: _progress_hidden(submit(side)),
        )


def render_once(run: Lockstep) -> None:
    """A submission and its replay, once per run, before the sequences.

    A deployment renders for real, so there the sequences leave submissions out.
    """
    if run.target.template is None or run.target.session.config.read_only:
        return
    run.log = []
    try:
        submit_render(run, replay=True)
    except _Diverged as diverged:
        run.divergences.append(diverged.divergence)


def _progress_hidden(exchange: Exchange) -> Exchange:
    """A replayed submission without the render's progress (timing on either side).

    Its code, id, poll URL and creation time are compared.
    """
    body = exchange.json()
    if not isinstance(body, dict):
        return exchange
    hidden = {k: v for k, v in body.items() if k not in ("status", "downloadUrl", "errorMessage")}
    return replace(exchange, response_body=orjson.dumps(hidden))


def _without(exchange: Exchange, baseline: set[str]) -> Exchange:
    """A share list without the rows that were there before the sequence began."""
    body = exchange.json()
    if exchange.status != 200 or not isinstance(body, dict) or "shares" not in body:
        return exchange
    rows = [row for row in body["shares"] if row.get("id") not in baseline]
    return replace(exchange, response_body=orjson.dumps({**body, "shares": rows}))


def run_lockstep(target_config: RunConfig, reference_config: RunConfig) -> DiffResult:
    """Compare the target with the reference: probes, then the profile's sequences."""
    started = time.perf_counter()
    with ConformanceSession(target_config) as ours, ConformanceSession(reference_config) as theirs:
        run = Lockstep(Side("target", ours), Side("reference", theirs))
        if target_config.template_slug or ours.target.is_mock:
            slug = target_config.template_slug or "invoice"
            data = target_config.template_data or {}
            run.target.template = (slug, data)
            run.reference.template = (slug, data) if ours.target.is_mock else ("invoice", {})
        provision(run)
        probe_decisions(run)
        render_once(run)
        machine = build_machine(run, target_config)
        try:
            machine().core()  # a sequence of its own: the core steps, once
        except _Diverged as diverged:
            run.divergences.append(diverged.divergence)
        # Then the drawn sequences, unless the core departed already (one report of a
        # departure per run) or nothing may be created.
        if not target_config.read_only and all(d.decision for d in run.divergences):
            seeded = hypothesis_seed(target_config.seed)(type("SeededLockstep", (machine,), {}))
            notes = io.StringIO()
            try:
                with with_reporter(lambda message: print(message, file=notes)):
                    run_state_machine_as_test(seeded, settings=machine.TestCase.settings)
            except _Diverged as diverged:
                run.divergences.append(diverged.divergence)
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
    )
