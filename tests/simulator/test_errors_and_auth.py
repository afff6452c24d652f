"""Every documented (or configured) error path and auth rejection, per provider.

sms4sats: no auth on status; unknown ids, bad creates, cancel rules. SMSOnline: key in the query,
401/403, unknown order as an empty list, refunds. OrdinalsBot: optional key, wrong key refused,
200-with-error. Baanx: 499 / 498 / 401 / 403 / 404 / 422. Altinn: empty 401/403, another org's
order is 404, non-GUID 400, cancel only while Registered.
"""

from __future__ import annotations

from pipeline.model import OrderState
from pipeline.providers.altinn.sandbox import AltinnOptions
from pipeline.providers.ordinalsbot.sandbox import OrdinalsBotOptions
from pipeline.providers.registry import REGISTRY
from pipeline.providers.sms4sats.sandbox import Sms4satsOptions
from pipeline.providers.smsonline.sandbox import SmsOnlineOptions
from pipeline.simulator.options import ProviderOptions

CREDS = REGISTRY.sandbox_credentials()

USER = CREDS["SMSONLINE_USER_ID"]
KEY = CREDS["SMSONLINE_API_KEY"]


# --- sms4sats ---------------------------------------------------------------------------------


def test_sms4sats_status_needs_no_credentials(harness) -> None:
    order_id = harness.create("sms4sats")
    response = harness.client.get("/sms4sats/orderstatus", params={"orderId": order_id})
    assert response.status_code == 200 and response.json()["status"] == "OK"


def test_sms4sats_unknown_order_is_a_500_error_body(harness) -> None:
    response = harness.client.get("/sms4sats/orderstatus", params={"orderId": "deadbeef"})
    assert response.status_code == 500
    assert response.json() == {"status": "error", "reason": "order not found"}
    missing = harness.client.get("/sms4sats/orderstatus")
    assert missing.status_code == 500 and missing.json()["status"] == "error"


def test_sms4sats_unknown_order_can_be_a_200(make_harness) -> None:
    h = make_harness(options=ProviderOptions(sms4sats=Sms4satsOptions(unknown_order="error200")))
    response = h.client.get("/sms4sats/orderstatus", params={"orderId": "deadbeef"})
    assert response.status_code == 200 and response.json()["status"] == "error"


def test_sms4sats_code_can_be_a_string(make_harness) -> None:
    h = make_harness(options=ProviderOptions(sms4sats=Sms4satsOptions(code_type="string")))
    order = h.find("sms4sats", lambda t: "code" in t.milestones)
    h.at_milestone(order, "code")
    code = h.status("sms4sats", order.truth.order_id).json()["code"]
    assert isinstance(code, str) and code.isdigit()


def test_sms4sats_create_validates_and_checks_an_offered_key(harness) -> None:
    bad_country = harness.client.post(
        "/sms4sats/createorder", json={"country": 999, "service": "x"}
    )
    assert bad_country.status_code == 400 and bad_country.json()["status"] == "error"
    no_body = harness.client.post("/sms4sats/createorder", content=b"not json")
    assert no_body.status_code == 400
    wrong_key = harness.client.post(
        "/sms4sats/createorder",
        json={"country": 22, "service": "openAI"},
        headers={"X-API-Key": "wrong"},
    )
    assert wrong_key.status_code == 401
    prepaid = harness.client.post(
        "/sms4sats/createorder", json={"country": 22, "service": "openAI", "immediate": True}
    )
    assert prepaid.status_code == 401
    with_key = harness.client.post(
        "/sms4sats/createorder",
        json={"country": 22, "service": "openAI", "immediate": True},
        headers={"X-API-Key": CREDS["SMS4SATS_API_KEY"]},
    )
    assert with_key.status_code == 200 and len(with_key.json()["orderId"]) == 64
    long_message = harness.client.post(
        "/sms4sats/createsendorder", json={"message": "x" * 141, "phone": "+4791234567"}
    )
    assert long_message.status_code == 400


def test_sms4sats_cancel_rules(harness) -> None:
    order = harness.find(
        "sms4sats", lambda t: "auto_cancel" in t.milestones and "number" in t.milestones
    )
    order_id = order.truth.order_id
    harness.at_milestone(order, "paid")
    too_early = harness.client.get("/sms4sats/cancelorder", params={"orderId": order_id})
    assert too_early.status_code == 500 and too_early.json()["status"] == "error"
    harness.advance(121)
    done = harness.client.post("/sms4sats/cancelorder", json={"orderId": order_id})
    assert done.json() == {"status": "OK"}
    assert order.truth.state_at(harness.clock.now()).state == OrderState.CANCELLED
    assert harness.status("sms4sats", order_id).json() == {"status": "OK", "paid": False}
    again = harness.client.get("/sms4sats/cancelorder", params={"orderId": order_id})
    assert again.status_code == 500
    unknown = harness.client.get("/sms4sats/cancelorder", params={"orderId": "nope"})
    assert unknown.json() == {"status": "error", "reason": "order not found"}


