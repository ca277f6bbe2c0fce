"""The webhook deliveries both sides sent for the core's steps, compared once they settle.

Deliveries arrive in their own time, so they are compared as a whole after the core, not
step by step: each side's ``document.*`` deliveries about the sequence's render, one per
delivery id (a retry is the same delivery), reduced to what must agree (the event, its
``eventType`` and ``actorKind``, the share in the correlator's names, the partner's
``metadata``) and counted. Ids, instants, addresses and the templateId are each side's own.
A count that differs is a departure, traced to the step that owed the delivery, unless a
step about the same share was answered differently already: that difference is reported at
its own step (as a decision or a departure), and what it did to the deliveries follows from
it. A share only one side has is the same case. Each of the target's deliveries is also
checked against the contract (signature, headers, body), as ``run`` checks them.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass

from conformance.client import Exchange
from conformance.differential.lockstep import Divergence, Lockstep, Side
from conformance.webhooks import DeliveryContract, Received

MOCK_WAIT_SECONDS = 2.0
"""The longest wait for a mock's deliveries: it sends them on loopback as the action ends."""
QUIET_SECONDS = 0.3
"""How long both sides must agree with nothing new arriving before the comparison ends."""
SOURCE = "notes A (outgoing webhooks)"
_TOKEN = re.compile(r"cks_[A-Za-z0-9_-]+")
UNSEEN = "(a share no answer showed)"
"""The name of a ``shareId`` that no answer of the side's own showed."""


@dataclass(frozen=True)
class Owed:
    """What one delivery says, in the form both sides must agree on."""

    event: str
    share: str | None
    """The share's name in the correlator (``id#3``), ``None`` when the event names none."""
    event_type: str
    actor: str
    metadata: str

    def sort_key(self) -> tuple[str, ...]:
        """An order for reports (``share`` may be ``None``, which does not compare)."""
        return (self.event, self.share or "", self.event_type, self.actor, self.metadata)

    def __str__(self) -> str:
        about = f" about {self.share}" if self.share else ""
        return f"{self.event} deliveries{about}, actorKind {self.actor}"


def as_exchange(delivery: Received, url: str) -> Exchange:
    """A delivery as the request it was: the server's POST to the listener, and its answer."""
    return Exchange("POST", url, dict(delivery.headers), delivery.raw, delivery.answered, {}, b"")


def _first_attempts(side: Side) -> list[Received]:
    """The side's deliveries about its render, the first arrival of each delivery id."""
    listener = side.session.target.webhooks
    seen: dict[str, Received] = {}
    for delivery in listener.received if listener is not None else []:
        if delivery.body.get("renderId") != side.render:
            continue
        if not str(delivery.event).startswith("document."):
            continue
        seen.setdefault(
            delivery.headers.get("x-craftkit-delivery-id", repr(delivery.raw)), delivery
        )
    return list(seen.values())


def _owed(side: Side, delivery: Received) -> Owed:
    body = delivery.body
    share = body.get("shareId")
    named = side.correlator.names.get(share.lower(), UNSEEN) if isinstance(share, str) else None
    return Owed(
        str(delivery.event),
        named,
        str(body.get("eventType")),
        str(body.get("actorKind")),
        json.dumps(body.get("metadata"), sort_keys=True),
    )


def _counts(side: Side) -> Counter[Owed]:
    return Counter(_owed(side, d) for d in _first_attempts(side))


def _value_of(side: Side, name: str) -> str | None:
    return next((value for value, named in side.correlator.names.items() if named == name), None)


def _mentions(exchange: Exchange, needles: set[str]) -> bool:
    """Whether the request or its answer carries one of the values."""
    text = b" ".join((exchange.url.encode(), exchange.request_body, exchange.response_body))
    return any(needle.encode() in text for needle in needles)


@dataclass(frozen=True)
class _Steps:
    """The core's steps that concern one owed delivery, found on both sides."""

    about: list[tuple[str, Exchange, Exchange]]

    @property
    def answered_alike(self) -> bool:
        return all(ours.status == theirs.status for _, ours, theirs in self.about)

    def cause(self, owed: Owed) -> tuple[str, Exchange, Exchange] | None:
        """The step whose action owes the delivery: the create, revoke, link or event."""

        def owes(exchange: Exchange) -> bool:
            path = exchange.url.split("?")[0]
            kind = owed.event_type
            if kind in ("share_created", "email_sent"):
                return exchange.method == "POST" and exchange.status < 300
            if kind == "share_revoked":
                return exchange.method == "DELETE" and exchange.status < 300
            if kind in ("viewed", "downloaded"):
                return "/share/" in path and path.endswith("/download") == (kind == "downloaded")
            return path.endswith("/events")

        return next((step for step in self.about if owes(step[1]) or owes(step[2])), None)


