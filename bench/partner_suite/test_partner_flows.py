"""A partner's own integration tests, as they write them: their client against the mock's URL.

No fixture of ours and no import of the toolkit: each test makes its project through the
control API and drives it with plain httpx, so the same file runs in an environment without
the mock installed. ``bench/install.py`` times it with and without the mock's distribution
installed, to show what installing the mock costs a partner's test sessions.

    CRAFTKIT_MOCK_URL=http://127.0.0.1:4010 pytest -n 4 bench/partner_suite
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest

BASE = os.environ.get("CRAFTKIT_MOCK_URL", "http://127.0.0.1:4010").rstrip("/")


@pytest.fixture
def project() -> Iterator[tuple[httpx.Client, str, str]]:
    """A project of the test's own: an API client with its key, its control URL, a render."""
    made = httpx.post(f"{BASE}/_mock/projects", json={"name": "partner suite"}).json()
    control = f"{BASE}/_mock/projects/{made['projectId']}"
    render = httpx.post(f"{control}/renders", json={}).json()["id"]
    headers = {"Authorization": f"Bearer {made['apiKey']}"}
    with httpx.Client(base_url=BASE, headers=headers, timeout=10) as api:
        yield api, control, render
    httpx.delete(f"{BASE}/_mock/projects/{made['projectId']}")


@pytest.mark.parametrize("message", ["Here you go", "", "Signed copy attached", "ok", "thanks"])
def test_a_share_carries_its_message(project: tuple[httpx.Client, str, str], message: str) -> None:
    api, _, render = project
    created = api.post(f"/v1/renders/{render}/shares", json={"message": message})
    assert created.status_code == 201
    assert created.json()["message"] == message


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_the_list_shows_every_share(project: tuple[httpx.Client, str, str], count: int) -> None:
    api, _, render = project
    made = {api.post(f"/v1/renders/{render}/shares", json={}).json()["id"] for _ in range(count)}
    listed = api.get(f"/v1/renders/{render}/shares").json()["shares"]
    assert {row["id"] for row in listed} == made


@pytest.mark.parametrize("minutes", [1, 10, 30, 60, 600])
def test_a_link_expires(project: tuple[httpx.Client, str, str], minutes: int) -> None:
    api, control, render = project
    now = datetime.fromisoformat(httpx.get(f"{control}/clock").json()["now"])
    expiry = (now + timedelta(minutes=minutes)).isoformat()
    share = api.post(f"/v1/renders/{render}/shares", json={"expiresAt": expiry}).json()
    assert httpx.get(share["shareUrl"]).status_code == 200
    httpx.post(f"{control}/clock", json={"advanceSeconds": minutes * 60})
    assert httpx.get(share["shareUrl"]).status_code == 404


@pytest.mark.parametrize("attempt", range(5))
def test_a_second_revoke_is_not_found(project: tuple[httpx.Client, str, str], attempt: int) -> None:
    api, _, render = project
    share = api.post(f"/v1/renders/{render}/shares", json={}).json()
    assert api.delete(f"/v1/renders/{render}/shares/{share['id']}").status_code == 200
    assert api.delete(f"/v1/renders/{render}/shares/{share['id']}").status_code == 404
