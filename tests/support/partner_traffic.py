"""What a partner's integration sends, shaped to show every rule passive checking decides.

Two sandboxes (two projects), then the calls an integration makes in a day: read a render,
share it, open the links, list, revoke (once, again, twice at once, through the wrong
render, with the other project's key), open a link after its expiry (the project's clock
moved, then a share stamped later), download, read engagement, submit renders with an
Idempotency-Key and replay it, and a call without a key. On the mock every answer keeps the
contract; on a broken variant the passive checker has what it needs to say which rule broke.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx

from mock_server.testing import Sandbox


def _revoke_at_once(base_url: str, headers: dict[str, str], path: str) -> None:
    """Two revokes of one share in flight together."""

    async def both() -> None:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as api:
            await asyncio.gather(api.delete(path), api.delete(path))

    asyncio.run(both())


def partner_traffic(base_url: str) -> None:
    """Send the day's calls to the API at ``base_url`` (a mock, or a proxy in front of one)."""
    with (
        Sandbox.create(base_url, name="passive A") as own,
        Sandbox.create(base_url, name="passive B") as other_project,
        httpx.Client(base_url=base_url, headers=own.headers, timeout=10) as api,
        httpx.Client(base_url=base_url, headers=other_project.headers, timeout=10) as other,
    ):
        render, second = own.render_id, own.new_render()
        shares = f"/v1/renders/{render}/shares"
        api.get(f"/v1/renders/{render}")
        first = api.post(shares, json={}).json()
        kept = api.post(shares, json={"message": "For your records"}).json()
        api.post(f"/v1/renders/{render}/email", json={"to": "ada@example.com"})
        for _ in range(2):
            httpx.get(first["shareUrl"], timeout=10)
        api.get(shares)
        api.delete(f"{shares}/{first['id']}")
        api.get(shares)
        api.delete(f"{shares}/{first['id']}")  # again
        httpx.get(first["shareUrl"], timeout=10)  # a revoked link
        api.delete(f"/v1/renders/{second}/shares/{kept['id']}")  # through another render
        other.delete(f"{shares}/{kept['id']}")  # with another project's key
        raced = api.post(shares, json={}).json()
        _revoke_at_once(base_url, own.headers, f"{shares}/{raced['id']}")
        api.get(shares)
        api.get(f"/v1/renders/{second}/shares")
        expiry = (own.now() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        brief = api.post(shares, json={"expiresAt": expiry}).json()
        own.advance(120)  # the project's time only
        api.post(shares, json={})  # stamped after the expiry
        httpx.get(brief["shareUrl"], timeout=10)  # an expired link
        api.get(f"/v1/renders/{render}")
        api.get(f"/v1/renders/{render}/download")
        for _ in range(2):
            api.get(f"/v1/renders/{render}/engagement")
        other.get(f"/v1/renders/{render}")  # another project's render
        key = {"Idempotency-Key": f"passive-{uuid.uuid4()}"}
        for client in (api, api, other):
            client.post("/v1/templates/invoice/render", headers=key, json={"data": {}})
        httpx.get(f"{base_url}/v1/renders/{render}", timeout=10)  # no key
        httpx.get(
            f"{base_url}/v1/renders/{render}", headers={"Authorization": "Basic x"}, timeout=10
        )
