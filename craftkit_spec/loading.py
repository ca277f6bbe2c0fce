"""Finding and parsing the spec files, from a source checkout or an installed wheel.

``load_resolved`` inlines ``$ref`` s with a small local resolver (milliseconds, so the mock
starts fast); the tests check that it gives the same document as prance and
openapi-spec-validator do.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SpecDict = dict[str, Any]

_REPO_ROOT = Path(__file__).resolve().parent.parent
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        loaded = yaml.load(handle, Loader=_Loader)  # a safe loader
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} does not hold a YAML mapping")
    return loaded


def _pointer(document: Mapping[str, Any], fragment: str) -> Any:
    node: Any = document
    for part in fragment.lstrip("/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _inline(node: Any, path: Path, seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, path, seen) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str):
        file_part, _, fragment = reference.partition("#")
        target_path = (path.parent / file_part).resolve() if file_part else path
        key = f"{target_path}#{fragment}"
        if key in seen:
            raise ValueError(f"circular $ref {reference} in {path}")
        target = _inline(
            _pointer(_load_raw_cached(target_path), fragment), target_path, (*seen, key)
        )
        siblings = {k: _inline(v, path, seen) for k, v in node.items() if k != "$ref"}
        return {**target, **siblings} if isinstance(target, dict) else target
    return {key: _inline(value, path, seen) for key, value in node.items()}


@functools.cache
def _load_resolved_cached(path: Path) -> SpecDict:
    resolved: SpecDict = _inline(_load_raw_cached(path), path, ())
    return resolved


def load_raw(path: Path | None = None) -> SpecDict:
    """Return the spec as written, ``$ref`` s and all (a private copy, safe to change)."""
    return copy.deepcopy(_load_raw_cached(path or spec_path()))


def load_resolved(path: Path | None = None) -> SpecDict:
    """Return the spec with every ``$ref`` inlined, quickly (a private copy)."""
    return copy.deepcopy(_load_resolved_cached((path or spec_path()).resolve()))
