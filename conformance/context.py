"""What a rule works with: the client, the target, the profile, and the flows rules repeat."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.client import Exchange, RecordingClient
from conformance.config import Profile
from conformance.failures import expect_status
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
    sequences: list[list[str]] = field(default_factory=list)
    """The state model's step lists, one per sequence hypothesis tried, the failing one last."""
    """What a passing rule wants said in the report (steps a deployment's choices skipped)."""

    def note(self, text: str) -> None:
        """Say something in the rule's result without failing it (said once)."""
        if text not in self.notes:
            self.notes.append(text)

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
