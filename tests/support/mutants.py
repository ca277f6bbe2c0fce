"""Mutants of the mock, generated from the spec, for measuring what the suite notices.

Each mutant is the correct mock with one systematic fault in its answers, derived from
openapi.yaml rather than picked by hand: every field of every success answer dropped or
altered, every list reversed, every timestamp drifted by a millisecond in one operation
only, every documented header dropped, every success status swapped, every error code
swapped for one its status may not carry; and from its ``webhooks``, every header of each
delivery dropped or altered, every body field dropped or altered (before signing, as a
deployment would get it wrong), and every event never sent. The hand-written variants
(``tests/support/variants.py``: skipped state changes, races, wrong parents) join them.
``bench/mutation.py`` runs the suite against each and reports the kill rate and the survivors.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx
import orjson
from starlette.types import ASGIApp

import craftkit_spec
from conformance.config import PROFILES, RunConfig
from conformance.runner import ConformanceSession, select_rules
from mock_server import create_app
from mock_server.operations.store import Store
from mock_server.testing import serve
from tests.support.variants import VARIANTS, _patched, _Rewriter

Mutation = Callable[[int, dict[str, str], Any], tuple[int, dict[str, str], Any]]


@dataclass(frozen=True)
class Mutant:
    """One fault: a stable id, its kind, and how to build the faulty mock."""

    id: str
    kind: str
    build: Callable[[], ASGIApp]


def _path_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def _mutant(
    mutant_id: str, kind: str, method: str, path: str, status: int, mutate: Mutation
) -> Mutant:
    """A mutant that rewrites the answers of one operation and status."""
    pattern = _path_pattern(path)

    def rewrite(
        m: str, p: str, s: int, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if m != method.upper() or s != status or not pattern.match(p):
            return s, headers, body
        is_json = headers.get("content-type", "").startswith("application/json")
        value = orjson.loads(body) if is_json and body else body
        new_status, new_headers, new_value = mutate(s, dict(headers), value)
        new_body = orjson.dumps(new_value) if is_json else new_value
        return new_status, new_headers, new_body

    return Mutant(mutant_id, kind, lambda: _Rewriter(create_app(), rewrite))


def _altered(value: Any) -> Any:
    """A value of the same kind that differs."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("x" if not value.endswith("x") else "y") if value else "x"
    if isinstance(value, list):
        return value[:-1]
    if isinstance(value, dict):
        return {}
    return "mutant"


def _drifted(value: Any) -> Any:
    """A timestamp one millisecond later."""
    if not isinstance(value, str) or not value.endswith("Z"):
        return value
    head, _, millis = value[:-1].rpartition(".")
    return f"{head}.{(int(millis) + 1) % 1000:03d}Z" if millis.isdigit() else value


def _on_field(field: str, item_of: str | None, change: Callable[[Any], Any], drop: bool) -> Any:
    """A body mutation for one field, of the body or of each item of its list ``item_of``."""

    def apply(target: Any) -> None:
        if isinstance(target, dict) and field in target:
            if drop:
                del target[field]
            else:
                target[field] = change(target[field])

    def mutate(status: int, headers: dict[str, str], body: Any) -> Any:
        if item_of is None:
            apply(body)
        elif isinstance(body, dict):
            for item in body.get(item_of) or []:
                apply(item)
        return status, headers, body

    return mutate


def _to_status(new: int) -> Mutation:
    def mutate(status: int, headers: dict[str, str], body: Any) -> Any:
        return new, headers, body

    return mutate


def _without_header(name: str) -> Mutation:
    def mutate(status: int, headers: dict[str, str], body: Any) -> Any:
        return status, {k: v for k, v in headers.items() if k != name}, body

    return mutate


def _fields(schema: Mapping[str, Any]) -> Iterator[tuple[str | None, str, Mapping[str, Any]]]:
    """(list field or None, field, schema) for the body's fields and its lists' items' fields."""
    for name, sub in craftkit_spec.declared_properties(schema).items():
        yield None, name, sub
        merged = craftkit_spec.merged(sub)
        if "items" in merged or any("items" in b for b in craftkit_spec.branches(sub)):
            items = craftkit_spec.item_schema(merged)
            for item_name, item_sub in craftkit_spec.declared_properties(items).items():
                yield name, item_name, item_sub


def _is_timestamp(schema: Mapping[str, Any]) -> bool:
    merged = craftkit_spec.merged(schema)
    kinds = merged.get("type")
    return merged.get("format") == "date-time" or (
        isinstance(kinds, list) and "string" in kinds and "date-time" in str(merged)
    )


