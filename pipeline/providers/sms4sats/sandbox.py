"""sms4sats imitation (PROVIDERS.md §1): `/orderstatus`, `/createorder`, `/createsendorder`,
`/cancelorder`.

No authentication on status or cancel (the order id is the capability). Receive and send orders
answer differently; a missing number comes as a 200 with `error`; server errors as 500
`{"status":"error","reason":…}`. The `code` type, the body after a cancel and the answer for an
unknown id are options (`Sms4satsOptions`). The lifecycles are in `lifecycle`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from starlette.requests import Request

from pipeline.model import OrderKind, OrderState
from pipeline.providers.sms4sats import lifecycle
from pipeline.providers.sms4sats.spec import SPEC
from pipeline.simulator.distributions import choose
from pipeline.simulator.provider import (
    CreatedOrder,
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
    epoch_ms,
    json_reply,
    read_json,
    stable_hex,
    stable_int,
)

SLUG = SPEC.slug
API_KEY = sandbox_credential(SPEC, "api_key")
COUNTRY_CODES: dict[int, str] = {
    22: "India",
    187: "USA",
    16: "United Kingdom",
    6: "Indonesia",
    43: "Germany",
}
"""Numeric country codes of `/createorder` → the country names `/orderstatus` shows."""
MAX_MESSAGE_CHARS = 140
PRICE_SATS = 2500

NO_NUMBER_ERROR = (
    "No available number, payment request is canceled. "
    "Your funds are returned to your wallet automatically."
)
CANCELLED_ERROR = "Order is canceled. Your funds are returned to your wallet automatically."
"""[INF] the `error` text of the optional `cancelled_body: error` shape."""
SERVER_ERROR_REASON = "unable to save data"
NOT_FOUND_REASON = "order not found"
"""[INF] invented: the answer for an unknown id is undocumented (PROVIDERS.md §1.7)."""
P_SEND = 0.3
"""Share of the workload's sms4sats orders that are send orders."""


@dataclasses.dataclass(frozen=True)
class Sms4satsOptions:
    """sms4sats unknowns.

    Attributes:
        code_type: `int` (docs: Number) or `string` (a third-party decoder) for `code`.
        cancelled_body: body after auto-cancel, user cancel or invoice expiry: `unpaid`
            (`{"status":"OK","paid":false}`, PROVIDERS.md §1.12 default) or `error` (adds an
            `error` text).
        unknown_order: `error500` (500 `{"status":"error","reason":"order not found"}`, the §1.7
            default) or `error200` (the same body with HTTP 200).
        timestamp: what `timestamp` stamps: `created` (order creation) or `updated` (last change).
        cancel_min_age_s: a user cancel is refused until this long after payment (docs: 2 min),
            scaled by the profile.
    """

    code_type: str = "int"
    cancelled_body: str = "unpaid"
    unknown_order: str = "error500"
    timestamp: str = "created"
    cancel_min_age_s: float = 120.0


OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "code_type": ("int", "string"),
    "cancelled_body": ("unpaid", "error"),
    "unknown_order": ("error500", "error200"),
    "timestamp": ("created", "updated"),
}
VARIANTS = (
    Variant("code_type", "string", "fiatjaf/lntxbot sms.go @ e9f9a1fc (Code string)"),
    Variant("cancelled_body", "error", "BlitzWallet/BlitzWallet sms4sats home.js @ 62975d93"),
)
"""Real answers beyond the doc page."""


def error_reply(status: int) -> Reply:
    """The documented server error: `{"status":"error","reason":"unable to save data"}`."""
    return json_reply({"status": "error", "reason": SERVER_ERROR_REASON}, status)


def rate_limited_reply(retry_after_s: int) -> Reply:
    """[INF] sms4sats documents no limit; an injected 429 looks like its other errors."""
    return json_reply(
        {"status": "error", "reason": "too many requests"},
        429,
        headers={"Retry-After": str(retry_after_s)},
    )


def _fail(reason: str, status: int = 500) -> Reply:
    return json_reply({"status": "error", "reason": reason}, status)


