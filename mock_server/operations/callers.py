"""Who a request comes from, looked up once: the one typed value every endpoint receives.

The HTTP middleware reads the request's ``Authorization`` header (or its share link) once,
asks the store once, and leaves the answer on the request: ``NoKey``, ``MalformedKey``,
``UnknownKey``, ``DeletedProject`` or the ``ProjectView`` of the key's project. An endpoint
that needs a project calls ``require_project``, which turns the other four into the API's
``401`` and ``403``; nothing looks the key up a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mock_server.model import errors
from mock_server.model.clock import ClockState
from mock_server.model.faults import Faults
from mock_server.model.records import Project, Share


@dataclass(frozen=True, slots=True)
class ProjectView:
    """One project as one request sees it: the record, its clock and the faults in force."""

    project: Project
    clock: ClockState
    faults: Faults

    def now(self) -> datetime:
        """The project's time."""
        return self.clock.current()


@dataclass(frozen=True, slots=True)
class Link:
    """A share link's share and its project's view, as one request read them."""

    view: ProjectView
    share: Share


@dataclass(frozen=True, slots=True)
class NoKey:
    """The request sent no ``Authorization`` header."""


@dataclass(frozen=True, slots=True)
class MalformedKey:
    """The header is not ``Bearer <key>``."""


@dataclass(frozen=True, slots=True)
class UnknownKey:
    """A well-formed key that no project holds."""


@dataclass(frozen=True, slots=True)
class DeletedProject:
    """A key whose project was deleted."""

    project_id: str


Caller = NoKey | MalformedKey | UnknownKey | DeletedProject | ProjectView


def require_project(caller: Caller) -> ProjectView:
    """The caller's project; ``401`` without a valid key, ``403`` for a deleted project."""
    match caller:
        case ProjectView():
            return caller
        case NoKey():
            raise errors.Unauthorized("Missing Authorization header")
        case MalformedKey():
            raise errors.Unauthorized("Authorization must be 'Bearer <API key>'")
        case UnknownKey():
            raise errors.Unauthorized("Invalid API key")
        case DeletedProject():
            raise errors.Forbidden()


def project_of(caller: Caller | None, link: Link | None) -> ProjectView | None:
    """The live project a request belongs to: its key's, else its share link's."""
    if isinstance(caller, ProjectView):
        return caller
    if link is not None and not link.view.project.deleted:
        return link.view
    return None