def generate() -> list[Mutant]:
    """Every mutant, in a stable order."""
    spec = craftkit_spec.load_resolved()
    all_codes = list(spec["components"]["schemas"]["ErrorCode"]["enum"])
    mutants: list[Mutant] = []
    for operation in craftkit_spec.iter_operations(spec):
        op, method, path = operation.operation_id, operation.method, operation.path
        for status_text, response in operation.responses.items():
            status = int(status_text)
            where = f"{op}.{status}"
            for header in response.get("headers", {}):
                mutants.append(
                    _mutant(
                        f"{where}.drop-header.{header}", "drop-header", method, path, status,
                        _without_header(header.lower()),
                    )
                )  # fmt: skip
            media = response.get("content", {}).get("application/json")
            if media is None:
                continue
            if status >= 400:
                allowed = craftkit_spec.error_codes(response)
                foreign = next(code for code in all_codes if code not in allowed)

                def swap_code(s: int, h: dict[str, str], b: Any, code: str = foreign) -> Any:
                    if isinstance(b, dict) and isinstance(b.get("error"), dict):
                        b["error"]["code"] = code
                    return s, h, b

                mutant_id = f"{where}.swap-code.{foreign}"
                mutants.append(_mutant(mutant_id, "swap-code", method, path, status, swap_code))
                continue
            swapped = {200: 201, 201: 200, 202: 200}.get(status)
            if swapped is not None:
                mutant_id = f"{where}.swap-status.{swapped}"
                mutants.append(
                    _mutant(mutant_id, "swap-status", method, path, status, _to_status(swapped))
                )
            for item_of, field, sub in _fields(media["schema"]):
                name = f"{item_of}[].{field}" if item_of else field
                for kind, change, drop in (("drop", _altered, True), ("alter", _altered, False)):
                    mutants.append(
                        _mutant(
                            f"{where}.{kind}.{name}", f"{kind}-field", method, path, status,
                            _on_field(field, item_of, change, drop),
                        )
                    )  # fmt: skip
                if _is_timestamp(sub):
                    mutants.append(
                        _mutant(
                            f"{where}.drift.{name}", "drift-time", method, path, status,
                            _on_field(field, item_of, _drifted, drop=False),
                        )
                    )  # fmt: skip
                if item_of is None and craftkit_spec.merged(sub).get("type") == "array":

                    def reverse(s: int, h: dict[str, str], b: Any, key: str = field) -> Any:
                        if isinstance(b, dict) and isinstance(b.get(key), list):
                            b[key] = list(reversed(b[key]))
                        return s, h, b

                    mutant_id = f"{where}.reorder.{field}"
                    mutants.append(_mutant(mutant_id, "reorder", method, path, status, reverse))
    mutants += webhook_mutants(spec)
    mutants += [Mutant(f"variant.{v.name}", "hand-written", v.build) for v in VARIANTS]
    return mutants


# ---- webhook mutants: the mock's deliveries, one fault at a time ----------------------------


def _never(event: str) -> Callable[[Store], None]:
    """A store patch: ``event`` is never delivered."""

    def patch(store: Store) -> None:
        hooks = store.webhooks
        original = hooks._emit

        async def emit(project_id: str, now: Any, body: dict[str, Any]) -> None:
            if body.get("event") != event:
                await original(project_id, now, body)

        hooks._emit = emit  # type: ignore[method-assign]

    return patch


def _signed_as(events: frozenset[str], change: Callable[[dict[str, Any]], None]) -> Any:
    """A store patch: each body of ``events`` changed before it is signed and sent.

    The signature covers the changed body, as it would where a deployment builds it wrong.
    """

    def patch(store: Store) -> None:
        hooks = store.webhooks
        original = hooks._send

        async def send(delivery: Any, subscription: Any, at: Any) -> Any:
            if delivery.event in events:
                body = orjson.loads(delivery.payload)
                change(body)
                delivery = replace(delivery, payload=orjson.dumps(body))
            return await original(delivery, subscription, at)

        hooks._send = send  # type: ignore[method-assign]

    return patch


def _sending(events: frozenset[str], change: Callable[[httpx.Request], None]) -> Any:
    """A store patch: each request delivering one of ``events`` changed as it is sent."""

    def patch(store: Store) -> None:
        async def hook(request: httpx.Request) -> None:
            if request.headers.get("x-craftkit-event") in events:
                change(request)

        store.webhooks._client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, event_hooks={"request": [hook]}
        )

    return patch


def _header_dropped(name: str) -> Callable[[httpx.Request], None]:
    def change(request: httpx.Request) -> None:
        del request.headers[name]

    return change


def _header_altered(name: str) -> Callable[[httpx.Request], None]:
    def change(request: httpx.Request) -> None:
        request.headers[name] = _altered(request.headers[name])

    return change


def _field_changed(field: str, drop: bool) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        if field in body:
            if drop:
                del body[field]
            else:
                body[field] = _altered(body[field])

    return change


def webhook_mutants(spec: Mapping[str, Any]) -> list[Mutant]:
    """The faults a deployment's deliveries may have, per webhook of the spec."""
    mutants: list[Mutant] = []
    for webhook in craftkit_spec.iter_webhooks(spec):
        definition, op = webhook.definition, webhook.operation_id
        headers = [p for p in definition["parameters"] if p["in"] == "header"]
        named = next(p for p in headers if p["name"] == "x-craftkit-event")
        events = frozenset(named["schema"]["enum"])
        for parameter in headers:
            name = parameter["name"].lower()
            for kind, change in (("drop", _header_dropped), ("alter", _header_altered)):
                mutants.append(
                    Mutant(
                        f"{op}.{kind}-header.{parameter['name']}",
                        f"webhook-{kind}-header",
                        _patched(_sending(events, change(name))),
                    )
                )
        schema = definition["requestBody"]["content"]["application/json"]["schema"]
        for field in craftkit_spec.declared_properties(schema):
            for kind, drop in (("drop", True), ("alter", False)):
                mutants.append(
                    Mutant(
                        f"{op}.{kind}-field.{field}",
                        f"webhook-{kind}-field",
                        _patched(_signed_as(events, _field_changed(field, drop))),
                    )
                )
        for event in sorted(events):
            mutants.append(
                Mutant(f"{op}.never.{event}", "webhook-missing-event", _patched(_never(event)))
            )
    return mutants


