"""All of the mock's state, in one object whose methods are named after the operations.

Methods are synchronous and called from ``async`` endpoints on one event loop, so each call
is atomic: fifty concurrent revokes of one share see exactly one winner, and concurrent
views are counted exactly. Every lookup of a project's resource goes through ``_render``,
which answers ``not_found`` for another project's ids, so projects never see each other.
No record here holds a plain API key or share token: keys and tokens are kept as SHA-256
digests, and share tokens are re-derived on demand by the ``ShareTokenMinter``.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from mock_server import domain, errors
from mock_server.clock import MockClock
from mock_server.domain import (
    EngagementEvent,
    EventType,
    Render,
    RenderState,
    RenderStatus,
    Share,
    Template,
)
from mock_server.email import OutgoingEmail, SentEmail
from mock_server.ids import ShareTokenMinter, digest, new_api_key, uuid7
from mock_server.pdf import render_pdf
from mock_server.seed import Seed
from mock_server.settings import EmailTransportName, Settings
from mock_server.validation import SchemaChecker


@dataclass
class Faults:
    """What the control API can switch: email transport, injected failures, rate limit."""

    email_transport: EmailTransportName = "outbox"
    email_send_fails: bool = False
    storage_fails: bool = False
    queue_unavailable: bool = False
    rate_limit_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class Project:
    """A project: its name, its templates, and where its share links point."""

    id: str
    name: str
    templates: dict[str, Template]
    share_domain: str | None = None
    email_from: str | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request the mock answered."""

    method: str
    path: str
    status: int
    at: datetime


@dataclass
class _Engagement:
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    link_opens: int = 0
    recent: collections.deque[EngagementEvent] = field(
        default_factory=lambda: collections.deque(maxlen=domain.RECENT_EVENTS)
    )


@dataclass(frozen=True, slots=True)
class EngagementView:
    """A render's engagement, as the API shows it."""

    counts: dict[str, int]
    link_opens: int
    total: int
    recent: list[EngagementEvent]


