"""The decision record: one entry for every decision cited, each saying all it must, published.

Every ``notes B.n`` that the spec's ``x-source``, a rule's source or a report can cite must
have its entry in ``docs/decisions.md``, and each entry says what the mock does, what a
deployment may do instead and what the suite reports then. The record follows the working
notes' list of decisions (``../shared/API_NOTES.md``, when it is beside the checkout).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import craftkit_spec
from conformance.judge import cited, is_decision, judge
from conformance.rules import all_rules
from craftkit_docs.pages import operation_page
from tests.docs.test_docs import site  # noqa: F401  # the site, built by the documented command
from tests.support.seed_tables import REPO_ROOT

RECORD = craftkit_spec.spec_path(craftkit_spec.DECISIONS_RECORD).read_text(encoding="utf-8")
NOTES = REPO_ROOT.parent / "shared" / "API_NOTES.md"


def _entries() -> dict[str, str]:
    """Each entry's anchor and text."""
    parts = re.split(r'^<a id="(b\d+)"></a>\n', RECORD, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _cited_in(value: Any) -> set[str]:
    """Every decision cited in a spec's ``x-source`` anywhere inside ``value``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "x-source":
                sources = inner if isinstance(inner, list) else [inner]
                found |= {f"b{n}" for s in sources for n in re.findall(r"B\.(\d+)", str(s))}
            else:
                found |= _cited_in(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _cited_in(inner)
    return found


def test_every_entry_says_what_the_mock_does_what_else_is_allowed_and_what_is_reported() -> None:
    entries = _entries()
    assert len(entries) >= 17
    for anchor, text in entries.items():
        assert text.startswith(f"## B.{anchor[1:]} "), anchor
        for part in ("**The mock.**", "**Otherwise.**", "**The suite.**"):
            assert part in text, f"{anchor} lacks {part}"


def test_every_decision_the_spec_and_the_rules_cite_has_its_entry() -> None:
    spec_cites = _cited_in(craftkit_spec.load_raw()) | _cited_in(
        craftkit_spec.load_raw(craftkit_spec.spec_path("mock-control.yaml"))
    )
    rule_cites = {f"b{n}" for r in all_rules() for n in re.findall(r"B\.(\d+)", r.source)}
    assert len(spec_cites) >= 10, "the spec's citations were read"
    assert len(rule_cites) >= 10, "the rules' citations were read"
    assert sorted((spec_cites | rule_cites) - set(_entries())) == []


@pytest.mark.skipif(not NOTES.is_file(), reason="the working notes are not beside this checkout")
def test_the_record_has_an_entry_for_each_decision_of_the_notes() -> None:
    part_b = NOTES.read_text(encoding="utf-8").split("## B.", 1)[1]
    numbers = {f"b{n}" for n in re.findall(r"^(\d+)\. \*\*", part_b, flags=re.MULTILINE)}
    assert numbers == set(_entries())


def test_a_report_links_a_decision_to_its_entry() -> None:
    basis = judge(["seed 000", "notes B.15"]).basis()
    assert basis == "seed 000, notes B.15 (docs/decisions.md#b15)"
    assert "b15" in _entries()


def test_an_operation_page_links_each_cited_decision_to_its_entry() -> None:
    operation = next(
        o
        for o in craftkit_spec.iter_operations(craftkit_spec.load_resolved())
        if o.operation_id == "createShare"
    )
    page = operation_page(craftkit_spec.load_resolved(), operation).markdown
    links = re.findall(r"\[notes B\.(\d+)\]\(\.\./decisions\.html#b(\d+)\)", page) + re.findall(
        r"\[B\.(\d+)\]\(\.\./decisions\.html#b(\d+)\)", page
    )
    assert links, "createShare cites decisions"
    assert all(number == anchor and f"b{anchor}" in _entries() for number, anchor in links)


def test_the_site_publishes_the_record_and_the_index_links_it(site: Path) -> None:  # noqa: F811
    published = (site / "decisions.html").read_text(encoding="utf-8")
    for anchor in _entries():
        assert f'id="{anchor}"' in published
    assert 'href="decisions.html"' in (site / "index.html").read_text(encoding="utf-8")
    page = (site / "operations" / "createShare.html").read_text(encoding="utf-8")
    assert 'href="../decisions.html#b' in page


def _citations_in(value: Any) -> set[str]:
    """Every citation of every ``x-source`` anywhere inside ``value``, as written."""
    if isinstance(value, dict):
        found: set[str] = set()
        for key, inner in value.items():
            if key == "x-source":
                found |= {str(s) for s in (inner if isinstance(inner, list) else [inner])}
            else:
                found |= _citations_in(inner)
        return found
    if isinstance(value, list):
        return set().union(*(_citations_in(inner) for inner in value)) if value else set()
    return set()


def test_every_citation_of_the_spec_and_the_rules_is_a_source_the_spec_lists() -> None:
    spec_cites = _citations_in(craftkit_spec.load_raw())
    rule_cites = {source for rule in all_rules() for source in cited(rule.source)}
    assert {"seed 000", "notes A", "notes B.3", "assumption"} <= spec_cites
    assert len(rule_cites) >= 10
    assert sorted((spec_cites | rule_cites) - set(craftkit_spec.sources())) == []


def test_the_spec_links_each_decision_to_its_entry_under_the_entrys_title() -> None:
    entries = _entries()
    titles = dict(re.findall(r'^<a id="(b\d+)"></a>\n## B\.\d+ (.*)$', RECORD, flags=re.MULTILINE))
    decisions = {s.citation: s for s in craftkit_spec.sources().values() if s.kind == "decision"}
    assert {s.anchor for s in decisions.values()} == set(entries)
    for citation, listed in decisions.items():
        assert listed.anchor == f"b{citation.removeprefix('notes B.')}", citation
        assert listed.href == f"{craftkit_spec.DECISIONS_RECORD}#{listed.anchor}", citation
        assert listed.title == titles[str(listed.anchor)], citation
        # The link is relative to the spec, in a checkout and in a wheel alike.
        assert (craftkit_spec.spec_path().parent / str(listed.href).partition("#")[0]).is_file()


def test_seeds_and_part_a_are_facts_and_an_unlisted_citation_is_held_to_one() -> None:
    kinds = {s.citation: s.kind for s in craftkit_spec.sources().values()}
    assert {c for c, kind in kinds.items() if kind == "fact"} == {
        "openapi.yaml", "seed 000", "seed 001", "seed 002", "notes A",
    }  # fmt: skip
    assert kinds["assumption"] == "assumption"
    assert not is_decision("seed 000")
    assert is_decision("notes B.15")
    assert is_decision("assumption")
    assert not is_decision("notes B.99"), "an unlisted citation departs, it is not waved through"