@dataclass(frozen=True)
class Verdict:
    """What the suite said about one mutant."""

    mutant_id: str
    kind: str
    killed_by: tuple[str, ...]
    seconds: float


WEBHOOK_WAIT = 5.0


def judge(mutant: Mutant, exclude: tuple[str, ...] = ()) -> Verdict:
    """Run the quick profile against one mutant; the rules that failed."""
    start = time.perf_counter()
    with serve(mutant.build()) as base_url:
        # The mock delivers webhooks on loopback at once: a delivery not there within
        # WEBHOOK_WAIT seconds is missing, and a missing one costs only that wait.
        config = RunConfig(base_url=base_url, profile=PROFILES["quick"], webhook_wait=WEBHOOK_WAIT)
        session = ConformanceSession(config)
        with session:
            for rule in select_rules(exclude=exclude):
                session.run_rule(rule)
        failed = tuple(r.rule.id for r in session.finish().results if r.failed)
    return Verdict(mutant.id, mutant.kind, failed, time.perf_counter() - start)


def report(verdicts: list[Verdict], seconds: float) -> str:
    """The Markdown report: kill rate overall and by kind, then every survivor."""
    killed = [v for v in verdicts if v.killed_by]
    rate = 100 * len(killed) / len(verdicts) if verdicts else 0.0
    lines = [
        "# Mutation report",
        "",
        f"{len(killed)} of {len(verdicts)} mutants killed ({rate:.1f}%) in {seconds:.0f} s.",
        "",
        "| kind | mutants | killed |",
        "|---|---:|---:|",
    ]
    kinds = Counter(v.kind for v in verdicts)
    for kind, count in sorted(kinds.items()):
        lines.append(f"| {kind} | {count} | {sum(1 for v in killed if v.kind == kind)} |")
    survivors = [v for v in verdicts if not v.killed_by]
    unexplained = [v for v in survivors if v.mutant_id not in UNOBSERVABLE]
    explained = [v for v in survivors if v.mutant_id in UNOBSERVABLE]
    lines += ["", f"## Unexplained survivors ({len(unexplained)})", ""]
    lines += [f"- `{v.mutant_id}`" for v in unexplained] or ["None."]
    lines += ["", f"## Survivors that cannot be observed ({len(explained)})", ""]
    lines += [f"- `{v.mutant_id}`: {UNOBSERVABLE[v.mutant_id]}" for v in explained] or ["None."]
    return "\n".join(lines) + "\n"


UNOBSERVABLE: dict[str, str] = {
    "renderTemplate.503.drop-header.Retry-After": "Retry-After on 503 is optional "
    "(RetryAfterOptional: sent when the server can tell); without it the answer conforms",
    "emailRender.503.drop-header.Retry-After": "Retry-After on 503 is optional; without it "
    "the answer conforms",
    "getRender.200.drift.completedAt": "only GET returns completedAt: a millisecond later "
    "everywhere is a render that completed a millisecond later",
    "emailRender.201.drift.sentAt": "only the email answer returns sentAt: nothing else "
    "fixes the instant the send happened",
    "getRenderEngagement.200.drift.recent[].createdAt": "only engagement returns event "
    "times, and the spec ties them to no other timestamp",
    "renderEvent.drop-field.completedAt": "completedAt is optional in a render.* body (notes A "
    "lists it among the fields, not the required ones): a delivery without it conforms",
    "renderEvent.drop-field.downloadUrl": "downloadUrl is optional in a render.* body; without "
    "public delivery the mock sends null, and an absent field says the same",
    "renderEvent.drop-field.errorMessage": "errorMessage is optional in a render.* body: the "
    "render's errorMessage stays readable through GET /v1/renders/{id}",
    "documentEvent.drop-field.sourceIp": "sourceIp is sent when known, so a delivery without "
    "it conforms",
    "documentEvent.drop-field.userAgent": "userAgent is sent when known, so a delivery without "
    "it conforms",
}
"""Mutants that change nothing the public API lets anyone observe, and why."""


SAMPLE = (
    "createShare.201.drop.shareUrl",
    "listShares.200.reorder.shares",
    "revokeShare.200.drift.revokedAt",
    "downloadRender.200.drop-header.Content-Disposition",
    "getRender.404.swap-code.invalid_json",
    "emailRender.201.alter.shareToken",
    "renderEvent.alter-header.x-craftkit-signature",
    "documentEvent.never.document.downloaded",
)
"""The fixed sample CI runs: one mutant of each generated kind."""
