"""The spec's facts that code needs as values, read from openapi.yaml and mock-control.yaml.

The mock, the suite, the docs and the tests ask here for the contract's limits,
enumerations and rules (``message`` at most 2000 characters, 25 recent events, the seven
event types, the 5-minute de-duplication window, the revoke reason, the wire form of a
timestamp) instead of typing copies of them. Each value is where the spec states it, next
to its ``x-source``; a ``KeyError`` names what is missing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from craftkit_spec.loading import SpecDict, load_resolved, spec_path
from craftkit_spec.schemas import declared_properties, merged


@functools.cache
def _product() -> SpecDict:
    return load_resolved()


@functools.cache
def _control() -> SpecDict:
    return load_resolved(spec_path("mock-control.yaml"))


def component(name: str) -> dict[str, Any]:
    """A schema of ``openapi.yaml``'s components, resolved and with ``allOf`` folded in."""
    return merged(_product()["components"]["schemas"][name])


def control_component(name: str) -> dict[str, Any]:
    """A schema of ``mock-control.yaml``'s components, resolved and folded."""
    return merged(_control()["components"]["schemas"][name])


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


def enum(schema_name: str) -> tuple[str, ...]:
    """The values of an enumeration schema, in the spec's order."""
    return tuple(component(schema_name)["enum"])


def body_limit() -> int:
    """The largest request body in bytes: one more is ``413 payload_too_large`` (notes B.6).

    Read from the ``PayloadTooLarge`` response's ``x-max-body-bytes``.
    """
    limit = _product()["components"]["responses"]["PayloadTooLarge"]["x-max-body-bytes"]
    return int(limit)


def dedup_window_seconds() -> int:
    """How long a recipient event of one (share, type, source IP) counts once (notes A).

    Read from ``RecipientEventType``'s ``x-dedup-window-seconds``.
    """
    return int(component("RecipientEventType")["x-dedup-window-seconds"])


def revoke_reason() -> str:
    """The ``revokedReason`` a partner's revoke records (seed 000).

    Read from ``Share.revokedReason``'s ``x-revoked-by-partner``.
    """
    reason: str = fact("Share", "revokedReason", "x-revoked-by-partner")
    return reason


def timestamp_pattern() -> str:
    """The form of every timestamp the API writes (``Timestamp``'s ``pattern``, notes A)."""
    pattern: str = component("Timestamp")["pattern"]
    return pattern


def header_parameter(name: str) -> Mapping[str, Any]:
    """A header parameter of the components, by its header name (``Idempotency-Key``)."""
    for parameter in _product()["components"]["parameters"].values():
        if parameter.get("in") == "header" and parameter["name"].lower() == name.lower():
            found: Mapping[str, Any] = parameter
            return found
    raise KeyError(f"no header parameter {name!r}")


def fault_switches() -> tuple[str, ...]:
    """The mock's fault switches by their wire names (mock-control.yaml's ``Faults``)."""
    return tuple(control_component("Faults")["properties"])


@dataclass(frozen=True)
class WebhookRules:
    """What the contract says of outgoing webhooks (``webhooks`` and their components)."""

    timeout_seconds: float
    """How long a receiver has to answer (``WebhookAcknowledged``'s ``x-timeout-seconds``)."""
    max_attempts: int
    retry_delays_seconds: tuple[int, ...]
    """The wait after each failed attempt, in order (``WebhookRetried``)."""
    render_events: tuple[str, ...]
    document_events: tuple[str, ...]
    user_agent: str
    signature_pattern: str
    timestamp_pattern: str


@functools.cache
def webhook_rules() -> WebhookRules:
    """The webhook facts, read once from ``openapi.yaml``."""
    components = _product()["components"]
    retried = components["responses"]["WebhookRetried"]
    parameters = components["parameters"]
    return WebhookRules(
        timeout_seconds=float(components["responses"]["WebhookAcknowledged"]["x-timeout-seconds"]),
        max_attempts=int(retried["x-max-attempts"]),
        retry_delays_seconds=tuple(int(d) for d in retried["x-retry-delays-seconds"]),
        render_events=enum("RenderWebhookEventName"),
        document_events=enum("DocumentWebhookEventName"),
        user_agent=str(parameters["WebhookUserAgentHeader"]["schema"]["const"]),
        signature_pattern=str(parameters["WebhookSignatureHeader"]["schema"]["pattern"]),
        timestamp_pattern=str(parameters["WebhookTimestampHeader"]["schema"]["pattern"]),
    )
