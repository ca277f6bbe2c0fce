"""The mock answers every operation as openapi.yaml and API_NOTES say, through real HTTP."""

from __future__ import annotations

import io

import pypdf
import pytest

import craftkit_spec
from tests.conftest import (
    ACME_KEY,
    GLOBEX_KEY,
    GLOBEX_RENDER,
    QUEUED_RENDER,
    SUCCEEDED_RENDER,
    Api,
)


def error_code(response: object) -> str:
    body = response.json()  # type: ignore[attr-defined]
    code: str = body["error"]["code"]
    return code


# ---- health and the envelope for routing errors -----------------------------------------


def test_health(api: Api) -> None:
    response = api.http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_path_is_404_in_the_envelope(api: Api) -> None:
    response = api.http.get("/v2/nothing")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_wrong_method_is_405_in_the_envelope_with_allow(api: Api) -> None:
    response = api.http.put(f"/v1/renders/{SUCCEEDED_RENDER}/shares", headers=api.auth())
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


# ---- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic abc", "bearer ck_test_unknown_key_123", "Bearer a b", "Bearer  x"],
)
def test_missing_malformed_or_unknown_key_is_401(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = api.http.get(f"/v1/renders/{SUCCEEDED_RENDER}/shares", headers=headers)
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


def test_auth_is_checked_before_the_body(api: Api) -> None:
    response = api.http.post(f"/v1/renders/{SUCCEEDED_RENDER}/shares", content=b"{not json")
    assert response.status_code == 401


def test_deleted_project_key_is_403(api: Api) -> None:
    created = api.control("POST", "/projects", json={"name": "doomed"}).json()
    render = api.new_render(key=created["apiKey"])
    assert api.control("DELETE", f"/projects/{created['projectId']}").status_code == 204
    response = api.http.get(f"/v1/renders/{render}", headers=api.auth(created["apiKey"]))
    assert response.status_code == 403
    assert error_code(response) == "forbidden"


# ---- project isolation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("GET", "/download"),
        ("GET", "/shares"),
        ("POST", "/shares"),
        ("POST", "/email"),
        ("GET", "/engagement"),
    ],
)
def test_another_projects_render_is_404_never_403(api: Api, method: str, suffix: str) -> None:
    body = {"to": "a@example.com"} if suffix == "/email" else {}
    response = api.http.request(
        method,
        f"/v1/renders/{GLOBEX_RENDER}{suffix}",
        headers=api.auth(ACME_KEY),
        json=body if method == "POST" else None,
    )
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_shares_do_not_cross_projects(api: Api) -> None:
    share = api.create_share()
    response = api.http.delete(
        f"/v1/renders/{SUCCEEDED_RENDER}/shares/{share['id']}", headers=api.auth(GLOBEX_KEY)
    )
    assert response.status_code == 404
    assert [row["id"] for row in api.shares()] == [share["id"]]


# ---- renders ----------------------------------------------------------------------------


def test_render_moves_queued_rendering_succeeded_on_the_clock(api: Api) -> None:
    api.control("POST", "/clock", json={"frozen": True})
    submitted = api.post("/v1/templates/invoice/render", json={"data": {"n": 1}})
    assert submitted.status_code == 202
    body = submitted.json()
    assert body["status"] == "queued"
    assert body["downloadUrl"] is None
    assert body["pollUrl"].endswith(f"/v1/renders/{body['id']}")
    polled = []
    for _ in range(3):
        polled.append(api.get(f"/v1/renders/{body['id']}").json())
        api.advance(1)
    assert [r["status"] for r in polled] == ["queued", "rendering", "succeeded"]
    render = polled[-1]
    assert render["completedAt"] is not None
    assert render["durationMs"] == 1500
    assert render["downloadUrl"].endswith(f"/v1/renders/{body['id']}/download")


def test_render_that_asks_to_fail_fails(api: Api) -> None:
    submitted = api.post("/v1/templates/invoice/render", json={"data": {"_mockFailure": "boom"}})
    api.advance(5)
    render = api.get(f"/v1/renders/{submitted.json()['id']}").json()
    assert render["status"] == "failed"
    assert render["errorMessage"] == "boom"
    assert render["downloadUrl"] is None


