"""SMSOnline v3 imitation (PROVIDERS.md §2): get order data, order a number, refund.

`GET /v3/numbers/{userId}/order/{orderId}?apiKey=` answers `{"ok":true,"body":[{…}]}`: an array
even for one order, string ids, an integer price, naive UTC timestamps, a 20-minute lease. The key
travels in the query (in the JSON body for `PUT …/order`). Only `completed` is documented; the
other status words and the error bodies are options or invented ([INF]). The lifecycle is in
`lifecycle`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from starlette.requests import Request

from pipeline.model import OrderKind, OrderState
from pipeline.providers.smsonline import lifecycle
from pipeline.providers.smsonline.spec import SPEC
from pipeline.simulator.distributions import choose
from pipeline.simulator.provider import (
    CreatedOrder,
    CreateError,
    Creator,
    SandboxProvider,
    Variant,
    sandbox_credential,
)
from pipeline.simulator.state import Sandbox, SandboxOrder
from pipeline.simulator.wire import (
    ProviderWire,
    Reply,
    RouteSpec,
    json_reply,
    naive_utc,
    read_json,
    stable_int,
)

SLUG = SPEC.slug
USER_ID = sandbox_credential(SPEC, "user_id")
API_KEY = sandbox_credential(SPEC, "api_key")
SERVICE_CODES: dict[str, str] = {
    "ds": "Discord",
    "tg": "Telegram",
    "wa": "WhatsApp",
    "go": "Google",
    "oi": "OpenAI",
}
"""`sShort` → service name."""
COUNTRY_CODES: dict[str, str] = {
    "12": "United States",
    "16": "United Kingdom",
    "22": "India",
    "43": "Germany",
}
"""`cShort` → country name (seed: `"12"` is the United States)."""
PRICES: dict[str, int] = {"ds": 16, "tg": 25, "wa": 40, "go": 20, "oi": 30}
"""`purchasePrice` per service, an integer (probably cents, [INF])."""
CALLING_CODES: dict[str, str] = {"12": "1", "16": "44", "22": "91", "43": "49"}
REFUND_ACTION = "refund"


@dataclasses.dataclass(frozen=True)
class SmsOnlineOptions:
    """SMSOnline unknowns (only `completed` is documented).

    Attributes:
        waiting_status: `status` while waiting for an SMS.
        expired_status: `status` after the lease ends without an SMS; empty keeps
            `waiting_status` (clients must then use `expiredAt`).
        refunded_status: `status` after a refund.
        empty_sms: `receivedSMS` before an SMS arrives: `empty` ("") or `absent`.
        unknown_order: `empty_list` (200 `{"ok":true,"body":[]}`, the §2.7 default) or `404`.
        body_shape: the order under `body`: `array` of one (doc page) or `object` (how a v3
            client reads the order routes; docs/providers/sources.md, SMSOnline).
    """

    waiting_status: str = "pending"
    expired_status: str = "expired"
    refunded_status: str = "refunded"
    empty_sms: str = "empty"
    unknown_order: str = "empty_list"
    body_shape: str = "array"


OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "empty_sms": ("empty", "absent"),
    "unknown_order": ("empty_list", "404"),
    "body_shape": ("array", "object"),
}
VARIANTS = (
    Variant("body_shape", "object", "a v3 client script (docs/providers/sources.md, SMSOnline)"),
)
"""Real answers beyond the doc page."""


def error_reply(status: int) -> Reply:
    """[INF] v3 error envelope: `{"ok":false,"errorMessage":…}`."""
    return json_reply({"ok": False, "errorMessage": "Internal server error"}, status)


def rate_limited_reply(retry_after_s: int) -> Reply:
    """[INF] SMSOnline documents no limit; an injected 429 uses its error envelope."""
    return json_reply(
        {"ok": False, "errorMessage": "Too many requests"},
        429,
        headers={"Retry-After": str(retry_after_s)},
    )


def _fail(message: str, status: int) -> Reply:
    return json_reply({"ok": False, "errorMessage": message}, status)


def _auth(user_id: str, api_key: str | None) -> Reply | None:
    """401 for a missing or wrong key, 403 for a user id the key is not linked to. [INF] bodies."""
    if api_key != API_KEY:
        return _fail("Unauthorized", 401)
    if user_id != USER_ID:
        return _fail("Forbidden", 403)
    return None


def _status_word(provider_status: str, options: SmsOnlineOptions) -> str:
    if provider_status == "pending":
        return options.waiting_status
    if provider_status == "expired":
        return options.expired_status or options.waiting_status
    if provider_status == "refunded":
        return options.refunded_status
    return provider_status


def phone_number(order: SandboxOrder) -> str:
    """The rented number: calling code and nine digits, no `+`, derived from the order id."""
    code = CALLING_CODES.get(order.attrs["cShort"], "1")
    return code + str(stable_int(f"{order.truth.order_id}:phone", 10**8, 10**9))


def render_item(order: SandboxOrder, now: datetime, options: SmsOnlineOptions) -> dict[str, Any]:
    """One order object of `body[]` at `now` (pure), keys in the seed's order."""
    truth, attrs = order.truth, order.attrs
    current = truth.state_at(now) or truth.transitions[0]
    item: dict[str, Any] = {
        "sShort": attrs["sShort"],
        "cShort": attrs["cShort"],
        "orderId": truth.order_id,
        "country": truth.country,
        "service": truth.service,
        "carrier": attrs.get("carrier", "any"),
        "phoneNumber": phone_number(order),
        "purchasePrice": attrs["purchasePrice"],
        "status": _status_word(current.provider_status, options),
    }
    if truth.reached("code", now):
        item["receivedSMS"] = str(stable_int(f"{truth.order_id}:sms", 100_000, 1_000_000))
    elif options.empty_sms == "empty":
        item["receivedSMS"] = ""
    ended = truth.terminal_at
    checked = min(now, ended) if ended is not None else now
    item["orderedAt"] = naive_utc(truth.created_at)
    item["expiredAt"] = naive_utc(truth.facts["expires_at"])
    item["lastCheckedAt"] = naive_utc(max(checked, truth.created_at))
    return item


