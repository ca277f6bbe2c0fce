"""Concurrent requests never break an invariant: one revoke wins, counts are exact."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.conftest import SUCCEEDED_RENDER, Api

CONCURRENCY = 50


async def _gather(base_url: str, requests: list[tuple[str, str, dict[str, str]]]) -> list[int]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.request(method, path, headers=headers) for method, path, headers in requests)
        )
    return [response.status_code for response in responses]


def test_fifty_concurrent_revokes_have_exactly_one_winner(api: Api) -> None:
    share = api.create_share()
    path = f"/v1/renders/{SUCCEEDED_RENDER}/shares/{share['id']}"
    statuses = asyncio.run(
        _gather(str(api.http.base_url), [("DELETE", path, api.auth())] * CONCURRENCY)
    )
    assert Counter(statuses) == {200: 1, 404: CONCURRENCY - 1}
    (row,) = api.shares()
    assert row["revokedAt"] is not None
    engagement = api.get(f"/v1/renders/{SUCCEEDED_RENDER}/engagement").json()
    assert engagement["counts"]["share_revoked"] == 1


def test_fifty_concurrent_views_from_distinct_addresses_count_exactly(api: Api) -> None:
    share = api.create_share()
    path = f"/share/{share['shareToken']}"
    requests = [("GET", path, {"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(CONCURRENCY)]
    statuses = asyncio.run(_gather(str(api.http.base_url), requests))
    assert statuses == [200] * CONCURRENCY
    assert api.shares()[0]["clickCount"] == CONCURRENCY


def test_fifty_concurrent_views_from_one_address_count_once(api: Api) -> None:
    share = api.create_share()
    path = f"/share/{share['shareToken']}"
    requests = [("GET", path, {"X-Forwarded-For": "198.51.100.7"})] * CONCURRENCY
    asyncio.run(_gather(str(api.http.base_url), requests))
    assert api.shares()[0]["clickCount"] == 1


def test_concurrent_creates_all_land_with_distinct_ids_and_tokens(api: Api) -> None:
    async def create_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(api.http.base_url), timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"/v1/renders/{SUCCEEDED_RENDER}/shares",
                        json={"message": str(i)},
                        headers=api.auth(),
                    )
                    for i in range(CONCURRENCY)
                )
            )

    responses = asyncio.run(create_all())
    assert {response.status_code for response in responses} == {201}
    rows = api.shares()
    assert len(rows) == CONCURRENCY
    assert len({row["id"] for row in rows}) == CONCURRENCY
    assert len({row["shareToken"] for row in rows}) == CONCURRENCY
