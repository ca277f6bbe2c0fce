"""The suite kills a fixed sample of generated mutants (the full run is `tox -e mutation`)."""

from __future__ import annotations

import pytest

from tests.support.mutants import SAMPLE, UNOBSERVABLE, generate, judge, report

MUTANTS = {mutant.id: mutant for mutant in generate()}


def test_the_generator_makes_at_least_150_mutants_of_every_kind() -> None:
    kinds = {mutant.kind for mutant in MUTANTS.values()}
    assert len(MUTANTS) >= 150
    assert {"drop-field", "alter-field", "reorder", "swap-code", "swap-status"} <= kinds
    assert {"drop-header", "drift-time", "hand-written"} <= kinds
    assert {f"webhook-{kind}" for kind in ("drop-header", "alter-header", "missing-event")} <= kinds
    assert {"webhook-drop-field", "webhook-alter-field"} <= kinds
    assert set(SAMPLE) <= set(MUTANTS)
    assert set(UNOBSERVABLE) <= set(MUTANTS)  # every explanation names a real mutant


@pytest.mark.parametrize("mutant_id", SAMPLE)
def test_the_suite_kills_the_sampled_mutant(mutant_id: str) -> None:
    verdict = judge(MUTANTS[mutant_id], exclude=("SPEC-FUZZ",))
    assert verdict.killed_by, f"{mutant_id} survived the whole suite"
    assert "1 of 1 mutants killed" in report([verdict], verdict.seconds)
