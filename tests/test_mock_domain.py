"""The mock's pure rules, property-tested without any HTTP."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import craftkit_spec
from mock_server import domain, errors
from mock_server.ids import ShareTokenMinter, uuid7

SPEC = craftkit_spec.load_resolved()
SCHEMAS = SPEC["components"]["schemas"]
ORDER = {"queued": 0, "rendering": 1, "succeeded": 2, "failed": 2}

instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
durations = st.integers(min_value=0, max_value=10**7).map(lambda ms: timedelta(milliseconds=ms))


def _render(
    created: datetime, queue: timedelta, work: timedelta, failure: str | None
) -> domain.Render:
    return domain.Render(
        id="r",
        project_id="p",
        template_slug="invoice",
        template_name="Invoice",
        version=1,
        data={},
        created_at=created,
        queue_for=queue,
        render_for=work,
        failure=failure,
    )


@given(instants)
def test_timestamps_round_trip_at_millisecond_precision(instant: datetime) -> None:
    text = domain.format_timestamp(instant)
    assert re.fullmatch(SCHEMAS["Timestamp"]["pattern"], text)
    assert domain.parse_timestamp(text) == instant


def test_input_fractions_are_truncated_to_milliseconds() -> None:
    parsed = domain.parse_timestamp("2026-12-31T23:59:59.987654Z")
    assert domain.format_timestamp(parsed) == "2026-12-31T23:59:59.987Z"
    assert domain.format_timestamp(domain.parse_timestamp("2026-12-31T23:59:59Z")) == (
        "2026-12-31T23:59:59.000Z"
    )


@given(instants, durations, durations, st.none() | st.text(min_size=1), durations, durations)
def test_render_status_only_moves_forward(
    created: datetime,
    queue: timedelta,
    work: timedelta,
    failure: str | None,
    first: timedelta,
    later: timedelta,
) -> None:
    render = _render(created, queue, work, failure)
    early = domain.render_state(render, created + first)
    late = domain.render_state(render, created + first + later)
    assert ORDER[early.status] <= ORDER[late.status]
    for state in (early, late):
        terminal = state.status in domain.TERMINAL_STATUSES
        assert (state.completed_at is not None) == terminal
        assert (state.duration_ms is not None) == terminal
        assert (state.error_message is not None) == (state.status == "failed")
    if late.status in domain.TERMINAL_STATUSES:
        assert late.status == ("failed" if failure else "succeeded")


def test_render_status_boundaries() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    render = _render(start, timedelta(seconds=1), timedelta(seconds=2), None)
    assert domain.render_state(render, start).status == "queued"
    assert domain.render_state(render, start + timedelta(seconds=1)).status == "rendering"
    done = domain.render_state(render, start + timedelta(seconds=3))
    assert done.status == "succeeded"
    assert done.completed_at == start + timedelta(seconds=3)
    assert done.duration_ms == 2000


def _share(expires: datetime | None = None, revoked: datetime | None = None) -> domain.Share:
    return domain.Share(
        id="s",
        render_id="r",
        project_id="p",
        sequence=1,
        token_nonce=b"n",
        token_digest="d",
        channel="link",
        recipient_email=None,
        message=None,
        expires_at=expires,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        revoked_at=revoked,
    )


@given(instants, instants)
def test_a_share_resolves_exactly_before_its_expiry(expiry: datetime, now: datetime) -> None:
    assert domain.share_resolves(_share(expires=expiry), now) == (now < expiry)


@given(instants, instants)
def test_a_revoked_share_never_resolves(revoked: datetime, now: datetime) -> None:
    assert not domain.share_resolves(_share(revoked=revoked), now)
    assert domain.share_resolves(_share(), now)


def test_revoke_stamps_time_and_reason_and_keeps_the_rest() -> None:
    now = datetime(2026, 6, 6, 9, tzinfo=UTC)
    revoked = domain.revoke(_share(), now)
    assert revoked.revoked_at == now
    assert revoked.revoked_reason == "revoked_by_partner"
    assert revoked.id == "s"
    assert revoked.created_at == _share().created_at


@given(st.none() | instants, durations)
def test_deduplication_window_is_five_minutes(last: datetime | None, elapsed: timedelta) -> None:
    if last is None:
        assert domain.counts_again(None, datetime(2026, 1, 1, tzinfo=UTC))
        return
    assert domain.counts_again(last, last + elapsed) == (elapsed >= timedelta(minutes=5))


@given(st.lists(st.tuples(instants, st.integers(0, 10**6)), max_size=20, unique_by=lambda t: t[1]))
def test_newest_first_orders_by_time_then_creation(rows: list[tuple[datetime, int]]) -> None:
    shares = [
        domain.Share(
            id=str(seq),
            render_id="r",
            project_id="p",
            sequence=seq,
            token_nonce=b"",
            token_digest="",
            channel="link",
            recipient_email=None,
            message=None,
            expires_at=None,
            created_at=at,
        )
        for at, seq in rows
    ]
    ordered = domain.newest_first(shares)
    keys = [(share.created_at, share.sequence) for share in ordered]
    assert keys == sorted(keys, reverse=True)


def test_share_base_prefers_custom_domain_then_share_base_then_app_then_origin() -> None:
    options: dict[str, str | None] = {
        "custom_domain": "https://c.example/",
        "share_base_url": "https://s.example",
        "app_url": "https://a.example",
        "request_origin": "http://o.example",
    }
    expected = ["https://c.example", "https://s.example", "https://a.example", "http://o.example"]
    for key, answer in zip(list(options)[:3], expected, strict=False):
        assert domain.share_base(**options) == answer  # type: ignore[arg-type]
        options[key] = None
    assert domain.share_base(**options) == expected[3]  # type: ignore[arg-type]


@given(instants)
def test_uuid7_is_version_7_with_the_instant_in_it(instant: datetime) -> None:
    value = uuid7(instant)
    assert re.fullmatch(SCHEMAS["Uuid7"]["pattern"], value)
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert parsed.int >> 80 == int(instant.timestamp() * 1000) & ((1 << 48) - 1)


def test_share_tokens_fit_the_spec_and_depend_on_nonce_and_secret() -> None:
    minter = ShareTokenMinter(b"k" * 32)
    nonce = ShareTokenMinter.new_nonce()
    token = minter.token(nonce)
    assert re.fullmatch(SCHEMAS["ShareToken"]["pattern"], token)
    assert len(token) - len("cks_") >= 22  # at least 128 bits of base64
    assert minter.token(nonce) == token
    assert minter.token(ShareTokenMinter.new_nonce()) != token
    assert ShareTokenMinter(b"j" * 32).token(nonce) != token


@pytest.mark.parametrize("error", errors.ALL_ERRORS, ids=lambda e: e.__name__)
def test_every_error_class_is_a_status_and_code_the_spec_declares(
    error: type[errors.ApiError],
) -> None:
    assert error.code in SCHEMAS["ErrorCode"]["enum"]
    declared = {
        status
        for (_, status), codes in craftkit_spec.error_table(SPEC).items()
        if error.code in codes
    }
    general = re.findall(rf"^\| (\d{{3}}) \| `{error.code}` \|", SPEC["info"]["description"], re.M)
    assert error.status in declared | {int(status) for status in general}


def test_the_error_hierarchy_covers_every_declared_code() -> None:
    assert {error.code for error in errors.ALL_ERRORS} == set(SCHEMAS["ErrorCode"]["enum"])


@pytest.mark.parametrize(
    ("python_names", "schema"),
    [
        (domain.RENDER_STATUSES, "RenderStatus"),
        (domain.EVENT_TYPES, "EventType"),
        (tuple(domain.RECIPIENT_EVENTS), "RecipientEventType"),
        (("link", "email"), "Channel"),
    ],
)
def test_the_mocks_enumerations_are_the_specs(python_names: tuple[str, ...], schema: str) -> None:
    """The mock types these names for mypy; the spec owns them, so they must agree."""
    assert set(python_names) == set(SCHEMAS[schema]["enum"])
