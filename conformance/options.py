"""The run's options, declared once: the command line and the pytest plugin are made from this.

``craftkit-conformance run --api-key K`` and ``pytest --craftkit-api-key K`` are the same
option from the same row, with the same help, type, default and check, so the two front ends
cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import click
import pytest

from conformance.config import DEFAULT_SEED, PROFILES, RunConfig

Kind = Literal["text", "flag", "float", "int", "profile", "json", "many"]
F = TypeVar("F", bound=Callable[..., Any])


class OptionError(ValueError):
    """An option's value cannot be used; the message names the option."""


@dataclass(frozen=True)
class RunOption:
    """One option: its name without dashes, the ``RunConfig`` field it fills, and its checks."""

    name: str
    field: str
    help: str
    kind: Kind = "text"
    default: Any = None
    minimum: float | None = None

    def parse(self, value: Any) -> Any:
        """The option's value as ``RunConfig`` takes it; ``OptionError`` when unusable."""
        if value is None:
            return self.default
        if self.kind == "json":
            return _json_object(self.name, value)
        if self.kind == "profile":
            return PROFILES[value]
        if self.kind == "many":
            return tuple(value)
        if self.minimum is not None and value < self.minimum:
            raise OptionError(f"--{self.name} must be at least {self.minimum}, got {value}")
        return value


def _json_object(name: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OptionError(f"--{name} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OptionError(f"--{name} must be a JSON object")
    return data


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption("base-url", "base_url", "The API's base URL (the mock's, or a deployment's)."),
    RunOption("api-key", "api_key", "A project key; required unless the target is the mock."),
    RunOption("other-api-key", "other_api_key", "A second project's key, for isolation rules."),
    RunOption("render-id", "render_id", "A succeeded render of --api-key's project to share."),
    RunOption(
        "other-render-id",
        "other_render_id",
        "A succeeded render of --other-api-key's project (else one is rendered from "
        "--template-slug), for the rules that cross projects.",
    ),
    RunOption(
        "webhook-listen",
        "webhook_listen",
        "HOST:PORT to receive the deployment's webhooks on (subscribe --api-key's project to "
        "http://HOST:PORT/ with every event); the mock is subscribed by the run itself.",
    ),
    RunOption("webhook-secret", "webhook_secret", "The secret of that subscription."),
    RunOption(
        "webhook-wait",
        "webhook_wait",
        "Seconds to wait for each webhook delivery.",
        "float",
        30.0,
        0.1,
    ),
    RunOption("template-slug", "template_slug", "A template to render through the public API."),
    RunOption("template-data", "template_data", "JSON data for --template-slug.", "json"),
    RunOption(
        "not-ready-render-id",
        "not_ready_render_id",
        "A render of the key's project that has not succeeded.",
    ),
    RunOption(
        "share-base-url", "share_base_url", "Where share links are served, if not at shareUrl."
    ),
    RunOption("read-only", "read_only", "Create nothing: only rules that read run.", "flag", False),
    RunOption(
        "keep",
        "keep",
        "On the mock, keep the projects the run made, so the report's curl lines run as printed.",
        "flag",
        False,
    ),
    RunOption("max-rps", "max_rps", "Requests per second at most.", "float", minimum=0.1),
    RunOption("profile", "profile", "How much to try.", "profile", PROFILES["default"]),
    RunOption("seed", "seed", "Replay a run.", "int", DEFAULT_SEED),
    RunOption("rule", "only", "Run only this rule (repeatable).", "many", ()),
    RunOption("exclude-rule", "exclude", "Leave out this rule (repeatable).", "many", ()),
    RunOption(
        "render-timeout", "render_timeout", "Seconds to wait for a render.", "float", 120.0, 1.0
    ),
)


REFERENCE_URL_HELP = (
    "diff: the reference mock to compare with (default: one started for the run, "
    "`python -m mock_server --port 0`)."
)
"""The one option ``diff`` adds to the run options, on the command line and in pytest."""


def run_config(values: Mapping[str, Any]) -> RunConfig:
    """A ``RunConfig`` from option values keyed by ``RunOption.field``."""
    return RunConfig(
        **{option.field: option.parse(values.get(option.field)) for option in RUN_OPTIONS}
    )


def click_options(command: F) -> F:
    """Decorate a click command with every run option (``--base-url`` required there)."""
    for option in reversed(RUN_OPTIONS):
        flags = (f"--{option.name}", option.field)
        if option.kind == "flag":
            command = click.option(*flags, is_flag=True, help=option.help)(command)
            continue
        kind: Any = {"float": float, "int": int, "profile": click.Choice(sorted(PROFILES))}.get(
            option.kind, str
        )
        default = _shown_default(option)
        extra: dict[str, Any] = {} if default is None else {"default": default}
        command = click.option(
            *flags,
            type=kind,
            multiple=option.kind == "many",
            required=option.field == "base_url",
            show_default=default is not None,
            help=option.help,
            **extra,  # an explicit default of None would hide a missing required option
        )(command)
    return command


def _shown_default(option: RunOption) -> Any:
    if option.kind == "profile":
        return option.default.name
    return option.default if option.kind in ("int", "float") else None


def add_pytest_options(parser: pytest.Parser) -> None:
    """Add every run option to pytest as ``--craftkit-<name>``, and the diff options."""
    group = parser.getgroup("craftkit", "Craftkit conformance")
    group.addoption(
        "--craftkit-diff",
        action="store_true",
        help="Compare the target with the reference mock (one test, craftkit::DIFF) "
        "instead of running the rules.",
    )
    group.addoption("--craftkit-reference-url", default=None, help=REFERENCE_URL_HELP)
    for option in RUN_OPTIONS:
        name = f"--craftkit-{option.name}"
        if option.kind == "flag":
            group.addoption(name, action="store_true", help=option.help)
        elif option.kind == "many":
            group.addoption(name, action="append", default=[], help=option.help)
        else:
            converter: Any = {"float": float, "int": int}.get(option.kind)
            choices = sorted(PROFILES) if option.kind == "profile" else None
            group.addoption(
                name,
                type=converter,
                choices=choices,
                default=_shown_default(option),
                help=option.help,
            )


def pytest_values(config: pytest.Config) -> dict[str, Any]:
    """The run options given to pytest, keyed by ``RunOption.field``."""
    return {o.field: config.getoption(f"--craftkit-{o.name}") for o in RUN_OPTIONS}
