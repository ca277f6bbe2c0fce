"""The mock under abuse: every hostile request gets a clean answer, and the server lives on.

A real uvicorn server with the mock's HTTP edge (short deadlines, so slow clients are cut
within a second), driven over raw sockets where httpx would refuse to send the abuse.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import httpx
import orjson
import pytest
import redis

import craftkit_spec
from mock_server import Settings, create_app
from mock_server.http.protocol import RedactSecrets
from mock_server.testing import Sandbox, serve
from tests.conftest import ACME_KEY, SUCCEEDED_RENDER, AppFactory

SETTINGS = Settings(header_timeout=0.5, body_timeout=0.5)
AUTH = {"Authorization": f"Bearer {ACME_KEY}"}


@pytest.fixture(scope="module")
def server(make_app: AppFactory) -> Iterator[tuple[str, object]]:
    """A mock with short read deadlines, on each engine."""
    app = make_app(header_timeout=0.5, body_timeout=0.5)
    with serve(app) as base_url:
        yield base_url, app


@pytest.fixture
def base(server: tuple[str, object]) -> Iterator[str]:
    """The server's URL, reset before the test and checked alive after it."""
    base_url = server[0]
    assert httpx.post(f"{base_url}/_mock/reset").status_code == 204
    yield base_url
    assert httpx.get(f"{base_url}/health", timeout=5).json() == {"status": "ok"}


def raw(base_url: str, data: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of whatever comes back."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        # Refused before it had read everything? The answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines if ": " in line)
    return int(status_line.split()[1]), headers, body


def assert_envelope(answer: tuple[int, dict[str, str], bytes], status: int) -> str:
    code, headers, body = answer
    assert code == status, (code, body)
    assert headers["content-type"] == "application/json"
    error = orjson.loads(body)["error"]
    assert error["code"] == "invalid_request"
    message: str = error["message"]
    assert message
    return message


# ---- malformed HTTP, headers, slow and idle clients --------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost x\r\n\r\n",
    ],
    ids=["bad length", "two lengths", "raw byte in path", "garbage", "header without colon"],
)
def test_malformed_requests_are_a_400_in_the_envelope(base: str, request_bytes: bytes) -> None:
    assert_envelope(raw(base, request_bytes), 400)


def test_headers_past_the_size_limit_are_refused_with_431(base: str) -> None:
    huge = b"X-Big: " + b"a" * (SETTINGS.max_header_bytes + 1) + b"\r\n"
    message = assert_envelope(
        raw(base, b"GET /health HTTP/1.1\r\nHost: x\r\n" + huge + b"\r\n"), 431
    )
    assert str(SETTINGS.max_header_bytes) in message


