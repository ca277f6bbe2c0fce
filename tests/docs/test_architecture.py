"""ARCHITECTURE.md's table of packages and the tree agree, entry for entry.

Every package folder and every module at the top of a package has its row (a folder's row
covers what is inside it), and every row names something that exists.
"""

from __future__ import annotations

import re

from tests.support.seed_tables import REPO_ROOT

PACKAGES = ("craftkit_spec", "craftkit_docs", "mock_server", "conformance")
TABLE_ROW = re.compile(r"^\| (`[^|]+`(?:, `[^|]+`)*) \|", re.MULTILINE)


def _named() -> set[str]:
    """The paths the table's first column names, folders with their slash."""
    text = (REPO_ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named: set[str] = set()
    for cell in TABLE_ROW.findall(text):
        entries = re.findall(r"`([^`]+)`", cell)
        folder = entries[0].rsplit("/", 1)[0] + "/" if "/" in entries[0] else ""
        named |= {entry if "/" in entry else folder + entry for entry in entries}
    return named


def _tree() -> set[str]:
    """What needs a row: each package folder, and each module directly in one of ours."""
    needed: set[str] = set()
    for package in PACKAGES:
        root = REPO_ROOT / package
        folders = [p for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
        modules = [p for p in root.glob("*.py") if not p.name.startswith("__")]
        if package in ("craftkit_spec", "craftkit_docs"):
            needed.add(f"{package}/")
            continue
        needed |= {f"{package}/{p.name}/" for p in folders}
        needed |= {f"{package}/{p.name}" for p in modules}
    return needed


def test_every_package_and_module_has_its_row() -> None:
    assert sorted(_tree() - _named()) == []


def test_every_row_names_something_that_exists() -> None:
    named = _named()
    assert len(named) >= 15, "the table was read"
    assert sorted(path for path in named if not (REPO_ROOT / path).exists()) == []
