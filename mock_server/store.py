"""The mock's operations, named after the API's, over an engine that keeps the state.

The rules live here once (which render a key opens, when a share resolves, what a revoke
or an email does); the engine (``mock_server.engine``: in memory, or Redis shared by many
processes) keeps the data and makes each step atomic. A project is a sandbox: a request
works on the ``Sandbox`` of its key or share link (the project, its clock and its faults,
read once per request), and a lookup by id only ever searches that project, so parallel
test runs in their own projects never see each other.

No record here holds a plain API key or share token: keys and tokens are kept as SHA-256
digests, and share tokens are re-derived on demand by the ``ShareTokenMinter``.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from mock_server import domain, errors
from mock_server.clock import ClockState, real_now
from mock_server.domain import (
    EngagementEvent,
    EventType,
    Render,
    RenderState,
    RenderStatus,
    Share,
    Template,
)
from mock_server.email import EmailTransport, OutgoingEmail, SentEmail, compose
from mock_server.engine import EngagementView, Engine, OutboxEntry, Project, SharedState
from mock_server.faults import FAULT_NAMES, Faults
from mock_server.ids import ShareTokenMinter, digest, new_api_key, uuid7
from mock_server.pdf import render_pdf
from mock_server.seed import Seed, SeedProject
from mock_server.settings import Settings
from mock_server.validation import SchemaChecker

PDF_CACHE_SIZE = 64
"""PDFs kept by each mock process; a render's PDF is drawn again when it has fallen out."""

TransportChooser = Callable[
    [Faults, str | None, Callable[[OutgoingEmail], Awaitable[str]]], tuple[str, EmailTransport]
]
"""How an email leaves (``EmailDispatcher.transport_for``): from the project's faults and
sender, with the project's outbox; the sender and the transport."""


@dataclass(frozen=True, slots=True)
class Sandbox:
    """One project as one request sees it: the record, its clock and the faults in force."""

    project: Project
    clock: ClockState
    faults: Faults

    def now(self) -> datetime:
        """The project's time."""
        return self.clock.current()


@dataclass(frozen=True, slots=True)
class Link:
    """A share link's share and the sandbox of its project, as one request read them."""

    box: Sandbox
    share: Share


@dataclass(frozen=True, slots=True)
class EmailSent:
    """What ``POST /v1/renders/{id}/email`` answers."""

    share: Share
    token: str
    share_url: str
    message_id: str
    sent_at: datetime


class MisconfiguredError(RuntimeError):
    """The mock cannot start as configured; the message says what to change."""


