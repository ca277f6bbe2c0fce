"""Finding and parsing the spec files, from a source checkout or an installed wheel."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from pathlib import Path
from typing import Any

import prance
import yaml

SpecDict = dict[str, Any]

_REPO_ROOT = Path(__file__).resolve().parent.parent


def spec_path(name: str = "openapi.yaml") -> Path:
    """Return the path of a spec file shipped with the toolkit.

    A wheel carries the files inside this package; a source checkout (and an editable
    install) keeps them at the repository root, which is where people edit them.
    """
    packaged = resources.files("craftkit_spec").joinpath(name)
    if packaged.is_file():
        return Path(str(packaged))
    in_checkout = _REPO_ROOT / name
    if in_checkout.is_file():
        return in_checkout
    raise FileNotFoundError(f"{name} is neither packaged with craftkit_spec nor at {_REPO_ROOT}")


@functools.cache
def _load_raw_cached(path: Path) -> SpecDict:
    with path.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} does not hold a YAML mapping")
    return loaded


@functools.cache
def _load_resolved_cached(path: Path) -> SpecDict:
    parser = prance.ResolvingParser(str(path), backend="openapi-spec-validator", strict=False)
    resolved = parser.specification
    if not isinstance(resolved, dict):
        raise ValueError(f"{path} did not resolve to a mapping")
    return resolved


def load_raw(path: Path | None = None) -> SpecDict:
    """Return the spec as written, ``$ref`` s and all (a private copy, safe to change)."""
    return copy.deepcopy(_load_raw_cached(path or spec_path()))


def load_resolved(path: Path | None = None) -> SpecDict:
    """Return the spec validated and with every ``$ref`` inlined (a private copy).

    Validation happens here, through prance with openapi-spec-validator, so a broken spec
    fails loudly wherever it is first read rather than producing odd behaviour later.
    """
    return copy.deepcopy(_load_resolved_cached(path or spec_path()))
