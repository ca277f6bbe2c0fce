"""The spec as an independent validator reads it: prance resolving, openapi-spec-validator.

A second of work, so only the tests use it: they check the spec against it, and that the
toolkit's own fast resolver (``craftkit_spec.load_resolved``) gives the same document.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import craftkit_spec


@functools.cache
def _load_validated_cached(path: Path) -> dict[str, Any]:
    import prance

    parser = prance.ResolvingParser(str(path), backend="openapi-spec-validator", strict=False)
    resolved = parser.specification
    if not isinstance(resolved, dict):
        raise ValueError(f"{path} did not resolve to a mapping")
    return resolved


def load_validated(path: Path | None = None) -> dict[str, Any]:
    """The spec validated by openapi-spec-validator and resolved by prance (a private copy).

    A broken spec fails here, loudly, where it is first read.
    """
    return copy.deepcopy(_load_validated_cached((path or craftkit_spec.spec_path()).resolve()))