def render_status(order: SandboxOrder, now: datetime, options: SmsOnlineOptions) -> Reply:
    """The get-order-data answer for `order` at `now` (pure)."""
    item = render_item(order, now, options)
    if options.body_shape == "object":
        return json_reply(
            {"ok": True, "body": item}, status_path=("body", "status"), record_path=("body",)
        )
    body = {"ok": True, "body": [item]}
    return json_reply(body, status_path=("body", 0, "status"), record_path=("body", 0))


async def order_data(request: Request, sandbox: Sandbox) -> Reply:
    """`GET /v3/numbers/{userId}/order/{orderId}?apiKey=`."""
    user_id = request.path_params["userId"]
    problem = _auth(user_id, request.query_params.get("apiKey"))
    if problem:
        return problem
    options: SmsOnlineOptions = sandbox.options_of(SLUG)
    order = sandbox.get(SLUG, request.path_params["orderId"])
    if order is None or order.owner != user_id:
        if options.unknown_order == "404":
            return _fail("Order not found", 404)
        return json_reply({"ok": True, "body": []})
    return render_status(order, sandbox.now(), options)


async def order_number(request: Request, sandbox: Sandbox) -> Reply:
    """`PUT /v3/numbers/{userId}/order` `{apiKey, service, country, carrier?}`. [INF] answer."""
    body = await read_json(request)
    body = body if isinstance(body, dict) else {}
    user_id = request.path_params["userId"]
    problem = _auth(user_id, body.get("apiKey") or request.query_params.get("apiKey"))
    if problem:
        return problem
    service, country = str(body.get("service", "")), str(body.get("country", ""))
    if service not in SERVICE_CODES or country not in COUNTRY_CODES:
        return _fail("Invalid service or country", 400)
    carrier = str(body.get("carrier") or "any")
    order = sandbox.create_order(
        SLUG,
        OrderKind.SMS_RECEIVE,
        service=SERVICE_CODES[service],
        country=COUNTRY_CODES[country],
        owner=user_id,
        attrs={
            "sShort": service,
            "cShort": country,
            "carrier": carrier,
            "purchasePrice": PRICES[service],
        },
    )
    truth = order.truth
    order_id = truth.order_id
    return json_reply(
        {
            "ok": True,
            "body": {
                "orderId": order_id,
                "phoneNumber": phone_number(order),
                "country": truth.country,
                "service": truth.service,
                "carrier": carrier,
                "purchasePrice": PRICES[service],
                "orderedAt": naive_utc(truth.created_at),
                "expiredAtUTC": naive_utc(truth.facts["expires_at"]),
            },
        }
    )


