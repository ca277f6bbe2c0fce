"""The suite passes on the mock and fails on every broken variant, naming the broken rule."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from starlette.types import ASGIApp

from conformance.config import PROFILES, RunConfig
from conformance.runner import ConformanceSession, RunResult, select_rules
from conformance.suite.spec import portable_spec, sourced_spec
from mock_server import Settings, create_app
from mock_server.testing import serve
from tests.support.variants import VARIANTS, Variant, _rewritten, more_fields


def run_suite(app: ASGIApp, rules: tuple[str, ...]) -> RunResult:
    with serve(app) as base_url:
        # The mock delivers webhooks at once on loopback: a delivery missing for 5 s is missing.
        config = RunConfig(base_url=base_url, profile=PROFILES["quick"], webhook_wait=5.0)
        session = ConformanceSession(config)
        for rule in select_rules(only=rules):
            session.run_rule(rule)
        return session.finish()


def test_there_are_at_least_twenty_variants() -> None:
    assert len(VARIANTS) >= 20
    assert len({variant.name for variant in VARIANTS}) == len(VARIANTS)


@pytest.mark.slow
@pytest.mark.parametrize(
    "build",
    [create_app, _rewritten(more_fields)],
    ids=["the mock", "the mock sending fields of its own"],
)
def test_the_correct_mock_passes_every_rule_in_the_quick_profile(
    build: Callable[[], ASGIApp],
) -> None:
    """Quick runs every rule (fewer examples, never fewer rules), schemathesis included.

    Fields the spec does not declare are allowed (no object is closed): sending them fails
    nothing.
    """
    result = run_suite(build(), tuple(r.id for r in select_rules()))
    assert len(result.results) == len(select_rules())
    failed = [(r.rule.id, r.title) for r in result.results if r.failed]
    assert failed == []
    assert {r.outcome for r in result.results} == {"passed"}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_the_suite_fails_the_variant_naming_the_broken_rule(variant: Variant) -> None:
    """Only the rule the variant breaks runs, and it must fail.

    The correct mock passes that rule (above), so its failure here is the variant's doing;
    the other rules would only add time.
    """
    result = run_suite(variant.build(), (variant.breaks,))
    [outcome] = result.results
    assert outcome.rule.id == variant.breaks
    assert outcome.outcome == "failed", (outcome.outcome, outcome.title, outcome.evidence[-2000:])


def test_a_render_already_done_when_submitted_passes_the_lifecycle_rule() -> None:
    """With no queue or render time a render is ``succeeded`` at once; the rule polls anyway."""
    app = create_app(Settings(queue_seconds=0, render_seconds=0))
    [outcome] = run_suite(app, ("RENDER-LIFECYCLE",)).results
    assert outcome.outcome == "passed", (outcome.title, outcome.evidence[-2000:])


def test_a_schemathesis_finding_is_reported_as_the_failing_case_with_a_runnable_curl() -> None:
    variant = next(v for v in VARIANTS if v.name == "errors not in the envelope")
    [outcome] = run_suite(variant.build(), ("SPEC-FUZZ",)).results
    assert outcome.outcome == "failed"
    assert "departure(s) from the spec" in outcome.title
    assert "Response violates schema" in outcome.title
    assert "reproduce: curl" in outcome.evidence
    assert '"Authorization: Bearer $CRAFTKIT_API_KEY"' in outcome.evidence
    assert "[Filtered]" not in outcome.evidence
    # The answer the finding is about, body and all (not only "[404] Not Found:").
    assert re.search(r'\[404\] Not Found: \{"code": ?"not_found"', outcome.evidence)
    assert outcome.exchanges == ()  # not the suite's own unrelated calls


def test_a_state_model_failure_shows_its_step_sequence() -> None:
    variant = next(v for v in VARIANTS if v.name == "email shares left out of the list")
    [outcome] = run_suite(variant.build(), ("STATE-MODEL",)).results
    assert outcome.outcome == "failed"
    header, _, steps = outcome.evidence.partition(":\n")
    assert header == "Failing sequence (not shrunk in this profile)"
    lines = steps.split("\n\n")[0].splitlines()
    assert lines[0].startswith("1. ")
    assert any("email(" in line or "channel='email'" in line for line in lines), lines


def test_a_deployment_is_tested_on_the_portable_and_the_sourced_views_of_the_spec(
    tmp_path: Path,
) -> None:
    portable = yaml.safe_load(portable_spec(tmp_path).read_text())
    stamp = portable["components"]["schemas"]["InputTimestamp"]["pattern"]
    assert stamp.endswith("Z$")  # offsets (notes B.8) left out of positive tests
    assert re.fullmatch(stamp, "2101-01-01T00:00:00Z")
    assert not re.fullmatch(stamp, "2001-01-01T00:00:00Z")  # a past expiry (notes B.3) too
    for body in ("CreateShareRequest", "EmailRenderRequest", "RenderRequest"):
        # unknown keys (notes B.3) never sent as positive data
        assert portable["components"]["schemas"][body]["additionalProperties"] is False
    address = portable["components"]["schemas"]["EmailRenderRequest"]["properties"]["to"]
    assert address["pattern"] == address["x-portable-pattern"]
    sourced = yaml.safe_load(sourced_spec(tmp_path).read_text())
    slug = sourced["components"]["parameters"]["TemplateSlug"]["schema"]
    assert "minLength" not in slug  # an assumption of ours alone: not probed negatively
    job = sourced["components"]["schemas"]["RenderRequest"]["properties"]["jobId"]
    assert job["maxLength"] == 200  # stated by notes A: probed
