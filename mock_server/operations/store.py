"""The mock's operations, named after the API's, over an engine that keeps the state.

The rules that sit between atomic steps live here once (which render a key opens, when a
share resolves, what a revoke or an email does, in which order a request is refused); the
engine (``mock_server.engines``: in memory, or Redis shared by many processes) keeps the
data and makes each step atomic. A request works on the ``ProjectView`` of its key or share
link (the project, its clock and its faults, read once per request), and a lookup by id only
ever searches that project, so parallel test runs in their own projects never see each other.

No record here holds a plain API key or share token: keys and tokens are kept as SHA-256
digests, and share tokens are re-derived on demand by the ``ShareTokenMinter``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import craftkit_spec
from mock_server.engines.interface import (
    CapacityReached,
    EngagementView,
    Engine,
    OutboxEntry,
    SharedState,
    StoreUnavailable,
    UnsupportedStore,
)
from mock_server.model import errors, rules
from mock_server.model.clock import ClockState, real_now
from mock_server.model.faults import FAULT_NAMES, Faults
from mock_server.model.ids import ShareTokenMinter, digest, new_api_key, uuid7
from mock_server.model.records import (
    EngagementEvent,
    Project,
    Render,
    RenderState,
    SentEmail,
    Share,
    Template,
    pack,
)
from mock_server.model.webhooks import SecretSealer
from mock_server.operations.callers import (
    DeletedProject,
    Link,
    ProjectView,
    UnknownKey,
    require_project,
)
from mock_server.operations.email import EmailDispatcher, compose
from mock_server.operations.pdf import PdfCache
from mock_server.operations.validation import SchemaChecker
from mock_server.operations.webhooks import Webhooks
from mock_server.seed import Seed, SeedProject, SeedRender
from mock_server.settings import Settings

if TYPE_CHECKING:
    from mock_server.model.records import Channel, EventType, RenderStatus

PDF_CACHE_SIZE = 64
"""PDFs kept by each mock process; a render's PDF is drawn again when it has fallen out."""
TOKEN_SECRET_CLAIM = "token-secret"
"""The mock-wide claim every process on one store checks its token secret against."""
KEEP_SECONDS = 0.5
"""How often a process pings its store and checks that it still holds its claim."""
OUTAGE_PROBE_SECONDS = 0.2
"""How often a process pings a store it cannot reach."""
_log = logging.getLogger("mock_server")


@dataclass(frozen=True, slots=True)
class NewShare:
    """A share just made: the record, its token (returned once, never stored) and its URL."""

    share: Share
    token: str
    url: str


@dataclass(frozen=True, slots=True)
class ShareRow:
    """One row of a share list: the share, its token and its click count."""

    share: Share
    token: str
    clicks: int


@dataclass(frozen=True, slots=True)
class ShareListing:
    """A render's shares, newest first, and the base their URLs are on."""

    base: str
    rows: list[ShareRow]


@dataclass(frozen=True, slots=True)
class EmailSent:
    """What ``POST /v1/renders/{id}/email`` answers."""

    created: NewShare
    message_id: str
    sent_at: datetime


class MisconfiguredError(RuntimeError):
    """The mock cannot start as configured; the message says what to change."""