def test_idempotency_key_replays_with_200_and_header_wins_over_job_id(api: Api) -> None:
    first = api.post(
        "/v1/templates/invoice/render",
        json={"data": {}, "jobId": "job-1"},
        headers={**api.auth(), "Idempotency-Key": "key-1"},
    )
    assert first.status_code == 202
    assert first.headers["idempotency-key"] == "key-1"
    again = api.http.post(
        "/v1/templates/invoice/render",
        json={"data": {"other": True}},
        headers={**api.auth(), "Idempotency-Key": "key-1"},
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    by_job = api.post("/v1/templates/invoice/render", json={"data": {}, "jobId": "job-1"})
    assert by_job.status_code == 202, "the header won, so jobId job-1 was never recorded"
    assert by_job.json()["id"] != first.json()["id"]


def test_idempotency_keys_are_scoped_to_the_project(api: Api) -> None:
    headers = {"Idempotency-Key": "shared"}
    acme = api.http.post(
        "/v1/templates/invoice/render", json={"data": {}}, headers={**api.auth(), **headers}
    )
    globex = api.http.post(
        "/v1/templates/invoice/render",
        json={"data": {}},
        headers={**api.auth(GLOBEX_KEY), **headers},
    )
    assert acme.status_code == globex.status_code == 202
    assert acme.json()["id"] != globex.json()["id"]


@pytest.mark.parametrize(
    ("slug", "body", "status", "code"),
    [
        ("nope", {"data": {}}, 404, "template_not_found"),
        ("invoice", {"data": {}, "options": {"versionNumber": 9}}, 404, "version_not_found"),
        ("draft-letter", {"data": {}}, 409, "no_published_version"),
        ("certificate", {"data": {"course": "x"}}, 400, "invalid_input_data"),
        ("invoice", {"data": []}, 400, "invalid_request"),
        ("invoice", {"jobId": ""}, 400, "invalid_request"),
    ],
)
def test_render_submission_errors(
    api: Api, slug: str, body: dict[str, object], status: int, code: str
) -> None:
    response = api.post(f"/v1/templates/{slug}/render", json=body)
    assert response.status_code == status
    assert error_code(response) == code


def test_invalid_input_data_names_the_fields(api: Api) -> None:
    response = api.post("/v1/templates/certificate/render", json={"data": {"course": "x"}})
    issues = response.json()["error"]["issues"]
    assert issues == {"formErrors": [], "fieldErrors": {"recipientName": ["Required"]}}


def test_certificate_with_its_fields_renders(api: Api) -> None:
    body = {"data": {"recipientName": "Ada", "course": "Maths"}, "options": {"versionNumber": 1}}
    assert api.post("/v1/templates/certificate/render", json=body).status_code == 202


def test_queue_unavailable_fault(api: Api) -> None:
    api.control("PUT", "/faults", json={"queueUnavailable": True})
    response = api.post("/v1/templates/invoice/render", json={"data": {}})
    assert response.status_code == 503
    assert error_code(response) == "queue_unavailable"
    assert int(response.headers["retry-after"]) >= 0


# ---- download ---------------------------------------------------------------------------


def test_download_is_a_whole_valid_pdf_with_the_documented_headers(api: Api) -> None:
    response = api.get(f"/v1/renders/{SUCCEEDED_RENDER}/download")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert int(response.headers["content-length"]) == len(response.content)
    assert (
        response.headers["content-disposition"] == f'attachment; filename="{SUCCEEDED_RENDER}.pdf"'
    )
    assert response.content.startswith(b"%PDF-")
    assert response.content.rstrip().endswith(b"%%EOF")
    text = pypdf.PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert "Invoice" in text
    assert "INV-2026-0042" in text


def test_download_of_an_unfinished_render_is_409_conflict_naming_the_status(api: Api) -> None:
    response = api.get(f"/v1/renders/{QUEUED_RENDER}/download")
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert "queued" in response.json()["error"]["message"]


def test_storage_failure_is_a_clean_500(api: Api) -> None:
    api.control("PUT", "/faults", json={"storageFails": True})
    response = api.get(f"/v1/renders/{SUCCEEDED_RENDER}/download")
    assert response.status_code == 500
    assert error_code(response) == "internal"


# ---- shares -----------------------------------------------------------------------------


def test_create_share_echoes_and_normalises(api: Api) -> None:
    share = api.create_share(message="Here you go", expiresAt="2030-12-31T23:59:59Z")
    assert share["channel"] == "link"
    assert share["recipientEmail"] is None
    assert share["message"] == "Here you go"
    assert share["expiresAt"] == "2030-12-31T23:59:59.000Z"
    assert share["revokedAt"] is None
    assert share["shareToken"].startswith("cks_")
    assert share["shareUrl"] == f"{api.http.base_url}".rstrip("/") + f"/share/{share['shareToken']}"


def test_fraction_of_a_second_is_kept_to_the_millisecond(api: Api) -> None:
    share = api.create_share(expiresAt="2030-01-01T00:00:00.123456Z")
    assert share["expiresAt"] == "2030-01-01T00:00:00.123Z"


def test_email_channel_needs_recipient_email(api: Api) -> None:
    response = api.post(f"/v1/renders/{SUCCEEDED_RENDER}/shares", json={"channel": "email"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "recipientEmail" in error["issues"]["fieldErrors"]


def test_link_share_keeps_recipient_email_as_metadata(api: Api) -> None:
    share = api.create_share(recipientEmail="someone@example.com")
    assert share["channel"] == "link"
    assert share["recipientEmail"] == "someone@example.com"


def test_unknown_keys_are_ignored(api: Api) -> None:
    share = api.create_share(message="m", colour="blue")
    assert "colour" not in share


@pytest.mark.parametrize("field", ["message"])
def test_share_message_limit_is_inclusive(api: Api, field: str) -> None:
    limit = craftkit_spec.fact("CreateShareRequest", field, "maxLength")
    assert api.create_share(**{field: "a" * limit})[field] == "a" * limit
    response = api.post(f"/v1/renders/{SUCCEEDED_RENDER}/shares", json={field: "a" * (limit + 1)})
    assert response.status_code == 400
    assert field in response.json()["error"]["issues"]["fieldErrors"]


def test_sharing_an_unfinished_render_is_409_not_ready(api: Api) -> None:
    response = api.post(f"/v1/renders/{QUEUED_RENDER}/shares", json={})
    assert response.status_code == 409
    assert error_code(response) == "not_ready"


def test_list_is_newest_first_with_revoked_rows(api: Api) -> None:
    api.control("POST", "/clock", json={"frozen": True})
    first = api.create_share(message="first")
    second = api.create_share(message="second")
    api.advance(1)
    third = api.create_share(message="third")
    assert api.delete(f"/v1/renders/{SUCCEEDED_RENDER}/shares/{second['id']}").status_code == 200
    rows = api.shares()
    assert [row["id"] for row in rows] == [third["id"], second["id"], first["id"]]
    revoked = rows[1]
    assert revoked["revokedAt"] is not None
    assert revoked["revokedReason"] == craftkit_spec.revoke_reason()
    assert rows[0]["revokedReason"] is None
    assert rows[0]["shareToken"] == third["shareToken"]


def test_revoke_is_one_shot(api: Api) -> None:
    share = api.create_share()
    path = f"/v1/renders/{SUCCEEDED_RENDER}/shares/{share['id']}"
    first = api.delete(path)
    assert first.status_code == 200
    assert first.json()["id"] == share["id"]
    second = api.delete(path)
    assert second.status_code == 404
    assert error_code(second) == "not_found"


def test_revoke_of_a_share_through_another_render_is_404(api: Api) -> None:
    share = api.create_share()
    other = api.new_render()
    response = api.delete(f"/v1/renders/{other}/shares/{share['id']}")
    assert response.status_code == 404


# ---- the public share page ---------------------------------------------------------------


def test_share_page_shows_the_message_escaped_and_counts_a_view(api: Api) -> None:
    share = api.create_share(message="<b>Signed</b> & sealed")
    page = api.http.get(f"/share/{share['shareToken']}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "&lt;b&gt;Signed&lt;/b&gt; &amp; sealed" in page.text
    assert f"/share/{share['shareToken']}/download" in page.text
    assert api.shares()[0]["clickCount"] == 1


def test_views_are_deduplicated_per_ip_within_the_window(api: Api) -> None:
    share = api.create_share()
    url = f"/share/{share['shareToken']}"
    for _ in range(3):
        api.http.get(url, headers={"X-Forwarded-For": "203.0.113.1"})
    api.http.get(url, headers={"X-Forwarded-For": "203.0.113.2"})
    assert api.shares()[0]["clickCount"] == 2
    api.advance(craftkit_spec.dedup_window_seconds() - 1)
    api.http.get(url, headers={"X-Forwarded-For": "203.0.113.1"})
    assert api.shares()[0]["clickCount"] == 2
    api.advance(2)
    api.http.get(url, headers={"X-Forwarded-For": "203.0.113.1"})
    assert api.shares()[0]["clickCount"] == 3


def test_revoked_expired_and_unknown_links_are_the_same_404(api: Api) -> None:
    revoked = api.create_share()
    api.delete(f"/v1/renders/{SUCCEEDED_RENDER}/shares/{revoked['id']}")
    expiring = api.create_share(expiresAt="2030-01-01T00:00:00Z")
    api.control("POST", "/clock", json={"now": "2030-01-01T00:00:00.000Z"})
    answers = []
    for token in (revoked["shareToken"], expiring["shareToken"], "cks_" + "x" * 43):
        for suffix in ("", "/download"):
            response = api.http.get(f"/share/{token}{suffix}")
            answers.append((response.status_code, response.content))
    assert len(set(answers)) == 1
    assert answers[0][0] == 404


def test_past_expiry_is_accepted_but_never_resolves(api: Api) -> None:
    share = api.create_share(expiresAt="2001-01-01T00:00:00Z")
    assert api.http.get(f"/share/{share['shareToken']}").status_code == 404
    row = api.shares()[0]
    assert row["revokedAt"] is None
    assert api.delete(f"/v1/renders/{SUCCEEDED_RENDER}/shares/{share['id']}").status_code == 200


def test_shared_download_is_the_pdf_and_counts_downloads(api: Api) -> None:
    share = api.create_share()
    response = api.http.get(f"/share/{share['shareToken']}/download")
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-")
    counts = api.get(f"/v1/renders/{SUCCEEDED_RENDER}/engagement").json()["counts"]
    assert counts["downloaded"] == 1
    assert counts["viewed"] == 0


# ---- email ------------------------------------------------------------------------------


def test_email_creates_an_email_share_and_sends_through_the_outbox(api: Api) -> None:
    response = api.post(
        f"/v1/renders/{SUCCEEDED_RENDER}/email",
        json={"to": "client@acme.com", "recipientName": "Jane Doe", "message": "Signed copy."},
    )
    assert response.status_code == 201
    sent = response.json()
    (row,) = api.shares()
    assert row["id"] == sent["id"]
    assert row["channel"] == "email"
    assert row["recipientEmail"] == "client@acme.com"
    (mail,) = api.control("GET", "/emails").json()["emails"]
    assert mail["id"] == sent["emailMessageId"]
    assert mail["to"] == "client@acme.com"
    assert mail["shareId"] == sent["id"]
    assert mail["renderId"] == SUCCEEDED_RENDER
    for body in (mail["text"], mail["html"]):
        assert "Jane Doe" in body
        assert "Signed copy." in body
        assert sent["shareUrl"] in body
    assert mail["subject"]


def test_email_not_configured_is_503_and_creates_nothing(api: Api) -> None:
    api.control("PUT", "/faults", json={"emailTransport": "none"})
    response = api.post(f"/v1/renders/{SUCCEEDED_RENDER}/email", json={"to": "a@example.com"})
    assert response.status_code == 503
    assert error_code(response) == "email_not_configured"
    assert api.shares() == []


def test_rejected_send_is_502_and_the_share_stays(api: Api) -> None:
    api.control("PUT", "/faults", json={"emailSendFails": True})
    response = api.post(f"/v1/renders/{SUCCEEDED_RENDER}/email", json={"to": "a@example.com"})
    assert response.status_code == 502
    assert error_code(response) == "email_send_failed"
    (row,) = api.shares()
    assert row["channel"] == "email"
    assert api.control("GET", "/emails").json()["emails"] == []


def test_email_of_an_unfinished_render_is_409(api: Api) -> None:
    response = api.post(f"/v1/renders/{QUEUED_RENDER}/email", json={"to": "a@example.com"})
    assert response.status_code == 409
    assert error_code(response) == "not_ready"


@pytest.mark.parametrize(
    "body",
    [{}, {"to": "not-an-address"}, {"to": "a@example.com", "recipientName": "n" * 201}],
)
def test_email_body_validation(api: Api, body: dict[str, object]) -> None:
    response = api.post(f"/v1/renders/{SUCCEEDED_RENDER}/email", json=body)
    assert response.status_code == 400
    assert error_code(response) == "invalid_request"


def test_recipient_name_of_200_is_accepted(api: Api) -> None:
    body = {"to": "a@example.com", "recipientName": "n" * 200}
    assert api.post(f"/v1/renders/{SUCCEEDED_RENDER}/email", json=body).status_code == 201


# ---- engagement -------------------------------------------------------------------------


def test_engagement_counts_every_kind_and_recent_is_newest_first(api: Api) -> None:
    share = api.create_share()
    api.http.get(f"/share/{share['shareToken']}")
    printed = api.post(f"/v1/renders/{SUCCEEDED_RENDER}/events", json={"eventType": "printed"})
    assert printed.json() == {"recorded": True}
    repeat = api.post(f"/v1/renders/{SUCCEEDED_RENDER}/events", json={"eventType": "printed"})
    assert repeat.json() == {"recorded": False}
    body = api.get(f"/v1/renders/{SUCCEEDED_RENDER}/engagement").json()
    assert body["counts"] == {
        "viewed": 1,
        "downloaded": 0,
        "printed": 1,
        "email_opened": 0,
        "email_sent": 0,
        "share_created": 1,
        "share_revoked": 0,
    }
    assert body["linkOpens"] == 1
    assert body["total"] == 3
    assert [event["eventType"] for event in body["recent"]] == [
        "printed",
        "viewed",
        "share_created",
    ]


def test_recent_events_are_capped_at_25(api: Api) -> None:
    for _ in range(30):
        api.create_share()
    body = api.get(f"/v1/renders/{SUCCEEDED_RENDER}/engagement").json()
    assert len(body["recent"]) == 25
    assert body["counts"]["share_created"] == 30


# ---- settings-dependent URLs, rate limiting, journal ------------------------------------


def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    api.control("PUT", "/faults", json={"rateLimitPerMinute": 2})
    statuses = [api.get(f"/v1/renders/{SUCCEEDED_RENDER}").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = api.get(f"/v1/renders/{SUCCEEDED_RENDER}")
    assert error_code(limited) == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    api.advance(61)
    assert api.get(f"/v1/renders/{SUCCEEDED_RENDER}").status_code == 200


def test_journal_lists_public_requests_newest_first(api: Api) -> None:
    api.get(f"/v1/renders/{SUCCEEDED_RENDER}")
    api.http.get("/health")
    entries = api.control("GET", "/requests").json()["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in entries[:2]] == [
        ("GET", "/health", 200),
        ("GET", f"/v1/renders/{SUCCEEDED_RENDER}", 200),
    ]
    assert all(not e["path"].startswith("/_mock") for e in entries)


def test_reset_returns_to_the_seed(api: Api) -> None:
    api.create_share()
    api.control("PUT", "/faults", json={"emailTransport": "none"})
    assert api.control("POST", "/reset").status_code == 204
    assert api.shares() == []
    assert api.control("GET", "/faults").json()["emailTransport"] == "outbox"


def test_an_idempotency_key_is_checked_against_the_spec(api: Api) -> None:
    schema = craftkit_spec.header_parameter("Idempotency-Key")["schema"]
    assert "maxLength" not in schema  # no source states one
    path = "/v1/templates/invoice/render"
    refused = api.post(path, json={"data": {}}, headers={"Idempotency-Key": ""})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_request"
    assert list(error["issues"]["fieldErrors"]) == ["Idempotency-Key"]
    long_key = {"Idempotency-Key": "k" * 10_000}
    first = api.post(path, json={"data": {}}, headers=long_key)
    again = api.post(path, json={"data": {}}, headers=long_key)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    bad_json = api.post(path, content=b"{", headers={"Idempotency-Key": ""})
    assert bad_json.json()["error"]["code"] == "invalid_json"  # the body's syntax first


@pytest.mark.parametrize(
    ("given", "echoed"),
    [
        ("2030-06-01T12:00:00+02:00", "2030-06-01T10:00:00.000Z"),
        ("2030-06-01T12:00:00.5-03:30", "2030-06-01T15:30:00.500Z"),
        ("2030-06-01T12:00:00+00:00", "2030-06-01T12:00:00.000Z"),
        ("2030-06-01T00:30:00.123456789+01:00", "2030-05-31T23:30:00.123Z"),
    ],
)
def test_expiry_offsets_are_accepted_and_normalised_to_utc(
    api: Api, given: str, echoed: str
) -> None:
    assert api.create_share(expiresAt=given)["expiresAt"] == echoed


@pytest.mark.parametrize(
    "given",
    ["2030-06-01T12:00:00", "2030-06-01", "2030-06-01T12:00:00+2:00", "9999-12-31T23:59:59-02:00"],
)
def test_a_refused_expiry_says_what_a_timestamp_must_look_like(api: Api, given: str) -> None:
    refused = api.post(f"/v1/renders/{SUCCEEDED_RENDER}/shares", json={"expiresAt": given})
    assert refused.status_code == 400, refused.text
    # One problem, one message: the form it must take (not also a bare "Invalid datetime").
    [message] = refused.json()["error"]["issues"]["fieldErrors"]["expiresAt"]
    assert message.startswith("Invalid datetime")
    assert "^(" not in message  # never the raw pattern
