"""The deployment under test: what it offers, and the resources the suite makes on it.

Against the mock (it answers ``/_mock/clock``) the suite makes two projects of its own and
works only inside them, through the per-project control API: their clocks, faults and
outboxes are the run's alone, so any number of runs and partners' tests share one mock. At
the end it deletes them. Against a live deployment it uses the keys and render options given.
Everything else goes through the public API either way. Every share the suite creates is
remembered and revoked at the end.
"""

from __future__ import annotations

import functools
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

import craftkit_spec
from conformance.client import RecordingClient, Transcript
from conformance.config import RunConfig
from conformance.webhooks import WebhookListener

RESEND_TEST_RECIPIENT = "delivered+craftkit-conformance@resend.dev"
VISITORS = ("203.0.113.7", "203.0.113.8", "203.0.113.7")
"""Addresses a link is opened from (documentation addresses, RFC 5737): two, one twice."""


@functools.cache
def _control_token_header() -> str:
    """The header the mock's control API takes its token in, from mock-control.yaml."""
    control = craftkit_spec.load_resolved(craftkit_spec.spec_path("mock-control.yaml"))
    name: str = control["components"]["securitySchemes"]["controlToken"]["name"]
    return name


def control_headers() -> dict[str, str]:
    """The mock's control token, for a mock that requires one (``CRAFTKIT_MOCK_CONTROL_TOKEN``)."""
    token = os.environ.get("CRAFTKIT_MOCK_CONTROL_TOKEN")
    return {_control_token_header(): token} if token else {}


class SetupError(Exception):
    """The run cannot start; the message says what to fix (exit code 2)."""


