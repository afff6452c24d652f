"""The declarative adapter on 5SIM's documented bodies and on a generic declaration (`ACME`):
requests from the template, status at a JSON path mapped case-insensitively, rules, unknown
statuses, event times in three formats, 200-with-error bodies, HTTP error classes, and codes and
phone numbers never stored whole."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from declarative_helpers import FIVESIM_FIXTURES, FIVESIM_TOML

from pipeline.model import ErrorClass, Observation, OrderState, TrackedOrder
from pipeline.providers.base import ProviderSettings
from pipeline.providers.declarative import DeclaredProvider, load_file
from pipeline.providers.registry import get_adapter
from pipeline.secret import Secret

POLLED_AT = datetime(2018, 10, 13, 8, 21, tzinfo=UTC)
CODE_KEY = b"test-code-key"
FIVESIM = load_file(FIVESIM_TOML)


def order(slug: str, order_id: str = "11631253", kind: str = "sms_receive") -> TrackedOrder:
    return TrackedOrder(slug, order_id, kind, POLLED_AT - timedelta(minutes=5))


def settings(slug: str, **secrets: str) -> ProviderSettings:
    return ProviderSettings(
        slug=slug,
        base_url="https://api.example.test",
        secrets={name: Secret(value) for name, value in secrets.items()},
        is_sandbox=False,
    )


def parse(
    provider: DeclaredProvider,
    body: bytes | dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    tracked: TrackedOrder | None = None,
    previous: str | None = None,
) -> Observation:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return provider.adapter.parse(
        status,
        headers or {},
        raw,
        order=tracked or order(provider.spec.slug),
        polled_at=POLLED_AT,
        previous_state=previous,
        code_key=CODE_KEY,
    )


def fixture(name: str) -> bytes:
    return (FIVESIM_FIXTURES / name).read_bytes()


# --- 5SIM on its documented bodies ------------------------------------------------------------


def test_the_registered_adapter_is_the_declared_one() -> None:
    registered = get_adapter("fivesim")
    assert parse(FIVESIM, fixture("received_with_sms.json")) == registered.parse(
        200,
        {},
        fixture("received_with_sms.json"),
        order=order("fivesim"),
        polled_at=POLLED_AT,
        code_key=CODE_KEY,
    )


def test_a_new_order_is_pending() -> None:
    obs = parse(FIVESIM, fixture("buy_activation_pending.json"))
    assert (obs.state, obs.is_terminal, obs.is_success, obs.error_class) == (
        "pending",
        False,
        None,
        None,
    )
    assert obs.provider_status == "PENDING" and not obs.status_unrecognized
    assert (obs.service, obs.country) == ("vkontakte", "russia")
    assert (obs.amount, obs.amount_unit) == (21.0, "fivesim_balance_currency")
    assert obs.is_paid is True
    assert obs.has_code is False and obs.code_sha256 is None
    assert obs.phone_masked == "*******1454"
    assert obs.provider_created_at == datetime(2018, 10, 13, 8, 13, 38, 809469, tzinfo=UTC)
    assert obs.provider_expires_at == datetime(2018, 10, 13, 8, 28, 38, 809469, tzinfo=UTC)
    assert obs.provider_updated_at is None and obs.provider_timestamp_raw is None


def test_a_banned_number_is_cancelled() -> None:
    obs = parse(FIVESIM, fixture("order_history_banned.json"), tracked=order("fivesim", "53533933"))
    assert (obs.state, obs.is_terminal, obs.is_success) == ("cancelled", True, False)
    assert obs.provider_status == "BANNED"


def test_an_sms_is_the_code_and_is_never_stored() -> None:
    obs = parse(FIVESIM, fixture("received_with_sms.json"))
    assert (obs.state, obs.is_terminal, obs.is_success) == ("code_received", True, True)
    assert obs.provider_status == "RECEIVED"
    assert obs.has_code is True and obs.code_length == 6
    expected = hmac.new(CODE_KEY, b"415127", hashlib.sha256).hexdigest()
    assert obs.code_sha256 == expected
    assert obs.provider_updated_at == datetime(2018, 10, 13, 8, 20, 38, 809469, tzinfo=UTC)
    stored = obs.payload_redacted or ""
    assert "415127" not in stored and "9000381454" not in stored
    sms = json.loads(stored)["sms"][0]
    assert sms["code"] == {"length": 6} and sms["text"] == {"length": 29}
    assert sms["sender"] == "VK"


def test_an_sms_on_a_pending_hosting_order_is_still_hashed() -> None:
    obs = parse(FIVESIM, fixture("hosting_pending_with_sms.json"), tracked=order("fivesim", "1"))
    assert obs.state == "pending"  # only RECEIVED with an SMS is a code (the rule)
    assert obs.has_code is True and "415127" not in (obs.payload_redacted or "")


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("PENDING", "pending"),
        ("RECEIVED", "processing"),
        ("received", "processing"),
        (" Received ", "processing"),
        ("FINISHED", "code_received"),
        ("CANCELED", "cancelled"),
        ("TIMEOUT", "expired"),
        ("BANNED", "cancelled"),
    ],
)
def test_every_documented_status(status: str, state: str) -> None:
    body = json.loads(fixture("buy_activation_pending.json"))
    obs = parse(FIVESIM, {**body, "status": status, "sms": []})
    assert obs.state == state and obs.error_class is None
    assert obs.is_terminal == OrderState(state).is_terminal
    assert obs.provider_status == status


def test_an_unknown_status_is_unrecognised_not_an_error() -> None:
    body = json.loads(fixture("buy_activation_pending.json"))
    obs = parse(FIVESIM, {**body, "status": "REFUNDING"})
    assert (obs.state, obs.status_unrecognized, obs.error_class) == ("unknown", True, None)
    assert obs.provider_status == "REFUNDING"


def test_error_answers() -> None:
    obs = parse(FIVESIM, fixture("not_found_404.txt"), status=404, previous="processing")
    assert (obs.error_class, obs.state, obs.error_message) == (
        "not_found",
        "processing",
        "HTTP 404",
    )
    assert parse(FIVESIM, b"", status=401).error_class == ErrorClass.AUTH_INVALID
    limited = parse(FIVESIM, b"", status=429)
    assert (limited.error_class, limited.retry_after_s) == ("rate_limited", None)
    assert parse(FIVESIM, b"internal error", status=500).error_class == "server_error"
    assert parse(FIVESIM, b"order not found").error_class == "parse_error"  # a 200 in plain text
    body = json.loads(fixture("received_with_sms.json"))
    body["sms"][0]["code"] = 415127.0  # a code that went through a float has lost digits
    assert parse(FIVESIM, body).error_class == "parse_error"
    assert parse(FIVESIM, {**body, "status": 7}).error_message == (
        "field 'status': expected string, got number"
    )


def test_fivesim_request() -> None:
    spec = FIVESIM.adapter.build_request(
        order("fivesim", "11631253"), settings("fivesim", api_key="k-1")
    )
    assert (spec.method, spec.url) == ("GET", "https://api.example.test/v1/user/check/11631253")
    assert spec.headers == {"Accept": "application/json", "Authorization": "Bearer k-1"}
    assert spec.params == {} and spec.log_url == "/v1/user/check/{order_id}"
    bare = FIVESIM.adapter.build_request(order("fivesim", "a/../b"), settings("fivesim"))
    assert bare.url.endswith("/v1/user/check/a%2F..%2Fb") and "Authorization" not in bare.headers
    assert FIVESIM.adapter.validate_order_id("11631253") is None
    assert (
        FIVESIM.adapter.validate_order_id("abc")
        == "5SIM order ids look like digits (e.g. 11631253)"
    )


# --- the generic declaration ------------------------------------------------------------------


def acme_body(**item: Any) -> dict[str, Any]:
    base = {
        "id": "m-1",
        "state": "sending",
        "to": "+4791234567",
        "channel": "sms",
        "created": 1_539_418_000,
        "updated_ms": 1_539_418_018_500,
        "cost": 0.05,
        "billed": True,
        "account_ref": "acct-77",
    }
    return {"ok": True, "data": {"items": [{**base, **item}]}}


def test_acme_request_carries_query_and_header_credentials(acme: DeclaredProvider) -> None:
    spec = acme.adapter.build_request(
        order("acme", "m-1", "notification_order"), settings("acme", api_key="K", account="A")
    )
    assert (spec.method, spec.url) == ("GET", "https://api.example.test/api/messages")
    assert spec.params == {"id": "m-1", "key": "K"}
    assert spec.headers == {"Accept": "application/json", "X-Account": "A"}
    assert spec.log_url == "/api/messages?id={order_id}"


def test_acme_nested_status_times_and_fields(acme: DeclaredProvider) -> None:
    tracked = order("acme", "m-1", "notification_order")
    obs = parse(acme, acme_body(state="DELIVERED"), tracked=tracked)
    assert (obs.state, obs.is_terminal, obs.is_success) == ("completed", True, True)
    assert obs.provider_created_at == datetime.fromtimestamp(1_539_418_000, UTC)
    assert obs.provider_updated_at == datetime.fromtimestamp(1_539_418_018.5, UTC)
    assert (obs.service, obs.phone_masked, obs.amount, obs.is_paid) == (
        "sms",
        "******4567",
        0.05,
        True,
    )
    stored = json.loads(obs.payload_redacted or "")["data"]["items"][0]
    assert stored["account_ref"] == "sha256:" + hashlib.sha256(b"acct-77").hexdigest()
    assert stored["to"] == "******4567"
    # The rule: undelivered because of the ttl is expired; another reason stays failed.
    ttl = parse(acme, acme_body(state="undelivered", reason="ttl"), tracked=tracked)
    assert (ttl.state, ttl.provider_substatus) == ("expired", "ttl")
    bounced = parse(acme, acme_body(state="undelivered", reason="bounced"), tracked=tracked)
    assert bounced.state == "failed"
    # A malformed time is kept raw and does not fail the poll.
    late = parse(acme, acme_body(state="queued", created="yesterday"), tracked=tracked)
    assert (late.state, late.provider_created_at) == ("pending", None)
    assert late.provider_timestamp_raw == "created=yesterday"


def test_acme_errors(acme: DeclaredProvider) -> None:
    tracked = order("acme", "m-1", "notification_order")
    gone = parse(acme, {"ok": False, "error": {"text": "message not found"}}, tracked=tracked)
    assert (gone.error_class, gone.error_message) == ("not_found", "ok=false: message not found")
    refused = parse(acme, {"ok": True, "error": {"code": "BAD_KEY"}}, tracked=tracked)
    assert (refused.error_class, refused.error_message) == ("auth_invalid", "error in body")
    assert parse(acme, b"{}", status=402, tracked=tracked).error_class == "forbidden"
    shapeless = parse(acme, {"ok": True, "data": {"items": "none"}}, tracked=tracked)
    assert (shapeless.error_class, shapeless.error_message) == (
        "parse_error",
        "field 'data.items': expected object or array, got string",
    )
    missing = parse(acme, {"ok": True, "data": {"items": []}}, tracked=tracked)
    assert missing.error_message == "field 'data.items.0.state': missing"