class Store:
    """The mock's operations."""

    def __init__(
        self, *, settings: Settings, seed: Seed, engine: Engine, minter: ShareTokenMinter
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._minter = minter
        self._email = EmailDispatcher(settings)
        self._seed = seed
        self._seeded = {digest(p.api_key): p for p in seed.projects}
        self._seeded_ids = {p.id: p for p in seed.projects}
        self._templates = {
            t.slug: Template(t.slug, t.name, t.versions, t.published_version, t.input_schema)
            for t in seed.templates
        }
        self._manifest_checkers: dict[str, SchemaChecker] = {}
        self._pdfs = PdfCache(PDF_CACHE_SIZE)
        self._dedup_window = timedelta(seconds=craftkit_spec.dedup_window_seconds())
        self._revoke_reason = craftkit_spec.revoke_reason()
        self._refusal: str | None = None
        self.webhooks = Webhooks(
            settings=settings,
            engine=engine,
            sealer=SecretSealer(minter.derived_key(b"craftkit-mock webhook secrets")),
        )
        """The project's webhook subscriptions, and the dispatcher that delivers events."""

    @property
    def description(self) -> str:
        """What keeps the state, for messages: ``memory`` or ``Redis at …``."""
        return self._engine.description

    # ---- lifecycle ------------------------------------------------------------------

    @property
    def refusal(self) -> str | None:
        """Why this process must not serve (another secret claimed its store), if it must not."""
        return self._refusal

    async def start(self) -> None:
        """Claim the store for this process's token secret, then plant the seed.

        Every process on one store must derive share links with the same secret: when
        another secret holds the claim, ``MisconfiguredError`` says how to recover, and the
        process refuses to serve until the claim is its own again.
        """
        mine = self._minter.fingerprint()
        if await self._refused(self._engine.claim(TOKEN_SECRET_CLAIM, mine)) != mine:
            self._refusal = (
                f"Another mock process on {self._engine.description} uses a different "
                "CRAFTKIT_MOCK_TOKEN_SECRET, so this one refuses to serve: its share links would "
                "not open there. Recover by giving every process the same secret, or this one "
                "a store prefix of its own (CRAFTKIT_MOCK_STORE_PREFIX), or by deleting that "
                f"prefix's keys ({self._engine.description}: the claim:{TOKEN_SECRET_CLAIM} key "
                "under the prefix); it serves again as soon as the claim is its own."
            )
            raise MisconfiguredError(self._refusal)
        self._refusal = None
        for seeded in self._seed.projects:
            await self._plant(seeded)

    async def keep(self) -> None:
        """One round of keeping the store, as often as ``KEEP_SECONDS``.

        When the store lost its data (Redis restarted empty) the claim is gone: claim again
        and replant. When another secret holds it, refuse to serve.
        """
        if (
            await self._refused(self._engine.claimed(TOKEN_SECRET_CLAIM))
            != self._minter.fingerprint()
        ):
            await self.start()

    async def _refused(self, claim: Awaitable[str | None]) -> str | None:
        """The claim, or a refusal to serve when the store cannot hold the mock's state."""
        try:
            return await claim
        except UnsupportedStore as exc:
            self._refusal = str(exc)
            raise MisconfiguredError(self._refusal) from None

    async def keep_running(self, every: float = KEEP_SECONDS) -> None:
        """Keep the store for as long as the process serves (a task of the app's lifespan).

        Each round pings the store first (so an outage any request met is found over as soon
        as the store answers). While the store cannot be reached it pings it every
        ``OUTAGE_PROBE_SECONDS``, logging the outage once; requests meanwhile are answered at
        once in the envelope, naming the store.
        """
        pause, outage = every, False
        while True:
            try:
                await self._engine.ping()  # through to the store, whatever it said last
                await self.keep()
                if outage:
                    _log.warning("The store (%s) answers again", self._engine.description)
                pause, outage = every, False
            except StoreUnavailable as exc:
                if not outage:
                    _log.warning("The store (%s) is unreachable: %s", self._engine.description, exc)
                pause, outage = OUTAGE_PROBE_SECONDS, True
            except MisconfiguredError as exc:
                _log.error("%s", exc)
                pause = every
            await asyncio.sleep(pause)

    async def aclose(self) -> None:
        """Release the engine's connections, the email client and the webhook sender."""
        try:
            await self.webhooks.aclose()
            await self._email.aclose()
        finally:
            await self._engine.aclose()

    async def ping(self) -> None:
        """Return once the state's storage answers and holds the seed (``/health``).

        After Redis restarted empty a ping alone would be green before the keeper replanted
        the seed, and a seeded key would be refused meanwhile: so this keeps the store too
        (one read of the claim when nothing was lost). ``StoreUnavailable`` when it cannot
        be reached, ``MisconfiguredError`` when another secret holds it.
        """
        await self._engine.ping()
        await self.keep()

    async def reset(self) -> None:
        """Forget everything and load the seed again; the shared clock runs in real time."""
        await self._engine.wipe()
        for seeded in self._seed.projects:
            await self._plant(seeded)

    async def reset_project(self, project_id: str) -> None:
        """Forget one project's renders, shares, events, mail, clock, faults and journal.

        Its id and keys stay valid; a seeded project gets its seeded renders back.
        """
        await self.project(project_id)
        await self._engine.clear_project(project_id, delete=False)
        seeded = self._seeded_ids.get(project_id)
        if seeded is not None:
            await self._plant_renders(seeded)

    async def _plant(self, seeded: SeedProject) -> None:
        """Add a seeded project (again, after a reset or once it expired) with its renders.

        One step of the engine: nobody sees the project without its renders.
        """
        project = Project(seeded.id, seeded.name, seeded.share_domain, seeded.email_from)
        renders = [self._seeded_render(seeded.id, render) for render in seeded.renders]
        await self._engine.plant_project(project, digest(seeded.api_key), renders)

    def _seeded_render(self, project_id: str, render: SeedRender) -> Render:
        return self._render_record(
            project_id,
            self._template(render.template),
            None,
            dict(render.data),
            created_at=render.created_at,
            render_id=render.id,
            forced_status=render.status,
        )

    async def _plant_renders(self, seeded: SeedProject) -> None:
        for render in seeded.renders:
            await self._engine.add_render(self._seeded_render(seeded.id, render), None)

    # ---- projects, keys and views ---------------------------------------------------

    async def create_project(self, name: str | None) -> tuple[Project, str]:
        """A new project with the seed's templates, and its freshly minted key."""
        api_key = new_api_key()
        project_id = uuid7(real_now())
        project = Project(project_id, name or f"Project {project_id[:8]}")
        try:
            await self._engine.add_project(project, digest(api_key))
        except CapacityReached as full:
            raise errors.Conflict(
                f"The mock is full ({full}): delete projects you are done with, or raise "
                "CRAFTKIT_MOCK_MAX_PROJECTS"
            ) from None
        return project, api_key

    async def delete_project(self, project_id: str) -> None:
        """Forget a project's state; its keys now answer ``403 forbidden``."""
        await self.project(project_id)
        await self._engine.clear_project(project_id, delete=True)

    async def _view(self, project_id: str) -> ProjectView | None:
        """The one path to a project's view: a seeded project comes back if it expired."""
        stored = await self._engine.project(project_id)
        if stored is None:
            seeded = self._seeded_ids.get(project_id)
            if seeded is None:
                return None
            await self._plant(seeded)
            stored = await self._engine.project(project_id)
            if stored is None:
                return None
        await self._engine.touch(project_id)
        shared = stored.shared
        return ProjectView(
            stored.project,
            stored.clock or shared.clock,
            self._faults({**shared.faults, **stored.faults}),
        )

    def _faults(self, switches: dict[str, Any]) -> Faults:
        return Faults(**{"email_transport": self._settings.email_transport, **switches})

    async def caller_of_key(self, api_key: str) -> UnknownKey | DeletedProject | ProjectView:
        """Who holds a key: nobody, a deleted project, or a live project's view."""
        key = digest(api_key)
        project_id = await self._engine.project_id_of_key(key)
        if project_id is None:
            seeded = self._seeded.get(key)
            if seeded is None:
                return UnknownKey()
            project_id = seeded.id
        view = await self._view(project_id)
        if view is None:
            return UnknownKey()
        if view.project.deleted:
            return DeletedProject(view.project.id)
        return view

    async def project_of_key(self, api_key: str) -> ProjectView:
        """The live project of a key (the control API's by-key calls); ``401``/``403``."""
        return require_project(await self.caller_of_key(api_key))

    async def link(self, token: str) -> Link | None:
        """The share a link token opens (active or not) and its project's view."""
        share = await self._engine.share_of_token(digest(token))
        view = None if share is None else await self._view(share.project_id)
        return None if share is None or view is None else Link(view, share)

    async def project(self, project_id: str) -> ProjectView:
        """A live project's view by id (control API); ``404`` otherwise."""
        view = await self._view(project_id)
        if view is None or view.project.deleted:
            raise errors.NotFound("Project not found")
        return view

    # ---- clocks and faults ----------------------------------------------------------

    async def shared(self) -> SharedState:
        """The shared clock and faults (requests without a project use them)."""
        return await self._engine.shared()

    async def shared_faults(self, shared: SharedState | None = None) -> Faults:
        """The shared fault switches in force (of ``shared``, if already read)."""
        return self._faults((shared or await self._engine.shared()).faults)

    async def change_clock(
        self, project_id: str | None, change: Callable[[ClockState, datetime], ClockState]
    ) -> ClockState:
        """Move the shared clock, or a project's (which from then on runs alone)."""
        real = real_now()
        changed = await self._engine.change_clock(project_id, lambda state: change(state, real))
        await self.webhooks.clock_moved(project_id)
        return changed

    async def set_faults(self, changes: dict[str, Any], project_id: str | None = None) -> None:
        """Switch faults for every project (``project_id`` None) or for one project only.

        A new rate limit starts its minute afresh.
        """
        unknown = set(changes) - FAULT_NAMES
        if unknown:
            raise ValueError(f"unknown fault switches: {sorted(unknown)}")
        await self._engine.set_faults(project_id, changes)
        if "rate_limit_per_minute" in changes:
            await self._engine.forget_rate(project_id)

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
        render = self._render_record(
            project_id,
            template,
            version,
            data,
            created_at=created_at,
            render_id=render_id,
            forced_status=forced_status,
            filename=filename,
        )
        kept = await self._engine.add_render(render, idempotency_digest)
        return kept, kept.id == render.id

    def _render_record(
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
    ) -> Render:
        """A new render: timed by the settings, or pinned at once in ``forced_status``."""
        timed = forced_status is None
        settings = self._settings
        return Render(
            id=render_id or uuid7(created_at),
            project_id=project_id,
            template_slug=template.slug,
            template_name=template.name,
            version=version or template.published_version or template.versions[-1],
            packed_data=pack(data),
            created_at=created_at,
            queue_for=timedelta(seconds=settings.queue_seconds if timed else 0),
            render_for=timedelta(seconds=settings.render_seconds if timed else 0),
            failure=rules.render_failure(data),
            forced_status=forced_status,
            forced_at=None if timed else created_at,
            filename=filename,
        )

    async def _render(self, view: ProjectView, render_id: str) -> Render:
        render = await self._engine.render(view.project.id, render_id)
        if render is None:
            raise errors.NotFound("Render not found")
        return render

    async def submit_render(
        self,
        view: ProjectView,
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
        now = view.now()
        if key is not None:
            existing = await self._engine.render_of_key(view.project.id, key)
            if existing is not None:
                return existing, rules.render_state(existing, now), False
        template, chosen = self._template_version(slug, version)
        self._check_manifest(template, data)
        if view.faults.queue_unavailable:
            raise errors.QueueUnavailable(headers={"Retry-After": "5"})
        try:
            render, created = await self._new_render(
                view.project.id,
                template,
                chosen,
                data,
                created_at=now,
                filename=filename,
                idempotency_digest=key,
            )
        except CapacityReached as full:
            raise errors.QueueUnavailable(
                f"The render queue refuses more: {full} (the mock's limit, "
                "CRAFTKIT_MOCK_MAX_RENDERS); reset the project or use another",
                headers={"Retry-After": "5"},
            ) from None
        if created:
            await self.webhooks.render_submitted(view, render)
        return render, rules.render_state(render, now), created

    def _check_manifest(self, template: Template, data: dict[str, Any]) -> None:
        if template.input_schema is None:
            return
        checker = self._manifest_checkers.get(template.slug)
        if checker is None:
            checker = self._manifest_checkers[template.slug] = SchemaChecker(template.input_schema)
        issues = checker.issues(data)
        if issues is not None:
            raise errors.InvalidInputData(issues=issues)

    async def get_render(self, view: ProjectView, render_id: str) -> tuple[Render, RenderState]:
        """A render of the project and its state now."""
        render = await self._render(view, render_id)
        return render, rules.render_state(render, view.now())

    async def _succeeded(
        self,
        view: ProjectView,
        render_id: str,
        error: type[errors.ApiError] = errors.NotReady,
        verb: str = "ready",
    ) -> Render:
        """A render of the project that has succeeded; ``404``, or ``error`` naming its status."""
        render, state = await self.get_render(view, render_id)
        if state.status != "succeeded":
            raise error(f"Render is not {verb} (status: {state.status})")
        return render

    async def pdf(self, view: ProjectView, render: Render) -> bytes:
        """A succeeded render's PDF; ``500`` while the project's storage fails."""
        if view.faults.storage_fails:
            raise errors.Internal("Could not read the render from storage")
        return await self._pdfs.get(
            render_id=render.id,
            template_name=render.template_name,
            version=render.version,
            packed_data=render.packed_data,
            created_at=render.created_at,
        )

    async def download(self, view: ProjectView, render_id: str) -> tuple[Render, bytes]:
        """A succeeded render's PDF; ``409 conflict`` naming the status otherwise."""
        render = await self._succeeded(view, render_id, errors.Conflict, "downloadable")
        return render, await self.pdf(view, render)

    async def control_create_render(
        self, view: ProjectView, *, status: RenderStatus, slug: str, data: dict[str, Any]
    ) -> tuple[Render, RenderState]:
        """A render put straight into a status (control API)."""
        now = view.now()
        try:
            render, _ = await self._new_render(
                view.project.id,
                self._template(slug),
                None,
                data,
                created_at=now,
                forced_status=status,
            )
        except CapacityReached as full:
            raise errors.Conflict(
                f"The project is full ({full}): reset it, or raise CRAFTKIT_MOCK_MAX_RENDERS"
            ) from None
        await self.webhooks.render_submitted(view, render)
        return render, rules.render_state(render, now)

    async def force_render_status(
        self, render_id: str, status: RenderStatus
    ) -> tuple[Render, RenderState]:
        """Pin a render's status from now on (control API), whichever project it is in."""
        found = await self._engine.find_render(render_id)
        view = None if found is None else await self._view(found.project_id)
        if found is None or view is None:
            raise errors.NotFound("Render not found")
        now = view.now()
        before = rules.render_state(found, now)
        render = replace(found, forced_status=status, forced_at=now)
        await self._engine.replace_render(render)
        await self.webhooks.render_forced(view, before, render)
        return render, rules.render_state(render, now)

    # ---- shares ---------------------------------------------------------------------

    def share_base(self, view: ProjectView, origin: str) -> str:
        """Where the project's share links point (the request's ``origin`` last)."""
        return rules.share_base(
            custom_domain=view.project.share_domain,
            share_base_url=self._settings.share_base_url,
            app_url=self._settings.app_url,
            request_origin=origin,
        )

    async def create_share(
        self,
        view: ProjectView,
        render_id: str,
        *,
        channel: Channel,
        recipient_email: str | None,
        message: str | None,
        expires_at: datetime | None,
        origin: str,
    ) -> NewShare:
        """A new share of a succeeded render, with its token (returned, never stored)."""
        render = await self._succeeded(view, render_id)
        return await self._add_share(
            view, render, channel, recipient_email, message, expires_at, origin
        )

    async def _add_share(
        self,
        view: ProjectView,
        render: Render,
        channel: Channel,
        recipient_email: str | None,
        message: str | None,
        expires_at: datetime | None,
        origin: str,
    ) -> NewShare:
        now = view.now()
        nonce = self._minter.new_nonce()
        token = self._minter.token(nonce)
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
        kept = await self._engine.add_share(share, share.token_digest, event)
        await self.webhooks.document_event(view, render, event, actor="partner")
        return NewShare(kept, token, f"{self.share_base(view, origin)}/share/{token}")

    async def list_shares(self, view: ProjectView, render_id: str, origin: str) -> ShareListing:
        """Every share of the render, newest first, revoked included, with click counts."""
        found = await self._engine.shares(view.project.id, render_id)
        if found is None:
            raise errors.NotFound("Render not found")
        token = self._minter.token
        rows = [ShareRow(share, token(share.token_nonce), clicks) for share, clicks in found]
        return ShareListing(self.share_base(view, origin), rows)

    async def revoke_share(self, view: ProjectView, render_id: str, share_id: str) -> Share:
        """Revoke once: an unknown, foreign or already revoked share is ``404``."""
        render = await self._render(view, render_id)
        now = view.now()
        event = self._event("share_revoked", share_id, now)
        revoked = await self._engine.revoke_share(
            view.project.id, render.id, share_id, now, self._revoke_reason, event
        )
        if revoked is None:
            raise errors.NotFound("Share not found")
        await self.webhooks.document_event(view, render, event, actor="partner")
        return revoked

    async def resolve_share(
        self, token: str, looked_up: Link | None = None
    ) -> tuple[ProjectView, Share, Render]:
        """The active share behind a public token, on its project's clock; else ``404``.

        Unknown, revoked and expired tokens are one and the same ``404``. ``looked_up`` is
        the token's ``link``, when the middleware has read it already.
        """
        found = looked_up or await self.link(token)
        if found is not None and rules.share_resolves(found.share, found.view.now()):
            render = await self._engine.render(found.view.project.id, found.share.render_id)
            if render is not None:
                return found.view, found.share, render
        raise errors.NotFound("Share link not found")

    # ---- email ----------------------------------------------------------------------

    async def email_render(
        self,
        view: ProjectView,
        render_id: str,
        *,
        to: str,
        recipient_name: str | None,
        message: str | None,
        expires_at: datetime | None,
        origin: str,
    ) -> EmailSent:
        """Share a render by email, the whole operation in one place.

        Check the render, choose the route, write the email share (it stays if the send
        fails), compose, send (or keep in the outbox), and record ``email_sent``.
        """
        render = await self._succeeded(view, render_id)
        project = view.project
        route = self._email.route(view.faults, project.email_from)
        created = await self._add_share(view, render, "email", to, message, expires_at, origin)
        outgoing = compose(
            sender=route.sender,
            to=to,
            recipient_name=recipient_name,
            message=message,
            share_url=created.url,
            document_name=render.template_name,
            render_id=render.id,
            share_id=created.share.id,
        )
        if route.transport == "outbox":
            at = view.now()
            kept = await self._engine.keep_email(project.id, SentEmail(uuid7(at), outgoing, at))
            message_id = kept.sent.id
        else:
            message_id = await self._email.send(route, outgoing)
        sent_at = view.now()
        event = self._event("email_sent", created.share.id, sent_at)
        await self._engine.record_event(project.id, render.id, event)
        await self.webhooks.document_event(view, render, event, actor="partner")
        return EmailSent(created, message_id, sent_at)

    async def email_opened(
        self, view: ProjectView, email_id: str, source_ip: str | None, user_agent: str | None
    ) -> tuple[EngagementEvent, str]:
        """A recipient opened a kept email (the control API stands in for the mail client).

        Records ``email_opened`` on the email's share (each open counts) and delivers it;
        returns the event and the render.
        """
        entry = next(
            (e for e in await self._engine.emails(view.project.id) if e.sent.id == email_id),
            None,
        )
        if entry is None:
            raise errors.NotFound("Email not found")
        render = await self._render(view, entry.sent.email.render_id)
        event = self._event("email_opened", entry.sent.email.share_id, view.now())
        await self._engine.record_event(view.project.id, render.id, event)
        await self.webhooks.document_event(
            view, render, event, actor="recipient", source_ip=source_ip, user_agent=user_agent
        )
        return event, render.id

    async def emails(
        self,
        project_id: str | None = None,
        *,
        render_id: str | None = None,
        to: str | None = None,
    ) -> list[OutboxEntry]:
        """Kept mail, oldest first: one project's, or every project's, optionally filtered."""
        entries = await self._engine.emails(project_id)
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
        packed = None if metadata is None else pack(metadata)
        return EngagementEvent(uuid7(at), event_type, share_id, at, packed)

    async def record_share_event(
        self,
        view: ProjectView,
        share: Share,
        render: Render,
        event_type: EventType,
        source_ip: str,
        user_agent: str | None = None,
    ) -> bool:
        """A recipient's view or download through a share link (de-duplicated)."""
        event = self._event(event_type, share.id, view.now())
        counted = await self._engine.record_recipient_event(
            view.project.id,
            share.render_id,
            event,
            f"{share.id}|{event_type}|{source_ip}",
            self._dedup_window,
        )
        if counted:
            await self.webhooks.document_event(
                view, render, event, actor="recipient", source_ip=source_ip, user_agent=user_agent
            )
        return counted

    async def record_render_event(
        self,
        view: ProjectView,
        render_id: str,
        event_type: EventType,
        source_ip: str,
        metadata: dict[str, Any] | None,
        user_agent: str | None = None,
    ) -> bool:
        """A recipient event reported through the API (de-duplicated)."""
        render = await self._render(view, render_id)
        event = self._event(event_type, None, view.now(), metadata)
        counted = await self._engine.record_recipient_event(
            view.project.id,
            render.id,
            event,
            f"render:{render.id}|{event_type}|{source_ip}",
            self._dedup_window,
        )
        if counted:
            await self.webhooks.document_event(
                view, render, event, actor="partner", source_ip=source_ip, user_agent=user_agent
            )
        return counted

    async def engagement(self, view: ProjectView, render_id: str) -> EngagementView:
        """Counts of every event kind, link opens, total and the most recent events."""
        render = await self._render(view, render_id)
        return await self._engine.engagement(view.project.id, render.id)