def test_sms4sats_cancel_is_refused_after_the_code(harness) -> None:
    order = harness.find("sms4sats", lambda t: "code" in t.milestones)
    harness.at_milestone(order, "code")
    response = harness.client.get("/sms4sats/cancelorder", params={"orderId": order.truth.order_id})
    assert response.status_code == 500


# --- SMSOnline --------------------------------------------------------------------------------


def test_smsonline_rejects_a_missing_or_wrong_key_with_401(harness) -> None:
    order_id = harness.create("smsonline")
    path = f"/smsonline/v3/numbers/{USER}/order/{order_id}"
    for params in ({}, {"apiKey": "wrong"}):
        response = harness.client.get(path, params=params)
        assert response.status_code == 401
        assert response.json() == {"ok": False, "errorMessage": "Unauthorized"}


def test_smsonline_rejects_another_user_id_with_403(harness) -> None:
    order_id = harness.create("smsonline")
    response = harness.client.get(
        f"/smsonline/v3/numbers/someone-else/order/{order_id}", params={"apiKey": KEY}
    )
    assert response.status_code == 403 and response.json()["ok"] is False


def test_smsonline_unknown_order_is_an_empty_list(harness) -> None:
    response = harness.status("smsonline", "12345678")
    assert (response.status_code, response.json()) == (200, {"ok": True, "body": []})


def test_smsonline_unknown_order_can_be_a_404(make_harness) -> None:
    h = make_harness(options=ProviderOptions(smsonline=SmsOnlineOptions(unknown_order="404")))
    assert h.status("smsonline", "12345678").status_code == 404


def test_smsonline_create_validates_codes(harness) -> None:
    response = harness.client.put(
        f"/smsonline/v3/numbers/{USER}/order", json={"apiKey": KEY, "service": "zz", "country": "1"}
    )
    assert response.status_code == 400 and response.json()["ok"] is False
    unauthorised = harness.client.put(
        f"/smsonline/v3/numbers/{USER}/order", json={"service": "ds", "country": "12"}
    )
    assert unauthorised.status_code == 401


def test_smsonline_refund_before_an_sms(harness) -> None:
    order = harness.find("smsonline", lambda t: "lease_expired" in t.milestones)
    harness.advance(10)
    path = f"/smsonline/v3/numbers/{USER}/order/{order.truth.order_id}"
    refunded = harness.client.patch(f"{path}/refund", params={"apiKey": KEY})
    assert refunded.status_code == 200
    assert refunded.json()["body"][0]["status"] == "refunded"
    assert order.truth.state_at(harness.clock.now()).state == OrderState.REFUNDED
    again = harness.client.patch(f"{path}/refund", params={"apiKey": KEY})
    assert again.status_code == 400
    other = harness.client.patch(f"{path}/reuse", params={"apiKey": KEY})
    assert other.status_code == 400


def test_smsonline_lease_expiry_shows_the_configured_status(harness) -> None:
    order = harness.find("smsonline", lambda t: "lease_expired" in t.milestones)
    harness.at_milestone(order, "lease_expired")
    item = harness.status("smsonline", order.truth.order_id).json()["body"][0]
    assert item["status"] == "expired" and item["receivedSMS"] == ""


# --- OrdinalsBot ------------------------------------------------------------------------------


def test_ordinalsbot_key_is_optional_but_a_wrong_one_is_refused(harness) -> None:
    order_id = harness.create("ordinalsbot")
    assert harness.client.get("/ordinalsbot/order", params={"id": order_id}).status_code == 200
    good = harness.client.get(
        "/ordinalsbot/order",
        params={"id": order_id},
        headers={"x-api-key": CREDS["ORDINALSBOT_API_KEY"]},
    )
    assert good.status_code == 200
    wrong = harness.client.get(
        "/ordinalsbot/order", params={"id": order_id}, headers={"x-api-key": "wrong"}
    )
    assert wrong.status_code == 401 and wrong.json()["status"] == "error"


def test_ordinalsbot_key_can_be_required(make_harness) -> None:
    options = ProviderOptions(ordinalsbot=OrdinalsBotOptions(require_api_key=True))
    h = make_harness(options=options)
    response = h.client.get("/ordinalsbot/order", params={"id": "x"})
    assert response.status_code == 401


def test_ordinalsbot_missing_id_and_bad_create_are_errors_in_a_200(harness) -> None:
    missing = harness.client.get("/ordinalsbot/order")
    assert missing.status_code == 200 and missing.json()["status"] == "error"
    bad = harness.client.post("/ordinalsbot/order", json={"files": []})
    assert bad.status_code == 200 and bad.json()["status"] == "error"


