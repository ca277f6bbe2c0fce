"""The pytest plugin: run the conformance rules inside an implementer's own test session.

    pytest --craftkit-base-url https://staging.example --craftkit-api-key ck_test_...
    pytest --craftkit-base-url https://staging.example --craftkit-api-key ... --craftkit-diff

Each rule becomes one test item (``craftkit::SHARE-REVOKE-ONCE``); a failing rule fails its
item with the same report the command line prints. With ``--craftkit-diff`` there is one
item instead, ``craftkit::DIFF``: the target compared with the reference mock, failing with
the differential report when the target departs from the contract. Without
``--craftkit-base-url`` the plugin adds nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from conformance import options
from conformance.report import failure_text
from conformance.rules import Rule
from conformance.runner import ConformanceSession, SetupError, select_rules

_SESSION_KEY = pytest.StashKey[ConformanceSession]()
_CLEANUP_KEY = pytest.StashKey[contextlib.ExitStack]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The command line's run options, each as ``--craftkit-<name>`` (one table for both)."""
    options.add_pytest_options(parser)


def _session(config: pytest.Config) -> ConformanceSession:
    """The run's session, opened on first use and closed (cleaned up) at session finish."""
    session = config.stash.get(_SESSION_KEY, None)
    if session is None:
        try:
            run_config = options.run_config(options.pytest_values(config))
            session = ConformanceSession(run_config)
        except (options.OptionError, SetupError) as exc:
            pytest.exit(f"craftkit conformance cannot run: {exc}", returncode=2)
        config.stash[_SESSION_KEY] = config.stash[_CLEANUP_KEY].enter_context(session)
    return session


class RuleItem(pytest.Item):
    """One conformance rule as a test."""

    def __init__(self, *, rule: Rule, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule

    def runtest(self) -> None:
        """Run the rule on the session's target."""
        result = _session(self.config).run_rule(self.rule)
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


class DiffItem(pytest.Item):
    """The differential run as one test."""

    def runtest(self) -> None:
        """Compare the target with the reference; fail on a departure from the contract."""
        from conformance.config import RunConfig
        from conformance.differential.machine import run_lockstep
        from conformance.differential.reference import reference_mock
        from conformance.differential.report import as_markdown

        try:
            config = options.run_config(options.pytest_values(self.config))
            with reference_mock(self.config.getoption("--craftkit-reference-url")) as reference:
                result = run_lockstep(
                    config, RunConfig(base_url=reference, profile=config.profile, seed=config.seed)
                )
        except (options.OptionError, SetupError) as exc:
            pytest.exit(f"craftkit diff cannot run: {exc}", returncode=2)
        if not result.passed:
            raise RuleFailedError(as_markdown(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The differential report, not a Python traceback."""
        if isinstance(excinfo.value, RuleFailedError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        """Where the test comes from, for pytest's output."""
        return "craftkit", None, "craftkit::DIFF"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add one item per rule when a base URL is given."""
    if not config.getoption("--craftkit-base-url"):
        return
    if config.getoption("--craftkit-diff"):
        items.append(DiffItem.from_parent(session, name="craftkit::DIFF"))
        return
    values = options.pytest_values(config)
    try:
        rules = select_rules(tuple(values["only"]), tuple(values["exclude"]))
    except SetupError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[_CLEANUP_KEY] = contextlib.ExitStack()
    items.extend(
        RuleItem.from_parent(session, name=f"craftkit::{rule.id}", rule=rule) for rule in rules
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Clean the target up (Ctrl-C included): shares revoked, the run's mock projects deleted."""
    cleanup = session.config.stash.get(_CLEANUP_KEY, None)
    if cleanup is not None:
        cleanup.close()
