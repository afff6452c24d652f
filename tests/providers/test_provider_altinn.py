"""Altinn adapter: the `Completed` disambiguation by description (§5.6), success from the
per-channel generated/succeeded counts (SMS counts only `Accepted`), 404 as an empty body or a
ProblemDetails body, variable fractional-second timestamps, and bearer vs PlatformAccessToken.

What every adapter must handle (HTTP errors, garbage bodies, id rules) is in `test_contract.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.model import Observation, TrackedOrder
from pipeline.providers.altinn import AltinnAdapter
from pipeline.settings import ProviderSettings

ADAPTER = AltinnAdapter()
ORDER_ID = "f1a1cc30-197f-4f34-8304-006ce4945fd1"
FINAL = "Order processing is completed. All notifications have a final status."
SEED_COMPLETED = "Order processing is completed. All notifications have been generated."
PROCESSED = "Order processing is done. Notifications have been successfully generated."


def _parse(
    order: TrackedOrder,
    polled_at: datetime,
    body: bytes | dict[str, Any],
    *,
    status: int = 200,
    previous_state: str | None = None,
) -> Observation:
    raw = json.dumps(body, indent=4).encode() if isinstance(body, dict) else body
    return ADAPTER.parse(
        status, {}, raw, order=order, polled_at=polled_at, previous_state=previous_state
    )


def _order_body(
    status: str,
    description: str | None = None,
    *,
    channel: str = "Email",
    summary: dict[str, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    processing: dict[str, Any] = {"status": status, "lastUpdate": "2023-12-12T14:13:27.845029Z"}
    if description is not None:
        processing["description"] = description
    body: dict[str, Any] = {
        "id": ORDER_ID,
        "requestedSendTime": "2023-12-12T14:13:27.836731Z",
        "creator": "digdir",
        "created": "2023-12-12T14:13:27.845029Z",
        "notificationChannel": channel,
        "processingStatus": processing,
    }
    if summary is not None:
        body["notificationsStatusSummary"] = {
            name: {"links": {"self": "https://x"}, "generated": gen, "succeeded": ok}
            for name, (gen, ok) in summary.items()
        }
    return body


@pytest.mark.parametrize(
    ("fixture", "http_status", "state", "terminal", "success", "error_class"),
    [
        ("completed_email_seed.json", 200, "completed", True, False, None),
        ("completed_email_docs.json", 200, "completed", True, False, None),
        ("registered.json", 200, "pending", False, None, None),
        ("not_found_problem_details.json", 404, "unknown", False, None, "not_found"),
    ],
)
def test_documented_examples(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    fixture: str,
    http_status: int,
    state: str,
    terminal: bool,
    success: bool | None,
    error_class: str | None,
) -> None:
    obs = _parse(
        make_order("altinn", ORDER_ID),
        polled_at,
        load_fixture("altinn", fixture),
        status=http_status,
    )
    assert (obs.state, obs.is_terminal, obs.is_success, obs.error_class) == (
        state,
        terminal,
        success,
        error_class,
    )


def test_seed_404_is_an_empty_body(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    obs = _parse(make_order("altinn", ORDER_ID), polled_at, b"", status=404)
    assert (obs.state, obs.error_class, obs.error_message) == ("unknown", "not_found", "HTTP 404")
    assert obs.payload_sha256 is None


def test_seed_example_facts(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("altinn", ORDER_ID),
        polled_at,
        load_fixture("altinn", "completed_email_seed.json"),
    )
    assert (obs.items_total, obs.items_succeeded) == (1, 0)
    assert obs.provider_status == "Completed"
    assert obs.provider_substatus == SEED_COMPLETED
    assert obs.service == "Email"
    assert not obs.status_unrecognized
    assert obs.provider_created_at == datetime(2023, 12, 12, 14, 13, 27, 845029, tzinfo=UTC)
    assert obs.provider_scheduled_at == datetime(2023, 12, 12, 14, 13, 27, 836731, tzinfo=UTC)
    assert obs.provider_updated_at == datetime(2023, 12, 12, 14, 13, 27, 845029, tzinfo=UTC)


def test_registered_example_has_placeholder_timestamps(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("altinn", ORDER_ID), polled_at, load_fixture("altinn", "registered.json")
    )
    assert obs.provider_created_at is None
    assert obs.provider_timestamp_raw == "created=…Z"
    assert (obs.items_total, obs.items_succeeded) == (None, None)


def test_senders_reference_is_hashed(
    load_fixture: Callable[[str, str], bytes],
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
) -> None:
    obs = _parse(
        make_order("altinn", ORDER_ID),
        polled_at,
        load_fixture("altinn", "completed_email_docs.json"),
    )
    assert obs.payload_redacted is not None
    assert "ref-2023-12-01" not in obs.payload_redacted


REGISTERED = "Order has been registered and is awaiting requested send time before processing."
ONGOING = "Order processing is ongoing. Notifications are being generated."
CONDITION = "Order processing was stopped due to send condition not being met."
CANCELLED = "Order processing was stopped due to order being cancelled."


@pytest.mark.parametrize(
    ("status", "description", "summary", "state", "terminal", "success", "substatus"),
    [
        ("Registered", REGISTERED, None, "pending", False, None, REGISTERED),
        ("Processing", ONGOING, None, "processing", False, None, ONGOING),
        ("Processed", PROCESSED, {"email": (1, 0)}, "processing", False, None, "awaiting_delivery"),
        (
            "Completed",
            PROCESSED,
            {"email": (1, 0)},
            "processing",
            False,
            None,
            "generated_awaiting_final",
        ),
        ("Completed", SEED_COMPLETED, {"email": (2, 2)}, "completed", True, True, SEED_COMPLETED),
        ("Completed", SEED_COMPLETED, {"email": (2, 0)}, "completed", True, False, SEED_COMPLETED),
        ("Completed", FINAL, {"email": (2, 2)}, "completed", True, True, FINAL),
        ("Completed", FINAL, {"email": (2, 1)}, "completed", True, False, FINAL),
        ("Completed", FINAL, {"email": (0, 0)}, "completed", True, False, FINAL),
        ("Completed", FINAL, None, "completed", True, False, FINAL),
        ("Completed", FINAL, {"sms": (3, 1)}, "completed", True, None, FINAL),
        ("Completed", FINAL, {"sms": (3, 3)}, "completed", True, True, FINAL),
        ("Completed", FINAL, {"email": (1, 1), "sms": (1, 0)}, "completed", True, None, FINAL),
        (
            "SendConditionNotMet",
            CONDITION,
            None,
            "cancelled",
            True,
            False,
            "send_condition_not_met",
        ),
        ("Cancelled", CANCELLED, None, "cancelled", True, False, CANCELLED),
    ],
)
def test_mapping_table(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    status: str,
    description: str,
    summary: dict[str, tuple[int, int]] | None,
    state: str,
    terminal: bool,
    success: bool | None,
    substatus: str,
) -> None:
    channels = set(summary or {})
    channel = {frozenset({"sms"}): "Sms", frozenset({"email", "sms"}): "EmailAndSms"}.get(
        frozenset(channels), "Email"
    )
    body = _order_body(status, description, channel=channel, summary=summary)
    obs = _parse(make_order("altinn", ORDER_ID), polled_at, body)
    assert (obs.state, obs.is_terminal, obs.is_success, obs.provider_substatus) == (
        state,
        terminal,
        success,
        substatus,
    )
    assert not obs.status_unrecognized
    assert obs.error_class is None


def test_completed_with_unknown_description_is_flagged(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = _order_body("Completed", "Something new.", summary={"email": (1, 1)})
    obs = _parse(make_order("altinn", ORDER_ID), polled_at, body)
    assert (obs.state, obs.is_terminal, obs.is_success, obs.status_unrecognized) == (
        "completed",
        True,
        True,
        True,
    )


def test_unknown_status(make_order: Callable[..., TrackedOrder], polled_at: datetime) -> None:
    obs = _parse(make_order("altinn", ORDER_ID), polled_at, _order_body("Archived", "x"))
    assert (obs.state, obs.status_unrecognized, obs.is_terminal) == ("unknown", True, False)


def test_timestamps_with_variable_fraction_digits(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = _order_body("Processing", "x")
    body["created"] = "2023-12-12T14:13:27Z"
    body["requestedSendTime"] = "2023-12-12T14:13:27.8Z"
    body["processingStatus"]["lastUpdate"] = "2023-12-12T14:13:27.8367315Z"
    obs = _parse(make_order("altinn", ORDER_ID), polled_at, body)
    assert obs.provider_created_at == datetime(2023, 12, 12, 14, 13, 27, tzinfo=UTC)
    assert obs.provider_scheduled_at == datetime(2023, 12, 12, 14, 13, 27, 800000, tzinfo=UTC)
    assert obs.provider_updated_at == datetime(2023, 12, 12, 14, 13, 27, 836731, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b'{"id":"x"}',
        b'{"processingStatus":"Completed"}',
        b'{"processingStatus":{"description":"x"}}',
    ],
)
def test_a_body_without_processing_status_is_a_parse_error(
    make_order: Callable[..., TrackedOrder], polled_at: datetime, body: bytes
) -> None:
    obs = _parse(make_order("altinn", ORDER_ID), polled_at, body, previous_state="processing")
    assert (obs.error_class, obs.state, obs.is_terminal) == ("parse_error", "processing", False)


def test_problem_details_give_their_title(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = b'{"title":"One or more validation errors occurred.","status":400}'
    obs = _parse(make_order("altinn", ORDER_ID), polled_at, body, status=400)
    assert obs.error_class == "client_error"
    assert obs.error_message == "HTTP 400: One or more validation errors occurred."


def test_build_request_prefers_the_bearer_token(
    make_order: Callable[..., TrackedOrder], make_settings: Callable[..., ProviderSettings]
) -> None:
    order = make_order("altinn", ORDER_ID)
    both = ADAPTER.build_request(
        order, make_settings("altinn", token="JWT-A", platform_access_token="JWT-P")
    )
    assert both.url == f"https://api.example.test/notifications/api/v1/orders/{ORDER_ID}/status"
    assert both.headers["Authorization"] == "Bearer JWT-A"
    assert "PlatformAccessToken" not in both.headers
    platform = ADAPTER.build_request(order, make_settings("altinn", platform_access_token="JWT-P"))
    assert platform.headers["PlatformAccessToken"] == "JWT-P"
    assert "Authorization" not in platform.headers
    assert platform.log_url == "/notifications/api/v1/orders/{id}/status"


@pytest.mark.parametrize(
    ("order_id", "valid"),
    [
        (ORDER_ID, True),
        (ORDER_ID.upper(), True),
        ("f1a1cc30197f4f348304006ce4945fd1", False),
        ("not-a-guid", False),
        ("{" + ORDER_ID + "}", False),
    ],
)
def test_validate_order_id(order_id: str, valid: bool) -> None:
    assert (ADAPTER.validate_order_id(order_id) is None) == valid