def render_status(order: SandboxOrder, now: datetime, options: Sms4satsOptions) -> Reply:
    """The `/orderstatus` answer for `order` at `now` (pure)."""
    truth = order.truth
    current = truth.state_at(now) or truth.transitions[0]
    ended = current.state in (OrderState.EXPIRED, OrderState.CANCELLED)
    order_id = truth.order_id
    timestamp = epoch_ms(truth.created_at if options.timestamp == "created" else current.at)
    if ended:
        body: dict[str, object] = {"status": "OK", "paid": False}
        if options.cancelled_body == "error":
            body["error"] = CANCELLED_ERROR
    elif not truth.reached("paid", now):
        body = {"status": "OK", "paid": False}
    elif truth.order_kind == OrderKind.SMS_SEND:
        body = {
            "status": "OK",
            "paid": True,
            "id": "SM" + stable_hex(f"{order_id}:sid", 32),
            "smsStatus": current.provider_status,
            "timestamp": timestamp,
        }
    elif truth.reached("error", now):
        body = {"status": "OK", "paid": True, "error": NO_NUMBER_ERROR}
    else:
        body = {"status": "OK", "paid": True}
        if truth.reached("number", now):
            if truth.reached("code", now):
                code = stable_int(f"{order_id}:code", 10_000, 100_000)
                body["code"] = str(code) if options.code_type == "string" else code
            body["id"] = stable_int(f"{order_id}:activation", 1_000_000_000, 2_000_000_000)
            body["number"] = stable_int(f"{order_id}:number", 10**10, 10**11)
            body["timestamp"] = timestamp
            body["country"] = truth.country
            body["service"] = truth.service
    status_field = "smsStatus" if "smsStatus" in body else "status"
    return json_reply(body, status_path=(status_field,))


async def order_status(request: Request, sandbox: Sandbox) -> Reply:
    """`GET /orderstatus?orderId=`."""
    order_id = request.query_params.get("orderId", "")
    options: Sms4satsOptions = sandbox.options_of(SLUG)
    order = sandbox.get(SLUG, order_id) if order_id else None
    if order is None:
        status = 200 if options.unknown_order == "error200" else 500
        return _fail(NOT_FOUND_REASON if order_id else "orderId is required", status)
    return render_status(order, sandbox.now(), options)


def _key_problem(request: Request, immediate: bool) -> Reply | None:
    """401 for a wrong `X-API-Key`, or for a prepaid (`immediate`) order without one. [INF]"""
    key = request.headers.get("x-api-key")
    if (key is not None and key != API_KEY) or (immediate and key is None):
        return _fail("invalid api key", 401)
    return None


def _invoice(order_id: str) -> str:
    return f"lnbc{PRICE_SATS * 10}n1p{stable_hex(order_id + ':payreq', 180)}"


async def create_order(request: Request, sandbox: Sandbox) -> Reply:
    """`POST /createorder` `{country: number, service: string, …}`."""
    body = await read_json(request)
    if not isinstance(body, dict):
        return _fail("invalid request body", 400)
    problem = _key_problem(request, bool(body.get("immediate")))
    if problem:
        return problem
    country, service = body.get("country"), body.get("service")
    if isinstance(country, str) and country.isdigit():
        country = int(country)
    if not isinstance(country, int) or country not in COUNTRY_CODES:
        return _fail("country not available", 400)
    if not isinstance(service, str) or not service.strip():
        return _fail("service is required", 400)
    order = sandbox.create_order(
        SLUG, OrderKind.SMS_RECEIVE, service=service.strip(), country=COUNTRY_CODES[country]
    )
    return json_reply(
        {"status": "OK", "orderId": order.truth.order_id, "payreq": _invoice(order.truth.order_id)}
    )


