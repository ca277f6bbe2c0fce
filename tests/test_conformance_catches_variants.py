"""The suite passes on the mock and fails on every broken variant, naming the broken rule."""

from __future__ import annotations

import pytest
from starlette.types import ASGIApp

from conformance.config import PROFILES, RunConfig
from conformance.runner import ConformanceSession, RunResult, select_rules
from mock_server import create_app
from mock_server.testing import serve
from tests.variants import VARIANTS, Variant

# Schemathesis runs in its own process and takes seconds; it has its own test against the
# mock. The variants are judged by the suite's own rules.
FAST_RULES = tuple(r.id for r in select_rules(exclude=("SPEC-FUZZ",)))


def run_suite(app: ASGIApp, rules: tuple[str, ...] = FAST_RULES) -> RunResult:
    with serve(app) as base_url:
        session = ConformanceSession(RunConfig(base_url=base_url, profile=PROFILES["quick"]))
        for rule in select_rules(only=rules):
            session.run_rule(rule)
        return session.finish()


def test_there_are_at_least_twenty_variants() -> None:
    assert len(VARIANTS) >= 20
    assert len({variant.name for variant in VARIANTS}) == len(VARIANTS)


def test_the_correct_mock_passes_every_rule_in_the_quick_profile() -> None:
    """Quick runs every rule (fewer examples, never fewer rules), schemathesis included."""
    result = run_suite(create_app(), tuple(r.id for r in select_rules()))
    assert len(result.results) == len(select_rules())
    failed = [(r.rule.id, r.title) for r in result.results if r.failed]
    assert failed == []
    assert {r.outcome for r in result.results} == {"passed"}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_the_suite_fails_the_variant_naming_the_broken_rule(variant: Variant) -> None:
    result = run_suite(variant.build())
    failed = {r.rule.id for r in result.results if r.failed}
    assert not result.passed
    assert variant.breaks in failed, (
        f"expected {variant.breaks} among the failures, got {sorted(failed)}"
    )
