"""No hand-typed copy of the spec's facts comes back into the code or the tests.

The mock, the suite and the tests read these facts from openapi.yaml and mock-control.yaml
(``craftkit_spec.facts``): the de-duplication window, the revoke reason, the form of a
timestamp, the operations on a render, the fault switches, the body limit and the field
limits, and counts that follow from them (operations, example tests). Each check below
looks for the shape a copy would take, in every Python file of the repository, so a copy
typed again fails here with its place.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import craftkit_spec
from tests.support.seed_tables import REPO_ROOT

FOLDERS = ("craftkit_spec", "craftkit_docs", "mock_server", "conformance", "tests", "bench")
EXEMPT = {Path(__file__).resolve(), (REPO_ROOT / "tests" / "spec" / "test_seeds.py").resolve()}
"""This file, and the seeds' own test: what it expects are facts of the seed pages, the
source the spec itself is checked against."""
WINDOW = timedelta(seconds=craftkit_spec.dedup_window_seconds())
LIMITS = {
    (schema, field): craftkit_spec.fact(schema, field, "maxLength")
    for schema, field in (
        ("CreateShareRequest", "message"),
        ("EmailRenderRequest", "message"),
        ("EmailRenderRequest", "recipientName"),
    )
}
TIMESTAMP_REGEX = re.compile(r"\\d\{4\}-\\d\{2\}-\\d\{2\}T")
COUNT_LINE = re.compile(r"\b\d+ (passed|selected|total)\b")


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for folder in FOLDERS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if path.resolve() not in EXEMPT:
                yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO_ROOT)}:{getattr(node, 'lineno', '?')}"


def _strings(node: ast.AST) -> list[str]:
    return [
        child.value
        for child in ast.walk(node)
        if isinstance(child, ast.Constant) and isinstance(child.value, str)
    ]


def _timedelta_value(call: ast.Call) -> timedelta | None:
    """The value of ``timedelta(minutes=5)`` written with constants; else ``None``."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name != "timedelta" or call.args:
        return None
    values: dict[str, float] = {}
    for keyword in call.keywords:
        if not (isinstance(keyword.value, ast.Constant) and keyword.arg):
            return None
        if not isinstance(keyword.value.value, int | float):
            return None
        values[keyword.arg] = keyword.value.value
    return timedelta(**values) if values else None


def _findings(modules: Iterable[tuple[Path, ast.Module]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {
        "the de-duplication window": [],
        "the revoke reason": [],
        "the timestamp form": [],
        "a list of the render operations": [],
        "the fault switches": [],
        "the body limit": [],
        "a field's length limit": [],
        "a count of tests or operations": [],
    }
    reason = craftkit_spec.revoke_reason()
    switches = set(craftkit_spec.fault_switches())
    body_limit = craftkit_spec.body_limit()
    for path, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _timedelta_value(node) == WINDOW:
                found["the de-duplication window"].append(_where(path, node))
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value == reason:
                    found["the revoke reason"].append(_where(path, node))
                if TIMESTAMP_REGEX.search(node.value):
                    found["the timestamp form"].append(_where(path, node))
                if COUNT_LINE.search(node.value) and path.parts[-3:-1] != ("tests", "support"):
                    found["a count of tests or operations"].append(_where(path, node))
            if isinstance(node, ast.Constant) and node.value == body_limit:
                found["the body limit"].append(_where(path, node))
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Mult)
                and isinstance(node.left, ast.Constant)
                and isinstance(node.right, ast.Constant)
                and isinstance(node.left.value, int)
                and isinstance(node.right.value, int)
                and node.left.value * node.right.value == body_limit
            ):
                found["the body limit"].append(_where(path, node))
            if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
                elements = node.keys if isinstance(node, ast.Dict) else node.elts
                texts = [text for element in elements if element for text in _strings(element)]
                if len({text for text in texts if "/v1/renders/{id}" in text}) >= 3:
                    found["a list of the render operations"].append(_where(path, node))
                if len(switches.intersection(texts)) >= 3:
                    found["the fault switches"].append(_where(path, node))
            if isinstance(node, ast.Tuple) and len(node.elts) == 2:
                name, number = node.elts
                if (
                    isinstance(name, ast.Constant)
                    and isinstance(number, ast.Constant)
                    and isinstance(number.value, int)
                    and any(
                        field == name.value and limit == number.value
                        for (_, field), limit in LIMITS.items()
                    )
                ):
                    found["a field's length limit"].append(_where(path, node))
    return found


FINDINGS = _findings(_modules())


@pytest.mark.parametrize("fact", sorted(FINDINGS))
def test_no_copy_of_the_spec_is_typed_by_hand(fact: str) -> None:
    assert FINDINGS[fact] == [], f"{fact} is typed by hand; read it from craftkit_spec instead"


def test_each_check_finds_the_copy_it_looks_for() -> None:
    """A module holding one copy of each fact is caught on every count (so none is vacuous)."""
    switches = list(craftkit_spec.fault_switches())[:3]
    source = "\n".join(
        [
            f"WINDOW = timedelta(seconds={int(WINDOW.total_seconds())})",
            f"REASON = {craftkit_spec.revoke_reason()!r}",
            r"STAMP = r'^\d{4}-\d{2}-\d{2}T\d{2}'",
            'OPS = ("/v1/renders/{id}", "/v1/renders/{id}/shares", "/v1/renders/{id}/email")',
            f"FAULTS = {{name: True for name in {switches!r}}}",
            f"LIMIT = {craftkit_spec.body_limit() // 1024} * 1024",
            f"CASE = ('message', {LIMITS[('CreateShareRequest', 'message')]})",
            "assert '9 passed' in output",
        ]
    )
    copy = (REPO_ROOT / "mock_server" / "copy.py", ast.parse(source))
    found = _findings([copy])
    assert len(switches) == 3
    assert [fact for fact, places in found.items() if not places] == []
