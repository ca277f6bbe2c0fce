"""Every project is a sandbox: its clock, faults, outbox, journal and reset are its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mock_server.testing import Sandbox, SandboxError
from tests.conftest import ACME, ACME_KEY, SUCCEEDED_RENDER, Api


@pytest.fixture
def pair(api: Api) -> Iterator[tuple[Sandbox, Sandbox]]:
    """Two sandboxes on the session's mock (reset to the seed first by ``api``)."""
    base = str(api.http.base_url)
    with Sandbox.create(base, "one") as one, Sandbox.create(base, "two") as two:
        yield one, two


def share(sandbox: Sandbox, **body: object) -> dict[str, str]:
    response = httpx.post(
        f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/shares",
        headers=sandbox.headers,
        json=body,
    )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


def email(sandbox: Sandbox, to: str = "client@example.com") -> httpx.Response:
    return httpx.post(
        f"{sandbox.base_url}/v1/renders/{sandbox.render_id}/email",
        headers=sandbox.headers,
        json={"to": to},
    )


def test_a_project_clock_moves_that_project_only(pair: tuple[Sandbox, Sandbox], api: Api) -> None:
    one, two = pair
    shared_before = api.control("GET", "/clock").json()["now"]
    moved = one.advance(7 * 24 * 3600)
    assert moved - two.now() > timedelta(days=6)
    assert api.control("GET", "/clock").json()["now"] < moved.isoformat()
    assert api.control("GET", "/clock").json()["now"] >= shared_before


