"""Looking inside resolved JSON Schemas, and the spec's facts that code needs as values.

The spec narrows shared shapes with ``allOf``; every tool that reads a field's type, limits
or properties walks those branches the same way, here. ``fact`` and ``enum`` give the mock,
the suite and the tests the spec's own limits and enumerations (``message`` at most 2000
characters, 25 recent events, the seven event types) instead of copies typed again.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from craftkit_spec.loading import SpecDict, load_resolved


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


@functools.cache
def _product() -> SpecDict:
    return load_resolved()


def component(name: str) -> dict[str, Any]:
    """A schema of ``openapi.yaml``'s components, resolved and with ``allOf`` folded in."""
    return merged(_product()["components"]["schemas"][name])


def fact(schema_name: str, field: str, keyword: str) -> Any:
    """One keyword of one field of a component schema.

    ``fact("Engagement", "recent", "maxItems")`` is 25; a ``KeyError`` names what is missing.
    """
    properties = declared_properties(component(schema_name))
    if field not in properties:
        raise KeyError(f"{schema_name} has no field {field!r}")
    value = merged(properties[field]).get(keyword)
    if value is None:
        raise KeyError(f"{schema_name}.{field} has no {keyword!r}")
    return value


def body_limit() -> int:
    """The largest request body in bytes: one more is ``413 payload_too_large`` (notes B.6).

    Read from the ``PayloadTooLarge`` response's ``x-max-body-bytes``.
    """
    limit = load_resolved()["components"]["responses"]["PayloadTooLarge"]["x-max-body-bytes"]
    return int(limit)


def enum(schema_name: str) -> tuple[str, ...]:
    """The values of an enumeration schema, in the spec's order."""
    return tuple(component(schema_name)["enum"])


def header_parameter(name: str) -> Mapping[str, Any]:
    """A header parameter of the components, by its header name (``Idempotency-Key``)."""
    for parameter in _product()["components"]["parameters"].values():
        if parameter.get("in") == "header" and parameter["name"].lower() == name.lower():
            found: Mapping[str, Any] = parameter
            return found
    raise KeyError(f"no header parameter {name!r}")
