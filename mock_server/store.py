"""All of the mock's state, in one object whose methods are named after the operations.

A project is a sandbox: its renders, shares, engagement, outbox, clock and fault switches
live in its own ``Sandbox``, so a lookup by id can only ever find the caller's own
resources, and one project can be reset or deleted without touching any other. Parallel
test runs, each in a project of its own, share one mock without seeing each other.

Methods are synchronous and called from ``async`` endpoints on one event loop, so each call
is atomic: fifty concurrent revokes of one share see exactly one winner, and concurrent
views are counted exactly. No record here holds a plain API key or share token: keys and
tokens are kept as SHA-256 digests, and share tokens are re-derived on demand by the
``ShareTokenMinter``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import craftkit_spec
from mock_server import domain, errors
from mock_server.clock import MockClock, SandboxClock
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
from mock_server.faults import FAULT_NAMES, Faults
from mock_server.ids import ShareTokenMinter, digest, new_api_key, uuid7
from mock_server.pdf import render_pdf
from mock_server.seed import Seed, SeedProject
from mock_server.settings import Settings
from mock_server.validation import SchemaChecker

RECENT_EVENTS: int = craftkit_spec.fact("Engagement", "recent", "maxItems")
"""How many recent events engagement shows, as the spec says."""

PDF_CACHE_SIZE = 32
"""PDFs kept per project; a render's PDF is drawn again when it has fallen out."""
IDEMPOTENCY_KEYS = 10_000
"""Idempotency keys remembered per project; the oldest are forgotten first."""
DEDUP_KEYS = 10_000
"""(share, event type, address) de-duplication entries per project before old ones go."""


@dataclass(frozen=True, slots=True)
class Project:
    """A project: its name, its templates, and where its share links point."""

    id: str
    name: str
    templates: dict[str, Template]
    share_domain: str | None = None
    email_from: str | None = None
    deleted: bool = False


@dataclass
class _Engagement:
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    link_opens: int = 0
    recent: collections.deque[EngagementEvent] = field(
        default_factory=lambda: collections.deque(maxlen=RECENT_EVENTS)
    )


