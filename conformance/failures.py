"""Assertions for rules: each failure a title and the evidence, never a bare ``assert``.

``RuleFailure`` carries what was expected, the exchange that showed otherwise, and, where
the check rests on a source of its own rather than its rule's, that source: the runner
judges from it (``judge``) whether the target departs from the contract or takes a choice
the contract allows. The report adds the rule's transcript and curl lines.
"""

from __future__ import annotations

from typing import Any, NoReturn

from conformance.client import Exchange


class RuleFailure(AssertionError):
    """A rule's property does not hold: ``title`` says which, ``expected`` what should be."""

    def __init__(
        self,
        title: str,
        expected: str,
        exchange: Exchange | None = None,
        evidence: str = "",
        source: str | None = None,
    ) -> None:
        super().__init__(f"{title}\nexpected: {expected}")
        self.title = title
        self.expected = expected
        self.exchange = exchange
        self.evidence = evidence
        self.source = source
        """What the failed check rests on, when it is not the rule's whole source."""


def fail(
    title: str,
    expected: str,
    exchange: Exchange | None = None,
    evidence: str = "",
    source: str | None = None,
) -> NoReturn:
    """Fail the rule."""
    raise RuleFailure(title, expected, exchange, evidence, source)


def expect(
    condition: bool,
    title: str,
    expected: str,
    exchange: Exchange | None = None,
    source: str | None = None,
) -> None:
    """Fail the rule unless ``condition`` holds."""
    if not condition:
        fail(title, expected, exchange, source=source)


def expect_status(exchange: Exchange, status: int, what: str, source: str | None = None) -> Any:
    """Expect a status; return the parsed JSON body."""
    expect(
        exchange.status == status,
        f"{what}: {exchange.summary()}",
        f"HTTP {status}",
        exchange,
        source,
    )
    return exchange.json()


def is_error(exchange: Exchange, status: int, code: str) -> bool:
    """Whether an exchange is the error ``status``/``code`` in the envelope."""
    body = exchange.json()
    error = body.get("error") if isinstance(body, dict) else None
    return exchange.status == status and isinstance(error, dict) and error.get("code") == code


def expect_error(
    exchange: Exchange, status: int, code: str, what: str, source: str | None = None
) -> dict[str, Any]:
    """Expect the error envelope with this status and code; return the ``error`` object."""
    body = exchange.json()
    error = body.get("error") if isinstance(body, dict) else None
    got = error.get("code") if isinstance(error, dict) else None
    expect(
        exchange.status == status and got == code,
        f"{what}: {exchange.summary()} with code {got!r}",
        f'HTTP {status} with {{"error": {{"code": "{code}", ...}}}}',
        exchange,
        source,
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