def _steps_about(run: Lockstep, owed: Owed) -> _Steps | None:
    """The steps about the owed delivery's share (``None``: a share only one side has).

    A delivery naming no share is traced among all the steps.
    """
    if owed.share == UNSEEN:
        return None  # a share from before the sequence (a deployment's render is reused)
    if owed.share is None:
        return _Steps(list(run.history))
    needles: dict[str, set[str]] = {}
    for side in (run.target, run.reference):
        value = _value_of(side, owed.share)
        if value is None:
            return None
        needles[side.label] = {value}
    for _, ours, theirs in run.history:  # the share's tokens, from the answer that made it
        for label, exchange in ((run.target.label, ours), (run.reference.label, theirs)):
            if exchange.status == 201 and _mentions(exchange, needles[label]):
                needles[label] |= set(
                    _TOKEN.findall(exchange.response_body.decode("utf-8", "replace"))
                )
    about = [
        step
        for step in run.history
        if _mentions(step[1], needles[run.target.label])
        or _mentions(step[2], needles[run.reference.label])
    ]
    return _Steps(about)


def _settled(run: Lockstep, wait: float) -> tuple[Counter[Owed], Counter[Owed]]:
    """Both sides' counts once they agree and nothing new arrives, or at the deadline."""
    deadline = time.monotonic() + wait
    last: tuple[Counter[Owed], Counter[Owed]] | None = None
    agreed_since: float | None = None
    while True:
        now = (_counts(run.target), _counts(run.reference))
        if now != last:
            agreed_since = time.monotonic() if now[0] == now[1] else None
            last = now
        if agreed_since is not None and time.monotonic() - agreed_since >= QUIET_SECONDS:
            return now
        if time.monotonic() >= deadline:
            return now
        time.sleep(0.05)


def compare_deliveries(run: Lockstep, wait: float) -> None:
    """Compare the deliveries of the sequence just run; every departure goes in ``run``."""
    target_listener = run.target.session.target.webhooks
    reference_listener = run.reference.session.target.webhooks
    if target_listener is None or reference_listener is None:
        run.untested.append(
            "webhook deliveries: no listener for the target (give --webhook-listen and "
            "--webhook-secret, and subscribe the project to every event)"
        )
        return
    if any(not d.decision for d in run.divergences):
        return  # the core departed already: what it sent next follows from that departure
    if run.target.session.target.is_mock:
        wait = min(wait, MOCK_WAIT_SECONDS)
    ours, theirs = _settled(run, wait)
    step = len(run.log)
    sequence = (*run.log, f"(then the deliveries of steps 1-{step}, within {wait:g} s)")
    for owed in sorted(set(ours) | set(theirs), key=Owed.sort_key):
        if ours[owed] == theirs[owed]:
            continue
        steps = _steps_about(run, owed)
        if steps is None or not steps.answered_alike:
            continue  # what a step answered otherwise did; reported at that step
        cause = steps.cause(owed) or (run.history[-1] if run.history else None)
        if cause is None:
            continue
        name, target_step, reference_step = cause
        run.divergences.append(
            Divergence(
                f"webhooks after {name}: {ours[owed]} {owed} (the reference: {theirs[owed]})",
                step,
                sequence,
                target_step,
                reference_step,
                ((str(owed), ours[owed], theirs[owed]),),
                SOURCE,
                False,
            )
        )
    _check_each(run, target_listener.secret, target_listener.url)


def _check_each(run: Lockstep, secret: str, url: str) -> None:
    """The first of the target's deliveries that departs from the contract, if one does."""
    contract = DeliveryContract()
    reference = _first_attempts(run.reference)
    for delivery in _first_attempts(run.target):
        problems = contract.problems(delivery, secret)
        if not problems:
            continue
        alike = next((d for d in reference if d.event == delivery.event), None)
        shown = alike or (reference[0] if reference else delivery)
        listener = run.reference.session.target.webhooks
        reference_url = listener.url if listener is not None else url
        run.divergences.append(
            Divergence(
                f"webhooks: a {delivery.event} delivery departs from the contract",
                len(run.log),
                (*run.log, "(then the deliveries of those steps)"),
                as_exchange(delivery, url),
                as_exchange(shown, reference_url),
                tuple((problem, "departs", "as the contract says") for problem in problems),
                SOURCE,
                False,
            )
        )
        return
