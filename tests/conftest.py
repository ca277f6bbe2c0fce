"""Fixtures shared by every test module: the spec, as written and resolved."""

from __future__ import annotations

from typing import Any

import pytest

import craftkit_spec


@pytest.fixture(scope="session")
def raw_spec() -> dict[str, Any]:
    """The spec as written, with its ``$ref`` s."""
    return craftkit_spec.load_raw()


@pytest.fixture(scope="session")
def resolved_spec() -> dict[str, Any]:
    """The spec validated and with every ``$ref`` inlined."""
    return craftkit_spec.load_resolved()
