"""Baanx adapter: the four statuses, FAILED + `payment_refunded` as refunded, `paidAt` with an
hour-only offset converted to UTC, the non-standard 498/499 client-key answers, and bearer +
client-id headers with the order id confined to its path segment.

What every adapter must handle (HTTP errors, garbage bodies, id rules) is in `test_contract.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.model import CONFIG_ERRORS, ErrorClass, Observation, TrackedOrder
from pipeline.providers.baanx.adapter import STATUS_MAP, BaanxAdapter
from pipeline.settings import ProviderSettings

ADAPTER = BaanxAdapter()
ORDER_ID = "abcd_1234"


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


def test_documented_example(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("baanx", ORDER_ID), polled_at, load_fixture("baanx", "order_completed.json")
    )
    assert (obs.state, obs.is_terminal, obs.is_success, obs.error_class) == (
        "completed",
        True,
        True,
        None,
    )
    assert obs.provider_status == "COMPLETED"
    assert obs.provider_substatus == "payment_refunded"
    assert obs.is_paid is True
    assert obs.provider_paid_at == datetime(2023, 3, 27, 14, 7, 12, 662000, tzinfo=UTC)


def test_documented_not_found(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("baanx", ORDER_ID),
        polled_at,
        load_fixture("baanx", "not_found_404.json"),
        status=404,
    )
    assert (obs.state, obs.error_class, obs.is_terminal) == ("unknown", "not_found", False)
    assert obs.error_message == "HTTP 404: Order not found"


@pytest.mark.parametrize(
    ("status", "note", "state", "terminal", "success"),
    [
        ("STARTED", None, "pending", False, None),
        ("COMPLETED", None, "completed", True, True),
        ("FAILED", "card_declined", "failed", True, False),
        ("FAILED", "payment_refunded", "refunded", True, False),
        ("EXPIRED", None, "expired", True, False),
        ("ON_HOLD", None, "unknown", False, None),
    ],
)
def test_status_table(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    status: str,
    note: str | None,
    state: str,
    terminal: bool,
    success: bool | None,
) -> None:
    body: dict[str, Any] = {"orderId": ORDER_ID, "status": status}
    if note:
        body["metadata"] = {"note": note}
    obs = _parse(make_order("baanx", ORDER_ID), polled_at, body)
    assert (obs.state, obs.is_terminal, obs.is_success) == (state, terminal, success)
    assert obs.status_unrecognized == (status not in STATUS_MAP)
    assert obs.provider_substatus == note
    assert obs.is_paid is (True if status == "COMPLETED" else None)


@pytest.mark.parametrize(
    ("http_status", "body", "error_class"),
    [
        (498, b"", "client_key_invalid"),
        (499, b"", "client_key_missing"),
        (499, b'{"error":"missing client key"}', "client_key_missing"),
        (200, b'{"error":"Order not found"}', "not_found"),
        (200, b'{"error":"internal"}', "body_error"),
        (200, b'{"orderId":"abcd_1234"}', "parse_error"),
    ],
)
def test_poll_errors(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    http_status: int,
    body: bytes,
    error_class: str,
) -> None:
    """498/499 (client id wrong or missing), an `error` body in a 200, a body without `status`."""
    obs = _parse(
        make_order("baanx", ORDER_ID),
        polled_at,
        body,
        status=http_status,
        headers={"Retry-After": "5"},
        previous_state="pending",
    )
    assert (obs.error_class, obs.state, obs.is_terminal) == (error_class, "pending", False)
    assert obs.retry_after_s == (5.0 if http_status >= 400 else None)
    assert obs.http_status == http_status


@pytest.mark.parametrize("http_status", [498, 499])
def test_client_key_answers_are_configuration_errors(
    make_order: Callable[..., TrackedOrder], polled_at: datetime, http_status: int
) -> None:
    obs = _parse(make_order("baanx", ORDER_ID), polled_at, b"", status=http_status)
    assert obs.error_class is not None
    assert ErrorClass(obs.error_class) in CONFIG_ERRORS
    assert obs.error_message == f"HTTP {http_status}"


def test_malformed_paid_at_becomes_none(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = {"orderId": ORDER_ID, "status": "COMPLETED", "paidAt": "27/03/2023 17:07"}
    obs = _parse(make_order("baanx", ORDER_ID), polled_at, body)
    assert obs.state == "completed"
    assert obs.provider_paid_at is None
    assert obs.provider_timestamp_raw == "paidAt=27/03/2023 17:07"


def test_wrong_metadata_type_is_ignored(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = {"orderId": ORDER_ID, "status": "FAILED", "metadata": "payment_refunded"}
    obs = _parse(make_order("baanx", ORDER_ID), polled_at, body)
    assert (obs.state, obs.provider_substatus, obs.error_class) == ("failed", None, None)


def test_build_request_headers_and_path(
    make_order: Callable[..., TrackedOrder], make_settings: Callable[..., ProviderSettings]
) -> None:
    settings = make_settings("baanx", access_token="US_tok", client_id="client-9")
    spec = ADAPTER.build_request(make_order("baanx", "a/b?c"), settings)
    assert spec.url == "https://api.example.test/v1/order/a%2Fb%3Fc"
    assert spec.headers["Authorization"] == "Bearer US_tok"
    assert spec.headers["X-Client-ID"] == "client-9"
    assert spec.params == {}
    assert spec.log_url == "/v1/order/{orderId}"


def test_build_request_without_credentials_omits_headers(
    make_order: Callable[..., TrackedOrder], make_settings: Callable[..., ProviderSettings]
) -> None:
    spec = ADAPTER.build_request(make_order("baanx", ORDER_ID), make_settings("baanx"))
    assert "Authorization" not in spec.headers
    assert "X-Client-ID" not in spec.headers


@pytest.mark.parametrize(
    ("order_id", "valid"),
    [
        (ORDER_ID, True),
        ("ord-1.2", True),
        ("ord:1?x=é", True),
        ("a\\b", False),
    ],
)
def test_validate_order_id(order_id: str, valid: bool) -> None:
    assert (ADAPTER.validate_order_id(order_id) is None) == valid
