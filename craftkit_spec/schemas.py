"""Looking inside resolved JSON Schemas: ``allOf`` branches, declared properties, items.

The spec narrows shared shapes with ``allOf``; every tool that reads a field's type, limits
or properties walks those branches the same way, here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def branches(schema: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The schema's ``allOf`` branches, depth first, then the schema itself."""
    for branch in schema.get("allOf", []):
        yield from branches(branch)
    yield schema


def merged(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A schema with its ``allOf`` branches folded in (later branches narrow earlier ones)."""
    folded: dict[str, Any] = {}
    for branch in branches(schema):
        folded.update({k: v for k, v in branch.items() if k != "allOf"})
    return folded


def declared_properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Every property a schema declares, merged across ``allOf``/``anyOf``/``oneOf``/``then``.

    A property declared in several branches keeps every declaration (as an ``allOf``), so
    nested objects narrowed in one branch keep the properties another branch gives them.
    """
    found: list[Mapping[str, Any]] = [schema.get("properties", {})]
    for keyword in ("allOf", "anyOf", "oneOf"):
        found += [declared_properties(branch) for branch in schema.get(keyword, [])]
    if "then" in schema:
        found.append(declared_properties(schema["then"]))
    properties: dict[str, Any] = {}
    for declared in found:
        for name, subschema in declared.items():
            properties[name] = (
                {"allOf": [properties[name], subschema]} if name in properties else subschema
            )
    return properties


def item_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``items`` schema of an array schema (looking through ``allOf``)."""
    for branch in branches(schema):
        if "items" in branch:
            items: Mapping[str, Any] = branch["items"]
            return items
    raise KeyError("schema has no items")


def undeclared_keys(value: Any, schema: Mapping[str, Any], where: str = "") -> Iterator[str]:
    """Yield the JSON-pointer-ish location of every object key the schema does not declare.

    Complements plain validation: responses allow extra keys (so real deployments may add
    fields), but an example with a key no schema declares is a typo in the docs.
    """
    if isinstance(value, dict):
        properties = declared_properties(schema)
        open_map = schema.get("additionalProperties")
        for key, member in value.items():
            if key in properties:
                yield from undeclared_keys(member, properties[key], f"{where}/{key}")
            elif isinstance(open_map, dict):
                yield from undeclared_keys(member, open_map, f"{where}/{key}")
            elif properties:  # a schema that declares no properties is a free-form map
                yield f"{where}/{key}"
    elif isinstance(value, list):
        try:
            items = item_schema(schema)
        except KeyError:
            return
        for index, member in enumerate(value):
            yield from undeclared_keys(member, items, f"{where}/{index}")