async def change_status(request: Request, sandbox: Sandbox) -> Reply:
    """`PATCH /v3/numbers/{userId}/order/{orderId}/{next}`: only `refund` is imitated.

    A refund is refused [INF] once an SMS arrived or the lease is over.
    """
    body = await read_json(request)
    body = body if isinstance(body, dict) else {}
    user_id = request.path_params["userId"]
    problem = _auth(user_id, request.query_params.get("apiKey") or body.get("apiKey"))
    if problem:
        return problem
    if request.path_params["next"] != REFUND_ACTION:
        return _fail("Unsupported action", 400)
    order = sandbox.get(SLUG, request.path_params["orderId"])
    if order is None or order.owner != user_id:
        return _fail("Order not found", 404)
    now = sandbox.now()
    if order.truth.is_terminal_at(now):
        return _fail("Order cannot be refunded", 400)
    order.truth.interrupt(now, OrderState.REFUNDED, "refunded", "refunded")
    sandbox.reopen_truth(order)
    options: SmsOnlineOptions = sandbox.options_of(SLUG)
    return json_reply({"ok": True, "body": [render_item(order, now, options)]})


WIRE = ProviderWire(
    slug=SLUG,
    routes=(
        RouteSpec("/v3/numbers/{userId}/order", ("PUT",), "create", order_number),
        RouteSpec("/v3/numbers/{userId}/order/{orderId}", ("GET",), "status", order_data),
        RouteSpec(
            "/v3/numbers/{userId}/order/{orderId}/{next}", ("PATCH",), "action", change_status
        ),
    ),
    error_reply=error_reply,
    rate_limited_reply=rate_limited_reply,
    poll_path="/v3/numbers/{owner}/order/{order_id}",
)


SERVICE_CODE: dict[str, str] = {name: code for code, name in SERVICE_CODES.items()}
COUNTRY_CODE: dict[str, str] = {name: code for code, name in COUNTRY_CODES.items()}


async def create(creator: Creator) -> CreatedOrder:
    """Rent a number for a drawn service and country."""
    service = choose(lifecycle.SERVICES, creator.rng)
    country = choose(lifecycle.COUNTRIES, creator.rng)
    user_id = creator.credentials["SMSONLINE_USER_ID"]
    answer = await creator.post(
        "PUT",
        f"/v3/numbers/{user_id}/order",
        {
            "apiKey": creator.credentials["SMSONLINE_API_KEY"],
            "service": SERVICE_CODE[service],
            "country": COUNTRY_CODE[country],
        },
    )
    if isinstance(answer, dict) and answer.get("ok") is False:
        raise CreateError(str(answer.get("errorMessage")), retryable=False)
    order_id = creator.field(answer, "body", "orderId")
    return creator.order(order_id, OrderKind.SMS_RECEIVE, service, country)


SANDBOX = SandboxProvider(
    slug=SLUG,
    wire=WIRE,
    lifecycles=lifecycle.LIFECYCLES,
    figures=lifecycle.SmsOnlineConfig(),
    options=SmsOnlineOptions(),
    option_choices=OPTION_CHOICES,
    new_order_id=lifecycle.new_order_id,
    services=lifecycle.services,
    countries=lifecycle.countries,
    create=create,
    variants=VARIANTS,
)
"""The SMSOnline imitation."""