# --- Baanx ------------------------------------------------------------------------------------


def test_baanx_client_id_and_token_checks(harness) -> None:
    order_id = harness.create("baanx")
    path = f"/baanx/v1/order/{order_id}"
    token = f"Bearer {CREDS['BAANX_ACCESS_TOKEN']}"
    client_id = CREDS["BAANX_CLIENT_ID"]
    assert harness.client.get(path, headers={"Authorization": token}).status_code == 499
    wrong_client = harness.client.get(path, headers={"Authorization": token, "X-Client-ID": "x"})
    assert wrong_client.status_code == 498
    assert harness.client.get(path, headers={"X-Client-ID": client_id}).status_code == 401
    wrong_token = harness.client.get(
        path, headers={"Authorization": "Bearer nope", "X-Client-ID": client_id}
    )
    assert wrong_token.status_code == 401
    ok = harness.client.get(path, headers={"Authorization": token, "X-Client-ID": client_id})
    assert ok.status_code == 200 and ok.json()["status"] == "STARTED"


def test_baanx_another_users_order_is_403(harness) -> None:
    order_id = harness.create("baanx")
    response = harness.status(
        "baanx",
        order_id,
        Authorization="Bearer sandbox-baanx-other-user-token",
        **{"X-Client-ID": CREDS["BAANX_CLIENT_ID"]},
    )
    assert response.status_code == 403


def test_baanx_create_validation_is_422(harness) -> None:
    headers = {
        "Authorization": f"Bearer {CREDS['BAANX_ACCESS_TOKEN']}",
        "X-Client-ID": CREDS["BAANX_CLIENT_ID"],
    }
    response = harness.client.post("/baanx/v1/order", json={"productId": "nope"}, headers=headers)
    assert response.status_code == 422
    products = harness.client.get("/baanx/v1/order/products/available", headers=headers)
    assert products.status_code == 200 and products.json()[0]["productId"]


# --- Altinn -----------------------------------------------------------------------------------


def test_altinn_without_valid_credentials_is_an_empty_401(harness) -> None:
    order_id = harness.create("altinn")
    path = f"/altinn/notifications/api/v1/orders/{order_id}/status"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"PlatformAccessToken": "wrong"}):
        response = harness.client.get(path, headers=headers)
        assert response.status_code == 401 and response.content == b""
        assert response.headers["www-authenticate"] == "Bearer"


def test_altinn_accepts_a_platform_access_token(harness) -> None:
    order_id = harness.create("altinn")
    response = harness.client.get(
        f"/altinn/notifications/api/v1/orders/{order_id}/status",
        headers={"PlatformAccessToken": CREDS["ALTINN_PLATFORM_ACCESS_TOKEN"]},
    )
    assert response.status_code == 200


def test_altinn_token_without_org_is_an_empty_403(harness) -> None:
    order_id = harness.create("altinn")
    response = harness.status(
        "altinn", order_id, Authorization="Bearer sandbox-altinn-no-org-token"
    )
    assert response.status_code == 403 and response.content == b""


def test_altinn_another_orgs_order_is_404(harness) -> None:
    order_id = harness.create("altinn")
    response = harness.status(
        "altinn", order_id, Authorization="Bearer sandbox-altinn-other-org-token"
    )
    assert response.status_code == 404 and response.content == b""


def test_altinn_non_guid_is_a_400_problem(harness) -> None:
    response = harness.status("altinn", "not-a-guid")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 400 and "id" in response.json()["errors"]


def test_altinn_404_can_be_problem_details(make_harness) -> None:
    h = make_harness(options=ProviderOptions(altinn=AltinnOptions(not_found_body="problem")))
    response = h.status("altinn", "f1a1cc30-197f-4f34-8304-006ce4945fd1")
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found" and response.json()["status"] == 404


def test_altinn_create_validates_recipients(harness) -> None:
    response = harness.client.post(
        "/altinn/notifications/api/v1/orders/email",
        json={"recipients": []},
        headers={"Authorization": f"Bearer {CREDS['ALTINN_TOKEN']}"},
    )
    assert response.status_code == 400


def test_altinn_cancel_only_while_registered(harness) -> None:
    order_id = harness.create("altinn")
    headers = {"Authorization": f"Bearer {CREDS['ALTINN_TOKEN']}"}
    path = f"/altinn/notifications/api/v1/orders/{order_id}/cancel"
    cancelled = harness.client.put(path, headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["processingStatus"]["status"] == "Cancelled"
    assert harness.client.put(path, headers=headers).status_code == 409
    other = harness.create("altinn")
    order = harness.order("altinn", other)
    harness.at_milestone(order, "processing")
    conflict = harness.client.put(
        f"/altinn/notifications/api/v1/orders/{other}/cancel", headers=headers
    )
    assert conflict.status_code == 409
