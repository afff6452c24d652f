"""SMSOnline adapter: the field-first rule (SMS, then status words, then the `expiredAt` lease
clock), the `{"ok":…, "body":[…]}` envelope (`ok:false` auth vs body errors, empty list =
not found), naive UTC timestamps, and the API key travelling only in query params.

What every adapter must handle (HTTP errors, garbage bodies, id rules) is in `test_contract.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.model import Observation, TrackedOrder
from pipeline.providers.smsonline.adapter import STATUS_MAP, SmsOnlineAdapter
from pipeline.settings import ProviderSettings

ADAPTER = SmsOnlineAdapter()
ORDER_ID = "20046875"
BEFORE_EXPIRY = "2025-05-17 06:07:13"
AFTER_EXPIRY = "2025-05-17 05:40:00"


def _parse(
    order: TrackedOrder,
    polled_at: datetime,
    body: bytes | dict[str, Any],
    *,
    previous_state: str | None = None,
) -> Observation:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return ADAPTER.parse(
        200, {}, raw, order=order, polled_at=polled_at, previous_state=previous_state
    )


def _envelope(**fields: Any) -> dict[str, Any]:
    item = {
        "orderId": ORDER_ID,
        "service": "Discord",
        "country": "United States",
        "phoneNumber": "1234567890",
        "purchasePrice": 16,
        "orderedAt": "2025-05-17 05:47:13",
        "expiredAt": BEFORE_EXPIRY,
        "lastCheckedAt": "2025-05-17 05:48:38",
    }
    item.update(fields)
    return {"ok": True, "body": [{k: v for k, v in item.items() if v is not None}]}


def test_documented_example(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("smsonline", ORDER_ID),
        polled_at,
        load_fixture("smsonline", "order_completed.json"),
    )
    assert (obs.state, obs.is_terminal, obs.is_success, obs.error_class) == (
        "code_received",
        True,
        True,
        None,
    )
    assert obs.provider_status == "completed"
    assert not obs.status_unrecognized
    assert obs.has_code is True
    assert obs.code_sha256 == hmac.new(b"", b"123456", hashlib.sha256).hexdigest()
    assert obs.code_length == 6
    assert obs.phone_masked == "******7890"
    assert (obs.amount, obs.amount_unit) == (16.0, "smsonline_minor_unit")
    assert (obs.service, obs.country) == ("Discord", "United States")
    assert obs.is_paid is True
    assert obs.provider_created_at == datetime(2025, 5, 17, 5, 47, 13, tzinfo=UTC)
    assert obs.provider_expires_at == datetime(2025, 5, 17, 6, 7, 13, tzinfo=UTC)
    assert obs.provider_updated_at == datetime(2025, 5, 17, 5, 48, 38, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "state", "terminal", "unrecognized"),
    [
        ({"status": "completed", "receivedSMS": "123456"}, "code_received", True, False),
        ({"status": "completed"}, "code_received", True, False),
        ({"status": "pending", "receivedSMS": "123456"}, "code_received", True, False),
        ({"status": "refunded", "receivedSMS": "123456"}, "code_received", True, False),
        ({"status": "refunded"}, "refunded", True, False),
        ({"status": "refund_requested"}, "refunded", True, True),
        ({"status": "cancelled"}, "cancelled", True, False),
        ({"status": "canceled"}, "cancelled", True, False),
        ({"status": "expired"}, "expired", True, False),
        ({"status": "number_expiring"}, "expired", True, True),
        ({"status": "pending"}, "processing", False, False),
        ({"status": "waiting"}, "processing", False, False),
        ({"status": "mystery"}, "processing", False, True),
        ({"status": None}, "processing", False, False),
        ({"status": "pending", "expiredAt": AFTER_EXPIRY}, "expired", True, False),
        ({"status": "mystery", "expiredAt": AFTER_EXPIRY}, "expired", True, True),
        (
            {"status": "pending", "receivedSMS": "", "expiredAt": AFTER_EXPIRY},
            "expired",
            True,
            False,
        ),
    ],
)
def test_field_first_rule(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    fields: dict[str, Any],
    state: str,
    terminal: bool,
    unrecognized: bool,
) -> None:
    obs = _parse(make_order("smsonline", ORDER_ID), polled_at, _envelope(**fields))
    assert (obs.state, obs.is_terminal, obs.status_unrecognized, obs.error_class) == (
        state,
        terminal,
        unrecognized,
        None,
    )
    assert obs.is_success == {"code_received": True, "processing": None}.get(state, False)


def test_lease_expiry_sets_substatus(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    obs = _parse(
        make_order("smsonline", ORDER_ID),
        polled_at,
        _envelope(status="pending", expiredAt=AFTER_EXPIRY),
    )
    assert obs.provider_substatus == "lease_expired"


def test_every_status_map_row(make_order: Callable[..., TrackedOrder], polled_at: datetime) -> None:
    for status, expected in STATUS_MAP.items():
        obs = _parse(make_order("smsonline", ORDER_ID), polled_at, _envelope(status=status))
        assert obs.state == expected.value, status


def test_picks_the_matching_order_from_a_longer_list(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = {
        "ok": True,
        "body": [
            {"orderId": "1", "status": "pending"},
            {"orderId": ORDER_ID, "status": "completed", "receivedSMS": "99"},
        ],
    }
    assert _parse(make_order("smsonline", ORDER_ID), polled_at, body).state == "code_received"


@pytest.mark.parametrize(
    ("body", "error_class"),
    [
        (b'{"ok":true,"body":[]}', "not_found"),
        (b'{"ok":false,"errorMessage":"Unauthorized"}', "auth_invalid"),
        (b'{"ok":false,"errorMessage":"Invalid API key"}', "auth_invalid"),
        (b'{"ok":false,"errorMessage":"Order not found"}', "not_found"),
        (b'{"ok":false,"errorMessage":"temporarily unavailable"}', "body_error"),
        (b'{"ok":false}', "body_error"),
        (b'{"ok":true,"body":"completed"}', "parse_error"),
        (b'{"ok":true,"body":["completed"]}', "parse_error"),
        (b'{"ok":"yes","body":[]}', "parse_error"),
        (b'{"ok":true}', "parse_error"),
        (b'{"ok":true,"body":[{"receivedSMS":["1"]}]}', "parse_error"),
    ],
)
def test_envelope_errors(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    body: bytes,
    error_class: str,
) -> None:
    """`ok:false` in a 200 (auth words → `auth_invalid`), an empty list, a malformed envelope."""
    obs = _parse(make_order("smsonline", ORDER_ID), polled_at, body, previous_state="processing")
    assert obs.error_class == error_class
    assert (obs.state, obs.is_terminal) == ("processing", False)
    assert obs.error_message


def test_an_order_object_under_body_reads_as_a_list_of_one(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    """A v3 client reads `body` as one object (docs/providers/sources.md, SMSOnline)."""
    obs = _parse(
        make_order("smsonline", ORDER_ID), polled_at, b'{"ok":true,"body":{"status":"completed"}}'
    )
    assert obs.error_class is None
    assert (obs.state, obs.is_terminal) == ("code_received", True)


def test_malformed_timestamps_become_none(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    obs = _parse(
        make_order("smsonline", ORDER_ID),
        polled_at,
        _envelope(status="pending", orderedAt="yesterday", expiredAt="2025-99-99 00:00:00"),
    )
    assert obs.provider_created_at is None
    assert obs.provider_expires_at is None
    assert obs.provider_timestamp_raw == "expiredAt=2025-99-99 00:00:00"
    assert obs.state == "processing"


def test_build_request_puts_the_key_in_params_only(
    make_order: Callable[..., TrackedOrder], make_settings: Callable[..., ProviderSettings]
) -> None:
    settings = make_settings("smsonline", user_id="user/1", api_key="KEY-SECRET-42")
    spec = ADAPTER.build_request(make_order("smsonline", "a/b?c"), settings)
    assert spec.url == "https://api.example.test/v3/numbers/user%2F1/order/a%2Fb%3Fc"
    assert spec.params == {"apiKey": "KEY-SECRET-42"}
    assert "KEY-SECRET-42" not in spec.url + spec.log_url + json.dumps(dict(spec.headers))
    assert spec.log_url == "/v3/numbers/{userId}/order/{orderId}"


@pytest.mark.parametrize(
    ("order_id", "valid"), [("20046875", True), ("2004a", False), ("-1", False), ("1.5", False)]
)
def test_validate_order_id(order_id: str, valid: bool) -> None:
    assert (ADAPTER.validate_order_id(order_id) is None) == valid
