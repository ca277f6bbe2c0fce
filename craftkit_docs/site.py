"""The reference docs site, generated from openapi.yaml and mock-control.yaml.

``DIR/index.html`` links three things: the interactive reference (Redoc, every operation,
field, error and sample on one page, served from the site itself, no CDN), one Markdown page
per operation in the shape of the seed pages (with an HTML rendering of each), and a page
on the mock's control API and how to use the mock from a partner's tests, and the decision
record (``docs/decisions.md``: what the contract leaves open and what was chosen), which the
operation pages link their sources to. Everything is read from the specs and that record;
nothing here restates a field or a code.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

import craftkit_spec
from craftkit_docs.pages import DECISIONS_RECORD, Page, mock_page, operation_page, webhook_page
from craftkit_docs.redoc import BundleMissingError, find_redoc_bundle

REDOC_OPTIONS = {
    "expandResponses": "all",
    "jsonSampleExpandLevel": "all",
    "schemaExpansionLevel": "all",
    "hideDownloadButton": True,
    "pathInMiddlePanel": True,
}


class DocsError(Exception):
    """The site cannot be built; the message says what is missing."""


# ---- the site ------------------------------------------------------------------------------


CONTENT_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src blob:; connect-src 'self'"
)
"""What a Redoc page may load: the site's own files only, so it works offline and tells no
one it was read. Redoc's sidebar shows a logo from Redocly's CDN; under this policy the
browser never asks for it, and Redoc leaves the image out."""

_CONDITIONALS = ("if", "then", "else")


def without_conditionals(node: Any) -> Any:
    """``node`` with every schema's ``if``/``then``/``else`` left out, for Redoc.

    Redoc draws a conditional as alternative cases with the ``if`` merged into each, so the
    create-share body read "One of case 1 | case 2" with ``channel`` and ``recipientEmail``
    both required, though ``{}`` is valid. Every condition the spec states this way is also
    stated in words in the fields it constrains (tests/docs/test_docs.py checks it), which is
    what Redoc then shows. Only the page changes; the spec, the mock and the suite keep it.
    """
    if isinstance(node, list):
        return [without_conditionals(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: without_conditionals(value)
        for key, value in node.items()
        if not (key in _CONDITIONALS and isinstance(value, dict) and _is_schema_level(node))
    }


def _is_schema_level(node: Mapping[str, Any]) -> bool:
    """Whether ``node`` is a schema (so ``if`` is a keyword, not a property called "if")."""
    return "if" in node and ("then" in node or "else" in node)


def redoc_page(title: str, spec: Mapping[str, Any]) -> str:
    """A page that renders ``spec`` with Redoc from the site's own copy, offline."""
    payload = json.dumps(without_conditionals(spec)).replace("</", "<\\/")
    options = json.dumps(REDOC_OPTIONS)
    return (
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">'
        f"<title>{html.escape(title)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>\n<body>\n'
        '<div id="redoc"></div>\n<script src="redoc.standalone.js"></script>\n'
        f'<script>Redoc.init({payload}, {options}, document.getElementById("redoc"));</script>\n'
        "</body>\n</html>\n"
    )


_MD_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}"
    "pre{background:#f5f5f5;padding:.8rem;overflow:auto}code{font-size:.9em}"
)


def _html_page(title: str, markdown: str) -> str:
    renderer = MarkdownIt("commonmark").enable("table")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{_MD_STYLE}</style></head><body>\n{renderer.render(markdown)}</body></html>\n"
    )


def build_site(out: Path, bundle: Path | None = None) -> list[Path]:
    """Build the whole site into ``out``; return the files written.

    ``bundle`` is Redoc's standalone script; by default ``redoc`` finds or fetches it.
    """
    if bundle is None:
        try:
            bundle = find_redoc_bundle()
        except BundleMissingError as exc:
            raise DocsError(str(exc)) from exc
    spec = craftkit_spec.load_resolved()
    control = craftkit_spec.load_resolved(craftkit_spec.spec_path("mock-control.yaml"))
    (out / "operations").mkdir(parents=True, exist_ok=True)
    written = [out / "redoc.standalone.js"]
    shutil.copyfile(bundle, written[0])
    pages = [operation_page(spec, operation) for operation in craftkit_spec.iter_operations(spec)]
    pages += [webhook_page(spec, webhook) for webhook in craftkit_spec.iter_webhooks(spec)]
    for page in pages:
        for suffix, text in (
            (".md", page.markdown),
            (".html", _html_page(page.title, page.markdown)),
        ):
            target = out / "operations" / f"{page.slug}{suffix}"
            target.write_text(text, encoding="utf-8")
            written.append(target)
    mock_markdown = mock_page(control)
    decisions = craftkit_spec.spec_path(DECISIONS_RECORD).read_text(encoding="utf-8")
    files = {
        "reference.html": redoc_page(spec["info"]["title"], craftkit_spec.load_raw()),
        "control.html": redoc_page(control["info"]["title"], control),
        "mock.md": mock_markdown,
        "mock.html": _html_page("Using the mock", mock_markdown),
        "decisions.md": decisions,
        "decisions.html": _html_page("Decision record", decisions),
        "index.html": _index(spec, pages),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


def _index(spec: Mapping[str, Any], pages: list[Page]) -> str:
    rows = "\n".join(
        f"<tr><td><code>{page.method}</code></td><td><code>{html.escape(page.path)}</code></td>"
        f'<td><a href="operations/{page.slug}.html">{html.escape(page.title)}</a> '
        f'(<a href="operations/{page.slug}.md">Markdown</a>)</td></tr>'
        for page in pages
    )
    title = html.escape(spec["info"]["title"])
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_MD_STYLE}</style></head><body>\n<h1>{title}</h1>\n"
        f"<p>{html.escape(spec['info']['summary'])}</p>\n<ul>\n"
        '<li><a href="reference.html">Interactive reference</a>: every operation, field, error '
        "and sample.</li>\n"
        '<li><a href="mock.html">The reference mock</a>: its control API and how to test '
        "against it "
        '(<a href="control.html">control API reference</a>).</li>\n'
        '<li><a href="decisions.html">Decision record</a>: what the public material leaves '
        "open, what the mock chose, and what a deployment may do instead.</li>\n</ul>\n"
        f"<h2>Operations</h2>\n<table><tr><th>Method</th><th>Path</th><th>Page</th></tr>\n{rows}\n</table>\n"
        "</body></html>\n"
    )
