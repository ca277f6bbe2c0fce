"""Assertions for rules: each failure a title and the evidence, never a bare ``assert``.

``RuleFailure`` carries what was expected and the exchange that showed otherwise; the
report adds the rule's transcript and curl lines.
"""

from __future__ import annotations

from typing import Any, NoReturn

from conformance.client import Exchange


class RuleFailure(AssertionError):
    """A rule's property does not hold: ``title`` says which, ``expected`` what should be."""

    def __init__(
        self, title: str, expected: str, exchange: Exchange | None = None, evidence: str = ""
    ) -> None:
        super().__init__(f"{title}\nexpected: {expected}")
        self.title = title
        self.expected = expected
        self.exchange = exchange
        self.evidence = evidence


def fail(
    title: str, expected: str, exchange: Exchange | None = None, evidence: str = ""
) -> NoReturn:
    """Fail the rule."""
    raise RuleFailure(title, expected, exchange, evidence)


def expect(condition: bool, title: str, expected: str, exchange: Exchange | None = None) -> None:
    """Fail the rule unless ``condition`` holds."""
    if not condition:
        fail(title, expected, exchange)


def expect_status(exchange: Exchange, status: int, what: str) -> Any:
    """Expect a status; return the parsed JSON body."""
    expect(
        exchange.status == status,
        f"{what}: {exchange.summary()}",
        f"HTTP {status}",
        exchange,
    )
    return exchange.json()


def expect_error(exchange: Exchange, status: int, code: str, what: str) -> dict[str, Any]:
    """Expect the error envelope with this status and code; return the ``error`` object."""
    body = exchange.json()
    error = body.get("error") if isinstance(body, dict) else None
    got = error.get("code") if isinstance(error, dict) else None
    expect(
        exchange.status == status and got == code,
        f"{what}: {exchange.summary()} with code {got!r}",
        f'HTTP {status} with {{"error": {{"code": "{code}", ...}}}}',
        exchange,
    )
    assert isinstance(error, dict)
    expect(
        isinstance(error.get("message"), str),
        f"{what}: the error has no message",
        'the envelope {"error": {"code", "message", "issues"?}}',
        exchange,
    )
    return error


class RuleSkipped(Exception):
    """The target cannot support the rule (an optional surface it lacks, say): skipped."""


def skip(reason: str) -> NoReturn:
    """Skip the rule with a reason the report shows."""
    raise RuleSkipped(reason)