def test_a_share_link_reads_its_own_projects_clock(pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    expiry = (one.now() + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    mine = share(one, expiresAt=expiry)
    theirs = share(two, expiresAt=expiry)
    two.advance(3600)  # the other project's time passes its expiry, not this one's
    assert httpx.get(mine["shareUrl"]).status_code == 200
    assert httpx.get(theirs["shareUrl"]).status_code == 404


def test_the_shared_clock_moves_projects_without_a_clock_of_their_own(
    pair: tuple[Sandbox, Sandbox], api: Api
) -> None:
    one, two = pair
    pinned = one.freeze()
    api.control("POST", "/clock", json={"advanceSeconds": 86_400})
    assert two.now() - pinned > timedelta(hours=23)
    assert one.now() == pinned


def test_a_refused_clock_change_leaves_the_project_as_it_was(
    pair: tuple[Sandbox, Sandbox], api: Api
) -> None:
    one, _ = pair
    for body in ({"now": "9999-12-31T23:59:59Z"}, {"advanceSeconds": -3_000_000_000}):
        for path in (f"/projects/{one.project_id}/clock", "/clock"):
            refused = api.control("POST", path, json=body)
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["code"] == "invalid_request"
    assert abs(one.now() - datetime.now(UTC)) < timedelta(minutes=1)
    assert httpx.get(f"{one.base_url}/health").status_code == 200


def test_faults_are_per_project_and_fall_back_to_the_shared_ones(
    pair: tuple[Sandbox, Sandbox], api: Api
) -> None:
    one, two = pair
    assert one.set_faults(emailSendFails=True)["emailSendFails"] is True
    assert two.faults()["emailSendFails"] is False
    assert email(one).status_code == 502
    assert email(two).status_code == 201
    api.control("PUT", "/faults", json={"emailTransport": "none"})
    assert one.faults()["emailTransport"] == "none"  # not set by the project: the shared value
    assert email(two).status_code == 503
    two.set_faults(emailTransport="outbox")
    assert email(two).status_code == 201


def test_rate_limits_count_per_project_on_its_clock(pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    one.set_faults(rateLimitPerMinute=2)
    path = f"{one.base_url}/v1/renders/{one.render_id}"
    statuses = [httpx.get(path, headers=one.headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert httpx.get(f"{two.base_url}/health", headers=two.headers).status_code == 200
    one.advance(60)
    assert httpx.get(path, headers=one.headers).status_code == 200


def test_rate_limit_windows_ignore_the_case_of_the_scheme(pair: tuple[Sandbox, Sandbox]) -> None:
    one, _ = pair
    one.set_faults(rateLimitPerMinute=2)
    path = f"{one.base_url}/v1/renders/{one.render_id}"
    answers = [
        httpx.get(path, headers={"Authorization": f"{scheme} {one.api_key}"}).status_code
        for scheme in ("Bearer", "bearer", "BEARER", "BeArEr")
    ]
    assert answers == [200, 200, 429, 429]


def test_outbox_and_journal_hold_only_the_projects_own(
    pair: tuple[Sandbox, Sandbox], api: Api
) -> None:
    one, two = pair
    assert email(one, "one@example.com").status_code == 201
    assert email(two, "two@example.com").status_code == 201
    assert [mail["to"] for mail in one.emails()] == ["one@example.com"]
    assert {mail["projectId"] for mail in two.emails()} == {two.project_id}
    everyone = api.control("GET", "/emails").json()["emails"]
    assert [m["to"] for m in everyone] == ["one@example.com", "two@example.com"]
    filtered = api.control("GET", "/emails", params={"projectId": two.project_id}).json()
    assert [m["to"] for m in filtered["emails"]] == ["two@example.com"]
    by_render = api.control("GET", "/emails", params={"renderId": one.render_id}).json()
    assert [m["to"] for m in by_render["emails"]] == ["one@example.com"]
    by_address = api.control("GET", "/emails", params={"to": "TWO@example.com"}).json()
    assert [m["renderId"] for m in by_address["emails"]] == [two.render_id]
    link = one.emails()[0]["text"].split("Open it here: ")[1].split()[0]
    assert httpx.get(link).status_code == 200
    journal = one.requests()
    assert [(e["method"], e["status"]) for e in journal] == [("GET", 200), ("POST", 201)]
    assert journal[1]["path"] == f"/v1/renders/{one.render_id}/email"
    assert all(two.render_id not in e["path"] for e in journal)


def test_the_journal_never_shows_a_share_token(pair: tuple[Sandbox, Sandbox], api: Api) -> None:
    one, _ = pair
    created = share(one)
    token = created["shareToken"]
    httpx.get(created["shareUrl"])
    httpx.get(created["shareUrl"] + "/download")
    for entries in (one.requests(), api.control("GET", "/requests").json()["requests"]):
        paths = [e["path"] for e in entries]
        assert not any(token in p for p in paths)
        assert f"/share/cks_\u2026{token[-4:]}" in paths
        assert f"/share/cks_\u2026{token[-4:]}/download" in paths


def test_head_on_a_link_records_nothing(pair: tuple[Sandbox, Sandbox]) -> None:
    one, _ = pair
    created = share(one)
    assert httpx.head(created["shareUrl"]).status_code == 200
    assert httpx.head(created["shareUrl"] + "/download").status_code == 200
    engagement = httpx.get(
        f"{one.base_url}/v1/renders/{one.render_id}/engagement", headers=one.headers
    ).json()
    assert engagement["counts"]["viewed"] == 0
    assert engagement["counts"]["downloaded"] == 0


def test_a_project_reset_forgets_its_state_and_nobody_elses(
    pair: tuple[Sandbox, Sandbox],
) -> None:
    one, two = pair
    old_render = one.render_id
    link = share(one)["shareUrl"]
    kept = share(two)["shareUrl"]
    email(one)
    one.freeze()
    one.set_faults(storageFails=True)
    one.reset()
    assert one.emails() == []
    assert one.requests() == []
    assert httpx.get(link).status_code == 404
    assert httpx.get(kept).status_code == 200
    gone = httpx.get(f"{one.base_url}/v1/renders/{old_render}", headers=one.headers)
    assert gone.status_code == 404  # the key still works: 404, not 401
    assert one.faults()["storageFails"] is False
    clock = httpx.get(f"{one.base_url}/_mock/projects/{one.project_id}/clock").json()
    assert clock["frozen"] is False
    assert abs(one.now() - datetime.now(UTC)) < timedelta(minutes=1)
    assert [e["status"] for e in two.requests()] == [200, 201]  # its link opened, its share


def test_a_seeded_project_reset_brings_back_its_seed(api: Api) -> None:
    api.create_share()
    api.new_render()
    assert api.control("POST", f"/projects/{ACME.id}/reset").status_code == 204
    assert api.shares() == []
    assert api.get(f"/v1/renders/{SUCCEEDED_RENDER}").json()["status"] == "succeeded"
    assert api.get(f"/v1/renders/{ACME.renders[1].id}").json()["status"] == "queued"
    assert api.control("GET", f"/projects/{ACME.id}/clock").status_code == 200
    assert api.get("/v1/renders/unknown").status_code == 404  # ACME_KEY still valid
    assert api.key == ACME_KEY


def test_a_deleted_project_has_no_sandbox(api: Api) -> None:
    base = str(api.http.base_url)
    sandbox = Sandbox.create(base)
    sandbox.delete()
    for method, path in (("GET", "/clock"), ("GET", "/faults"), ("POST", "/reset")):
        answer = api.control(method, f"/projects/{sandbox.project_id}{path}")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"
    with httpx.Client(base_url=f"{base}/_mock") as client:
        stale = Sandbox(base, sandbox.project_id, sandbox.api_key, "", client)
        with pytest.raises(SandboxError, match="404"):
            stale.now()


def test_the_global_reset_still_resets_everything(api: Api) -> None:
    sandbox = Sandbox.create(str(api.http.base_url))
    assert api.control("POST", "/reset").status_code == 204
    gone = httpx.get(f"{sandbox.base_url}/v1/renders/{sandbox.render_id}", headers=sandbox.headers)
    assert gone.status_code == 401
    with pytest.raises(SandboxError, match="404"):
        sandbox.delete()


def test_moving_a_clock_back_never_locks_its_key_out(api: Api) -> None:
    with Sandbox.create(api.http.base_url.__str__().rstrip("/")) as sandbox:
        sandbox.set_faults(rateLimitPerMinute=5)
        render = f"{sandbox.base_url}/v1/renders/{sandbox.render_id}"
        assert [httpx.get(render, headers=sandbox.headers).status_code for _ in range(6)] == [
            200, 200, 200, 200, 200, 429,
        ]  # fmt: skip
        sandbox.advance(-86400)
        again = httpx.get(render, headers=sandbox.headers)
        assert again.status_code == 200, again.headers.get("retry-after")
        sandbox.advance(86400 + 120)  # and forward again: the old minute is long gone
        assert httpx.get(render, headers=sandbox.headers).status_code == 200


def test_a_projects_exchanges_export_as_har_with_stand_ins_for_its_secrets(mock_url: str) -> None:
    with (
        Sandbox.create(mock_url) as box,
        Sandbox.create(mock_url) as other,
        httpx.Client(base_url=mock_url, headers=box.headers) as api,
    ):
        share = api.post(f"/v1/renders/{box.render_id}/shares", json={"message": "Hi"}).json()
        httpx.get(share["shareUrl"])
        api.get(f"/v1/renders/{box.render_id}/download")
        httpx.get(f"{mock_url}/v1/renders/{other.render_id}", headers=other.headers)
        exported = httpx.get(f"{mock_url}/_mock/projects/{box.project_id}/requests.har")
    assert exported.status_code == 200
    text = exported.text
    assert box.api_key not in text
    assert share["shareToken"] not in text
    entries = exported.json()["log"]["entries"]
    assert [(e["request"]["method"], e["response"]["status"]) for e in entries] == [
        ("POST", 201),
        ("GET", 200),
        ("GET", 200),
    ]  # fmt: skip: its own three, none of the other project's
    made, opened, downloaded = entries
    assert made["request"]["postData"]["text"] == '{"message":"Hi"}'
    body = httpx.Response(200, content=made["response"]["content"]["text"]).json()
    # The stand-in keeps the token's shape, and the link opened is the same stand-in.
    assert body["shareToken"].startswith("cks_")
    assert len(body["shareToken"]) == len(share["shareToken"])
    assert opened["request"]["url"].endswith(f"/share/{body['shareToken']}")
    key = next(h["value"] for h in made["request"]["headers"] if h["name"] == "authorization")
    assert key.startswith("Bearer ck_test_")
    assert len(key) == len(f"Bearer {box.api_key}")
    assert "text" not in downloaded["response"]["content"]  # a PDF is left out
    assert downloaded["response"]["content"]["mimeType"] == "application/pdf"
