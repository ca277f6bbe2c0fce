"""The stateful model: random sequences of share operations, checked against a plain model.

A hypothesis ``RuleBasedStateMachine`` creates, emails, revokes and opens shares on renders
of two projects, tries to cross projects, and (on the mock) moves the clock; after every
step it lists each render and compares the target with the model: newest first, revoked
rows kept, one-shot revoke, not_ready never involved, links that 404 once revoked or expired,
exact clickCount with 5-minute de-duplication, echoed and normalised fields, and shares that
never cross renders or projects. On failure hypothesis shrinks to the shortest sequence, and
the report shows exactly that sequence's requests.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    run_state_machine_as_test,
)
from hypothesis.stateful import rule as step

import craftkit_spec
from conformance.config import UTF8_CHARACTERS
from conformance.context import Context
from conformance.failures import RuleFailure, expect, expect_error, expect_status
from conformance.rules import rule
from conformance.target import RESEND_TEST_RECIPIENT

DEDUP = timedelta(seconds=craftkit_spec.dedup_window_seconds())
REVOKE_REASON = craftkit_spec.revoke_reason()


def _iso(instant: datetime) -> str:
    return (
        instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{instant.microsecond // 1000:03d}Z"
    )


@dataclass
class ModelShare:
    """What the target must show for one share."""

    id: str
    render: str
    key: str
    channel: str
    recipient_email: str | None
    message: str | None
    expires_at: datetime | None
    token: str
    url: str
    revoked: bool = False
    clicks: int = 0
    last_counted: datetime | None = None


def _is_error(exchange: Any, status: int, code: str) -> bool:
    """Whether an exchange is the error ``status``/``code`` in the envelope."""
    if exchange.status != status:
        return False
    try:
        return bool(exchange.json()["error"]["code"] == code)
    except (ValueError, KeyError, TypeError):
        return False


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


class SharesMachine(RuleBasedStateMachine):
    """Share operations on the run's renders, compared with a plain model after each step.

    ``ctx`` is the run's context, given to a subclass made for each run (``bound_to``); the
    set-up happens in ``begin``, the machine's one ``@initialize`` step.
    """

    ctx: ClassVar[Context]
    shares = Bundle("shares")

    @classmethod
    def bound_to(cls, ctx: Context) -> type[SharesMachine]:
        """The machine for one run: its context, its profile's settings, the run's seed."""
        bound: type[SharesMachine] = type("BoundSharesMachine", (cls,), {"ctx": ctx})
        bound.TestCase.settings = ctx.profile.machine_settings()
        return hypothesis_seed(ctx.seed)(bound)

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[str] = []
        self.ctx.sequences.append(self.steps)
        self.ctx.client.transcript.clear()
        self.target = self.ctx.target
        self.mock = self.target.is_mock
        self.can_cross = "other_render" in self.target.capabilities
        self.model: dict[str, ModelShare] = {}
        self.renders: list[tuple[str, str]] = []
        self.baseline: dict[str, set[str]] = {}
        self.email_off = False
        # How a deployment decides notes B.3 and B.4, learnt when first seen; the mock takes
        # each as its decision record says.
        self.past_expiry_taken: bool | None = True if self.mock else None
        self.expired_listed: bool | None = True if self.mock else None
        self.expired_revocable: bool | None = True if self.mock else None
        self.now = datetime.now(UTC)

    @initialize()
    def begin(self) -> None:
        """The run's renders (one per project) and what their lists held before."""
        target, ctx = self.target, self.ctx
        self.now = target.freeze_clock(True) if self.mock else datetime.now(UTC)
        own = target.fresh_render()
        self.renders = [(own, target.key or "")]
        if self.can_cross:
            other = target.mock_render(key=target.other_key) if self.mock else target.other_render()
            self.renders.append((other, target.other_key or ""))
        self.baseline = {
            render: {r["id"] for r in ctx.list_shares(render, key)} for render, key in self.renders
        }

    def teardown(self) -> None:
        """The mock's clock runs again."""
        if self.mock:
            self.target.freeze_clock(False)

    def _adopt(self, render: str, key: str) -> list[ModelShare]:
        """Take into the model the shares of ``render`` it does not know yet."""
        known = set(self.model) | self.baseline[render]
        rows = [row for row in self.ctx.list_shares(render, key) if row["id"] not in known]
        return [
            self._remember(
                ModelShare(
                    row["id"],
                    render,
                    key,
                    row["channel"],
                    row["recipientEmail"],
                    row["message"],
                    _instant(row["expiresAt"]),
                    row["shareToken"],
                    self.ctx.share_url(row),
                    revoked=row["revokedAt"] is not None,
                )
            )
            for row in rows
        ]

    def _expired(self, share: ModelShare) -> bool:
        return share.expires_at is not None and share.expires_at <= self.now

    def _decided(self, attribute: str, taken: bool, what: str) -> None:
        """A Part B decision seen taken one way: the model follows it from now on."""
        if getattr(self, attribute) is None:
            setattr(self, attribute, taken)
            if not taken:
                self.ctx.note(f"{what}: the model follows it")

    def _log(self, name: str, **arguments: Any) -> None:
        """Note a step as it runs: a failure shows the sequence that led to it."""
        given = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
        self.steps.append(f"{len(self.steps) + 1}. {name}({given})")

    def _remember(self, share: ModelShare) -> ModelShare:
        self.model[share.id] = share
        self.target.remember_share(share.render, share.id, share.key)
        return share

    @step(
        target=shares,
        which=st.integers(0, 1),
        channel=st.sampled_from(["link", "email"]),
        message=st.none() | st.text(UTF8_CHARACTERS, max_size=40),
        expiry=st.sampled_from([None, "past", "future"]),
    )
    def create(
        self, which: int, channel: str, message: str | None, expiry: str | None
    ) -> ModelShare | MultipleResults[ModelShare]:
        """A share created on one of the renders, its echo checked."""
        self._log("create", which=which, channel=channel, message=message, expiry=expiry)
        render, key = self.renders[which % len(self.renders)]
        body: dict[str, Any] = {"channel": channel}
        if channel == "email":
            body["recipientEmail"] = RESEND_TEST_RECIPIENT
        if message is not None:
            body["message"] = message
        expires = {
            None: None,
            "past": self.now - timedelta(days=1),
            "future": self.now + timedelta(hours=1),
        }[expiry]
        if expires is not None:
            expires = expires.replace(microsecond=0)
            body["expiresAt"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        exchange = self.ctx.call("POST", f"/v1/renders/{render}/shares", key=key, json=body)
        if expiry == "past" and self.past_expiry_taken is not True:
            if _is_error(exchange, 400, "invalid_request"):
                self._decided("past_expiry_taken", False, "a past expiresAt is refused (notes B.3)")
                return multiple()
            self._decided("past_expiry_taken", True, "")
        created = expect_status(exchange, 201, "creating a share")
        expected_expiry = _iso(expires) if expires else None
        expect(
            created["expiresAt"] == expected_expiry,
            f"expiresAt came back {created['expiresAt']!r}",
            repr(expected_expiry),
            exchange,
        )
        expect(created["message"] == message, "message not echoed exactly", repr(message), exchange)
        return self._remember(
            ModelShare(
                created["id"],
                render,
                key,
                channel,
                body.get("recipientEmail"),
                message,
                expires,
                created["shareToken"],
                self.ctx.share_url(created),
            )
        )

    @precondition(lambda self: not self.email_off)
    @step(target=shares, message=st.none() | st.just("Here is your copy."))
    def email(self, message: str | None) -> Any:
        """The first render emailed (a deployment without email stops these steps)."""
        self._log("email", message=message)
        render, key = self.renders[0]
        body: dict[str, Any] = {"to": RESEND_TEST_RECIPIENT, "recipientName": "Conformance"}
        if message is not None:
            body["message"] = message
        exchange = self.ctx.call("POST", f"/v1/renders/{render}/email", key=key, json=body)
        if not self.mock and _is_error(exchange, 503, "email_not_configured"):
            # A deployment without email is legitimate (notes B.11): email steps stop, and
            # whatever the deployment kept of the attempt joins the model.
            self.email_off = True
            self.ctx.note("email is not configured on the target: email steps skipped (notes B.11)")
            return multiple(*self._adopt(render, key))
        sent = expect_status(exchange, 201, "emailing a render")
        return self._remember(
            ModelShare(
                sent["id"],
                render,
                key,
                "email",
                RESEND_TEST_RECIPIENT,
                message,
                None,
                sent["shareToken"],
                self.ctx.share_url(sent),
            )
        )

    @step(share=shares)
    def revoke(self, share: ModelShare) -> None:
        """A revoke: 200 the first time, 404 for a share revoked already."""
        self._log("revoke", share=share.id)
        exchange = self.ctx.revoke(share.render, share.id, key=share.key)
        if share.revoked:
            expect_error(exchange, 404, "not_found", "revoking a share a second time")
        elif (
            self._expired(share)
            and self.expired_revocable is not True
            and _is_error(exchange, 404, "not_found")
        ):
            what = "an expired share cannot be revoked (notes B.4)"
            self._decided("expired_revocable", False, what)
        else:
            expect_status(exchange, 200, "revoking an active share")
            share.revoked = True
            if self._expired(share):
                self._decided("expired_revocable", True, "")

    @step(share=consumes(shares))
    def revoke_and_forget(self, share: ModelShare) -> None:
        """A revoke of a share the sequence then forgets."""
        self._log("revoke_and_forget", share=share.id)
        self.revoke(share)

    @precondition(lambda self: self.can_cross)
    @step(share=shares)
    def revoke_across_projects(self, share: ModelShare) -> None:
        """A revoke through the other project: always 404."""
        self._log("revoke_across_projects", share=share.id)
        other_render, other_key = next((r, k) for r, k in self.renders if k != share.key)
        for render in (share.render, other_render):
            exchange = self.ctx.revoke(render, share.id, key=other_key)
            expect_error(exchange, 404, "not_found", "revoking a share through another project")

    @step(share=shares)
    def view(self, share: ModelShare) -> None:
        """A recipient opens the link: 200 and a click while active, else 404."""
        self._log("view", share=share.id)
        exchange = self.ctx.open_link(share.url)
        active = not share.revoked and (share.expires_at is None or self.now < share.expires_at)
        if not active:
            expect(
                exchange.status == 404,
                f"an inactive link answers {exchange.status}",
                "HTTP 404",
                exchange,
            )
            return
        expect_status(exchange, 200, "opening an active link")
        if share.last_counted is None or self.now - share.last_counted >= DEDUP:
            share.clicks += 1
            share.last_counted = self.now

    @precondition(lambda self: self.mock)
    @step(seconds=st.sampled_from([61, int(DEDUP.total_seconds()) + 1, 3601]))
    def advance_clock(self, seconds: int) -> None:
        """The mock's clock moved on (expiry, the de-duplication window)."""
        self._log("advance_clock", seconds=seconds)
        self.target.advance_clock(seconds)
        self.now += timedelta(seconds=seconds)

    @invariant()
    def lists_match_the_model(self) -> None:
        """After every step, every list is what the model says."""
        for render, key in self.renders:
            exchange = self.ctx.call("GET", f"/v1/renders/{render}/shares", key=key)
            rows = expect_status(exchange, 200, "listing shares")["shares"]
            ours = [row for row in rows if row["id"] not in self.baseline[render]]
            expected = {s.id for s in self.model.values() if s.render == render}
            expired = {s.id for s in self.model.values() if s.render == render and self._expired(s)}
            got = {row["id"] for row in ours}
            if expired and self.expired_listed is None:
                if got == expected - expired:
                    what = "expired shares are left out of the lists (notes B.4)"
                    self._decided("expired_listed", False, what)
                elif got == expected:
                    self._decided("expired_listed", True, "")
            if self.expired_listed is False:
                expected -= expired
            expect(
                got == expected,
                f"the list of render {render} holds {sorted(got)}",
                f"exactly {sorted(expected)} (shares never cross renders)",
                exchange,
            )
            times = [row["createdAt"] for row in rows]
            expect(
                times == sorted(times, reverse=True),
                "the list is not newest first",
                "non-increasing createdAt",
                exchange,
            )
            for row in ours:
                share = self.model[row["id"]]
                _compare(row, share, exchange)


def _compare(row: dict[str, Any], share: ModelShare, exchange: Any) -> None:
    expected = {
        "channel": share.channel,
        "recipientEmail": share.recipient_email,
        "message": share.message,
        "expiresAt": _iso(share.expires_at) if share.expires_at else None,
        "shareToken": share.token,
        "clickCount": share.clicks,
        "revokedReason": REVOKE_REASON if share.revoked else None,
    }
    for field, value in expected.items():
        expect(
            row[field] == value,
            f"share {share.id}: {field} is {row[field]!r}",
            repr(value),
            exchange,
        )
    expect(
        (row["revokedAt"] is not None) == share.revoked,
        f"share {share.id}: revokedAt is {row['revokedAt']!r}",
        "set exactly when revoked",
        exchange,
    )


@rule(
    "STATE-MODEL",
    "Any sequence of creates, emails, revokes, views and clock moves leaves every share list equal to a plain model of it.",
    source="seed 000, seed 001; notes A; notes B.1, B.3, B.4",
    needs=("key", "render", "write"),
)
def state_model(ctx: Context) -> None:
    ctx.sequences.clear()
    machine = SharesMachine.bound_to(ctx)
    notes = io.StringIO()
    try:
        with with_reporter(lambda message: print(message, file=notes)):
            run_state_machine_as_test(machine, settings=machine.TestCase.settings)
    except RuleFailure as failure:
        found = (
            "Shortest failing sequence found"
            if ctx.profile.shrink
            else "Failing sequence (not shrunk in this profile)"
        )
        # The last machine hypothesis ran is the sequence it reports (shrunk, or as found).
        steps = ctx.sequences[-1] if ctx.sequences else []
        sequence = "\n".join(steps) or "(the model's first check failed, before any step)"
        extra = notes.getvalue().strip()
        failure.evidence = f"{found}:\n{sequence}" + (f"\n\n{extra}" if extra else "")
        raise
    finally:
        ctx.sequences.clear()
