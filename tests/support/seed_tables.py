"""Facts read out of the seed documents' tables, so spec tests can be driven by the seeds.

The seeds come in three layouts (a flattened web page, a Markdown page with JSX-like
fields, and a plain-text page); each reader turns one layout into the same rows. Operations
are recognised by matching ``METHOD /path`` lines against the spec's own paths (written
``:id`` style in the seeds), which also copes with headings glued to the following text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """Where ``shared/`` is: ``$CRAFTKIT_SHARED_DIR``, else beside the repository."""
    return Path(os.environ.get("CRAFTKIT_SHARED_DIR", REPO_ROOT.parent / "shared"))


@dataclass(frozen=True)
class ErrorRow:
    """One row of a seed's error table."""

    seed: str
    method: str
    path: str
    status: int
    code: str


@dataclass(frozen=True)
class FieldRow:
    """One documented field: where it lives (``path``, ``body``, ``response``, ``header``)."""

    seed: str
    method: str
    path: str
    location: str
    name: str
    status: int | None = None


def colon_path(openapi_path: str) -> str:
    """``/v1/renders/{id}`` → ``/v1/renders/:id``, the seeds' way of writing paths."""
    return re.sub(r"\{(\w+)\}", r":\1", openapi_path)


class _OperationMatcher:
    """Finds the operation a ``METHOD /path…`` line names, longest known path first."""

    def __init__(self, openapi_paths: Iterable[str]) -> None:
        by_colon = {colon_path(p): p for p in openapi_paths}
        self._known = sorted(by_colon.items(), key=lambda item: len(item[0]), reverse=True)

    def match(self, line: str) -> tuple[str, str] | None:
        found = re.match(r"^(GET|POST|DELETE|PUT|PATCH) (\S+)", line)
        if found is None:
            return None
        method, rest = found.group(1), found.group(2)
        rest = re.sub(r"^https://[^/]+", "", rest).rstrip("`")
        for colon, openapi in self._known:
            if rest.startswith(colon):
                return method.lower(), openapi
        return None


_TYPE_LINE = re.compile(r"^(string|integer|number|boolean|array|object)\b.*\|")
_FIELD_LINE = re.compile(r"^([A-Za-z][\w.\[\]]*) \|$")
_ERROR_LINE = re.compile(r"^\| (\d{3}) \| ([a-z_]+) \|$")
_RESPONSE_HEADING = re.compile(r"^Response — (\d{3})")


def read_web_page(
    seed: Path, openapi_paths: Iterable[str]
) -> tuple[list[ErrorRow], list[FieldRow]]:
    """Read seed 000's layout: one cell per line, headings glued to preceding text."""
    matcher = _OperationMatcher(openapi_paths)
    lines = seed.read_text(encoding="utf-8").splitlines()
    errors: list[ErrorRow] = []
    fields: list[FieldRow] = []
    operation: tuple[str, str] | None = None
    section: tuple[str, int | None] | None = None
    for index, line in enumerate(lines):
        matched = matcher.match(line)
        if matched is not None:
            operation, section = matched, None
            continue
        if line.endswith("Path parameters"):
            section = ("path", None)
        elif line == "Request body":
            section = ("body", None)
        elif heading := _RESPONSE_HEADING.match(line):
            section = ("response", int(heading.group(1)))
        elif line == "Errors":
            section = ("errors", None)
        if operation is None or section is None:
            continue
        method, path = operation
        if section[0] == "errors" and (row := _ERROR_LINE.match(line)):
            errors.append(ErrorRow(seed.name, method, path, int(row.group(1)), row.group(2)))
        elif (
            section[0] != "errors"
            and (field := _FIELD_LINE.match(line))
            and index + 1 < len(lines)
            and _TYPE_LINE.match(lines[index + 1])
        ):
            fields.append(FieldRow(seed.name, method, path, section[0], field.group(1), section[1]))
    return errors, fields