class Store:
    """The mock's operations."""

    def __init__(
        self, *, settings: Settings, seed: Seed, engine: Engine, minter: ShareTokenMinter
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.minter = minter
        self._seed = seed
        self._seeded = {digest(p.api_key): p for p in seed.projects}
        self._seeded_ids = {p.id: p for p in seed.projects}
        self._templates = {
            t.slug: Template(t.slug, t.name, t.versions, t.published_version, t.input_schema)
            for t in seed.templates
        }
        self._manifest_checkers: dict[str, SchemaChecker] = {}
        self._pdfs: collections.OrderedDict[str, bytes] = collections.OrderedDict()

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Plant the seeded projects unless they are there; check the token secret.

        Every process on one store must derive share links with the same secret.
        """
        for seeded in self._seed.projects:
            await self._plant(seeded)
        mine = self.minter.fingerprint()
        if await self.engine.claim("token-secret", mine) != mine:
            raise MisconfiguredError(
                f"Another mock process on {self.engine.description} uses a different "
                "CRAFTKIT_MOCK_TOKEN_SECRET: its share links would not open here. Give every "
                "process the same secret (or a store prefix of its own)."
            )

    async def reset(self) -> None:
        """Forget everything and load the seed again; the shared clock runs in real time."""
        await self.engine.wipe()
        for seeded in self._seed.projects:
            await self._plant(seeded)

    async def reset_project(self, project_id: str) -> None:
        """Forget one project's renders, shares, events, mail, clock, faults and journal.

        Its id and keys stay valid; a seeded project gets its seeded renders back.
        """
        await self.sandbox(project_id)
        await self.engine.clear_project(project_id, delete=False)
        seeded = self._seeded_ids.get(project_id)
        if seeded is not None:
            await self._plant_renders(seeded)

    async def _plant(self, seeded: SeedProject) -> None:
        """Add a seeded project (again, after a reset or once it expired) with its renders."""
        project = Project(seeded.id, seeded.name, seeded.share_domain, seeded.email_from)
        if await self.engine.add_project(project, digest(seeded.api_key)):
            await self._plant_renders(seeded)

    async def _plant_renders(self, seeded: SeedProject) -> None:
        for render in seeded.renders:
            await self._new_render(
                seeded.id,
                self._template(render.template),
                None,
                dict(render.data),
                created_at=render.created_at,
                render_id=render.id,
                forced_status=render.status,
            )

    # ---- projects, keys and sandboxes -----------------------------------------------

    async def create_project(self, name: str | None) -> tuple[Project, str]:
        """A new project with the seed's templates, and its freshly minted key."""
        api_key = new_api_key()
        project_id = uuid7(real_now())
        project = Project(project_id, name or f"Project {project_id[:8]}")
        await self.engine.add_project(project, digest(api_key))
        return project, api_key

    async def delete_project(self, project_id: str) -> None:
        """Forget a project's state; its keys now answer ``403 forbidden``."""
        await self.sandbox(project_id)
        await self.engine.clear_project(project_id, delete=True)

    async def _project(self, project_id: str) -> Sandbox | None:
        """The one path to a project's sandbox: a seeded project comes back if it expired."""
        state = await self.engine.sandbox(project_id)
        if state is None:
            seeded = self._seeded_ids.get(project_id)
            if seeded is None:
                return None
            await self._plant(seeded)
            state = await self.engine.sandbox(project_id)
            if state is None:
                return None
        await self.engine.touch(project_id)
        shared = state.shared
        faults = {**shared.faults, **state.faults}
        return Sandbox(
            state.project,
            state.clock or shared.clock,
            self._faults(faults),
        )

    def _faults(self, switches: dict[str, Any]) -> Faults:
        return Faults(**{"email_transport": self.settings.email_transport, **switches})

    async def sandbox_of_key(self, api_key: str) -> Sandbox | None:
        """The key's sandbox, deleted or not; ``None`` for a key nobody holds."""
        key = digest(api_key)
        project_id = await self.engine.project_id_of_key(key)
        if project_id is None:
            seeded = self._seeded.get(key)
            if seeded is None:
                return None
            project_id = seeded.id
        return await self._project(project_id)

    async def link(self, token: str) -> Link | None:
        """The share a link token opens (active or not) and its project's sandbox."""
        share = await self.engine.share_of_token(digest(token))
        box = None if share is None else await self._project(share.project_id)
        return None if share is None or box is None else Link(box, share)

    async def authenticate(self, api_key: str) -> Sandbox:
        """The key's sandbox; unknown keys are 401 and deleted projects 403."""
        return self.authorize(await self.sandbox_of_key(api_key))

    @staticmethod
    def authorize(box: Sandbox | None) -> Sandbox:
        """A looked-up key's sandbox: ``None`` (nobody holds the key) is 401, deleted 403."""
        if box is None:
            raise errors.Unauthorized("Invalid API key")
        if box.project.deleted:
            raise errors.Forbidden()
        return box

    async def sandbox(self, project_id: str) -> Sandbox:
        """A live project's sandbox by id (control API); ``404`` otherwise."""
        box = await self._project(project_id)
        if box is None or box.project.deleted:
            raise errors.NotFound("Project not found")
        return box

    # ---- clocks and faults ----------------------------------------------------------

    async def shared(self) -> SharedState:
        """The shared clock and faults (requests without a project use them)."""
        return await self.engine.shared()

    async def shared_faults(self, shared: SharedState | None = None) -> Faults:
        """The shared fault switches in force (of ``shared``, if already read)."""
        return self._faults((shared or await self.engine.shared()).faults)

    async def change_clock(
        self, project_id: str | None, change: Callable[[ClockState, datetime], ClockState]
    ) -> ClockState:
        """Move the shared clock, or a project's (which from then on runs alone)."""
        real = real_now()
        return await self.engine.change_clock(project_id, lambda state: change(state, real))

    async def set_faults(self, changes: dict[str, Any], project_id: str | None = None) -> None:
        """Switch faults for every project (``project_id`` None) or for one project only."""
        unknown = set(changes) - FAULT_NAMES
        if unknown:
            raise ValueError(f"unknown fault switches: {sorted(unknown)}")
        await self.engine.set_faults(project_id, changes)

    # ---- renders --------------------------------------------------------------------

    def _template(self, slug: str) -> Template:
        template = self._templates.get(slug)
        if template is None:
            raise errors.TemplateNotFound(f"Template {slug!r} not found")
        return template

    def _template_version(self, slug: str, version: int | None) -> tuple[Template, int]:
        template = self._template(slug)
        if version is not None:
            if version not in template.versions:
                raise errors.VersionNotFound(f"Template version {version} not found")
            return template, version
        if template.published_version is None:
            raise errors.NoPublishedVersion()
        return template, template.published_version

    async def _new_render(
        self,
        project_id: str,
        template: Template,
        version: int | None,
        data: dict[str, Any],
        *,
        created_at: datetime,
        render_id: str | None = None,
        forced_status: RenderStatus | None = None,
        filename: str | None = None,
        idempotency_digest: str | None = None,
    ) -> tuple[Render, bool]:
        """The one path that makes a render: timed by the settings, or pinned at once.

        With an idempotency key the engine keeps it only if the key made none yet, and
        otherwise returns the render the key made; the flag says whether it is new.
        """
        timed = forced_status is None
        render = Render(
            id=render_id or uuid7(created_at),
            project_id=project_id,
            template_slug=template.slug,
            template_name=template.name,
            version=version or template.published_version or template.versions[-1],
            data=data,
            created_at=created_at,
            queue_for=timedelta(seconds=self.settings.queue_seconds if timed else 0),
            render_for=timedelta(seconds=self.settings.render_seconds if timed else 0),
            failure=domain.render_failure(data),
            forced_status=forced_status,
            forced_at=None if timed else created_at,
            filename=filename,
        )
        kept = await self.engine.add_render(render, idempotency_digest)
        return kept, kept.id == render.id

    async def _render(self, box: Sandbox, render_id: str) -> Render:
        render = await self.engine.render(box.project.id, render_id)
        if render is None:
            raise errors.NotFound("Render not found")
        return render

    async def submit_render(
        self,
        box: Sandbox,
        *,
        slug: str,
        data: dict[str, Any],
        version: int | None,
        idempotency_key: str | None,
        filename: str | None,
    ) -> tuple[Render, RenderState, bool]:
        """Enqueue a render, or return the one this idempotency key already made.

        Returns the render, its state and whether it is new. ``data`` is checked against
        the chosen template's manifest (its ``inputSchema``), compiled once per template.
        """
        # Kept by digest: a key may be long (the spec sets no maximum), its digest is not.
        key = None if idempotency_key is None else digest(idempotency_key)
        now = box.now()
        if key is not None:
            existing = await self.engine.render_of_key(box.project.id, key)
            if existing is not None:
                return existing, domain.render_state(existing, now), False
        template, chosen = self._template_version(slug, version)
        self._check_manifest(template, data)
        if box.faults.queue_unavailable:
            raise errors.QueueUnavailable(headers={"Retry-After": "5"})
        render, created = await self._new_render(
            box.project.id,
            template,
            chosen,
            data,
            created_at=now,
            filename=filename,
            idempotency_digest=key,
        )
        return render, domain.render_state(render, now), created

    def _check_manifest(self, template: Template, data: dict[str, Any]) -> None:
        if template.input_schema is None:
            return
        checker = self._manifest_checkers.get(template.slug)
        if checker is None:
            checker = self._manifest_checkers[template.slug] = SchemaChecker(template.input_schema)
        issues = checker.issues(data)
        if issues is not None:
            raise errors.InvalidInputData(issues=issues)

    async def get_render(self, box: Sandbox, render_id: str) -> tuple[Render, RenderState]:
        """A render of the project and its state now."""
        render = await self._render(box, render_id)
        return render, domain.render_state(render, box.now())

    async def _succeeded(
        self,
        box: Sandbox,
        render_id: str,
        error: type[errors.ApiError] = errors.NotReady,
        verb: str = "ready",
    ) -> Render:
        """A render of the project that has succeeded; ``404``, or ``error`` naming its status."""
        render, state = await self.get_render(box, render_id)
        if state.status != "succeeded":
            raise error(f"Render is not {verb} (status: {state.status})")
        return render

    def pdf(self, box: Sandbox, render: Render) -> bytes:
        """A succeeded render's PDF, drawn once and kept while it is among the recent ones."""
        if box.faults.storage_fails:
            raise errors.Internal("Could not read the render from storage")
        pdf = self._pdfs.get(render.id)
        if pdf is None:
            pdf = render_pdf(
                render_id=render.id,
                template_name=render.template_name,
                version=render.version,
                data=render.data,
                created_at=render.created_at,
            )
            self._pdfs[render.id] = pdf
            if len(self._pdfs) > PDF_CACHE_SIZE:
                self._pdfs.popitem(last=False)
        else:
            self._pdfs.move_to_end(render.id)
        return pdf

    async def download(self, box: Sandbox, render_id: str) -> tuple[Render, bytes]:
        """A succeeded render's PDF; ``409 conflict`` naming the status otherwise."""
        render = await self._succeeded(box, render_id, errors.Conflict, "downloadable")
        return render, self.pdf(box, render)

    async def control_create_render(
        self, box: Sandbox, *, status: RenderStatus, slug: str, data: dict[str, Any]
    ) -> tuple[Render, RenderState]:
        """A render put straight into a status (control API)."""
        now = box.now()
        render, _ = await self._new_render(
            box.project.id, self._template(slug), None, data, created_at=now, forced_status=status
        )
        return render, domain.render_state(render, now)

    async def force_render_status(
        self, render_id: str, status: RenderStatus
    ) -> tuple[Render, RenderState]:
        """Pin a render's status from now on (control API), whichever project it is in."""
        found = await self.engine.find_render(render_id)
        box = None if found is None else await self._project(found.project_id)
        if found is None or box is None:
            raise errors.NotFound("Render not found")
        now = box.now()
        render = replace(found, forced_status=status, forced_at=now)
        await self.engine.replace_render(render)
        return render, domain.render_state(render, now)

    # ---- shares ---------------------------------------------------------------------

    async def create_share(
        self,
        box: Sandbox,
        render_id: str,
        *,
        channel: domain.Channel,
        recipient_email: str | None,
        message: str | None,
        expires_at: datetime | None,
    ) -> tuple[Share, str]:
        """A new share of a succeeded render, and its token (returned, never stored)."""
        render = await self._succeeded(box, render_id)
        return await self._add_share(box, render, channel, recipient_email, message, expires_at)

    async def _add_share(
        self,
        box: Sandbox,
        render: Render,
        channel: domain.Channel,
        recipient_email: str | None,
        message: str | None,
        expires_at: datetime | None,
    ) -> tuple[Share, str]:
        now = box.now()
        nonce = self.minter.new_nonce()
        token = self.minter.token(nonce)
        share = Share(
            id=uuid7(now),
            render_id=render.id,
            project_id=render.project_id,
            sequence=0,  # numbered by the engine
            token_nonce=nonce,
            token_digest=digest(token),
            channel=channel,
            recipient_email=recipient_email,
            message=message,
            expires_at=expires_at,
            created_at=now,
        )
        event = self._event("share_created", share.id, now)
        return await self.engine.add_share(share, share.token_digest, event), token

    def share_token(self, share: Share) -> str:
        """Re-derive a share's token for display (it is not stored)."""
        return self.minter.token(share.token_nonce)

    async def list_shares(self, box: Sandbox, render_id: str) -> list[tuple[Share, int]]:
        """Every share of the render, newest first, revoked included, with click counts."""
        rows = await self.engine.shares(box.project.id, render_id)
        if rows is None:
            raise errors.NotFound("Render not found")
        return rows

    async def revoke_share(self, box: Sandbox, render_id: str, share_id: str) -> Share:
        """Revoke once: an unknown, foreign or already revoked share is ``404``."""
        render = await self._render(box, render_id)
        now = box.now()
        revoked = await self.engine.revoke_share(
            box.project.id, render.id, share_id, now, self._event("share_revoked", share_id, now)
        )
        if revoked is None:
            raise errors.NotFound("Share not found")
        return revoked

    async def resolve_share(
        self, token: str, looked_up: Link | None = None
    ) -> tuple[Sandbox, Share, Render]:
        """The active share behind a public token, on its project's clock; else ``404``.

        Unknown, revoked and expired tokens are one and the same ``404``. ``looked_up`` is
        the token's ``link``, when the gate has read it already.
        """
        found = looked_up or await self.link(token)
        if found is not None and domain.share_resolves(found.share, found.box.now()):
            render = await self.engine.render(found.box.project.id, found.share.render_id)
            if render is not None:
                return found.box, found.share, render
        raise errors.NotFound("Share link not found")

    # ---- email ----------------------------------------------------------------------

    async def email_render(
        self,
        box: Sandbox,
        render_id: str,
        *,
        to: str,
        recipient_name: str | None,
        message: str | None,
        expires_at: datetime | None,
        link: Callable[[str], str],
        transport_for: TransportChooser,
    ) -> EmailSent:
        """Share a render by email, the whole operation in one place.

        Check the render, choose the transport, write the email share (it stays if the send
        fails), compose, send, and record ``email_sent``.
        """
        render = await self._succeeded(box, render_id)
        project = box.project

        async def keep(mail: OutgoingEmail) -> str:
            at = box.now()
            entry = await self.engine.keep_email(project.id, SentEmail(uuid7(at), mail, at))
            return entry.sent.id

        sender, transport = transport_for(box.faults, project.email_from, keep)
        share, token = await self._add_share(box, render, "email", to, message, expires_at)
        url = link(token)
        outgoing = compose(
            sender=sender,
            to=to,
            recipient_name=recipient_name,
            message=message,
            share_url=url,
            document_name=render.template_name,
            render_id=render.id,
            share_id=share.id,
        )
        message_id = await transport.send(outgoing)
        sent_at = box.now()
        await self.engine.record_event(
            project.id, render.id, self._event("email_sent", share.id, sent_at)
        )
        return EmailSent(share, token, url, message_id, sent_at)

    async def emails(
        self,
        project_id: str | None = None,
        *,
        render_id: str | None = None,
        to: str | None = None,
    ) -> list[OutboxEntry]:
        """Kept mail, oldest first: one project's, or every project's, optionally filtered."""
        entries = await self.engine.emails(project_id)
        return [
            entry
            for entry in entries
            if (render_id is None or entry.sent.email.render_id == render_id)
            and (to is None or entry.sent.email.to.lower() == to.lower())
        ]

    # ---- engagement -----------------------------------------------------------------

    @staticmethod
    def _event(
        event_type: EventType,
        share_id: str | None,
        at: datetime,
        metadata: dict[str, Any] | None = None,
    ) -> EngagementEvent:
        return EngagementEvent(uuid7(at), event_type, share_id, at, metadata)

    async def record_share_event(
        self, box: Sandbox, share: Share, event_type: EventType, source_ip: str
    ) -> bool:
        """A recipient's view or download through a share link (de-duplicated)."""
        event = self._event(event_type, share.id, box.now())
        return await self.engine.record_recipient_event(
            box.project.id, share.render_id, event, f"{share.id}|{event_type}|{source_ip}"
        )

    async def record_render_event(
        self,
        box: Sandbox,
        render_id: str,
        event_type: EventType,
        source_ip: str,
        metadata: dict[str, Any] | None,
    ) -> bool:
        """A recipient event reported through the API (de-duplicated)."""
        render = await self._render(box, render_id)
        event = self._event(event_type, None, box.now(), metadata)
        return await self.engine.record_recipient_event(
            box.project.id, render.id, event, f"render:{render.id}|{event_type}|{source_ip}"
        )

    async def engagement(self, box: Sandbox, render_id: str) -> EngagementView:
        """Counts of every event kind, link opens, total and the most recent events."""
        render = await self._render(box, render_id)
        return await self.engine.engagement(box.project.id, render.id)
