"""The docs find Redoc wherever the package runs: checkout, variable, or a fetched cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from craftkit_docs.redoc import (
    BUNDLE_VARIABLE,
    REDOC_VERSION,
    BundleMissingError,
    find_redoc_bundle,
)

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT_BUNDLE = ROOT / "node_modules" / "redoc" / "bundles" / "redoc.standalone.js"


def test_the_pinned_version_is_the_one_package_json_installs() -> None:
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["devDependencies"]["redoc"] == REDOC_VERSION


def test_a_checkout_is_found_from_any_folder_below_it(tmp_path: Path) -> None:
    below = ROOT / "build"
    below.mkdir(exist_ok=True)
    found = find_redoc_bundle(environ={}, cwd=below, package_root=None, cache=tmp_path, npm=None)
    assert found == CHECKOUT_BUNDLE


def test_the_variable_wins_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    given = {BUNDLE_VARIABLE: str(CHECKOUT_BUNDLE)}
    assert find_redoc_bundle(environ=given, cwd=tmp_path, package_root=None) == CHECKOUT_BUNDLE
    with pytest.raises(BundleMissingError, match=BUNDLE_VARIABLE):
        find_redoc_bundle(environ={BUNDLE_VARIABLE: str(tmp_path / "nope.js")}, cwd=tmp_path)


def test_without_npm_or_a_bundle_it_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(BundleMissingError, match=r"install Node\.js with npm"):
        find_redoc_bundle(environ={}, cwd=tmp_path, package_root=None, cache=tmp_path, npm=None)


@pytest.mark.slow
def test_an_installed_package_fetches_the_bundle_once_with_npm(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fetched = find_redoc_bundle(environ={}, cwd=tmp_path, package_root=None, cache=cache)
    assert fetched.is_file()
    assert fetched.read_bytes()[:200] == CHECKOUT_BUNDLE.read_bytes()[:200]
    again = find_redoc_bundle(environ={}, cwd=tmp_path, package_root=None, cache=cache, npm=None)
    assert again == fetched  # from the cache, npm not needed


def test_the_docs_command_builds_from_outside_the_checkout(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "docs", "--out", str(tmp_path / "site")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, BUNDLE_VARIABLE: str(CHECKOUT_BUNDLE)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "reference.html").is_file()
    assert (tmp_path / "site" / "redoc.standalone.js").stat().st_size > 100_000
