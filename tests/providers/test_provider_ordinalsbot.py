"""OrdinalsBot adapter: all 13 `state` values, `waiting-refund` failed but not terminal, the
legacy-boolean fallback of the seed example, `status:"error"` in a 200, mixed-unit timestamps
(ms, s, ISO), item counts, and `x-api-key` sent only when configured.

What every adapter must handle (HTTP errors, garbage bodies, id rules) is in `test_contract.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.model import Observation, TrackedOrder
from pipeline.providers.ordinalsbot.adapter import STATUS_MAP, OrdinalsBotAdapter
from pipeline.settings import ProviderSettings

ADAPTER = OrdinalsBotAdapter()
ORDER_ID = "c411ca33-53dd-4d4f-b959-6c6dffcc88e5"


def _parse(
    order: TrackedOrder,
    polled_at: datetime,
    body: bytes | dict[str, Any],
    *,
    status: int = 200,
    previous_state: str | None = None,
) -> Observation:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return ADAPTER.parse(
        status, {}, raw, order=order, polled_at=polled_at, previous_state=previous_state
    )


@pytest.mark.parametrize(
    ("fixture", "http_status", "state", "error_class", "terminal"),
    [
        ("legacy_flags.json", 200, "completed", None, True),
        ("error_in_200.json", 200, "unknown", "body_error", False),
        ("error_500.json", 500, "unknown", "server_error", False),
        ("full_order_queued.json", 200, "processing", None, False),
    ],
)
def test_documented_examples(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    fixture: str,
    http_status: int,
    state: str,
    error_class: str | None,
    terminal: bool,
) -> None:
    obs = _parse(
        make_order("ordinalsbot", ORDER_ID),
        polled_at,
        load_fixture("ordinalsbot", fixture),
        status=http_status,
    )
    assert (obs.state, obs.error_class, obs.is_terminal) == (state, error_class, terminal)


def test_full_order_facts(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("ordinalsbot", ORDER_ID),
        polled_at,
        load_fixture("ordinalsbot", "full_order_queued.json"),
    )
    assert obs.provider_status == "queued"
    assert obs.is_paid is True
    assert (obs.items_total, obs.items_succeeded) == (1, 0)
    assert (obs.amount, obs.amount_unit) == (1218725.0, "sat")
    assert obs.service == "bulk"
    assert obs.provider_created_at == datetime(2023, 2, 7, 16, 5, 59, 855000, tzinfo=UTC)
    assert obs.provider_expires_at == datetime.fromtimestamp(1675786558, tz=UTC)
    assert obs.provider_updated_at == datetime(2024, 1, 17, 22, 34, 40, 766000, tzinfo=UTC)
    assert obs.provider_timestamp_raw is None
    assert obs.payload_redacted is not None
    assert "bc1p..." not in obs.payload_redacted
    assert "lnbc1218" not in obs.payload_redacted


@pytest.mark.parametrize(
    ("state", "canonical", "terminal", "success", "substatus"),
    [
        ("waiting-payment", "pending", False, None, None),
        ("waiting-parent", "pending", False, None, None),
        ("waiting-confirmation", "processing", False, None, None),
        ("prep", "processing", False, None, None),
        ("queued", "processing", False, None, None),
        ("waiting-reveal", "processing", False, None, None),
        ("waiting-rune-balance", "processing", False, None, None),
        ("completed", "completed", True, True, None),
        ("error", "failed", True, False, "inscription failed"),
        ("cancelled", "cancelled", True, False, None),
        ("waiting-refund", "failed", False, False, "refund_pending"),
        ("refunded", "refunded", True, False, None),
        ("expired", "expired", True, False, None),
    ],
)
def test_state_table(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    state: str,
    canonical: str,
    terminal: bool,
    success: bool | None,
    substatus: str | None,
) -> None:
    body = {"status": "ok", "id": ORDER_ID, "state": state, "error": "inscription failed"}
    obs = _parse(make_order("ordinalsbot", ORDER_ID), polled_at, body)
    assert (obs.state, obs.is_terminal, obs.is_success, obs.provider_substatus) == (
        canonical,
        terminal,
        success,
        substatus,
    )
    assert obs.provider_status == state
    assert not obs.status_unrecognized
    assert obs.error_class is None


def test_table_covers_every_documented_state() -> None:
    documented = {
        "waiting-payment", "waiting-confirmation", "waiting-parent", "prep", "queued",
        "waiting-reveal", "waiting-rune-balance", "completed", "error", "cancelled",
        "waiting-refund", "refunded", "expired",
    }  # fmt: skip
    seen_in_clients = {"file-inscribed"}  # docs/providers/sources.md, OrdinalsBot
    assert set(STATUS_MAP) == documented | seen_in_clients


def test_unknown_state_is_flagged(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    obs = _parse(
        make_order("ordinalsbot", ORDER_ID), polled_at, {"status": "ok", "state": "minting"}
    )
    assert (obs.state, obs.status_unrecognized, obs.is_terminal) == ("unknown", True, False)
    assert obs.error_class is None
    assert obs.is_paid is None


@pytest.mark.parametrize(
    ("state", "paid"),
    [("waiting-payment", False), ("waiting-parent", False), ("expired", False), ("prep", True)],
)
def test_paid_follows_state_when_flag_absent(
    make_order: Callable[..., TrackedOrder], polled_at: datetime, state: str, paid: bool
) -> None:
    obs = _parse(make_order("ordinalsbot", ORDER_ID), polled_at, {"status": "ok", "state": state})
    assert obs.is_paid is paid


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        ({"sent": "txid", "expired": True, "paid": True}, "completed"),
        ({"expired": True, "paid": True}, "expired"),
        ({"paid": True}, "processing"),
        ({"paid": False}, "pending"),
        ({}, "pending"),
    ],
)
def test_legacy_fallback(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    flags: dict[str, Any],
    state: str,
) -> None:
    obs = _parse(make_order("ordinalsbot", ORDER_ID), polled_at, {"status": "ok", **flags})
    assert obs.state == state
    assert obs.provider_substatus == "legacy_flags"


def test_data_envelope_is_unwrapped(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = {"data": {"status": "ok", "id": ORDER_ID, "state": "completed"}}
    assert _parse(make_order("ordinalsbot", ORDER_ID), polled_at, body).state == "completed"


def test_items_count_files_and_delegates(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = {
        "status": "ok",
        "state": "queued",
        "files": [
            {"tx": {"inscription": "abci0", "updatedAt": "2024-01-17T22:34:40.766Z"}},
            {"tx": {"inscription": "defi0", "updatedAt": "2024-01-17T22:40:00Z"}},
            {"name": "pending.txt"},
        ],
        "delegates": [{"tx": {"commit": "c"}}],
        "charge": {"created_at": 1675785960, "amount": 5000},
    }
    obs = _parse(make_order("ordinalsbot", ORDER_ID), polled_at, body)
    assert (obs.items_total, obs.items_succeeded) == (4, 2)
    assert obs.provider_updated_at == datetime(2024, 1, 17, 22, 40, tzinfo=UTC)
    assert obs.provider_created_at == datetime.fromtimestamp(1675785960, tz=UTC)
    assert (obs.amount, obs.amount_unit) == (5000.0, "sat")


def test_timestamp_in_wrong_unit_becomes_none(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = {"status": "ok", "state": "queued", "createdAt": 1675785959}
    obs = _parse(make_order("ordinalsbot", ORDER_ID), polled_at, body)
    assert obs.provider_created_at is None
    assert obs.provider_timestamp_raw == "createdAt=number"


@pytest.mark.parametrize(
    ("body", "error_class"),
    [
        (b'{"status":"error","error":"error reason"}', "body_error"),
        (b'{"status":"error","error":"Order not found"}', "not_found"),
        (b'{"status":"error","reason":"unable to save data"}', "body_error"),
        (b'{"status":"ok","state":"queued","paid":"yes"}', "parse_error"),
        (b'{"status":"ok","expired":"no"}', "parse_error"),
    ],
)
def test_errors_in_a_200(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    body: bytes,
    error_class: str,
) -> None:
    """`status:"error"` with `error` or `reason` is a poll error, not an order state; the legacy
    booleans must be booleans."""
    obs = _parse(make_order("ordinalsbot", ORDER_ID), polled_at, body, previous_state="pending")
    assert (obs.error_class, obs.state, obs.is_terminal) == (error_class, "pending", False)


def test_status_error_envelope_message(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = b'{"status":"error","reason":"unable to save data"}'
    obs = _parse(make_order("ordinalsbot", ORDER_ID), polled_at, body)
    assert obs.error_message == "status error: unable to save data"


def test_build_request_sends_key_only_when_configured(
    make_order: Callable[..., TrackedOrder], make_settings: Callable[..., ProviderSettings]
) -> None:
    order = make_order("ordinalsbot", "a/b?c")
    without = ADAPTER.build_request(order, make_settings("ordinalsbot"))
    assert "x-api-key" not in {k.lower() for k in without.headers}
    assert without.url == "https://api.example.test/order"
    assert without.params == {"id": "a/b?c"}
    with_key = ADAPTER.build_request(order, make_settings("ordinalsbot", api_key="OB-KEY"))
    assert with_key.headers["x-api-key"] == "OB-KEY"
    assert "OB-KEY" not in with_key.url + with_key.log_url


@pytest.mark.parametrize(
    ("order_id", "valid"),
    [(ORDER_ID, True), ("token_123", True), ("ord:1.2", True), ("a?b", False), ("a@b", False)],
)
def test_validate_order_id(order_id: str, valid: bool) -> None:
    assert (ADAPTER.validate_order_id(order_id) is None) == valid
