"""sms4sats adapter: derived receive states, `smsStatus` send states, the 21-minute auto-cancel
clock, errors carried in a 200 (`error` field, `status:"error"`), and code/phone redaction.

What every adapter must handle (HTTP errors, garbage bodies, id rules) is in `test_contract.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from pipeline.model import Observation, TrackedOrder
from pipeline.providers.sms4sats.adapter import STATUS_MAP, Sms4satsAdapter
from pipeline.settings import ProviderSettings

ADAPTER = Sms4satsAdapter()
RECEIVE = "sms_receive"
SEND = "sms_send"
WINDOW_S = 22 * 60


def _parse(
    order: TrackedOrder,
    polled_at: datetime,
    body: bytes | dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    previous_state: str | None = None,
) -> Observation:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return ADAPTER.parse(
        status, headers or {}, raw, order=order, polled_at=polled_at, previous_state=previous_state
    )


@pytest.mark.parametrize(
    ("fixture", "kind", "http_status", "state", "error_class", "terminal", "success"),
    [
        ("receive_code_received.json", RECEIVE, 200, "code_received", None, True, True),
        ("send_status_placeholder.json", SEND, 200, "unknown", None, False, None),
        ("receive_no_number.json", RECEIVE, 200, "failed", None, True, False),
        ("error_500.json", RECEIVE, 500, "unknown", "server_error", False, None),
        ("send_delivered.json", SEND, 200, "code_received", None, True, True),
        ("receive_unpaid.json", RECEIVE, 200, "pending", None, False, None),
    ],
)
def test_documented_examples(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    fixture: str,
    kind: str,
    http_status: int,
    state: str,
    error_class: str | None,
    terminal: bool,
    success: bool | None,
) -> None:
    obs = _parse(
        make_order("sms4sats", kind=kind),
        polled_at,
        load_fixture("sms4sats", fixture),
        status=http_status,
    )
    assert (obs.state, obs.error_class, obs.is_terminal, obs.is_success) == (
        state,
        error_class,
        terminal,
        success,
    )


def test_placeholder_send_status_is_flagged_unrecognized(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("sms4sats", kind=SEND),
        polled_at,
        load_fixture("sms4sats", "send_status_placeholder.json"),
    )
    assert obs.status_unrecognized
    assert obs.provider_status == "created | sent | delivered | failed"


def test_code_received_facts(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("sms4sats"), polled_at, load_fixture("sms4sats", "receive_code_received.json")
    )
    assert obs.has_code is True
    assert obs.code_sha256 == hmac.new(b"", b"48010", hashlib.sha256).hexdigest()
    assert obs.code_length == 5
    assert obs.phone_masked == "*******8901"
    assert obs.is_paid is True
    assert (obs.service, obs.country) == ("openAI", "India")
    assert obs.provider_timestamp_raw == "1666613406969"
    assert obs.provider_created_at is None
    assert obs.provider_status == "paid=true;number=true;code=true;error=false"
    assert obs.payload_redacted is not None
    assert "48010" not in obs.payload_redacted
    assert "12345678901" not in obs.payload_redacted


def test_no_number_sets_substatus(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("sms4sats"), polled_at, load_fixture("sms4sats", "receive_no_number.json")
    )
    assert obs.provider_substatus == "no_number"
    assert obs.error_class is None


@pytest.mark.parametrize(
    ("body", "age_s", "state", "terminal"),
    [
        ({"status": "OK", "paid": True, "error": "No available number"}, 60, "failed", True),
        ({"status": "OK", "paid": True, "code": 48010}, 60, "code_received", True),
        ({"status": "OK", "paid": True, "code": 48010}, 3600, "code_received", True),
        ({"status": "OK", "paid": True, "number": 12345678901}, 60, "processing", False),
        ({"status": "OK", "paid": True}, WINDOW_S - 1, "processing", False),
        ({"status": "OK", "paid": True}, WINDOW_S + 1, "expired", True),
        ({"status": "OK", "paid": False}, 60, "pending", False),
        ({"status": "OK"}, 60, "pending", False),
        ({"status": "OK", "paid": False}, WINDOW_S + 1, "expired", True),
    ],
)
def test_receive_mapping_rows(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    body: dict[str, Any],
    age_s: float,
    state: str,
    terminal: bool,
) -> None:
    obs = _parse(make_order("sms4sats", age_s=age_s), polled_at, body)
    assert (obs.state, obs.is_terminal, obs.error_class) == (state, terminal, None)


def test_window_counts_from_provider_creation_when_known(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    order = make_order("sms4sats", age_s=60, created_at=polled_at - timedelta(minutes=30))
    obs = _parse(order, polled_at, {"status": "OK", "paid": True})
    assert obs.state == "expired"


@pytest.mark.parametrize(
    ("sms_status", "age_s", "state", "terminal", "success", "substatus"),
    [
        ("created", 60, "processing", False, None, None),
        ("sent", 60, "processing", False, None, None),
        ("sent", 11 * 60, "completed", True, True, "sent_no_dlr"),
        ("delivered", 60, "code_received", True, True, None),
        ("failed", 60, "failed", True, False, None),
        ("queued-somewhere", 60, "unknown", False, None, None),
    ],
)
def test_send_mapping_rows(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    sms_status: str,
    age_s: float,
    state: str,
    terminal: bool,
    success: bool | None,
    substatus: str | None,
) -> None:
    body = {"status": "OK", "paid": True, "id": "SM1", "smsStatus": sms_status}
    obs = _parse(make_order("sms4sats", kind=SEND, age_s=age_s), polled_at, body)
    assert (obs.state, obs.is_terminal, obs.is_success, obs.provider_substatus) == (
        state,
        terminal,
        success,
        substatus,
    )
    assert obs.provider_status == sms_status
    assert obs.status_unrecognized == (sms_status not in STATUS_MAP)
    assert obs.has_code is None


def test_send_without_status_follows_payment(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    order = make_order("sms4sats", kind=SEND)
    assert _parse(order, polled_at, {"status": "OK", "paid": False}).state == "pending"
    assert _parse(order, polled_at, {"status": "OK", "paid": True}).state == "processing"


def test_code_as_string_keeps_leading_zeros(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    obs = _parse(make_order("sms4sats"), polled_at, {"status": "OK", "paid": True, "code": "0424"})
    assert obs.state == "code_received"
    assert obs.code_length == 4
    assert obs.code_sha256 == hmac.new(b"", b"0424", hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("body", "error_class"),
    [
        (b'{"status":"error","reason":"unable to save data"}', "body_error"),
        (b'{"status":"error","reason":"order not found"}', "not_found"),
        (b'{"status":"OK","paid":"yes"}', "parse_error"),
        (b'{"status":7,"paid":true}', "parse_error"),
        (b'{"status":"OK","paid":true,"code":48010.0}', "parse_error"),
        (b'{"status":"OK","paid":true,"error":true}', "parse_error"),
    ],
)
def test_errors_in_a_200_keep_previous_state(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    body: bytes,
    error_class: str,
) -> None:
    """`status:"error"` envelopes, and fields of the wrong type (a float code has lost digits)."""
    order = make_order("sms4sats")
    obs = _parse(order, polled_at, body, previous_state="processing")
    assert obs.error_class == error_class
    assert (obs.state, obs.is_terminal, obs.is_success) == ("processing", False, None)
    assert obs.error_message


def test_status_error_envelope_message(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    obs = _parse(
        make_order("sms4sats"), polled_at, b'{"status":"error","reason":"unable to save data"}'
    )
    assert obs.error_message == "status error: unable to save data"


def test_service_and_country_default_to_the_order(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    order = make_order("sms4sats", service="telegram", country="Kenya")
    obs = _parse(order, polled_at, {"status": "OK", "paid": True})
    assert (obs.service, obs.country) == ("telegram", "Kenya")


def test_build_request_keeps_the_id_in_params(
    make_order: Callable[..., TrackedOrder], make_settings: Callable[..., ProviderSettings]
) -> None:
    spec = ADAPTER.build_request(make_order("sms4sats", "a/b?c"), make_settings("sms4sats"))
    assert spec.method == "GET"
    assert spec.url == "https://api.example.test/orderstatus"
    assert spec.params == {"orderId": "a/b?c"}
    assert "a/b" not in spec.log_url


@pytest.mark.parametrize(
    ("order_id", "valid"),
    [("7dc6e6b6c83318", True), ("abc_DEF-123", True), ("a.b", False), ("a:b", False)],
)
def test_validate_order_id(order_id: str, valid: bool) -> None:
    assert (ADAPTER.validate_order_id(order_id) is None) == valid


def test_paid_order_seen_unpaid_again_was_auto_cancelled() -> None:
    """The sandbox answers `{"status":"OK","paid":false}` after an auto-cancel (§1.12 default):
    a paid order (`processing`) that turns unpaid without code or error has expired."""
    from datetime import UTC, datetime

    from pipeline.model import TrackedOrder
    from pipeline.providers.sms4sats import Sms4satsAdapter

    now = datetime(2026, 1, 1, 12, 3, tzinfo=UTC)
    order = TrackedOrder("sms4sats", "abc", "sms_receive", datetime(2026, 1, 1, 12, tzinfo=UTC))
    body = b'{"status":"OK","paid":false}'
    adapter = Sms4satsAdapter()
    after_paid = adapter.parse(
        200, {}, body, order=order, polled_at=now, previous_state="processing"
    )
    assert after_paid.state == "expired" and after_paid.is_terminal
    never_paid = adapter.parse(200, {}, body, order=order, polled_at=now, previous_state="pending")
    assert never_paid.state == "pending"
