"""What a rule works with: the client, the target, the profile, and the flows rules repeat."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.client import Exchange, RecordingClient
from conformance.config import Profile
from conformance.failures import RuleFailure, expect_status, is_error
from conformance.judge import judge_citation
from conformance.target import Target


class _Default:
    """The run's own key (as opposed to ``None``, no key at all)."""


OWN_KEY = _Default()


@dataclass
class Context:
    """Handed to every rule."""

    target: Target
    client: RecordingClient
    profile: Profile
    seed: int
    notes: list[str] = field(default_factory=list)
    """What a passing rule wants said in the report (steps a deployment's choices skipped)."""
    sequences: list[list[str]] = field(default_factory=list)
    """The state model's step lists, one per sequence hypothesis tried, the failing one last."""
    deviations: list[RuleFailure] = field(default_factory=list)
    """Checks the target answered as a decision of its own allows: reported, and the rule
    went on with its other checks."""

    def note(self, text: str) -> None:
        """Say something in the rule's result without failing it (said once)."""
        if text not in self.notes:
            self.notes.append(text)

    def deviate(self, title: str, expected: str, exchange: Exchange | None, source: str) -> None:
        """The target answered otherwise than ``source`` says, and the rule goes on.

        When ``source`` is a decision (or an assumption) and the target is a deployment, the
        difference is reported and the rule's other checks still run; when it is a fact, or
        the target is the mock (which takes every decision as its record says), it fails.
        """
        failure = RuleFailure(title, expected, exchange, source=source)
        if judge_citation(source).departs or self.target.is_mock:
            raise failure
        self.deviations.append(failure)

    def email_off_first(self, exchange: Exchange, what: str) -> bool:
        """Whether a deployment without email refused an email call before anything else.

        Allowed (notes B.14, with B.2 and B.11): it is reported, and the caller skips the
        check it made of that answer.
        """
        if not is_error(exchange, 503, "email_not_configured"):
            return False
        self.deviate(
            f"{what}: 503 email_not_configured before the render was looked at",
            "the refusal for the render first (the mock's order)",
            exchange,
            "notes B.14",
        )
        return True

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | _Default | None = OWN_KEY,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        """One request with the run's key (or ``key``; ``None`` sends none)."""
        chosen = self.target.key if isinstance(key, _Default) else key
        return self.client.request(
            method, path, key=chosen, json=json, content=content, headers=headers
        )

    def create_share(self, render_id: str, key: str | None = None, **body: Any) -> dict[str, Any]:
        """Create a share that must succeed; remembered for revocation at the end."""
        exchange = self.call(
            "POST", f"/v1/renders/{render_id}/shares", key=key or self.target.key, json=body
        )
        created: dict[str, Any] = expect_status(exchange, 201, "creating a share")
        self.target.remember_share(render_id, created["id"], key or self.target.key)
        return created

    def list_shares(self, render_id: str, key: str | None = None) -> list[dict[str, Any]]:
        """The render's share list, which must be answered."""
        exchange = self.call("GET", f"/v1/renders/{render_id}/shares", key=key or self.target.key)
        body = expect_status(exchange, 200, "listing shares")
        rows: list[dict[str, Any]] = body["shares"]
        return rows

    def revoke(self, render_id: str, share_id: str, key: str | None = None) -> Exchange:
        """Revoke a share (the answer is the rule's to judge)."""
        return self.call(
            "DELETE", f"/v1/renders/{render_id}/shares/{share_id}", key=key or self.target.key
        )

    def share_url(self, created: dict[str, Any]) -> str:
        """Where to open a share: its ``shareUrl``, unless the run names the share host."""
        if self.target.config.share_base_url:
            return f"{self.target.config.share_base_url.rstrip('/')}/share/{created['shareToken']}"
        url: str = created["shareUrl"]
        return url

    def open_link(self, url: str, suffix: str = "") -> Exchange:
        """A recipient opens a share link (no key)."""
        return self.client.request("GET", url + suffix)
