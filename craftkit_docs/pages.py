"""The Markdown pages of the docs site, one per operation in the shape of the seed pages.

Each page is read from openapi.yaml (its fields, constraints, defaults, errors and samples)
or, for the mock's page, from mock-control.yaml; nothing here restates a field or a code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import craftkit_spec

SAMPLE_LANGUAGES = {"curl": "bash", "Node.js": "js", "Python": "python"}

DECISIONS_RECORD = craftkit_spec.DECISIONS_RECORD
"""The decision record, published beside the operation pages as ``decisions.html``."""
DECISIONS_LINK = "../decisions.html"
"""Where an operation page (in ``operations/``) finds the record's entries."""


@dataclass(frozen=True)
class Page:
    """One generated Markdown page."""

    slug: str
    title: str
    method: str
    path: str
    markdown: str


# ---- describing schemas in words ----------------------------------------------------------


def type_of(schema: Mapping[str, Any]) -> str:
    """``string``, ``string | null``, ``string (email)``, ``integer`` ..."""
    schema = craftkit_spec.merged(schema)
    kinds = schema.get("type", "object" if "properties" in schema else "any")
    names = kinds if isinstance(kinds, list) else [kinds]
    text = " | ".join(str(name) for name in names)
    if "format" in schema:
        text += f" ({schema['format']})"
    return text