def read_markdown_page(
    seed: Path, openapi_paths: Iterable[str]
) -> tuple[list[ErrorRow], list[FieldRow]]:
    """Read seed 001's layout: ``<ParamField>``/``<ResponseField>`` tags, Markdown error table."""
    matcher = _OperationMatcher(openapi_paths)
    text = seed.read_text(encoding="utf-8")
    info = re.search(r"\*\*(GET|POST|DELETE)\*\* `([^`]+)`", text)
    assert info is not None, f"{seed.name}: no **METHOD** `url` line"
    operation = matcher.match(f"{info.group(1)} {info.group(2)}")
    assert operation is not None, f"{seed.name}: {info.group(0)} names no spec path"
    method, path = operation
    fields: list[FieldRow] = []
    prefix: list[str] = []
    last_top_level = ""
    for line in text.splitlines():
        stripped = line.strip()
        if param := re.match(r'<ParamField path="(\w+)"', stripped):
            fields.append(FieldRow(seed.name, method, path, "path", param.group(1)))
        elif response := re.match(r'<ResponseField name="(\w+)" type="([^"]+)"', stripped):
            name = "".join(prefix) + response.group(1)
            fields.append(FieldRow(seed.name, method, path, "response", name, 200))
            if not prefix:
                last_top_level = response.group(1) + ("[]." if "[]" in response.group(2) else ".")
        elif stripped.startswith("<Expandable"):
            prefix.append(last_top_level)
        elif stripped.startswith("</Expandable>"):
            prefix.pop()
    errors = [
        ErrorRow(seed.name, method, path, int(status), code)
        for status, code in re.findall(r"^\| (\d{3})\s+\| `([a-z_]+)`", text, flags=re.M)
    ]
    return errors, fields


def read_plain_page(
    seed: Path, openapi_paths: Iterable[str]
) -> tuple[list[ErrorRow], list[FieldRow]]:
    """Read seed 002's layout: space-separated tables under plain headings."""
    matcher = _OperationMatcher(openapi_paths)
    lines = seed.read_text(encoding="utf-8").splitlines()
    operation = next((m for m in map(matcher.match, lines) if m is not None), None)
    assert operation is not None, f"{seed.name}: no METHOD /path line"
    method, path = operation
    errors: list[ErrorRow] = []
    fields: list[FieldRow] = []
    section = ""
    for line in lines:
        if line in ("Field Type Description Default", "Header Value", "Errors"):
            section = line.split()[0]
            continue
        if not line.strip():
            continue
        if section == "Field" and (row := re.match(r"^(\w+) (string|integer) ", line)):
            fields.append(FieldRow(seed.name, method, path, "path", row.group(1)))
        elif section == "Header" and (row := re.match(r"^(Content-[A-Za-z]+) ", line)):
            fields.append(FieldRow(seed.name, method, path, "header", row.group(1), 200))
        elif section == "Errors" and (row := re.match(r"^(\d{3}) ([a-z_]+) ", line)):
            errors.append(ErrorRow(seed.name, method, path, int(row.group(1)), row.group(2)))
    return errors, fields


def read_all(openapi_paths: Iterable[str]) -> tuple[list[ErrorRow], list[FieldRow]]:
    """Read every primary-contract seed (000, 001, 002)."""
    paths = list(openapi_paths)
    seeds = shared_dir() / "seeds"
    readers = {
        "000_": read_web_page,
        "001_": read_markdown_page,
        "002_": read_plain_page,
    }
    errors: list[ErrorRow] = []
    fields: list[FieldRow] = []
    for prefix, reader in readers.items():
        (seed,) = seeds.glob(f"{prefix}*.txt")
        seed_errors, seed_fields = reader(seed, paths)
        errors += seed_errors
        fields += seed_fields
    return errors, fields


def notes_part_a_codes() -> Iterator[tuple[int | None, str]]:
    """Yield the (status, code) pairs API_NOTES Part A lists; status None where it gives none."""
    text = (shared_dir() / "API_NOTES.md").read_text(encoding="utf-8")
    part_a = text.split("## B.")[0]
    codes_bullet = part_a[part_a.index("- Codes (status, code)") :].split("\n- ")[0]
    codes_bullet = re.sub(r"\([^)]*\)", "", codes_bullet.removeprefix("- Codes (status, code)"))
    seen: set[str] = set()
    for status, code in re.findall(r"(\d{3})\s+`([a-z_]+)`", codes_bullet):
        seen.add(code)
        yield int(status), code
    for code in re.findall(r"`([a-z_]+)`", codes_bullet):
        if code not in seen:
            seen.add(code)
            yield None, code
