"""Downloads: the whole PDF with the documented headers, or a clean error."""

from __future__ import annotations

import io
import re

import pypdf

from conformance.client import Exchange
from conformance.context import Context
from conformance.failures import expect, expect_error, expect_status
from conformance.rules import rule

PDF_FACTS = "seed 002 (the PDF and its headers)"


def check_pdf(
    exchange: Exchange, render_id: str, what: str, status_source: str | None = None
) -> None:
    """A whole, valid PDF with Content-Type, Content-Length and Content-Disposition.

    The PDF and its headers are seed 002's facts wherever it is served; whether it is
    served (``status_source``) may rest on something else (a share link's download: B.1).
    """
    expect_status(exchange, 200, what, status_source)
    headers = exchange.response_headers
    expect(
        headers.get("content-type", "").split(";")[0] == "application/pdf",
        f"{what}: Content-Type is {headers.get('content-type')!r}",
        "application/pdf",
        exchange,
        PDF_FACTS,
    )
    length = headers.get("content-length")
    expect(
        length is not None,
        f"{what}: no Content-Length",
        "Content-Length: <bytes>",
        exchange,
        PDF_FACTS,
    )
    expect(
        int(length or -1) == len(exchange.response_body),
        f"{what}: Content-Length {length} but {len(exchange.response_body)} bytes arrived",
        "Content-Length equal to the bytes of the body",
        exchange,
        PDF_FACTS,
    )
    disposition = headers.get("content-disposition", "")
    expect(
        re.fullmatch(rf'attachment; filename="{re.escape(render_id)}\.pdf"', disposition)
        is not None,
        f"{what}: Content-Disposition is {disposition!r}",
        f'attachment; filename="{render_id}.pdf"',
        exchange,
        PDF_FACTS,
    )
    body = exchange.response_body
    expect(
        body.startswith(b"%PDF-"),
        f"{what}: the body does not start %PDF-",
        "a PDF header",
        exchange,
        PDF_FACTS,
    )
    expect(
        b"%%EOF" in body[-1024:],
        f"{what}: the body has no %%EOF trailer",
        "a PDF trailer",
        exchange,
        PDF_FACTS,
    )
    try:
        pages = len(pypdf.PdfReader(io.BytesIO(body)).pages)
    except Exception as exc:  # any parse failure is the finding
        expect(
            False,
            f"{what}: a PDF reader cannot open it ({exc})",
            "a PDF a reader opens",
            exchange,
            PDF_FACTS,
        )
    else:
        expect(
            pages >= 1, f"{what}: the PDF has no pages", "at least one page", exchange, PDF_FACTS
        )


@rule(
    "DOWNLOAD-PDF",
    "Downloading a succeeded render gives the whole PDF with Content-Type, Content-Length and Content-Disposition.",
    source="seed 002",
    needs=("key", "render"),
)
def download(ctx: Context) -> None:
    render_id = ctx.target.render()
    check_pdf(
        ctx.call("GET", f"/v1/renders/{render_id}/download"), render_id, "downloading a render"
    )


@rule(
    "DOWNLOAD-URL",
    "A succeeded render's downloadUrl is set; when it is the API's own download route, it serves the PDF.",
    source="seed 002 (downloadUrl); notes A",
    needs=("key", "render"),
)
def download_url(ctx: Context) -> None:
    render_id = ctx.target.render()
    exchange = ctx.call("GET", f"/v1/renders/{render_id}")
    render = expect_status(exchange, 200, "reading a succeeded render")
    url = render["downloadUrl"]
    expect(
        isinstance(url, str) and url.startswith("http"),
        f"downloadUrl is {url!r}",
        "a URL",
        exchange,
    )
    if url.endswith(f"/v1/renders/{render_id}/download"):
        check_pdf(ctx.call("GET", url), render_id, "following downloadUrl")


@rule(
    "DOWNLOAD-NOT-READY",
    "Downloading a render that has not succeeded is 409 conflict, and the message names its status.",
    source="seed 002 (409 conflict)",
    needs=("key", "not_ready_render"),
)
def download_not_ready(ctx: Context) -> None:
    render_id = ctx.target.not_ready_render()
    status = expect_status(ctx.call("GET", f"/v1/renders/{render_id}"), 200, "reading the render")[
        "status"
    ]
    exchange = ctx.call("GET", f"/v1/renders/{render_id}/download")
    error = expect_error(exchange, 409, "conflict", "downloading an unfinished render")
    expect(
        status in error["message"],
        f"the message {error['message']!r} does not name the status",
        f"a message that includes {status!r}",
        exchange,
    )
