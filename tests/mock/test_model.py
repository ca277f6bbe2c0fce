"""The mock's pure rules, property-tested without any HTTP."""

from __future__ import annotations

import ast
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import craftkit_spec
from mock_server.model import errors, faults, records, rules, timestamps
from mock_server.model.ids import ShareTokenMinter, uuid7

SPEC = craftkit_spec.load_resolved()
SCHEMAS = SPEC["components"]["schemas"]
ORDER = {"queued": 0, "rendering": 1, "succeeded": 2, "failed": 2}

instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
durations = st.integers(min_value=0, max_value=10**7).map(lambda ms: timedelta(milliseconds=ms))


def _render(
    created: datetime, queue: timedelta, work: timedelta, failure: str | None
) -> records.Render:
    return records.Render(
        id="r",
        project_id="p",
        template_slug="invoice",
        template_name="Invoice",
        version=1,
        packed_data=records.pack({}),
        created_at=created,
        queue_for=queue,
        render_for=work,
        failure=failure,
    )


@given(instants)
def test_timestamps_round_trip_at_millisecond_precision(instant: datetime) -> None:
    text = timestamps.format_timestamp(instant)
    assert re.fullmatch(SCHEMAS["Timestamp"]["pattern"], text)
    assert timestamps.parse_timestamp(text) == instant


def test_input_fractions_are_truncated_to_milliseconds() -> None:
    parsed = timestamps.parse_timestamp("2026-12-31T23:59:59.987654Z")
    assert timestamps.format_timestamp(parsed) == "2026-12-31T23:59:59.987Z"
    assert timestamps.format_timestamp(timestamps.parse_timestamp("2026-12-31T23:59:59Z")) == (
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
    early = rules.render_state(render, created + first)
    late = rules.render_state(render, created + first + later)
    assert ORDER[early.status] <= ORDER[late.status]
    for state in (early, late):
        terminal = state.status in records.TERMINAL_STATUSES
        assert (state.completed_at is not None) == terminal
        assert (state.duration_ms is not None) == terminal
        assert (state.error_message is not None) == (state.status == "failed")
    if late.status in records.TERMINAL_STATUSES:
        assert late.status == ("failed" if failure else "succeeded")


def test_render_status_boundaries() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    render = _render(start, timedelta(seconds=1), timedelta(seconds=2), None)
    assert rules.render_state(render, start).status == "queued"
    assert rules.render_state(render, start + timedelta(seconds=1)).status == "rendering"
    done = rules.render_state(render, start + timedelta(seconds=3))
    assert done.status == "succeeded"
    assert done.completed_at == start + timedelta(seconds=3)
    assert done.duration_ms == 2000


def _share(expires: datetime | None = None, revoked: datetime | None = None) -> records.Share:
    return records.Share(
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
    assert rules.share_resolves(_share(expires=expiry), now) == (now < expiry)


@given(instants, instants)
def test_a_revoked_share_never_resolves(revoked: datetime, now: datetime) -> None:
    assert not rules.share_resolves(_share(revoked=revoked), now)
    assert rules.share_resolves(_share(), now)


def test_revoke_stamps_time_and_reason_and_keeps_the_rest() -> None:
    now = datetime(2026, 6, 6, 9, tzinfo=UTC)
    revoked = rules.revoke(_share(), now, craftkit_spec.revoke_reason())
    assert revoked.revoked_at == now
    assert revoked.revoked_reason == craftkit_spec.revoke_reason()
    assert revoked.id == "s"
    assert revoked.created_at == _share().created_at


WINDOW = timedelta(seconds=craftkit_spec.dedup_window_seconds())


@given(st.none() | instants, durations)
def test_an_event_counts_again_once_the_window_has_passed(
    last: datetime | None, elapsed: timedelta
) -> None:
    if last is None:
        assert rules.counts_again(None, datetime(2026, 1, 1, tzinfo=UTC), WINDOW)
        return
    assert rules.counts_again(last, last + elapsed, WINDOW) == (elapsed >= WINDOW)


@given(st.lists(st.tuples(instants, st.integers(0, 10**6)), max_size=20, unique_by=lambda t: t[1]))
def test_newest_first_orders_by_time_then_creation(rows: list[tuple[datetime, int]]) -> None:
    shares = [
        records.Share(
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
    ordered = rules.newest_first(shares)
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
        assert rules.share_base(**options) == answer  # type: ignore[arg-type]
        options[key] = None
    assert rules.share_base(**options) == expected[3]  # type: ignore[arg-type]


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
        (records.RENDER_STATUSES, "RenderStatus"),
        (records.EVENT_TYPES, "EventType"),
        (records.CHANNELS, "Channel"),
    ],
)
def test_the_mocks_enumerations_are_the_specs(python_names: tuple[str, ...], schema: str) -> None:
    """The mock types these names for mypy; the spec owns them, so they must agree."""
    assert set(python_names) == set(SCHEMAS[schema]["enum"])


def test_the_fault_switches_are_the_control_specs() -> None:
    """The control API shows and takes exactly the switches mock-control.yaml documents."""
    assert {faults.wire_name(name) for name in faults.FAULT_NAMES} == set(
        craftkit_spec.fault_switches()
    )
    assert list(faults.to_wire(faults.Faults())) == list(craftkit_spec.fault_switches())
    assert faults.from_wire({"emailSendFails": True, "unknown": 1}) == {"email_send_fails": True}


@pytest.mark.parametrize(
    ("module", "alias", "values"),
    [
        (records, "RenderStatus", records.RENDER_STATUSES),
        (records, "Channel", records.CHANNELS),
        (records, "EventType", records.EVENT_TYPES),
        (faults, "EmailTransportName", faults.EMAIL_TRANSPORTS),
    ],
)
def test_each_literal_type_lists_the_values_of_its_tuple(
    module: object, alias: str, values: tuple[str, ...]
) -> None:
    """Each ``Literal`` type names exactly its tuple's values, in order.

    The model's types exist for mypy only: typing is not imported at run time.
    """
    path = getattr(module, "__file__", None)
    assert path is not None
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    [literal] = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == [alias]
        and isinstance(node.value, ast.Subscript)
    ]
    named = literal.slice.elts if isinstance(literal.slice, ast.Tuple) else [literal.slice]
    assert tuple(ast.literal_eval(element) for element in named) == values
