"""The pytest plugin: run the conformance rules inside an implementer's own test session.

    pytest --craftkit-base-url https://staging.example --craftkit-api-key ck_test_...

Each rule becomes one test item (``craftkit::SHARE-REVOKE-ONCE``); a failing rule fails its
item with the same report the command line prints. Without ``--craftkit-base-url`` the
plugin adds nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.config import DEFAULT_SEED, PROFILES, RunConfig
from conformance.report import failure_text
from conformance.rules import Rule
from conformance.runner import ConformanceSession, SetupError, select_rules

_SESSION_KEY = pytest.StashKey[ConformanceSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's options, named like the command line's with a ``craftkit-`` prefix."""
    group = parser.getgroup("craftkit", "Craftkit conformance")
    group.addoption("--craftkit-base-url", help="Run the conformance rules against this base URL.")
    group.addoption("--craftkit-api-key")
    group.addoption("--craftkit-other-api-key")
    group.addoption("--craftkit-render-id")
    group.addoption("--craftkit-template-slug")
    group.addoption("--craftkit-template-data", help="JSON object")
    group.addoption("--craftkit-not-ready-render-id")
    group.addoption("--craftkit-share-base-url")
    group.addoption("--craftkit-read-only", action="store_true")
    group.addoption("--craftkit-max-rps", type=float)
    group.addoption("--craftkit-profile", choices=sorted(PROFILES), default="default")
    group.addoption("--craftkit-seed", type=int, default=DEFAULT_SEED)
    group.addoption(
        "--craftkit-rule", action="append", default=[], help="Only this rule (repeatable)."
    )


def _config(config: pytest.Config) -> RunConfig:
    option = config.getoption
    data = option("--craftkit-template-data")
    return RunConfig(
        base_url=option("--craftkit-base-url"),
        api_key=option("--craftkit-api-key"),
        other_api_key=option("--craftkit-other-api-key"),
        render_id=option("--craftkit-render-id"),
        template_slug=option("--craftkit-template-slug"),
        template_data=json.loads(data) if data else None,
        not_ready_render_id=option("--craftkit-not-ready-render-id"),
        share_base_url=option("--craftkit-share-base-url"),
        read_only=option("--craftkit-read-only"),
        max_rps=option("--craftkit-max-rps"),
        profile=PROFILES[option("--craftkit-profile")],
        seed=option("--craftkit-seed"),
        only=tuple(option("--craftkit-rule")),
    )


class RuleItem(pytest.Item):
    """One conformance rule as a test."""

    def __init__(self, *, rule: Rule, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule

    def runtest(self) -> None:
        """Run the rule on the session's target."""
        session = self.config.stash.get(_SESSION_KEY, None)
        if session is None:
            try:
                session = ConformanceSession(_config(self.config))
            except SetupError as exc:
                pytest.exit(f"craftkit conformance cannot run: {exc}", returncode=2)
            self.config.stash[_SESSION_KEY] = session
        result = session.run_rule(self.rule)
        if result.outcome in ("skipped", "deviated"):
            pytest.skip(result.reason or result.title)
        if result.failed:
            raise RuleFailedError(failure_text(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The rule's report, not a Python traceback."""
        if isinstance(excinfo.value, RuleFailedError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        """Where the test comes from, for pytest's output."""
        return "craftkit", None, f"craftkit::{self.rule.id}"


class RuleFailedError(Exception):
    """A rule's failure, carried to pytest's report."""


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add one item per rule when a base URL is given."""
    if not config.getoption("--craftkit-base-url"):
        return
    only = tuple(config.getoption("--craftkit-rule"))
    try:
        rules = select_rules(only)
    except SetupError as exc:
        raise pytest.UsageError(str(exc)) from exc
    items.extend(
        RuleItem.from_parent(session, name=f"craftkit::{rule.id}", rule=rule) for rule in rules
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Revoke what the rules created and put the mock's faults back."""
    conformance = session.config.stash.get(_SESSION_KEY, None)
    if conformance is not None:
        conformance.finish()