@dataclass(frozen=True, slots=True)
class EngagementView:
    """A render's engagement, as the API shows it."""

    counts: dict[str, int]
    link_opens: int
    total: int
    recent: list[EngagementEvent]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A kept email and its place in the mock-wide sending order."""

    sequence: int
    project_id: str
    sent: SentEmail


@dataclass
class Sandbox:
    """One project's world: everything a test of that project can drive or inspect."""

    project: Project
    clock: SandboxClock
    outbox_size: int
    fault_overrides: dict[str, Any] = field(default_factory=dict)
    renders: dict[str, Render] = field(default_factory=dict)
    idempotency: dict[str, str] = field(default_factory=dict)
    pdfs: collections.OrderedDict[str, bytes] = field(default_factory=collections.OrderedDict)
    shares: dict[str, Share] = field(default_factory=dict)
    shares_by_render: dict[str, list[str]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    out_of_order: set[str] = field(default_factory=set)
    click_counts: collections.Counter[str] = field(default_factory=collections.Counter)
    last_counted: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    engagement: dict[str, _Engagement] = field(
        default_factory=lambda: collections.defaultdict(_Engagement)
    )
    outbox: collections.deque[OutboxEntry] = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = collections.deque(maxlen=self.outbox_size)


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
        """Forget everything and load the seed again (the shared clock is the caller's)."""
        self.faults = Faults(email_transport=self.settings.email_transport)
        self._sandboxes: dict[str, Sandbox] = {}
        self._keys: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, str]] = {}
        self._render_owner: dict[str, str] = {}
        self._sequence = 0
        for seeded in self._seed.projects:
            project = self._add_project(
                seeded.id, seeded.name, seeded.api_key, seeded.share_domain, seeded.email_from
            )
            self._load_seed(self._sandboxes[project.id], seeded)

    def reset_project(self, project_id: str) -> None:
        """Forget one project's renders, shares, events, mail, clock and faults.

        Its id and keys stay valid; a seeded project gets its seeded renders back.
        """
        box = self._clear(self._live(project_id))
        seeded = next((p for p in self._seed.projects if p.id == project_id), None)
        if seeded is not None:
            self._load_seed(box, seeded)

    def _clear(self, box: Sandbox) -> Sandbox:
        """Replace a project's sandbox with an empty one (same project, clock following)."""
        for share in box.shares.values():
            self._tokens.pop(share.token_digest, None)
        for render_id in box.renders:
            self._render_owner.pop(render_id, None)
        box.clock.reset()
        fresh = Sandbox(box.project, box.clock, box.outbox_size)
        self._sandboxes[box.project.id] = fresh
        return fresh

    def _load_seed(self, box: Sandbox, seeded: SeedProject) -> None:
        for render in seeded.renders:
            self._new_render(
                box,
                box.project.templates[render.template],
                None,
                dict(render.data),
                render_id=render.id,
                created_at=render.created_at,
                forced_status=render.status,
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
        self._sandboxes[project_id] = Sandbox(
            project, SandboxClock(self.clock), self.settings.outbox_size
        )
        self._keys[digest(api_key)] = project_id
        return project

    def create_project(self, name: str | None) -> tuple[Project, str]:
        """A new project with the seed's templates, and its freshly minted key."""
        api_key = new_api_key()
        project_id = uuid7(self.clock.now())
        project = self._add_project(project_id, name or f"Project {project_id[:8]}", api_key)
        return project, api_key

    def delete_project(self, project_id: str) -> None:
        """Forget a project's state; its keys now answer ``403 forbidden``."""
        box = self._clear(self._live(project_id))
        box.project = replace(box.project, deleted=True)

    def _live(self, project_id: str) -> Sandbox:
        box = self._sandboxes.get(project_id)
        if box is None or box.project.deleted:
            raise errors.NotFound("Project not found")
        return box

    def _box(self, project: Project) -> Sandbox:
        return self._sandboxes[project.id]

    def project_of_key(self, api_key: str) -> Project | None:
        """The key's project, deleted or not; ``None`` for a key nobody holds."""
        project_id = self._keys.get(digest(api_key))
        return None if project_id is None else self._sandboxes[project_id].project

    def project_of_token(self, token: str) -> Project | None:
        """The project whose share the token is (active or not); ``None`` if there is none."""
        found = self._tokens.get(digest(token))
        return None if found is None else self._sandboxes[found[0]].project

    def authenticate(self, api_key: str) -> Project:
        """The key's project; unknown keys are 401 and deleted projects 403."""
        project = self.project_of_key(api_key)
        if project is None:
            raise errors.Unauthorized("Invalid API key")
        if project.deleted:
            raise errors.Forbidden()
        return project

    def project(self, project_id: str) -> Project:
        """A live project by id (control API)."""
        return self._live(project_id).project

    # ---- clocks and faults --------------------------------------------------------

    def clock_of(self, project: Project) -> SandboxClock:
        """The project's clock, which every time rule of the project reads."""
        return self._box(project).clock

    def faults_of(self, project: Project) -> Faults:
        """The faults in force for a project: its own switches over the shared ones."""
        overrides = self._box(project).fault_overrides
        return replace(self.faults, **overrides) if overrides else self.faults

    def set_faults(self, changes: dict[str, Any], project: Project | None = None) -> Faults:
        """Switch faults for every project (``project`` None) or for one project only."""
        unknown = set(changes) - FAULT_NAMES
        if unknown:
            raise ValueError(f"unknown fault switches: {sorted(unknown)}")
        if project is None:
            self.faults = replace(self.faults, **changes)
            return self.faults
        self._box(project).fault_overrides.update(changes)
        return self.faults_of(project)

    # ---- renders ------------------------------------------------------------------

    def _new_render(
        self,
        box: Sandbox,
        template: Template,
        version: int | None,
        data: dict[str, Any],
        *,
        render_id: str | None = None,
        created_at: datetime | None = None,
        forced_status: RenderStatus | None = None,
        filename: str | None = None,
    ) -> Render:
        """Add a render: timed by the settings, or pinned to ``forced_status`` at once."""
        now = created_at or box.clock.now()
        timed = forced_status is None
        render = Render(
            id=render_id or uuid7(now),
            project_id=box.project.id,
            template_slug=template.slug,
            template_name=template.name,
            version=version or template.published_version or template.versions[-1],
            data=data,
            created_at=now,
            queue_for=timedelta(seconds=self.settings.queue_seconds if timed else 0),
            render_for=timedelta(seconds=self.settings.render_seconds if timed else 0),
            failure=domain.render_failure(data),
            forced_status=forced_status,
            forced_at=None if timed else now,
            filename=filename,
        )
        box.renders[render.id] = render
        self._render_owner[render.id] = box.project.id
        return render

    def _render(self, project: Project, render_id: str) -> Render:
        render = self._box(project).renders.get(render_id)
        if render is None:
            raise errors.NotFound("Render not found")
        return render

    def _template(self, project: Project, slug: str) -> Template:
        template = project.templates.get(slug)
        if template is None:
            raise errors.TemplateNotFound(f"Template {slug!r} not found")
        return template

    def _template_version(
        self, project: Project, slug: str, version: int | None
    ) -> tuple[Template, int]:
        template = self._template(project, slug)
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
        box = self._box(project)
        # Kept by digest: a key may be long (the spec sets no maximum), its digest is not.
        key = None if idempotency_key is None else digest(idempotency_key)
        if key is not None:
            existing = box.idempotency.get(key)
            if existing is not None:
                return box.renders[existing], False
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
        if self.faults_of(project).queue_unavailable:
            raise errors.QueueUnavailable(headers={"Retry-After": "5"})
        render = self._new_render(box, template, chosen, data, filename=filename)
        if key is not None:
            box.idempotency[key] = render.id
            if len(box.idempotency) > IDEMPOTENCY_KEYS:
                del box.idempotency[next(iter(box.idempotency))]
        return render, True

    def get_render(self, project: Project, render_id: str) -> tuple[Render, RenderState]:
        """A render of the project and its state now."""
        render = self._render(project, render_id)
        return render, domain.render_state(render, self.clock_of(project).now())

    def succeeded_render(
        self,
        project: Project,
        render_id: str,
        error: type[errors.ApiError] = errors.NotReady,
        verb: str = "ready",
    ) -> Render:
        """A render of the project that has succeeded; ``404``, or ``error`` naming its status."""
        render, state = self.get_render(project, render_id)
        if state.status != "succeeded":
            raise error(f"Render is not {verb} (status: {state.status})")
        return render

    def pdf(self, render: Render) -> bytes:
        """A succeeded render's PDF, drawn once and kept while it is among the recent ones."""
        box = self._sandboxes[render.project_id]
        if self.faults_of(box.project).storage_fails:
            raise errors.Internal("Could not read the render from storage")
        pdf = box.pdfs.get(render.id)
        if pdf is None:
            pdf = render_pdf(
                render_id=render.id,
                template_name=render.template_name,
                version=render.version,
                data=render.data,
                created_at=render.created_at,
            )
            box.pdfs[render.id] = pdf
            if len(box.pdfs) > PDF_CACHE_SIZE:
                box.pdfs.popitem(last=False)
        else:
            box.pdfs.move_to_end(render.id)
        return pdf

    def download(self, project: Project, render_id: str) -> tuple[Render, bytes]:
        """A succeeded render's PDF; ``409 conflict`` naming the status otherwise."""
        render = self.succeeded_render(project, render_id, errors.Conflict, "downloadable")
        return render, self.pdf(render)

    def control_create_render(
        self, project: Project, *, status: RenderStatus, slug: str, data: dict[str, Any]
    ) -> tuple[Render, RenderState]:
        """A render put straight into a status (control API)."""
        box = self._box(project)
        template = self._template(project, slug)
        render = self._new_render(box, template, None, data, forced_status=status)
        return render, domain.render_state(render, box.clock.now())

    def force_render_status(
        self, render_id: str, status: RenderStatus
    ) -> tuple[Render, RenderState]:
        """Pin a render's status from now on (control API)."""
        project_id = self._render_owner.get(render_id)
        if project_id is None:
            raise errors.NotFound("Render not found")
        box = self._sandboxes[project_id]
        now = box.clock.now()
        render = replace(box.renders[render_id], forced_status=status, forced_at=now)
        box.renders[render_id] = render
        return render, domain.render_state(render, now)

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
        render = self.succeeded_render(project, render_id)
        return self._add_share(render, channel, recipient_email, message, expires_at)

    def _add_share(
        self,
        render: Render,
        channel: domain.Channel,
        recipient_email: str | None,
        message: str | None,
        expires_at: datetime | None,
    ) -> tuple[Share, str]:
        box = self._sandboxes[render.project_id]
        now = box.clock.now()
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
        box.shares[share.id] = share
        siblings = box.shares_by_render[render.id]
        if siblings and box.shares[siblings[-1]].created_at > now:
            box.out_of_order.add(render.id)  # the clock was moved back
        siblings.append(share.id)
        self._tokens[share.token_digest] = (box.project.id, share.id)
        self._record(box, render.id, "share_created", share.id, now)
        return share, token

    def share_token(self, share: Share) -> str:
        """Re-derive a share's token for display (it is not stored)."""
        return self.minter.token(share.token_nonce)

    def list_shares(self, project: Project, render_id: str) -> list[tuple[Share, int]]:
        """Every share of the render, newest first, revoked included, with click counts."""
        render = self._render(project, render_id)
        box = self._box(project)
        shares = [box.shares[share_id] for share_id in box.shares_by_render.get(render.id, ())]
        if render.id in box.out_of_order:
            shares = domain.newest_first(shares)
        else:
            shares.reverse()  # created in time order: newest first is a reversal
        return [(share, box.click_counts[share.id]) for share in shares]

    def revoke_share(self, project: Project, render_id: str, share_id: str) -> Share:
        """Revoke once: an unknown, foreign or already revoked share is ``404``."""
        render = self._render(project, render_id)
        box = self._box(project)
        share = box.shares.get(share_id)
        if share is None or share.render_id != render.id or share.revoked_at is not None:
            raise errors.NotFound("Share not found")
        now = box.clock.now()
        revoked = domain.revoke(share, now)
        box.shares[share_id] = revoked
        self._record(box, render.id, "share_revoked", share_id, now)
        return revoked

    def resolve_share(self, token: str) -> tuple[Share, Render]:
        """The active share behind a public token, on its project's clock; else ``404``.

        Unknown, revoked and expired tokens are one and the same ``404``.
        """
        found = self._tokens.get(digest(token))
        if found is not None:
            box = self._sandboxes[found[0]]
            share = box.shares[found[1]]
            if domain.share_resolves(share, box.clock.now()):
                return share, box.renders[share.render_id]
        raise errors.NotFound("Share link not found")

    # ---- email --------------------------------------------------------------------

    def add_email_share(
        self, render: Render, *, to: str, message: str | None, expires_at: datetime | None
    ) -> tuple[Share, str]:
        """Write the email-channel share an email will deliver; it stays if the send fails."""
        return self._add_share(render, "email", to, message, expires_at)

    def record_email_sent(self, email: OutgoingEmail) -> datetime:
        """Note a delivered email in the render's engagement; the instant it was sent."""
        box = self._sandboxes[self._render_owner[email.render_id]]
        now = box.clock.now()
        self._record(box, email.render_id, "email_sent", email.share_id, now)
        return now

    def keep_in_outbox(self, project: Project, email: OutgoingEmail) -> str:
        """The outbox transport's delivery: keep the mail in the project's outbox."""
        box = self._box(project)
        now = box.clock.now()
        sent = SentEmail(id=uuid7(now), email=email, sent_at=now)
        box.outbox.append(OutboxEntry(self._next_sequence(), project.id, sent))
        return sent.id

    def emails(
        self,
        project_id: str | None = None,
        *,
        render_id: str | None = None,
        to: str | None = None,
    ) -> list[OutboxEntry]:
        """Kept mail, oldest first: one project's, or every project's, optionally filtered."""
        if project_id is not None:
            box = self._sandboxes.get(project_id)
            entries = list(box.outbox) if box is not None else []
        else:
            entries = [entry for box in self._sandboxes.values() for entry in box.outbox]
            entries.sort(key=lambda entry: entry.sequence)
        return [
            entry
            for entry in entries
            if (render_id is None or entry.sent.email.render_id == render_id)
            and (to is None or entry.sent.email.to.lower() == to.lower())
        ]

    # ---- engagement ---------------------------------------------------------------

    def _record(
        self,
        box: Sandbox,
        render_id: str,
        event_type: EventType,
        share_id: str | None,
        at: datetime,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        engagement = box.engagement[render_id]
        engagement.counts[event_type] += 1
        if event_type == "viewed" and share_id is not None:
            engagement.link_opens += 1
            box.click_counts[share_id] += 1
        engagement.recent.appendleft(EngagementEvent(uuid7(at), event_type, share_id, at, metadata))

    def _recipient_event(
        self,
        box: Sandbox,
        render_id: str,
        event_type: EventType,
        share_id: str | None,
        source_ip: str,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        now = box.clock.now()
        key = (share_id or f"render:{render_id}", event_type, source_ip)
        if not domain.counts_again(box.last_counted.get(key), now):
            return False
        box.last_counted.pop(key, None)  # re-inserted last: the dict stays oldest first
        box.last_counted[key] = now
        if len(box.last_counted) > DEDUP_KEYS:
            self._forget_counted(box, now)
        self._record(box, render_id, event_type, share_id, now, metadata)
        return True

    @staticmethod
    def _forget_counted(box: Sandbox, now: datetime) -> None:
        """Drop entries whose window has passed, then the oldest past the cap.

        An entry older than the window changes nothing: the event would count again anyway.
        """
        for key in [k for k, at in box.last_counted.items() if domain.counts_again(at, now)]:
            del box.last_counted[key]
        while len(box.last_counted) > DEDUP_KEYS:
            del box.last_counted[next(iter(box.last_counted))]

    def record_share_event(self, share: Share, event_type: EventType, source_ip: str) -> bool:
        """A recipient's view or download through a share link (de-duplicated)."""
        box = self._sandboxes[share.project_id]
        return self._recipient_event(box, share.render_id, event_type, share.id, source_ip)

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
        return self._recipient_event(
            self._box(project), render.id, event_type, None, source_ip, metadata
        )

    def engagement(self, project: Project, render_id: str) -> EngagementView:
        """Counts of every event kind, link opens, total and the most recent events."""
        render = self._render(project, render_id)
        engagement = self._box(project).engagement.get(render.id, _Engagement())
        counts: dict[str, int] = {name: engagement.counts[name] for name in domain.EVENT_TYPES}
        return EngagementView(
            counts, engagement.link_opens, sum(counts.values()), list(engagement.recent)
        )
