"""What a report shows can be acted on: JSON stays JSON, long bodies replay whole, lines unbroken.

A report is read in a terminal or a CI log and its curl lines are pasted into a shell, so a
body shortened for reading must still parse, a request body too long to print must still be
sent whole, and nothing may be wrapped inside a JSON token.
"""

from __future__ import annotations

import io
import json
import shlex

import orjson
from rich.console import Console

from conformance.client import Exchange
from conformance.differential.lockstep import DiffResult, Divergence
from conformance.differential.report import print_report

_LONG = {
    "shares": [{"id": f"share-{n}", "message": "m" * 2000} for n in range(60)],
    "nextCursor": None,
}


def _exchange(request_body: bytes = b"", response: object = _LONG) -> Exchange:
    return Exchange(
        method="POST",
        url="http://127.0.0.1:9/v1/renders/r1/shares",
        request_headers={"content-type": "application/json"},
        request_body=request_body,
        status=400,
        response_headers={"content-type": "application/json"},
        response_body=orjson.dumps(response),
    )


def test_a_long_json_body_is_shortened_inside_its_values_and_still_parses() -> None:
    shown = _exchange().body_text(2000)
    assert len(shown) <= 2000
    data = json.loads(shown)  # still JSON: nothing cut mid-token
    assert data["shares"][0]["message"].endswith("(2000 characters)")
    assert data["shares"][-1].startswith("…(")  # how many rows were left out
    assert "nextCursor" in data


def test_a_long_request_body_is_sent_whole_from_a_file_by_the_curl_line() -> None:
    body = orjson.dumps({"message": "é" * 1_000_000})
    words = shlex.split(_exchange(body).curl())
    sent = words[words.index("--data-binary") + 1]
    assert sent.startswith("@")
    with open(sent[1:], "rb") as kept:
        assert kept.read() == body
    assert len(_exchange(body).curl()) < 500


def test_the_terminal_report_never_wraps_inside_json() -> None:
    body = {"error": {"code": "invalid_request", "message": "x" * 300}}
    answer = _exchange(response=body)
    divergence = Divergence(
        "create(): the error code differs",
        1,
        ("1. create()",),
        answer,
        answer,
        (("error.code", "invalid_request", "invalid_json"),),
        "seed 000",
        False,
    )
    result = DiffResult(
        "http://t", "http://r", "few", 1, [divergence], 1, 1, 0.1, 2, "nothing to clean"
    )
    out = io.StringIO()
    print_report(result, Console(file=out, width=60, color_system=None))
    lines = out.getvalue().splitlines()
    assert orjson.dumps(body).decode() in lines
    assert any(
        "error.code: target 'invalid_request', reference 'invalid_json'" in line for line in lines
    )
