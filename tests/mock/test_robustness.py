"""No input, however malformed, makes the mock answer 5xx, leave the envelope, or lose state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import craftkit_spec
from mock_server.testing import Sandbox, serve
from tests.conftest import SUCCEEDED_RENDER, Api, AppFactory

SHARES = f"/v1/renders/{SUCCEEDED_RENDER}/shares"
LIMIT = craftkit_spec.body_limit()


def error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"{'single': 'quotes'}", "invalid_json"),
        (b'{"a": NaN}', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'{"message": "\\ud800"}', "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
        (b"[]", "invalid_request"),
        (b'"text"', "invalid_request"),
        (b"42", "invalid_request"),
        (b"null", "invalid_request"),
        (b'{"message": 5}', "invalid_request"),
        (b'{"channel": null}', "invalid_request"),
        (b'{"channel": "LINK"}', "invalid_request"),
        (b'{"expiresAt": "tomorrow"}', "invalid_request"),
        (b'{"expiresAt": "2026-02-30T00:00:00Z"}', "invalid_request"),
        (b'{"recipientEmail": "no-at-sign"}', "invalid_request"),
    ],
)
def test_bad_bodies_get_a_clear_400(api: Api, raw: bytes, code: str) -> None:
    response = api.post(SHARES, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == code
    assert api.shares() == []


def test_form_level_problems_are_form_errors(api: Api) -> None:
    response = api.post(SHARES, content=b"[]")
    assert response.json()["error"]["issues"] == {
        "formErrors": ["Expected object, received array"],
        "fieldErrors": {},
    }


def test_oversize_declared_body_is_413(api: Api) -> None:
    response = api.post(SHARES, content=b"{" + b" " * LIMIT + b"}")
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


def test_oversize_streamed_body_without_length_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"message": "'
        for _ in range(70):
            yield b"x" * 16384
        yield b'"}'

    response = api.post(SHARES, content=chunks())
    assert response.status_code == 413
    assert api.shares() == []


def test_body_of_exactly_the_limit_is_read(api: Api) -> None:
    body = b'{"message": "ok"}'
    response = api.post(SHARES, content=body + b" " * (LIMIT - len(body)))
    assert response.status_code == 201


@pytest.mark.parametrize(
    "text",
    [
        "emoji 😀🎉 and astral \U0001d518\U0001d52b\U0001d526",
        "right-to-left \u202eelbisivni\u202c and zero\u200bwidth",
        "nul \u0000 inside",
        "combining e\u0301 and \ufeff bom",
        "<script>alert(1)</script>",
    ],
)
def test_odd_unicode_is_kept_exactly(api: Api, text: str) -> None:
    share = api.create_share(message=text)
    assert share["message"] == text
    assert api.shares()[0]["message"] == text
    page = api.http.get(f"/share/{share['shareToken']}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text


def test_odd_unicode_data_still_makes_a_valid_pdf(api: Api) -> None:
    render = api.new_render(data={"name": "Zoë 😀 \u202e", "nested": {"k": ["\u0000"]}})
    response = api.get(f"/v1/renders/{render}/download")
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-")


@pytest.mark.parametrize(
    "render_id",
    [
        "not-a-uuid",
        "0193c2c3",
        "00000000-0000-0000-0000-000000000000",
        "0193C2C3-5B1E-7A3C-9F2D-4E8B6A1C0D2F",
        "%00",
        "%F0%9F%98%80",
        "x" * 5000,
        "..%2f..%2fetc%2fpasswd",
    ],
)
def test_odd_render_ids_are_404(api: Api, render_id: str) -> None:
    for path in (f"/v1/renders/{render_id}", f"/v1/renders/{render_id}/shares"):
        response = api.get(path)
        assert response.status_code == 404
        assert error_code(response) == "not_found"


@pytest.mark.parametrize("token", ["cks_", "nope", "cks_%00", "cks_" + "A" * 10_000, "%E2%80%AE"])
def test_odd_share_tokens_are_404(api: Api, token: str) -> None:
    response = api.http.get(f"/share/{token}")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_odd_share_ids_on_revoke_are_404(api: Api) -> None:
    for share_id in ("x", "%20", "0" * 36):
        assert api.delete(f"{SHARES}/{share_id}").status_code == 404


def test_head_is_answered_like_get(api: Api) -> None:
    response = api.http.head("/health")
    assert response.status_code == 200


def test_state_survives_a_barrage_of_bad_requests(api: Api) -> None:
    kept = api.create_share(message="keep me")
    before = api.shares()
    for raw in (b"{", b"[]", b'{"channel": "fax"}', b"\x00" * 100):
        api.post(SHARES, content=raw)
    api.delete(f"{SHARES}/{kept['id']}x")
    api.http.delete(f"{SHARES}/{kept['id']}")  # no key
    assert api.shares() == before


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_share_fields = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.sampled_from(["link", "email", "fax", ""]) | _json,
        "recipientEmail": st.emails() | _json,
        "message": st.text(max_size=40) | _json,
        "expiresAt": st.sampled_from(["2030-01-01T00:00:00Z", "2030-01-01", ""]) | _json,
    },
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # reset per example below
@given(body=_share_fields | _json)
def test_any_json_body_gets_201_or_a_4xx_envelope_and_state_follows(api: Api, body: Any) -> None:
    """The ``api`` fixture is shared by examples, so each compares counts before and after."""
    before = len(api.shares())
    response = api.post(SHARES, content=json.dumps(body).encode())
    assert response.status_code in (201, 400), response.text
    after = len(api.shares())
    if response.status_code == 201:
        assert after == before + 1
    else:
        assert error_code(response) in ("invalid_json", "invalid_request")
        assert after == before


def test_an_unexpected_crash_is_a_500_envelope_and_is_journalled(make_app: AppFactory) -> None:
    """A bug in an endpoint answers the envelope, and the project's journal shows it."""
    app = make_app()
    store = app.state.store

    async def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    store.get_render = crash
    with serve(app) as base_url, Sandbox.create(base_url) as sandbox:
        answer = httpx.get(
            f"{base_url}/v1/renders/{sandbox.render_id}", headers=sandbox.headers, timeout=10
        )
        journal = sandbox.requests()
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal"
    assert "a bug" not in answer.text
    assert [entry["status"] for entry in journal] == [500]


def test_a_request_looks_its_key_or_link_up_once(make_app: AppFactory) -> None:
    """The middleware asks the store once; the endpoint takes the answer it left."""
    app = make_app()
    store = app.state.store
    lookups: list[str] = []
    key_lookup, link_lookup = store.caller_of_key, store.link

    async def caller_of_key(api_key: str) -> Any:
        lookups.append("key")
        return await key_lookup(api_key)

    async def link(token: str) -> Any:
        lookups.append("link")
        return await link_lookup(token)

    store.caller_of_key, store.link = caller_of_key, link
    with serve(app) as base_url, Sandbox.create(base_url) as sandbox:
        render = f"{base_url}/v1/renders/{sandbox.render_id}"
        share = httpx.post(f"{render}/shares", headers=sandbox.headers, json={}).json()
        lookups.clear()
        for method, url in (
            ("GET", render),
            ("GET", f"{render}/shares"),
            ("GET", f"{render}/engagement"),
        ):
            assert httpx.request(method, url, headers=sandbox.headers).status_code == 200
        assert lookups == ["key"] * 3
        lookups.clear()
        assert httpx.get(share["shareUrl"]).status_code == 200
        assert httpx.get(share["shareUrl"] + "/download").status_code == 200
        assert lookups == ["link"] * 2
