"""The seed file: projects, keys, templates and renders the mock starts with and resets to.

Read with pydantic so a mistake in a partner's own seed file is reported with its place in
the file, at start, rather than as odd behaviour later.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mock_server.model.records import RENDER_STATUSES

if TYPE_CHECKING:
    from mock_server.model.records import RenderStatus
else:  # pydantic reads the annotation at run time
    RenderStatus = Literal[RENDER_STATUSES]


class SeedError(ValueError):
    """The seed file cannot be used; the message says where and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SeedTemplate(_Model):
    """A template every project starts with."""

    slug: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1)
    versions: tuple[int, ...] = Field(min_length=1)
    published_version: int | None = Field(alias="publishedVersion")
    input_schema: dict[str, Any] | None = Field(default=None, alias="inputSchema")


class SeedRender(_Model):
    """A render that exists from the start, in a fixed state."""

    id: str
    template: str
    status: RenderStatus = "succeeded"
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(alias="createdAt")

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        if value not in RENDER_STATUSES:
            raise ValueError(f"status must be one of {RENDER_STATUSES}")
        return value


class SeedProject(_Model):
    """A project, its API key, and its renders."""

    id: str
    name: str
    api_key: str = Field(alias="apiKey", pattern=r"^ck_(test|live)_[A-Za-z0-9_-]{8,}$")
    share_domain: str | None = Field(default=None, alias="shareDomain")
    email_from: str | None = Field(default=None, alias="emailFrom")
    renders: tuple[SeedRender, ...] = ()


class Seed(_Model):
    """The whole seed file."""

    templates: tuple[SeedTemplate, ...] = Field(min_length=1)
    projects: tuple[SeedProject, ...] = ()


def load_seed(path: Path) -> Seed:
    """Read and check a seed file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SeedError(f"cannot read seed file {path}: {exc}") from exc
    try:
        seed = Seed.model_validate(raw)
    except ValidationError as exc:
        raise SeedError(f"seed file {path} is invalid:\n{exc}") from exc
    slugs = {template.slug for template in seed.templates}
    for project in seed.projects:
        for render in project.renders:
            if render.template not in slugs:
                raise SeedError(
                    f"{path}: render {render.id} names unknown template {render.template!r}"
                )
    return seed


def default_seed_path() -> Path:
    """The seed shipped with the toolkit (``fixtures/seed.yaml``)."""
    from importlib import resources

    packaged = resources.files("mock_server").joinpath("seed.yaml")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "fixtures" / "seed.yaml"