def constraints(schema: Mapping[str, Any]) -> str:
    """The limits of a schema, in words."""
    schema = craftkit_spec.merged(schema)
    words = []
    if "enum" in schema:
        words.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    if "const" in schema:
        words.append(f"always `{json.dumps(schema['const'])}`")
    for key, phrase, unit in (
        ("minLength", "at least {}", "character"),
        ("maxLength", "at most {}", "character"),
        ("minimum", "at least {}", ""),
        ("maximum", "at most {}", ""),
        ("maxItems", "at most {}", "item"),
    ):
        if key in schema:
            count = schema[key]
            noun = f" {unit}{'' if count == 1 else 's'}" if unit else ""
            words.append(phrase.format(count) + noun)
    return "; ".join(words)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def field_rows(
    schema: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(name, schema, required) for every field, nested objects and array items as ``a[].b``."""
    schema = craftkit_spec.merged(schema)
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        full = f"{prefix}{name}"
        yield full, sub, name in required
        folded = craftkit_spec.merged(sub)
        if "properties" in folded and folded.get("type") == "object":
            yield from field_rows(folded, f"{full}.")
        items = folded.get("items")
        if isinstance(items, Mapping) and "properties" in craftkit_spec.merged(items):
            yield from field_rows(items, f"{full}[].")


def _field_table(schema: Mapping[str, Any], *, with_default: bool) -> list[str]:
    header = (
        "| Field | Type | Description | Default |"
        if with_default
        else "| Field | Type | Description |"
    )
    lines = [header, "|---|---|---|---|" if with_default else "|---|---|---|"]
    for name, sub, required in field_rows(schema):
        merged = craftkit_spec.merged(sub)
        words = [merged.get("description", "").strip()]
        limits = constraints(sub)
        if limits:
            words.append(f"({limits}.)")
        if required:
            words.append("Required.")
        row = f"| `{name}` | {_cell(type_of(sub))} | {_cell(' '.join(w for w in words if w))} |"
        if with_default:
            default = merged.get("default", merged.get("x-default"))
            row += f" {'`' + json.dumps(default) + '`' if default is not None else '—'} |"
        lines.append(row)
    return lines


def _example(media: Mapping[str, Any]) -> Any:
    examples = media.get("examples", {})
    return next(iter(examples.values()))["value"] if examples else None


# ---- operation pages ---------------------------------------------------------------------


def operation_page(spec: Mapping[str, Any], operation: craftkit_spec.Operation) -> Page:
    """The Markdown page of one operation, in the seed pages' shape."""
    definition = operation.definition
    lines = [f"# {definition['summary']}", "", f"`{operation.method.upper()} {operation.path}`", ""]
    lines += [definition["description"].strip(), ""]
    parameters = spec["paths"][operation.path].get("parameters", []) + definition.get(
        "parameters", []
    )
    for location, heading in (("path", "Path parameters"), ("header", "Header parameters")):
        chosen = [p for p in parameters if p["in"] == location]
        if chosen:
            lines += [
                f"## {heading}",
                "",
                "| Field | Type | Description | Default |",
                "|---|---|---|---|",
            ]
            for parameter in chosen:
                words = parameter.get("description", "").strip()
                if parameter.get("required"):
                    words += " Required."
                lines.append(
                    f"| `{parameter['name']}` | {_cell(type_of(parameter['schema']))} "
                    f"| {_cell(words)} | — |"
                )
            lines.append("")
    body = definition.get("requestBody")
    if body is not None:
        media = body["content"]["application/json"]
        lines += ["## Request body", "", *_field_table(media["schema"], with_default=True)]
        example = _example(media)
        if example is not None:
            lines += ["", "```json", json.dumps(example, indent=2), "```"]
        lines.append("")
    for status, response in operation.responses.items():
        if int(status) >= 400:
            continue
        lines += [f"## Response — {status}", "", response["description"].strip(), ""]
        for name, header in response.get("headers", {}).items():
            lines.append(f"- Header `{name}`: {_cell(header.get('description', ''))}")
        for media_type, media in response.get("content", {}).items():
            if media_type == "application/json":
                lines += ["", *_field_table(media["schema"], with_default=False)]
                example = _example(media)
                if example is not None:
                    lines += ["", "```json", json.dumps(example, indent=2), "```"]
            else:
                lines += ["", f"The body is `{media_type}`."]
        lines.append("")
    lines += ["## Errors", "", "| HTTP | Code | Meaning | Fix |", "|---|---|---|---|"]
    for status, response in operation.responses.items():
        if int(status) < 400:
            continue
        examples = response["content"]["application/json"].get("examples", {})
        for code in sorted(craftkit_spec.error_codes(response)):
            example = examples.get(code, {})
            fix = example.get("description", "").removeprefix("**Fix:**").strip()
            fix = fix[:1].upper() + fix[1:]
            lines.append(
                f"| {status} | `{code}` | {_cell(example.get('summary', ''))} | {_cell(fix)} |"
            )
    error_headers = [
        f"- `{status}`: header `{name}`: {_cell(header.get('description', ''))}"
        for status, response in operation.responses.items()
        if int(status) >= 400
        for name, header in response.get("headers", {}).items()
    ]
    if error_headers:
        lines += ["", "Headers sent with errors:", "", *error_headers]
    lines += ["", "## Quick Start", ""]
    for sample in definition.get("x-codeSamples", []):
        language = SAMPLE_LANGUAGES.get(sample["label"], "")
        lines += [
            f"### {sample['label']}",
            "",
            f"```{language}",
            sample["source"].rstrip(),
            "```",
            "",
        ]
    sources = definition.get("x-source", [])
    if sources:  # a quiet note for the writers who keep these pages true to their sources
        cited = ", ".join(craftkit_spec.link_decisions(str(s), DECISIONS_LINK) for s in sources)
        lines += ["---", "", f"*Sources: {cited}.*", ""]
    return Page(
        operation.operation_id,
        definition["summary"],
        operation.method.upper(),
        operation.path,
        "\n".join(lines),
    )


def webhook_page(spec: Mapping[str, Any], webhook: craftkit_spec.Operation) -> Page:
    """The Markdown page of one webhook: what Craftkit sends, and what it expects back."""
    definition = webhook.definition
    method = webhook.method.upper()
    lines = [
        f"# {definition['summary']}",
        "",
        f"Webhook `{webhook.path}`: Craftkit sends `{method}` to each subscription's URL.",
        "",
        definition["description"].strip(),
        "",
        "## Headers",
        "",
        "| Header | Type | Description |",
        "|---|---|---|",
    ]
    for parameter in definition.get("parameters", []):
        lines.append(
            f"| `{parameter['name']}` | {_cell(type_of(parameter['schema']))} "
            f"| {_cell(parameter.get('description', '').strip())} |"
        )
    media = definition["requestBody"]["content"]["application/json"]
    lines += ["", "## Body", "", *_field_table(media["schema"], with_default=False)]
    example = _example(media)
    if example is not None:
        lines += ["", "```json", json.dumps(example, indent=2), "```"]
    lines += ["", "## Your answer", ""]
    for status, response in webhook.responses.items():
        lines += [f"- `{status}`: {_cell(response['description'].strip())}"]
    tag = next(t for t in spec.get("tags", []) if t["name"] in definition["tags"])
    lines += ["", "## Verifying a delivery", "", tag["description"].strip(), ""]
    sources = definition.get("x-source", [])
    if sources:
        cited = ", ".join(craftkit_spec.link_decisions(str(s), DECISIONS_LINK) for s in sources)
        lines += ["---", "", f"*Sources: {cited}.*", ""]
    return Page(
        webhook.operation_id, definition["summary"], "WEBHOOK", webhook.path, "\n".join(lines)
    )


def mock_page(control: Mapping[str, Any]) -> str:
    """The page on the mock: its control API (from mock-control.yaml) and how to use it."""
    lines = [f"# {control['info']['title']}", "", control["info"]["description"].strip(), ""]
    lines += [
        "## Starting the mock",
        "",
        "```sh",
        "craftkit-mock --port 4010   # prints each seeded key and render (--port 0: a free port)",
        "```",
        "",
        "## Tests in parallel",
        "",
        "Give every test a project of its own (`POST /_mock/projects`) and use only the "
        "per-project calls below: tests in different projects never see each other's clock, "
        "faults, mail or requests, so any number of workers share one mock. With the Python "
        "package installed, pytest has two fixtures: `craftkit_mock_url` (a running mock from "
        "`--craftkit-mock-url` or `CRAFTKIT_MOCK_URL`, else one started in-process per worker) "
        "and `craftkit_sandbox` (a fresh project with a key, a succeeded render and helpers for "
        "its clock, faults, outbox and journal, deleted after the test).",
        "",
    ]
    lines += ["## Control API", "", "| Method | Path | What it does | Body |", "|---|---|---|---|"]
    for operation in craftkit_spec.iter_operations(control):
        body = operation.definition.get("requestBody")
        fields = (
            ", ".join(
                f"`{name}`"
                for name, _, _ in field_rows(body["content"]["application/json"]["schema"])
            )
            if body
            else "—"
        )
        lines.append(
            f"| {operation.method.upper()} | `{operation.path}` "
            f"| {_cell(operation.definition['description'])} | {fields} |"
        )
    lines += ["", "The full reference of the control API is on [control.html](control.html)."]
    return "\n".join(lines) + "\n"