@dataclass
class Target:
    """Capabilities and provisioned resources of one run."""

    config: RunConfig
    client: RecordingClient
    is_mock: bool = False
    key: str | None = None
    other_key: str | None = None
    created_shares: list[tuple[str, str, str]] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)
    """The run's own projects on the mock: key to project id."""
    _render: str | None = None
    _other_render: str | None = None
    webhooks: WebhookListener | None = None
    """Where the run's project's webhook deliveries arrive, when they can."""

    @classmethod
    def connect(cls, config: RunConfig, client: RecordingClient) -> Target:
        """Probe the target and prepare keys; ``SetupError`` when it cannot be used."""
        target = cls(config, client)
        try:
            probe = client.unrecorded(
                "GET", f"{client.base_url}/_mock/clock", headers=control_headers(), timeout=10
            )
        except httpx.HTTPError as exc:
            raise SetupError(f"{client.base_url} is unreachable: {exc}") from exc
        target.is_mock = probe.status_code == 200 and "now" in probe.text
        if target.is_mock:
            # Given keys are still checked below, but the run works in projects of its own.
            target.key = target.new_project("conformance")[1]
            target.other_key = target.new_project("conformance (other)")[1]
        else:
            if not config.api_key:
                raise SetupError("--api-key is required against a deployment that is not the mock")
            target.key, target.other_key = config.api_key, config.other_api_key
        for key, option in (
            (config.api_key or target.key, "--api-key"),
            (config.other_api_key or target.other_key, "--other-api-key"),
        ):
            if key:
                target._check_key(key, option)
        target._listen()
        return target

    def _listen(self) -> None:
        """Start the webhook listener: the given one, or on the mock one it subscribes."""
        config = self.config
        if config.webhook_listen:
            if not config.webhook_secret:
                raise SetupError("--webhook-listen needs --webhook-secret (the subscription's)")
            host, _, port = config.webhook_listen.rpartition(":")
            if not host or not port.isdigit():
                raise SetupError(
                    f"--webhook-listen must be HOST:PORT, got {config.webhook_listen!r}"
                )
            try:
                self.webhooks = WebhookListener(host.strip("[]"), int(port), config.webhook_secret)
            except OSError as exc:
                raise SetupError(f"cannot listen on {config.webhook_listen}: {exc}") from exc
        elif self.is_mock:
            self.webhooks = WebhookListener("127.0.0.1", 0, secrets.token_hex(16))
            rules = craftkit_spec.webhook_rules()
            events = [*rules.render_events, *rules.document_events]
            body = {"url": self.webhooks.url, "secret": self.webhooks.secret, "events": events}
            self.in_project("POST", "/webhooks", body)

    # ---- capabilities -----------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        """What rules may rely on in this run."""
        found = {"key"}
        if self.other_key:
            found.add("other_key")
        if self.is_mock:
            found |= {"mock", "render", "not_ready_render", "template", "other_render"}
        else:
            # With --read-only a render may only be one that exists: rendering one creates.
            can_render = self.config.template_slug is not None and not self.config.read_only
            if self.config.render_id or can_render:
                found.add("render")
            if can_render:
                found.add("template")
            if self.config.not_ready_render_id:
                found.add("not_ready_render")
            if self.other_key and (self.config.other_render_id or can_render):
                found.add("other_render")
        if not self.config.read_only:
            found |= {"write", "email"}
        if self.webhooks is not None:
            found.add("webhooks")
        return frozenset(found)

    # ---- control API (mock only) ------------------------------------------------------

    def control(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """A control API call; these are set-up, not part of the contract under test."""
        response = self.client.unrecorded(
            method,
            f"{self.client.base_url}/_mock{path}",
            json=json,
            headers=control_headers(),
            timeout=30,
        )
        if response.status_code >= 400:
            raise SetupError(
                f"control call {method} /_mock{path} answered {response.status_code}: "
                f"{response.text}"
            )
        return response

    def new_project(self, name: str = "conformance (scratch)") -> tuple[str, str]:
        """A fresh project of the run's own (mock only): its id and key."""
        body = self.control("POST", "/projects", {"name": name}).json()
        self.projects[body["apiKey"]] = body["projectId"]
        return body["projectId"], body["apiKey"]

    def in_project(
        self, method: str, path: str, json: Any = None, key: str | None = None
    ) -> httpx.Response:
        """A control call on one of the run's projects (the run's own key by default)."""
        project_id = self.projects[key or self.key or ""]
        return self.control(method, f"/projects/{project_id}{path}", json)

    def set_faults(self, **faults: Any) -> None:
        """Switch faults of the run's project on the mock (gone with it at the end)."""
        self.in_project("PUT", "/faults", faults)

    def clock_now(self) -> datetime:
        """The run's time on the mock."""
        text = self.in_project("GET", "/clock").json()["now"]
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    def advance_clock(self, seconds: float) -> None:
        """Move the time of both of the run's projects."""
        for key in (self.key, self.other_key):
            self.in_project("POST", "/clock", {"advanceSeconds": seconds}, key)

    def freeze_clock(self, frozen: bool) -> datetime:
        """Stop (or restart) the time of both of the run's projects, at one instant."""
        instant = self.in_project("POST", "/clock", {"frozen": frozen}).json()["now"]
        if frozen:
            self.in_project("POST", "/clock", {"frozen": True}, self.other_key)
            self.in_project("POST", "/clock", {"now": instant}, self.other_key)
        else:
            self.in_project("POST", "/clock", {"frozen": False}, self.other_key)
        return datetime.fromisoformat(instant.replace("Z", "+00:00"))

    def outbox(self) -> list[dict[str, Any]]:
        """The mail the run's project sent."""
        emails: list[dict[str, Any]] = self.in_project("GET", "/emails").json()["emails"]
        return emails

    def open_email(self, email_id: str) -> None:
        """Open a sent mail as its recipient would (mock only: records ``email_opened``)."""
        self.in_project("POST", f"/emails/{email_id}/open")

    # ---- renders ------------------------------------------------------------------------

    def _check_key(self, key: str | None, option: str) -> None:
        response = self.client.unrecorded(
            "GET",
            f"{self.client.base_url}/v1/renders/00000000-0000-7000-8000-000000000000",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        if response.status_code in (401, 403):
            raise SetupError(
                f"{option} is refused by the target ({response.status_code}): {response.text[:200]}"
            )

    def mock_render(
        self, status: str = "succeeded", key: str | None = None, data: Any = None
    ) -> str:
        """A render in a given status, made through the control API (mock only)."""
        body = {"status": status, "data": data or {"suite": "conformance"}}
        render_id: str = self.in_project("POST", "/renders", body, key).json()["id"]
        return render_id

    def fresh_render(self) -> str:
        """A succeeded render with no shares yet where possible (the mock makes one each time)."""
        if self.is_mock:
            return self.mock_render()
        return self.render()

    def new_render(self) -> str:
        """A render made now and run to its end, so that its ``render.*`` delivery is owed.

        On the mock through the control API, on a deployment rendered from the template.
        """
        if self.is_mock:
            return self.mock_render()
        return self.submit_and_wait(self.key)

    def render(self) -> str:
        """A succeeded render of the key's project (one per run against a deployment)."""
        if self._render is None:
            if self.is_mock:
                self._render = self.mock_render()
            elif self.config.render_id:
                self._render = self.config.render_id
            else:
                self._render = self.submit_and_wait(self.key)
        return self._render

    def other_render(self) -> str:
        """A succeeded render of the other project."""
        if self._other_render is None:
            if self.is_mock:
                self._other_render = self.mock_render(key=self.other_key)
            elif self.config.other_render_id:
                self._other_render = self.config.other_render_id
            else:
                self._other_render = self.submit_and_wait(self.other_key)
        return self._other_render

    def second_render(self) -> str | None:
        """Another render of the key's project than ``render()``, where the run can have one.

        Made on the mock; on a deployment the not-ready render given, else one rendered from
        the template; ``None`` when neither is possible.
        """
        if self.is_mock:
            return self.mock_render()
        if self.config.not_ready_render_id:
            return self.config.not_ready_render_id
        if self.config.template_slug and not self.config.read_only:
            return self.submit_and_wait(self.key)
        return None

    def not_ready_render(self) -> str:
        """A render that has not succeeded."""
        if self.is_mock:
            return self.mock_render(status="queued")
        assert self.config.not_ready_render_id is not None
        return self.config.not_ready_render_id

    def submit_and_wait(self, key: str | None) -> str:
        """Render the configured template and poll it to ``succeeded``."""
        if not self.config.template_slug:
            raise SetupError(
                "a succeeded render is needed: pass --template-slug and --template-data"
            )
        submitted = self.client.request(
            "POST",
            f"/v1/templates/{self.config.template_slug}/render",
            key=key,
            json={"data": self.config.template_data or {}},
        )
        if submitted.status not in (200, 202):
            raise SetupError(
                f"rendering {self.config.template_slug} failed: {submitted.summary()} "
                f"{submitted.body_text()}"
            )
        render_id: str = submitted.json()["id"]
        deadline = time.monotonic() + self.config.render_timeout
        while time.monotonic() < deadline:
            status = self.client.request("GET", f"/v1/renders/{render_id}", key=key).json()[
                "status"
            ]
            if status == "succeeded":
                return render_id
            if status == "failed":
                raise SetupError(f"render {render_id} of {self.config.template_slug} failed")
            time.sleep(1)
        raise SetupError(
            f"render {render_id} did not succeed within {self.config.render_timeout} s"
        )

    # ---- bookkeeping ------------------------------------------------------------------

    def remember_share(self, render_id: str, share_id: str, key: str | None = None) -> None:
        """Note a share the suite made, to revoke at the end."""
        self.created_shares.append((render_id, share_id, key or self.key or ""))

    def _kept(self) -> str:
        """The run's projects left on the mock (``--keep``), and how to use and remove them.

        The curl lines read the key from ``$CRAFTKIT_API_KEY``; the keys go to a file only
        its owner can read (never into the report), which sets it to the run's own key.
        """
        folder = Path(tempfile.mkdtemp(prefix="craftkit-conformance-kept-"))
        keys = folder / "keys.env"
        lines = []
        for key, project_id in self.projects.items():
            own = key == self.key
            lines.append(
                f"{'' if own else '# '}export CRAFTKIT_API_KEY={key}  # project {project_id}"
                + ("" if own else " (the run's other project)")
            )
        keys.touch(mode=0o600)
        keys.write_text("\n".join(lines) + "\n", encoding="utf-8")
        projects = ", ".join(sorted(set(self.projects.values())))
        return (
            f"kept {len(set(self.projects.values()))} project(s) on the mock (--keep): "
            f"{projects}; `. {keys}` sets $CRAFTKIT_API_KEY for the curl lines; "
            f"remove a project with curl -X DELETE {self.config.base_url}/_mock/projects/<id>"
        )

    def restore(self) -> str:
        """Leave the target as found; what was done, for the report.

        On the mock the run's projects are deleted, which takes their shares, faults, clocks
        and mail with them; on a deployment every share the run made is revoked. Either way
        the calls go through the run's client: paced by ``--max-rps`` and recorded.
        """
        self.client.transcript = Transcript()
        problems: list[str] = []
        if self.webhooks is not None:
            self.webhooks.close()

        def delete(
            path: str, key: str | None = None, headers: dict[str, str] | None = None
        ) -> int | None:
            try:
                answer = self.client.request("DELETE", path, key=key, headers=headers)
            except httpx.HTTPError as exc:
                problems.append(f"DELETE {path}: {exc!r}")
                return None
            if answer.status >= 400 and answer.status != 404:
                problems.append(f"{answer.summary()}: {answer.body_text(200)}")
            return answer.status

        if self.is_mock and self.config.keep:
            done = self._kept()
            self.projects.clear()
        elif self.is_mock:
            projects = sorted(set(self.projects.values()))
            gone = [
                delete(f"/_mock/projects/{project_id}", headers=control_headers())
                for project_id in projects
            ]
            done = f"deleted {gone.count(204)} project(s) the run made on the mock"
            self.projects.clear()
        else:
            answers = [
                delete(f"/v1/renders/{render}/shares/{share}", key)
                for render, share, key in self.created_shares
            ]
            done = (
                f"revoked {answers.count(200)} of the {len(answers)} share(s) the run made "
                f"({answers.count(404)} were revoked already)"
            )
        self.created_shares.clear()
        return done + ("; failed: " + "; ".join(problems) if problems else "")