def test_too_many_header_lines_are_refused_with_431(base: str) -> None:
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(SETTINGS.max_headers + 1))
    assert_envelope(raw(base, b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"), 431)


def test_a_client_that_connects_and_says_nothing_is_cut_off(base: str) -> None:
    message = assert_envelope(raw(base, b""), 408)
    assert "headers" in message


def test_a_client_that_stops_halfway_through_its_headers_is_cut_off(base: str) -> None:
    assert_envelope(raw(base, b"GET /health HTTP/1.1\r\nHost: x\r\n"), 408)


def test_a_body_shorter_than_its_content_length_is_cut_off(base: str) -> None:
    head = (
        f"POST /v1/renders/{SUCCEEDED_RENDER}/shares HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ACME_KEY}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    ).encode()
    message = assert_envelope(raw(base, head + b'{"message": '), 408)
    assert "body" in message
    shares = httpx.get(f"{base}/v1/renders/{SUCCEEDED_RENDER}/shares", headers=AUTH)
    assert shares.json()["shares"] == []


# ---- hostile JSON and text ---------------------------------------------------------------


def test_data_nested_a_thousand_levels_deep_renders_and_downloads(base: str) -> None:
    depth = 1000
    body = b'{"data": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    submitted = httpx.post(
        f"{base}/v1/templates/invoice/render", headers=AUTH, content=body, timeout=10
    )
    assert submitted.status_code == 202, submitted.text
    render = submitted.json()["id"]
    httpx.post(f"{base}/_mock/clock", json={"advanceSeconds": 5})
    download = httpx.get(f"{base}/v1/renders/{render}/download", headers=AUTH, timeout=30)
    assert download.status_code == 200, download.text
    assert download.content.startswith(b"%PDF-")
    share = httpx.post(f"{base}/v1/renders/{render}/shares", headers=AUTH, json={}).json()
    assert httpx.get(share["shareUrl"] + "/download", timeout=30).status_code == 200


def test_json_nested_past_the_parsers_limit_is_invalid_json(base: str) -> None:
    depth = 1100
    body = b'{"data": ' + b"[" * depth + b"]" * depth + b"}"
    answer = httpx.post(f"{base}/v1/templates/invoice/render", headers=AUTH, content=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "message",
    ["nul \u0000 inside", "emoji \U0001f4c4 and rtl \u202e text", "combining e\u0301", "\ufeffbom"],
)
def test_odd_unicode_is_kept_exactly(base: str, message: str) -> None:
    created = httpx.post(
        f"{base}/v1/renders/{SUCCEEDED_RENDER}/shares", headers=AUTH, json={"message": message}
    )
    assert created.status_code == 201, created.text
    assert created.json()["message"] == message
    page = httpx.get(created.json()["shareUrl"])
    assert page.status_code == 200


def test_a_lone_surrogate_is_invalid_json(base: str) -> None:
    answer = httpx.post(
        f"{base}/v1/renders/{SUCCEEDED_RENDER}/shares",
        headers={**AUTH, "Content-Type": "application/json"},
        content=b'{"message": "\\ud800"}',
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_json"


# ---- HEAD on every route -----------------------------------------------------------------


def _paths(base: str) -> dict[str, str]:
    """Every public path of the spec with real ids filled in."""
    share = httpx.post(f"{base}/v1/renders/{SUCCEEDED_RENDER}/shares", headers=AUTH, json={})
    created = share.json()
    values = {
        "{id}": SUCCEEDED_RENDER,
        "{slug}": "invoice",
        "{shareId}": created["id"],
        "{token}": created["shareToken"],
    }
    paths = {}
    for operation in craftkit_spec.iter_operations(craftkit_spec.load_resolved()):
        path = operation.path
        for name, value in values.items():
            path = path.replace(name, value)
        paths[f"{operation.method} {operation.path}"] = path
    return paths


def test_head_on_every_route_answers_as_get_would_and_records_nothing(base: str) -> None:
    for name, path in _paths(base).items():
        method = name.split()[0]
        head = httpx.head(f"{base}{path}", headers=AUTH)
        assert head.content == b"", name
        if method == "get":
            get_status = httpx.request("GET", f"{base}{path}", headers=AUTH).status_code
            assert head.status_code == get_status, name
        else:
            assert head.status_code in (200, 405), name  # the path may also take GET
    engagement = httpx.get(f"{base}/v1/renders/{SUCCEEDED_RENDER}/engagement", headers=AUTH)
    counts = engagement.json()["counts"]
    assert counts["viewed"] == 1  # the GET above, not the HEAD
    assert counts["downloaded"] == 1


# ---- the clock, rate-limit keys, logs ----------------------------------------------------


def test_a_century_at_a_time_the_clock_stops_at_its_bound_and_stays_usable(base: str) -> None:
    with httpx.Client(base_url=base) as client:
        answers = [
            client.post("/_mock/clock", json={"advanceSeconds": 3_153_600_000}).status_code
            for _ in range(80)
        ]
    assert 200 in answers
    assert answers[-1] == 400
    assert answers == sorted(answers)  # accepted until the bound, refused from then on
    now = httpx.get(f"{base}/_mock/clock").json()["now"]
    assert now < "9999-01-01T00:00:00.001Z"
    assert httpx.get(f"{base}/v1/renders/{SUCCEEDED_RENDER}", headers=AUTH).status_code == 200


def test_junk_authorization_headers_add_no_rate_limit_windows(
    base: str, server: tuple[str, object]
) -> None:
    with httpx.Client(base_url=base) as client:
        client.put("/_mock/faults", json={"rateLimitPerMinute": 1000})
        for n in range(200):
            client.get("/health", headers={"Authorization": f"Bearer junk-{n}"})
    state = server[1].state  # type: ignore[attr-defined]
    settings = state.settings
    if settings.store_url is None:
        windows = len(state.store._engine._windows)
    else:
        found = redis.Redis.from_url(settings.store_url)
        windows = len(list(found.scan_iter(match=f"{settings.store_prefix}:{{ip:*}}:rate")))
        found.close()
    assert windows == 1  # the caller's address, whatever the junk said


def test_access_log_lines_never_show_a_share_token() -> None:
    token = "cks_" + "A" * 39 + "wxyz"
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/share/{token}/download", "1.1", 200), None,
    )  # fmt: skip
    RedactSecrets().filter(record)
    line = record.getMessage()
    assert token not in line
    assert "/share/cks_\u2026wxyz/download" in line


def test_a_control_token_guards_the_control_api() -> None:
    token = "t" * 32
    with serve(create_app(Settings(control_token=token))) as base_url:
        refused = httpx.get(f"{base_url}/_mock/clock")
        wrong = httpx.get(f"{base_url}/_mock/clock", headers={"X-Craftkit-Control-Token": "x"})
        allowed = httpx.get(f"{base_url}/_mock/clock", headers={"X-Craftkit-Control-Token": token})
        public = httpx.get(f"{base_url}/health")
    assert refused.status_code == wrong.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert allowed.status_code == 200
    assert public.status_code == 200


def test_a_client_gone_mid_body_leaves_no_traceback(
    base: str, caplog: pytest.LogCaptureFixture
) -> None:
    parts = urlsplit(base)
    path = f"/v1/renders/{SUCCEEDED_RENDER}/shares"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: mock\r\nAuthorization: Bearer {ACME_KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
                sock.sendall(head.encode())  # and goes before the body is all there
        assert httpx.get(f"{base}/health").status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


FOLLOWERS = [chr(code) for code in range(0x21, 0x7F)] + ["%2E", "%29", "%3E", "%2C", "%20", " "]
"""Every printable ASCII character, and percent-encoded ones, as might follow a pasted link."""


@pytest.mark.parametrize("follower", FOLLOWERS, ids=[f"{ord(f[0]):02x}{f[1:]}" for f in FOLLOWERS])
def test_no_character_after_a_token_or_key_shields_it_from_the_access_log(follower: str) -> None:
    token, key = "cks_" + "A" * 39 + "wxyz", "ck_test_" + "K" * 20 + "9xQz"
    for secret in (token, key, token.replace("cks_", "%63ks_"), key.replace("_", "%5F")):
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", f"/share/{secret}{follower}?k={secret}", "1.1", 404),
            None,
        )  # fmt: skip
        RedactSecrets().filter(record)
        line = record.getMessage()
        assert "A" * 39 not in line, line
        assert "K" * 20 not in line, line


def test_no_character_after_a_token_shields_it_from_the_journal(base: str) -> None:
    with Sandbox.create(base) as sandbox:
        share = httpx.post(
            f"{base}/v1/renders/{sandbox.render_id}/shares", headers=sandbox.headers, json={}
        ).json()
        token = share["shareToken"]
        with httpx.Client(base_url=base) as client:
            for follower in FOLLOWERS:
                if follower not in "#?/":  # a fragment and a query are not part of the path
                    client.get(f"/share/{token}{quote(follower, safe='%')}")
            client.get(f"/share/{quote(token)}")
            journal = [entry["path"] for entry in client.get("/_mock/requests").json()["requests"]]
    assert len([path for path in journal if path.startswith("/share/")]) >= len(FOLLOWERS) - 2
    assert not [path for path in journal if token[4:-4] in path]


def test_a_web_page_cannot_drive_or_read_the_control_api(base: str) -> None:
    """A cross-site simple POST, a form POST and a DNS-rebound GET are all refused."""
    with Sandbox.create(base) as sandbox:
        clock = f"{base}/_mock/projects/{sandbox.project_id}/clock"
        before = httpx.get(clock).json()
        day = json.dumps({"advanceSeconds": 86400})
        evil = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
        attempts = [
            httpx.post(f"{base}/_mock/clock", content=day, headers=evil),
            httpx.post(clock, content=day, headers=evil),
            httpx.post(clock, content=day, headers={"Content-Type": "text/plain"}),
            httpx.post(f"{base}/_mock/reset", data={"a": "b"}, headers={"Origin": "null"}),
            httpx.post(f"{base}/_mock/reset", headers={"Sec-Fetch-Site": "cross-site"}),
            httpx.get(f"{base}/_mock/emails", headers={"Host": "rebind.attacker.example"}),
        ]
        assert [answer.status_code for answer in attempts] == [403, 403, 400, 403, 403, 403]
        assert all("error" in answer.json() for answer in attempts)
        assert httpx.get(clock).json()["now"][:13] == before["now"][:13]
        assert httpx.get(f"{base}/_mock/clock").json()["frozen"] is False
        sandbox.advance(1)  # its own calls still pass, as do same-origin ones
        own = httpx.get(clock, headers={"Origin": base})
        assert own.status_code == 200


def test_the_allowed_hosts_setting_names_more_hosts_for_the_control_api() -> None:
    with serve(create_app(Settings(allowed_hosts=("mock.internal",)))) as base_url:
        named = httpx.get(f"{base_url}/_mock/clock", headers={"Host": "mock.internal:4010"})
        other = httpx.get(f"{base_url}/_mock/clock", headers={"Host": "other.internal"})
    assert named.status_code == 200
    assert other.status_code == 403
    assert "CRAFTKIT_MOCK_ALLOWED_HOSTS" in other.json()["error"]["message"]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_a_trailing_slash_is_a_404_envelope_never_a_redirect(base: str, method: str) -> None:
    for path, host in (
        (f"/v1/renders/{SUCCEEDED_RENDER}/shares/", "evil.example"),
        ("/health/", "evil.example"),
        ("/_mock/clock/", "127.0.0.1"),
    ):
        answer = httpx.request(
            method, f"{base}{path}", headers={"Authorization": f"Bearer {ACME_KEY}", "Host": host}
        )
        assert answer.status_code in (404, 405), (path, answer.status_code)
        assert "location" not in answer.headers
        assert answer.json()["error"]["code"] in ("not_found", "method_not_allowed")


def _statuses(base_url: str, data: bytes) -> list[int]:
    """Every status line the mock sends back on one connection for ``data``, in order."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", received)]


def test_requests_pipelined_before_a_malformed_one_are_all_answered(base: str) -> None:
    key = f"Authorization: Bearer {ACME_KEY}\r\nHost: mock\r\n"
    create = (
        f"POST /v1/renders/{SUCCEEDED_RENDER}/shares HTTP/1.1\r\n{key}"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()
    read = f"GET /v1/renders/{SUCCEEDED_RENDER} HTTP/1.1\r\n{key}\r\n".encode()
    garbage = b"\x00\x01 NOT HTTP AT ALL\r\n\r\n"
    shares = f"{base}/v1/renders/{SUCCEEDED_RENDER}/shares"
    auth = {"Authorization": f"Bearer {ACME_KEY}"}
    before = len(httpx.get(shares, headers=auth).json()["shares"])
    assert _statuses(base, create + garbage) == [201, 400]
    assert _statuses(base, read + read + garbage) == [200, 200, 400]
    assert _statuses(base, create + b"}}\r\n\r\n") == [201, 400]  # a body past its length
    after = httpx.get(shares, headers=auth).json()["shares"]
    assert len(after) == before + 2  # the shares made, and each 201 was sent