class Store:
    """The mock's state and the operations on it."""

    def __init__(
        self, *, settings: Settings, seed: Seed, clock: MockClock, minter: ShareTokenMinter
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.minter = minter
        self._seed = seed
        self._manifest_checkers: dict[str, SchemaChecker] = {}
        self.reset()

    # ---- lifecycle ----------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything and load the seed again (the clock is the caller's business)."""
        self.faults = Faults(email_transport=self.settings.email_transport)
        self._projects: dict[str, Project] = {}
        self._keys: dict[str, str] = {}
        self._renders: dict[str, Render] = {}
        self._idempotency: dict[tuple[str, str], str] = {}
        self._pdfs: dict[str, bytes] = {}
        self._shares: dict[str, Share] = {}
        self._shares_by_render: dict[str, list[str]] = collections.defaultdict(list)
        self._out_of_order: set[str] = set()
        self._share_by_token: dict[str, str] = {}
        self._click_counts: collections.Counter[str] = collections.Counter()
        self._last_counted: dict[tuple[str, str, str], datetime] = {}
        self._engagement: dict[str, _Engagement] = collections.defaultdict(_Engagement)
        self._sequence = 0
        self.outbox: list[SentEmail] = []
        self.journal: collections.deque[JournalEntry] = collections.deque(
            maxlen=self.settings.journal_size
        )
        self._rate_windows: dict[str, collections.deque[datetime]] = {}
        for seeded in self._seed.projects:
            self._add_project(
                seeded.id, seeded.name, seeded.api_key, seeded.share_domain, seeded.email_from
            )
            for render in seeded.renders:
                template = self._projects[seeded.id].templates[render.template]
                self._add_render(
                    Render(
                        id=render.id,
                        project_id=seeded.id,
                        template_slug=template.slug,
                        template_name=template.name,
                        version=template.published_version or template.versions[-1],
                        data=dict(render.data),
                        created_at=render.created_at,
                        queue_for=timedelta(0),
                        render_for=timedelta(0),
                        failure=domain.render_failure(render.data),
                        forced_status=render.status,
                        forced_at=render.created_at,
                    )
                )

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    # ---- projects and keys --------------------------------------------------------

    def _seed_templates(self) -> dict[str, Template]:
        return {
            t.slug: Template(t.slug, t.name, t.versions, t.published_version, t.input_schema)
            for t in self._seed.templates
        }

    def _add_project(
        self,
        project_id: str,
        name: str,
        api_key: str,
        share_domain: str | None = None,
        email_from: str | None = None,
    ) -> Project:
        project = Project(project_id, name, self._seed_templates(), share_domain, email_from)
        self._projects[project_id] = project
        self._keys[digest(api_key)] = project_id
        return project

    def create_project(self, name: str | None) -> tuple[Project, str]:
        """A new project with the seed's templates, and its freshly minted key."""
        api_key = new_api_key()
        project_id = uuid7(self.clock.now())
        project = self._add_project(project_id, name or f"Project {project_id[:8]}", api_key)
        return project, api_key

    def delete_project(self, project_id: str) -> None:
        """Mark a project deleted: its keys now answer ``403 forbidden``."""
        project = self._projects.get(project_id)
        if project is None or project.deleted:
            raise errors.NotFound("Project not found")
        self._projects[project_id] = replace(project, deleted=True)

    def authenticate(self, api_key: str) -> Project:
        """The key's project; unknown keys are 401 and deleted projects 403."""
        project_id = self._keys.get(digest(api_key))
        if project_id is None:
            raise errors.Unauthorized("Invalid API key")
        project = self._projects[project_id]
        if project.deleted:
            raise errors.Forbidden()
        return project

    def project(self, project_id: str) -> Project:
        """A live project by id (control API)."""
        project = self._projects.get(project_id)
        if project is None or project.deleted:
            raise errors.NotFound("Project not found")
        return project

    # ---- renders ------------------------------------------------------------------

    def _add_render(self, render: Render) -> Render:
        self._renders[render.id] = render
        return render

    def _render(self, project: Project, render_id: str) -> Render:
        render = self._renders.get(render_id)
        if render is None or render.project_id != project.id:
            raise errors.NotFound("Render not found")
        return render

    def _template_version(
        self, project: Project, slug: str, version: int | None
    ) -> tuple[Template, int]:
        template = project.templates.get(slug)
        if template is None:
            raise errors.TemplateNotFound(f"Template {slug!r} not found")
        if version is not None:
            if version not in template.versions:
                raise errors.VersionNotFound(f"Template version {version} not found")
            return template, version
        if template.published_version is None:
            raise errors.NoPublishedVersion()
        return template, template.published_version

    def submit_render(
        self,
        project: Project,
        *,
        slug: str,
        data: dict[str, Any],
        version: int | None,
        idempotency_key: str | None,
        filename: str | None,
    ) -> tuple[Render, bool]:
        """Enqueue a render, or return the one this idempotency key already made.

        Returns the render and whether it is new. ``data`` is checked against the chosen
        template's manifest (its ``inputSchema``), compiled once per template.
        """
        if idempotency_key is not None:
            existing = self._idempotency.get((project.id, idempotency_key))
            if existing is not None:
                return self._renders[existing], False
        template, chosen = self._template_version(project, slug, version)
        if template.input_schema is not None:
            checker = self._manifest_checkers.get(template.slug)
            if checker is None:
                checker = self._manifest_checkers[template.slug] = SchemaChecker(
                    template.input_schema
                )
            issues = checker.issues(data)
            if issues is not None:
                raise errors.InvalidInputData(issues=issues)
        if self.faults.queue_unavailable:
            raise errors.QueueUnavailable(headers={"Retry-After": "5"})
        now = self.clock.now()
        render = self._add_render(
            Render(
                id=uuid7(now),
                project_id=project.id,
                template_slug=template.slug,
                template_name=template.name,
                version=chosen,
                data=data,
                created_at=now,
                queue_for=timedelta(seconds=self.settings.queue_seconds),
                render_for=timedelta(seconds=self.settings.render_seconds),
                failure=domain.render_failure(data),
                filename=filename,
            )
        )
        if idempotency_key is not None:
            self._idempotency[(project.id, idempotency_key)] = render.id
        return render, True

    def get_render(self, project: Project, render_id: str) -> tuple[Render, RenderState]:
        """A render of the project and its state now."""
        render = self._render(project, render_id)
        return render, domain.render_state(render, self.clock.now())

    def _succeeded(self, project: Project, render_id: str, error: type[errors.ApiError]) -> Render:
        render = self._render(project, render_id)
        status = domain.render_state(render, self.clock.now()).status
        if status != "succeeded":
            raise error(f"Render is not ready (status: {status})")
        return render

    def _pdf(self, render: Render) -> bytes:
        if self.faults.storage_fails:
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
        return pdf

    def download(self, project: Project, render_id: str) -> tuple[Render, bytes]:
        """A succeeded render's PDF; ``409 conflict`` naming the status otherwise."""
        render = self._render(project, render_id)
        status = domain.render_state(render, self.clock.now()).status
        if status != "succeeded":
            raise errors.Conflict(f"Render is not downloadable (status: {status})")
        return render, self._pdf(render)

    def control_create_render(
        self, project: Project, *, status: RenderStatus, slug: str, data: dict[str, Any]
    ) -> tuple[Render, RenderState]:
        """A render put straight into a status (control API)."""
        template = project.templates.get(slug)
        if template is None:
            raise errors.TemplateNotFound(f"Template {slug!r} not found")
        now = self.clock.now()
        render = self._add_render(
            Render(
                id=uuid7(now),
                project_id=project.id,
                template_slug=slug,
                template_name=template.name,
                version=template.published_version or template.versions[-1],
                data=data,
                created_at=now,
                queue_for=timedelta(0),
                render_for=timedelta(0),
                failure=domain.render_failure(data),
                forced_status=status,
                forced_at=now,
            )
        )
        return render, domain.render_state(render, now)

    def force_render_status(
        self, render_id: str, status: RenderStatus
    ) -> tuple[Render, RenderState]:
        """Pin a render's status from now on (control API)."""
        render = self._renders.get(render_id)
        if render is None:
            raise errors.NotFound("Render not found")
        now = self.clock.now()
        render = replace(render, forced_status=status, forced_at=now)
        self._renders[render_id] = render
        return render, domain.render_state(render, now)

    def render_project(self, render_id: str) -> Project:
        """The project a render belongs to (control API)."""
        render = self._renders.get(render_id)
        if render is None:
            raise errors.NotFound("Render not found")
        return self._projects[render.project_id]

    # ---- shares -------------------------------------------------------------------

    def create_share(
        self,
        project: Project,
        render_id: str,
        *,
        channel: domain.Channel,
        recipient_email: str | None,
        message: str | None,
        expires_at: datetime | None,
    ) -> tuple[Share, str]:
        """A new share of a succeeded render, and its token (returned, never stored)."""
        render = self._succeeded(project, render_id, errors.NotReady)
        return self._add_share(render, channel, recipient_email, message, expires_at)

    def _add_share(
        self,
        render: Render,
        channel: domain.Channel,
        recipient_email: str | None,
        message: str | None,
        expires_at: datetime | None,
    ) -> tuple[Share, str]:
        now = self.clock.now()
        nonce = self.minter.new_nonce()
        token = self.minter.token(nonce)
        share = Share(
            id=uuid7(now),
            render_id=render.id,
            project_id=render.project_id,
            sequence=self._next_sequence(),
            token_nonce=nonce,
            token_digest=digest(token),
            channel=channel,
            recipient_email=recipient_email,
            message=message,
            expires_at=expires_at,
            created_at=now,
        )
        self._shares[share.id] = share
        siblings = self._shares_by_render[render.id]
        if siblings and self._shares[siblings[-1]].created_at > now:
            self._out_of_order.add(render.id)  # the clock was moved back
        siblings.append(share.id)
        self._share_by_token[share.token_digest] = share.id
        self._record(render.id, "share_created", share.id, now)
        return share, token

    def share_token(self, share: Share) -> str:
        """Re-derive a share's token for display (it is not stored)."""
        return self.minter.token(share.token_nonce)

    def list_shares(self, project: Project, render_id: str) -> list[tuple[Share, int]]:
        """Every share of the render, newest first, revoked included, with click counts."""
        render = self._render(project, render_id)
        shares = [self._shares[share_id] for share_id in self._shares_by_render.get(render.id, ())]
        if render.id in self._out_of_order:
            shares = domain.newest_first(shares)
        else:
            shares.reverse()  # created in time order: newest first is a reversal
        return [(share, self._click_counts[share.id]) for share in shares]

    def revoke_share(self, project: Project, render_id: str, share_id: str) -> Share:
        """Revoke once: an unknown, foreign or already revoked share is ``404``."""
        render = self._render(project, render_id)
        share = self._shares.get(share_id)
        if share is None or share.render_id != render.id or share.revoked_at is not None:
            raise errors.NotFound("Share not found")
        now = self.clock.now()
        revoked = domain.revoke(share, now)
        self._shares[share_id] = revoked
        self._record(render.id, "share_revoked", share_id, now)
        return revoked

    def resolve_share(self, token: str) -> tuple[Share, Render]:
        """The active share behind a public token; unknown, revoked, expired all ``404``."""
        share_id = self._share_by_token.get(digest(token))
        share = self._shares.get(share_id) if share_id is not None else None
        if share is None or not domain.share_resolves(share, self.clock.now()):
            raise errors.NotFound("Share link not found")
        return share, self._renders[share.render_id]

    def shared_pdf(self, render: Render) -> bytes:
        """The PDF behind a resolved share."""
        return self._pdf(render)

    # ---- email --------------------------------------------------------------------

    def succeeded_render(self, project: Project, render_id: str) -> Render:
        """A render of the project that has succeeded; ``404``/``409 not_ready`` otherwise."""
        return self._succeeded(project, render_id, errors.NotReady)

    def add_email_share(
        self, render: Render, *, to: str, message: str | None, expires_at: datetime | None
    ) -> tuple[Share, str]:
        """Write the email-channel share an email will deliver; it stays if the send fails."""
        return self._add_share(render, "email", to, message, expires_at)

    def record_email_sent(self, email: OutgoingEmail, message_id: str, sent_at: datetime) -> None:
        """Note a delivered email in the render's engagement and, for the outbox, keep it."""
        self._record(email.render_id, "email_sent", email.share_id, sent_at)

    def keep_in_outbox(self, email: OutgoingEmail) -> str:
        """The outbox transport's delivery: keep the mail, return its id."""
        now = self.clock.now()
        sent = SentEmail(id=uuid7(now), email=email, sent_at=now)
        self.outbox.append(sent)
        return sent.id

    # ---- engagement ---------------------------------------------------------------

    def _record(
        self,
        render_id: str,
        event_type: EventType,
        share_id: str | None,
        at: datetime,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        engagement = self._engagement[render_id]
        engagement.counts[event_type] += 1
        if event_type == "viewed" and share_id is not None:
            engagement.link_opens += 1
            self._click_counts[share_id] += 1
        engagement.recent.appendleft(EngagementEvent(uuid7(at), event_type, share_id, at, metadata))

    def _recipient_event(
        self,
        render_id: str,
        event_type: EventType,
        share_id: str | None,
        source_ip: str,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        now = self.clock.now()
        key = (share_id or f"render:{render_id}", event_type, source_ip)
        if not domain.counts_again(self._last_counted.get(key), now):
            return False
        self._last_counted[key] = now
        self._record(render_id, event_type, share_id, now, metadata)
        return True

    def record_share_event(self, share: Share, event_type: EventType, source_ip: str) -> bool:
        """A recipient's view or download through a share link (de-duplicated)."""
        return self._recipient_event(share.render_id, event_type, share.id, source_ip)

    def record_render_event(
        self,
        project: Project,
        render_id: str,
        event_type: EventType,
        source_ip: str,
        metadata: dict[str, Any] | None,
    ) -> bool:
        """A recipient event reported through the API (de-duplicated)."""
        render = self._render(project, render_id)
        return self._recipient_event(render.id, event_type, None, source_ip, metadata)

    def engagement(self, project: Project, render_id: str) -> EngagementView:
        """Counts of every event kind, link opens, total and the 25 most recent events."""
        render = self._render(project, render_id)
        engagement = self._engagement.get(render.id, _Engagement())
        counts: dict[str, int] = {name: engagement.counts[name] for name in domain.EVENT_TYPES}
        return EngagementView(
            counts, engagement.link_opens, sum(counts.values()), list(engagement.recent)
        )

    # ---- requests: journal and rate limit -----------------------------------------

    def journal_request(self, method: str, path: str, status: int) -> None:
        """Remember one answered request (newest kept, bounded)."""
        self.journal.appendleft(JournalEntry(method, path, status, self.clock.now()))

    def admit(self, client: str) -> int | None:
        """Count one request against the client's minute; seconds to wait when over."""
        limit = self.faults.rate_limit_per_minute
        if limit is None:
            return None
        now = self.clock.now()
        window = self._rate_windows.setdefault(client, collections.deque())
        while window and now - window[0] >= timedelta(minutes=1):
            window.popleft()
        if len(window) >= limit:
            wait = timedelta(minutes=1) - (now - window[0])
            return max(1, int(wait.total_seconds() + 0.999))
        window.append(now)
        return None

    def clear_rate_windows(self) -> None:
        """Start every client's minute afresh (when the limit changes)."""
        self._rate_windows.clear()

    def iter_projects(self) -> Iterable[Project]:
        """Every live project (for the start banner)."""
        return (p for p in self._projects.values() if not p.deleted)

    def renders_of(self, project: Project) -> list[Render]:
        """A project's renders (for the start banner)."""
        return [r for r in self._renders.values() if r.project_id == project.id]
