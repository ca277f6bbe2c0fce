"""The response checker every mock test runs through is not vacuous."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SUCCEEDED_RENDER, Api
from tests.support.response_checker import ResponseChecker

BASE = "http://127.0.0.1:4010"


def _response(method: str, path: str, status: int, json: object) -> httpx.Response:
    request = httpx.Request(method, f"{BASE}{path}")
    return httpx.Response(status, json=json, request=request)


def test_a_response_missing_a_required_field_is_caught() -> None:
    checker = ResponseChecker(BASE)
    broken = _response("DELETE", f"/v1/renders/{SUCCEEDED_RENDER}/shares/x", 200, {"id": "x"})
    with pytest.raises(AssertionError, match="breaks the spec"):
        checker(broken)


def test_an_undocumented_status_is_caught() -> None:
    checker = ResponseChecker(BASE)
    teapot = _response("GET", f"/v1/renders/{SUCCEEDED_RENDER}", 418, {"error": {}})
    with pytest.raises(AssertionError, match="418"):
        checker(teapot)


def test_an_error_code_the_status_does_not_carry_is_caught() -> None:
    checker = ResponseChecker(BASE)
    body = {"error": {"code": "conflict", "message": "not ready"}}
    wrong = _response("POST", f"/v1/renders/{SUCCEEDED_RENDER}/shares", 409, body)
    with pytest.raises(AssertionError):
        checker(wrong)


def test_the_session_checks_real_responses(api: Api) -> None:
    api.create_share()
    api.shares()
    assert api.checker.checked >= 2
