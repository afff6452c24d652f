"""Every documented example body in shared/seeds/ is reproduced by the sandbox field for field:
the same keys, the same JSON types, the same casing (values differ: ids and times are drawn).

Examples written as JavaScript literals in the docs are compared as the strict JSON they stand
for (PROVIDERS.md §1.4). Where the seed shows fields that depend on the outcome (Baanx
`metadata.note`), they are marked optional.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline.model import OrderState
from pipeline.providers.altinn.sandbox import AltinnOptions
from pipeline.simulator.faults import FaultRule, Scenario
from pipeline.simulator.options import ProviderOptions

SMS4SATS_RECEIVE_CODE = {
    "status": "OK",
    "paid": True,
    "code": 48010,
    "id": 1125699791,
    "number": 12345678901,
    "timestamp": 1666613406969,
    "country": "India",
    "service": "openAI",
}
SMS4SATS_SEND = {
    "status": "OK",
    "paid": True,
    "id": "SMfa2be998e8913565cbbd5f750e32b1b5",
    "smsStatus": "delivered",
    "timestamp": 1666613406969,
}
SMS4SATS_NO_NUMBER = {
    "status": "OK",
    "paid": True,
    "error": "No available number, payment request is canceled. Your funds are returned to your "
    "wallet automatically.",
}
SERVER_ERROR = {"status": "error", "reason": "unable to save data"}
SMSONLINE_ORDER = {
    "ok": True,
    "body": [
        {
            "sShort": "ds",
            "cShort": "12",
            "orderId": "20046875",
            "country": "United States",
            "service": "Discord",
            "carrier": "any",
            "phoneNumber": "1234567890",
            "purchasePrice": 16,
            "status": "completed",
            "receivedSMS": "123456",
            "orderedAt": "2025-05-17 05:47:13",
            "expiredAt": "2025-05-17 06:07:13",
            "lastCheckedAt": "2025-05-17 05:48:38",
        }
    ],
}
ORDINALSBOT_LEGACY = {
    "status": "ok",
    "paid": True,
    "underpaid": True,
    "expired": True,
    "tx": {
        "commit": "edc...be9",
        "fees": 157840,
        "inscription": "dff...5i0",
        "reveal": "dff...0c5",
    },
    "sent": "4axxxdeadbeef",
}
ORDINALSBOT_ERROR = {"status": "error", "error": "error reason"}
BAANX_COMPLETED = {
    "requestId": "payment_1234",
    "orderId": "abcd_1234",
    "status": "COMPLETED",
    "paidAt": "2023-03-27 17:07:12.662+03",
    "metadata": {
        "paymentId": "abcpaymentId1234ABC",
        "txHash": "0x3a11a86cf218c448be519728cd3ac5c741fb3424",
        "note": "payment_refunded",
    },
}
BAANX_NOT_FOUND = {"error": "Order not found"}
ALTINN_COMPLETED = {
    "id": "f1a1cc30-197f-4f34-8304-006ce4945fd1",
    "requestedSendTime": "2023-12-12T14:13:27.836731Z",
    "creator": "digdir",
    "created": "2023-12-12T14:13:27.845029Z",
    "notificationChannel": "Email",
    "processingStatus": {
        "status": "Completed",
        "description": "Order processing is completed. All notifications have been generated.",
        "lastUpdate": "2023-12-12T14:13:27.845029Z",
    },
    "notificationsStatusSummary": {
        "email": {
            "links": {
                "self": "https://platform.at22.altinn.cloud/notifications/api/v1/orders/"
                "f1a1cc30-197f-4f34-8304-006ce4945fd1/notifications/email"
            },
            "generated": 1,
            "succeeded": 0,
        }
    },
}
ALTINN_REGISTERED = {
    "id": "…",
    "requestedSendTime": "…Z",
    "creator": "ttd",
    "created": "…Z",
    "notificationChannel": "Email",
    "processingStatus": {
        "status": "Registered",
        "description": "Order has been registered and is awaiting requested send time before "
        "processing.",
        "lastUpdate": "…Z",
    },
}

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")
NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
PG_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}$")


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (int and float both `number`, bool apart)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def assert_shape(
    actual: Any,
    documented: Any,
    path: str = "",
    *,
    optional: frozenset[str] = frozenset(),
    subset: bool = False,
) -> None:
    """Same keys (recursively), same JSON types; `optional` paths may be absent.

    With `subset`, `actual` may have more keys than documented (the docs show a partial body).
    """
    assert json_type(actual) == json_type(documented), (path, actual, documented)
    if isinstance(documented, dict):
        missing = {k for k in documented if k not in actual and f"{path}.{k}" not in optional}
        assert not missing, f"{path}: missing {missing}"
        if not subset:
            extra = set(actual) - set(documented)
            assert not extra, f"{path}: undocumented {extra}"
        for key, value in documented.items():
            if key in actual:
                assert_shape(actual[key], value, f"{path}.{key}", optional=optional, subset=subset)
    elif isinstance(documented, list) and documented:
        assert actual, f"{path}: empty list"
        for item in actual:
            assert_shape(item, documented[0], f"{path}[]", optional=optional, subset=subset)


def test_sms4sats_receive_with_code_matches_the_seed(harness) -> None:
    order = harness.find("sms4sats", lambda t: "code" in t.milestones)
    harness.at_milestone(order, "code")
    response = harness.status("sms4sats", order.truth.order_id)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_shape(body, SMS4SATS_RECEIVE_CODE)
    assert list(body) == list(SMS4SATS_RECEIVE_CODE)
    assert body["timestamp"] > 10**12  # epoch milliseconds


def test_sms4sats_send_matches_the_seed(harness) -> None:
    order = harness.find("sms4sats", lambda t: "delivered" in t.milestones, kind="sms_send")
    harness.at_milestone(order, "delivered")
    body = harness.status("sms4sats", order.truth.order_id).json()
    assert_shape(body, SMS4SATS_SEND)
    assert body["smsStatus"] == "delivered"
    assert body["id"].startswith("SM")


def test_sms4sats_no_number_is_an_error_in_a_200(harness) -> None:
    order = harness.find("sms4sats", lambda t: "error" in t.milestones)
    harness.at_milestone(order, "error")
    response = harness.status("sms4sats", order.truth.order_id)
    assert response.status_code == 200
    assert response.json() == SMS4SATS_NO_NUMBER


def test_sms4sats_server_error_matches_the_seed(make_harness) -> None:
    rule = FaultRule(kind="server_error", rate=1.0)
    h = make_harness(faults=Scenario("t", providers={"sms4sats": (rule,)}))
    response = h.client.get("/sms4sats/orderstatus", params={"orderId": "x"})
    assert response.status_code == 500
    assert response.json() == SERVER_ERROR


def test_smsonline_completed_order_matches_the_seed(harness) -> None:
    order = harness.find("smsonline", lambda t: "code" in t.milestones)
    harness.at_milestone(order, "code")
    response = harness.status("smsonline", order.truth.order_id)
    body = response.json()
    assert_shape(body, SMSONLINE_ORDER)
    item = body["body"][0]
    assert list(item) == list(SMSONLINE_ORDER["body"][0])
    assert (item["sShort"], item["cShort"], item["country"], item["service"]) == (
        "ds",
        "12",
        "United States",
        "Discord",
    )
    assert item["status"] == "completed" and item["receivedSMS"].isdigit()
    for key in ("orderedAt", "expiredAt", "lastCheckedAt"):
        assert NAIVE.match(item[key]), item[key]
    assert item["orderId"] == order.truth.order_id and item["orderId"].isdigit()


def test_ordinalsbot_order_carries_the_seeds_legacy_fields_and_state(harness) -> None:
    order = harness.find("ordinalsbot", lambda t: "completed" in t.milestones)
    harness.at_milestone(order, "completed")
    body = harness.status("ordinalsbot", order.truth.order_id).json()
    assert_shape(body, ORDINALSBOT_LEGACY, subset=True)
    assert body["state"] == "completed"
    assert body["createdAt"] > 10**12  # ms
    assert body["charge"]["created_at"] < 10**11  # s
    assert body["charge"]["lightning_invoice"]["expires_at"] < 10**11  # s
    assert ISO_Z.match(body["files"][0]["tx"]["updatedAt"])
    assert body["files"][0]["iqueuedAt"] > 10**12


def test_ordinalsbot_error_in_a_200_matches_the_seed(harness) -> None:
    response = harness.client.get("/ordinalsbot/order", params={"id": "no-such-order"})
    assert response.status_code == 200
    assert_shape(response.json(), ORDINALSBOT_ERROR)


def test_ordinalsbot_server_error_matches_the_seed(make_harness) -> None:
    rule = FaultRule(kind="server_error", rate=1.0)
    h = make_harness(faults=Scenario("t", providers={"ordinalsbot": (rule,)}))
    response = h.client.get("/ordinalsbot/order", params={"id": "x"})
    assert (response.status_code, response.json()) == (500, SERVER_ERROR)


def test_baanx_completed_order_matches_the_seed(harness) -> None:
    order = harness.find("baanx", lambda t: t.final.provider_status == "COMPLETED")
    harness.at_milestone(order, "paid")
    body = harness.status("baanx", order.truth.order_id).json()
    assert_shape(body, BAANX_COMPLETED, optional=frozenset({".metadata.note"}))
    assert PG_TEXT.match(body["paidAt"]), body["paidAt"]
    assert body["paidAt"].endswith("+03")


def test_baanx_failed_order_has_a_note(harness) -> None:
    order = harness.find("baanx", lambda t: t.final.provider_status == "FAILED")
    harness.at_milestone(order, "failed")
    body = harness.status("baanx", order.truth.order_id).json()
    assert body["status"] == "FAILED" and "paidAt" not in body
    assert body["metadata"]["note"] in ("payment_refunded", "payment_rejected")


def test_baanx_not_found_matches_the_seed(harness) -> None:
    response = harness.status("baanx", "abcd_1234")
    assert (response.status_code, response.json()) == (404, BAANX_NOT_FOUND)


def test_altinn_completed_order_matches_the_seed(make_harness) -> None:
    options = ProviderOptions(altinn=AltinnOptions(completed_description="seed"))
    h = make_harness(options=options)
    order = h.find("altinn", lambda t: "final" in t.milestones)
    h.at_milestone(order, "final")
    response = h.status("altinn", order.truth.order_id)
    body = response.json()
    assert_shape(body, ALTINN_COMPLETED)
    assert list(body) == list(ALTINN_COMPLETED)
    assert body["processingStatus"] == {
        **body["processingStatus"],
        "status": "Completed",
        "description": ALTINN_COMPLETED["processingStatus"]["description"],
    }
    for value in (
        body["requestedSendTime"],
        body["created"],
        body["processingStatus"]["lastUpdate"],
    ):
        assert ISO_Z.match(value), value
    assert response.text.startswith('{\n  "id"')  # pretty-printed
    assert body["notificationsStatusSummary"]["email"]["links"]["self"].endswith(
        f"/notifications/api/v1/orders/{order.truth.order_id}/notifications/email"
    )


def test_altinn_registered_order_has_no_summary(harness) -> None:
    order_id = harness.create("altinn")
    body = harness.status("altinn", order_id).json()
    assert_shape(body, ALTINN_REGISTERED)
    assert (
        body["processingStatus"]["description"]
        == (ALTINN_REGISTERED["processingStatus"]["description"])
    )
    assert body["processingStatus"]["lastUpdate"] == body["created"]
    assert "sendersReference" not in body  # nulls are omitted, not sent as null


def test_altinn_processed_is_shown_as_completed_with_the_processed_description(harness) -> None:
    order = harness.find(
        "altinn", lambda t: "generated" in t.milestones and "final" in t.milestones
    )
    harness.at_milestone(order, "generated")
    assert order.truth.state_at(harness.clock.now()).state == OrderState.PROCESSING
    status = harness.status("altinn", order.truth.order_id).json()["processingStatus"]
    assert status["status"] == "Completed"
    assert status["description"] == (
        "Order processing is done. Notifications have been successfully generated."
    )
    harness.at_milestone(order, "final")
    final = harness.status("altinn", order.truth.order_id).json()["processingStatus"]
    assert final["description"].endswith("All notifications have a final status.")


def test_altinn_not_found_is_an_empty_body(harness) -> None:
    response = harness.status("altinn", "f1a1cc30-197f-4f34-8304-006ce4945fd1")
    assert response.status_code == 404
    assert response.content == b""


def test_bodies_are_strict_json(harness) -> None:
    order_id = harness.create("sms4sats")
    text = harness.status("sms4sats", order_id).text
    assert json.loads(text) and "'" not in text
