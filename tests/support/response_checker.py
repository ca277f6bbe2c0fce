"""Checking the mock's real responses against the specs with openapi-core, in the tests.

The mock itself validates only requests (compiled schemas, for speed); this checker, hooked
into the test clients, validates every response a test receives against openapi.yaml (or
mock-control.yaml for ``/_mock``), so every behavioural test is also a contract test.
"""

from __future__ import annotations

import copy
import functools
from typing import Any
from urllib.parse import urlsplit

import httpx
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse

import craftkit_spec


def _served_at(spec: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The spec with every ``servers`` list pointing at the server under test."""
    local = copy.deepcopy(spec)
    local["servers"] = [{"url": base_url}]
    for item in local.get("paths", {}).values():
        if "servers" in item:
            item["servers"] = [{"url": base_url}]
    return local


@functools.cache
def _validators(base_url: str) -> tuple[OpenAPI, OpenAPI]:
    """The product and control validators for a server, built once per URL (they are slow)."""
    product = craftkit_spec.load_raw()
    control = craftkit_spec.load_resolved(craftkit_spec.spec_path("mock-control.yaml"))
    return (
        OpenAPI.from_dict(_served_at(product, base_url)),
        OpenAPI.from_dict(_served_at(control, base_url)),
    )


class ResponseChecker:
    """Validates httpx responses against the product and control specs."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url.rstrip("/")
        self._product, self._control = _validators(self._base_url)
        self.checked = 0

    def __call__(self, response: httpx.Response) -> None:
        """An httpx response hook: raise AssertionError when the response breaks the spec."""
        response.read()
        request = response.request
        path = urlsplit(str(request.url)).path
        spec = self._control if path.startswith("/_mock") else self._product
        content_type = response.headers.get("content-type", "").split(";")[0]
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = b""  # a streamed request body; the response is still checked
        mock_request = MockRequest(
            self._base_url,
            request.method.lower(),
            path,
            args=dict(request.url.params),
            headers=dict(request.headers),
            data=body,
        )
        # A binary body (the PDF, `type: string, format: binary`) is checked as the string of
        # its bytes: openapi-core's 3.1 validator takes no bytes for `type: string`.
        binary = content_type != "application/json" and not content_type.startswith("text/")
        data: Any = response.content.decode("latin-1") if binary else response.content
        mock_response = MockResponse(
            data,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=content_type,
        )
        try:
            spec.validate_response(mock_request, mock_response)
        except (PathNotFound, OperationNotFound):
            return  # no such operation in the contract (an unknown path, a wrong method)
        except Exception as exc:
            raise AssertionError(
                f"{request.method} {path} answered {response.status_code}, which breaks the "
                f"spec: {exc!r}\n{response.text[:500]}"
            ) from exc
        self.checked += 1
