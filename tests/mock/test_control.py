"""The control API (mock-control.yaml) drives state and time, and answers bad input cleanly."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
import redis

import craftkit_spec
from mock_server.testing import Sandbox, serve
from tests.conftest import SUCCEEDED_RENDER, Api, AppFactory


def test_clock_can_be_read_moved_set_and_frozen(api: Api) -> None:
    frozen = api.control("POST", "/clock", json={"frozen": True}).json()
    assert frozen["frozen"] is True
    assert api.control("GET", "/clock").json()["now"] == frozen["now"]
    moved = api.control("POST", "/clock", json={"advanceSeconds": 90}).json()
    assert moved["now"] > frozen["now"]
    jumped = api.control("POST", "/clock", json={"now": "2031-02-03T04:05:06+01:00"}).json()
    assert jumped["now"] == "2031-02-03T03:05:06.000Z"
    running = api.control("POST", "/clock", json={"frozen": False}).json()
    assert running["frozen"] is False


@pytest.mark.parametrize(
    "body",
    [{}, {"advanceSeconds": 1, "frozen": True}, {"advanceSeconds": "soon"}, {"now": "yesterday"}],
)
def test_clock_changes_must_be_exactly_one_valid_field(api: Api, body: dict[str, Any]) -> None:
    response = api.control("POST", "/clock", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_created_project_starts_with_the_seed_templates(api: Api) -> None:
    created = api.control("POST", "/projects", json={}).json()
    assert created["apiKey"].startswith("ck_test_")
    fresh = Api(str(api.http.base_url), created["apiKey"])
    with fresh.http:
        for slug in ("invoice", "certificate"):
            body = {"data": {"recipientName": "A", "course": "B"}}
            assert fresh.post(f"/v1/templates/{slug}/render", json=body).status_code == 202
        assert fresh.get(f"/v1/renders/{SUCCEEDED_RENDER}").status_code == 404


def test_project_without_a_body_is_created(api: Api) -> None:
    response = api.control("POST", "/projects")
    assert response.status_code == 201


def test_unknown_project_or_render_is_404(api: Api) -> None:
    assert api.control("DELETE", "/projects/nope").status_code == 404
    status = api.control("POST", "/renders/nope/status", json={"status": "failed"})
    assert status.status_code == 404


def test_render_with_unknown_key_is_401(api: Api) -> None:
    response = api.control("POST", "/renders", json={"apiKey": "ck_test_nobody_123456"})
    assert response.status_code == 401


def test_render_status_can_be_forced_both_ways(api: Api) -> None:
    render = api.new_render(status="rendering")
    assert api.post(f"/v1/renders/{render}/shares", json={}).status_code == 409
    forced = api.control("POST", f"/renders/{render}/status", json={"status": "succeeded"})
    assert forced.json()["status"] == "succeeded"
    assert api.post(f"/v1/renders/{render}/shares", json={}).status_code == 201
    failed = api.control("POST", f"/renders/{render}/status", json={"status": "failed"}).json()
    assert failed["errorMessage"]
    assert failed["downloadUrl"] is None


def test_faults_are_read_and_changed_field_by_field(api: Api) -> None:
    defaults = api.control("GET", "/faults").json()
    control = craftkit_spec.load_resolved(craftkit_spec.spec_path("mock-control.yaml"))
    documented = control["components"]["responses"]["Faults"]["content"]["application/json"]
    assert defaults == documented["examples"]["defaults"]["value"]
    changed = api.control("PUT", "/faults", json={"storageFails": True}).json()
    assert changed == {**defaults, "storageFails": True}
    bad = api.control("PUT", "/faults", json={"emailTransport": "pigeon"})
    assert bad.status_code == 400


def _strings(value: Any, seen: set[int]) -> list[str]:
    """Every string reachable from an object, through containers, dataclasses and attributes."""
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k, seen) + _strings(v, seen)]
    if isinstance(value, (list, tuple, set, frozenset)) or type(value).__name__ == "deque":
        return [s for item in value for s in _strings(item, seen)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            s for f in dataclasses.fields(value) for s in _strings(getattr(value, f.name), seen)
        ]
    if hasattr(value, "__dict__") and type(value).__module__.startswith("mock_server"):
        return _strings(vars(value), seen)
    return []


def _redis_strings(url: str, prefix: str) -> list[str]:
    """Every key and value a Redis store holds under its prefix, as text."""
    client = redis.Redis.from_url(url, decode_responses=True)
    found: list[str] = []
    for key in client.scan_iter(match=f"{prefix}:*"):
        found.append(key)
        kind = client.type(key)
        values: Any
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        else:
            values = client.zrange(key, 0, -1)
        found += [value for value in values if value is not None]
    client.close()
    return found


def test_the_store_holds_no_plain_token_or_key(make_app: AppFactory) -> None:
    app = make_app()
    with serve(app) as base_url, Sandbox.create(base_url) as sandbox:
        made = httpx.post(
            f"{base_url}/v1/renders/{sandbox.render_id}/shares", headers=sandbox.headers, json={}
        )
        token = made.json()["shareToken"]
        api_key = sandbox.api_key
        assert httpx.get(made.json()["shareUrl"]).status_code == 200
        store = app.state.store
        settings = app.state.settings
        if settings.store_url is None:
            # The minter holds the secret tokens are derived with; the seed is the partner's
            # own file (its keys are written there). Everything else is the state kept.
            state = {k: v for k, v in vars(store).items() if k not in ("_minter", "_seed")}
            reachable = _strings(state, set())
        else:
            reachable = _redis_strings(settings.store_url, settings.store_prefix)
    assert len(reachable) > 20, "the walk reached the store's records"
    for secret in (token, token.removeprefix("cks_"), api_key):
        assert not any(secret in text for text in reachable), secret