async def create_send_order(request: Request, sandbox: Sandbox) -> Reply:
    """`POST /createsendorder` `{message (≤140 chars), phone (E.164), …}`."""
    body = await read_json(request)
    if not isinstance(body, dict):
        return _fail("invalid request body", 400)
    problem = _key_problem(request, bool(body.get("immediate")))
    if problem:
        return problem
    message, phone = body.get("message"), body.get("phone")
    if not isinstance(message, str) or not message or len(message) > MAX_MESSAGE_CHARS:
        return _fail(f"message must be 1-{MAX_MESSAGE_CHARS} characters", 400)
    if not isinstance(phone, str) or not phone.startswith("+") or not phone[1:].isdigit():
        return _fail("phone must be in E.164 format", 400)
    order = sandbox.create_order(SLUG, OrderKind.SMS_SEND)
    return json_reply(
        {"status": "OK", "orderId": order.truth.order_id, "payreq": _invoice(order.truth.order_id)}
    )


async def cancel_order(request: Request, sandbox: Sandbox) -> Reply:
    """`GET /cancelorder?orderId=` (also POST with `{orderId}`): refund an order without a code.

    Refused [INF] before `cancel_min_age_s` after payment, after a code, and for send orders.
    """
    order_id = request.query_params.get("orderId", "")
    if not order_id and request.method == "POST":
        body = await read_json(request)
        order_id = str(body.get("orderId", "")) if isinstance(body, dict) else ""
    order = sandbox.get(SLUG, order_id) if order_id else None
    if order is None:
        return _fail(NOT_FOUND_REASON)
    truth, now = order.truth, sandbox.now()
    if truth.order_kind != OrderKind.SMS_RECEIVE or truth.is_terminal_at(now):
        return _fail("order cannot be canceled")
    since = truth.milestones["paid"] if truth.reached("paid", now) else truth.created_at
    options: Sms4satsOptions = sandbox.options_of(SLUG)
    min_age_s = options.cancel_min_age_s * sandbox.factor(SLUG)
    if (now - since).total_seconds() < min_age_s:
        return _fail("order can be canceled 2 minutes after payment")
    truth.interrupt(now, OrderState.CANCELLED, lifecycle.UNPAID, "cancelled")
    sandbox.reopen_truth(order)
    return json_reply({"status": "OK"})


async def root(request: Request, sandbox: Sandbox) -> Reply:
    """`GET /`: the availability check. [INF] body."""
    return json_reply({"status": "OK"})


WIRE = ProviderWire(
    slug=SLUG,
    routes=(
        RouteSpec("/", ("GET",), "status", root),
        RouteSpec("/orderstatus", ("GET",), "status", order_status),
        RouteSpec("/createorder", ("POST",), "create", create_order),
        RouteSpec("/createsendorder", ("POST",), "create", create_send_order),
        RouteSpec("/cancelorder", ("GET", "POST"), "action", cancel_order),
    ),
    error_reply=error_reply,
    rate_limited_reply=rate_limited_reply,
    poll_path="/orderstatus?orderId={order_id}",
)


CODE_OF_COUNTRY: dict[str, int] = {name: code for code, name in COUNTRY_CODES.items()}


async def create(creator: Creator) -> CreatedOrder:
    """A send order (`P_SEND` of them) or a receive order for a drawn service and country."""
    rng = creator.rng
    if rng.random() < P_SEND:
        answer = await creator.post(
            "POST",
            "/createsendorder",
            {
                "message": "Your sandbox appointment is confirmed.",
                "phone": f"+47{rng.randrange(40_000_000, 50_000_000)}",
            },
        )
        return creator.order(creator.field(answer, "orderId"), OrderKind.SMS_SEND)
    service = choose(lifecycle.SERVICES, rng)
    country = choose(lifecycle.COUNTRIES, rng)
    answer = await creator.post(
        "POST", "/createorder", {"country": CODE_OF_COUNTRY[country], "service": service}
    )
    order_id = creator.field(answer, "orderId")
    return creator.order(order_id, OrderKind.SMS_RECEIVE, service, country)


SANDBOX = SandboxProvider(
    slug=SLUG,
    wire=WIRE,
    lifecycles=lifecycle.LIFECYCLES,
    figures=lifecycle.Sms4satsFigures(),
    options=Sms4satsOptions(),
    option_choices=OPTION_CHOICES,
    new_order_id=lifecycle.new_order_id,
    services=lifecycle.services,
    countries=lifecycle.countries,
    create=create,
    variants=VARIANTS,
)
"""The sms4sats imitation."""
