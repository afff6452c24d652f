"""Baanx imitation (PROVIDERS.md §4): `GET /v1/order/{orderId}`, `POST /v1/order`, products.

`Authorization: Bearer <user token>` plus `X-Client-ID`. Refusals: 499 without a client id, 498
with an unknown one, 401 without a valid token, 404 `{"error":"Order not found"}`, 403 for
another user's order. Only the 404 body is documented; the others are [INF]. `paidAt` appears only
on COMPLETED, in PostgreSQL's `YYYY-MM-DD HH:MM:SS.fff+HH` text. The lifecycle is in `lifecycle`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from starlette.requests import Request

from pipeline.model import OrderKind, OrderState
from pipeline.providers.baanx import lifecycle
from pipeline.providers.baanx.spec import CLIENT_ID_HEADER, CLIENT_KEY_HEADER, SPEC
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
    bearer_token,
    json_reply,
    pg_text,
    read_json,
    stable_hex,
)

SLUG = SPEC.slug
ACCESS_TOKEN = sandbox_credential(SPEC, "access_token")
CLIENT_ID = sandbox_credential(SPEC, "client_id")
PAYMENT_METHOD = "CRYPTO_EXTERNAL_DAIMO"
PRODUCT_PRICES: dict[str, float] = {"virtual-card": 10.0, "card-topup": 50.0, "metal-card": 199.0}
"""[INF] product prices in USDC; the product ids are the lifecycle table's keys."""
NOT_FOUND = {"error": "Order not found"}


@dataclasses.dataclass(frozen=True)
class BaanxOptions:
    """Baanx unknowns.

    Attributes:
        paid_at_offset_hours: the hour-only offset `paidAt` is written in (seed: `+03`).
        other_user_tokens: extra valid bearer tokens of other users (their requests for this
            user's orders get 403).
        client_key_header: the header the client id is read from: `X-Client-ID` (doc page),
            `x-client-key` (what MetaMask Mobile and Ledger Live send) or `either`.
        paid_status: what an order shows while its payment settles (the last quarter of the
            time before it completes, [INF]): `STARTED` (doc page) or `PENDING` (MetaMask
            Mobile's OrderStatus, app/components/UI/Card/types.ts @ 00613668).
        refund_status: a refunded order: `FAILED` with `metadata.note` `payment_refunded`
            (seed) or `REFUNDED` (same MetaMask source), the note kept.
    """

    paid_at_offset_hours: int = 3
    other_user_tokens: tuple[str, ...] = ("sandbox-baanx-other-user-token",)
    client_key_header: str = CLIENT_ID_HEADER
    paid_status: str = "STARTED"
    refund_status: str = "FAILED"


OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "client_key_header": (CLIENT_ID_HEADER, CLIENT_KEY_HEADER, "either"),
    "paid_status": ("STARTED", "PENDING"),
    "refund_status": ("FAILED", "REFUNDED"),
}
VARIANTS = (
    Variant("paid_status", "PENDING", "MetaMask/metamask-mobile Card/types.ts @ 00613668"),
    Variant("refund_status", "REFUNDED", "MetaMask/metamask-mobile Card/types.ts @ 00613668"),
)
"""Real answers beyond the doc page; the client-key header is a request detail, not drawn."""
SETTLING_SHARE = 0.25
"""[INF] Share of the time to payment at its end during which `paid_status` is shown."""


def error_reply(status: int) -> Reply:
    """[INF] Baanx's 5xx body is undocumented."""
    return json_reply({"error": "Internal Server Error"}, status)


def rate_limited_reply(retry_after_s: int) -> Reply:
    """[INF] Baanx documents no limit."""
    return json_reply(
        {"error": "Too Many Requests"}, 429, headers={"Retry-After": str(retry_after_s)}
    )


def _auth(request: Request, options: BaanxOptions) -> tuple[str | None, Reply | None]:
    """(user token, None) when allowed, else (None, refusal): 499, 498, then 401."""
    client_id = _client_id(request, options)
    if client_id is None:
        return None, json_reply({"error": "Missing client key"}, 499)
    if client_id != CLIENT_ID:
        return None, json_reply({"error": "Invalid client key"}, 498)
    token = bearer_token(request)
    if token is None or token not in (ACCESS_TOKEN, *options.other_user_tokens):
        return None, json_reply({"error": "Unauthorized"}, 401)
    return token, None


def _client_id(request: Request, options: BaanxOptions) -> str | None:
    names: tuple[str, ...] = (options.client_key_header,)
    if options.client_key_header == "either":
        names = (CLIENT_ID_HEADER, CLIENT_KEY_HEADER)
    return next((request.headers[n] for n in names if n in request.headers), None)


def _shown_status(order: SandboxOrder, now: datetime, options: BaanxOptions) -> str:
    """The wire status at `now`: the truth's, with the options' real variants applied."""
    truth = order.truth
    current = truth.state_at(now) or truth.transitions[0]
    status = current.provider_status
    if status == "STARTED" and options.paid_status != "STARTED":
        paid = truth.milestones.get("paid")
        if paid is not None and now >= paid - (paid - truth.created_at) * SETTLING_SHARE:
            return options.paid_status
    if current.state == OrderState.REFUNDED.value:
        return options.refund_status
    return status


def render_order(order: SandboxOrder, now: datetime, options: BaanxOptions) -> Reply:
    """The status answer at `now` (pure): `requestId, orderId, status[, paidAt], metadata`."""
    truth = order.truth
    order_id = truth.order_id
    status = _shown_status(order, now, options)
    body: dict[str, Any] = {
        "requestId": order.attrs["requestId"],
        "orderId": order_id,
        "status": status,
    }
    if status == "COMPLETED":
        body["paidAt"] = pg_text(truth.milestones["paid"], options.paid_at_offset_hours)
        body["metadata"] = {
            "paymentId": stable_hex(f"{order_id}:payment", 19),
            "txHash": "0x" + stable_hex(f"{order_id}:tx", 40),
        }
    elif status in ("FAILED", "REFUNDED"):
        body["metadata"] = {
            "paymentId": stable_hex(f"{order_id}:payment", 19),
            "note": truth.facts.get("note", "payment_rejected"),
        }
    return json_reply(body, status_path=("status",))


async def get_order(request: Request, sandbox: Sandbox) -> Reply:
    """`GET /v1/order/{orderId}`."""
    options: BaanxOptions = sandbox.options_of(SLUG)
    token, problem = _auth(request, options)
    if problem:
        return problem
    order = sandbox.get(SLUG, request.path_params["orderId"])
    if order is None:
        return json_reply(NOT_FOUND, 404)
    if order.owner != token:
        return json_reply({"error": "Forbidden"}, 403)
    return render_order(order, sandbox.now(), options)


async def create_order(request: Request, sandbox: Sandbox) -> Reply:
    """`POST /v1/order` `{productId, paymentMethod}` → `{requestId, orderId, paymentConfig}`."""
    token, problem = _auth(request, sandbox.options_of(SLUG))
    if problem:
        return problem
    body = await read_json(request)
    body = body if isinstance(body, dict) else {}
    product = body.get("productId")
    method = body.get("paymentMethod", PAYMENT_METHOD)
    errors = []
    if product not in PRODUCT_PRICES:
        errors.append({"field": "productId", "message": "unknown or unavailable product"})
    if method != PAYMENT_METHOD:
        errors.append({"field": "paymentMethod", "message": f"must be {PAYMENT_METHOD}"})
    if errors or not isinstance(product, str):
        return json_reply({"error": "Validation failed", "details": errors}, 422)
    order = sandbox.create_order(SLUG, OrderKind.PRODUCT_ORDER, service=product, owner=token)
    order_id = order.truth.order_id
    order.attrs["requestId"] = "payment_" + stable_hex(f"{order_id}:request", 12)
    return json_reply(
        {
            "requestId": order.attrs["requestId"],
            "orderId": order_id,
            "paymentConfig": {
                "paymentAmount": PRODUCT_PRICES[product],
                "paymentCurrency": "USDC",
                "destinationAddress": "0x" + stable_hex(f"{order_id}:destination", 40),
                "destinationChainId": "8453",
                "destinationTokenSymbol": "USDC",
                "destinationTokenAddress": "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
            },
        }
    )


async def products(request: Request, sandbox: Sandbox) -> Reply:
    """`GET /v1/order/products/available`. [INF] shape."""
    _, problem = _auth(request, sandbox.options_of(SLUG))
    if problem:
        return problem
    return json_reply(
        [
            {"productId": product, "price": PRODUCT_PRICES[product], "currency": "USDC"}
            for product in lifecycle.PRODUCTS
        ]
    )


WIRE = ProviderWire(
    slug=SLUG,
    routes=(
        RouteSpec("/v1/order/products/available", ("GET",), "action", products),
        RouteSpec("/v1/order/{orderId}", ("GET",), "status", get_order),
        RouteSpec("/v1/order", ("POST",), "create", create_order),
    ),
    error_reply=error_reply,
    rate_limited_reply=rate_limited_reply,
    poll_path="/v1/order/{order_id}",
)


async def create(creator: Creator) -> CreatedOrder:
    """Order a drawn product."""
    product = choose(lifecycle.PRODUCTS, creator.rng)
    answer = await creator.post(
        "POST",
        "/v1/order",
        {"productId": product, "paymentMethod": PAYMENT_METHOD},
        {
            "Authorization": f"Bearer {creator.credentials['BAANX_ACCESS_TOKEN']}",
            # Both names, so creates work whichever header the sandbox is set to read.
            CLIENT_ID_HEADER: creator.credentials["BAANX_CLIENT_ID"],
            CLIENT_KEY_HEADER: creator.credentials["BAANX_CLIENT_ID"],
        },
    )
    order_id = creator.field(answer, "orderId")
    return creator.order(order_id, OrderKind.PRODUCT_ORDER, product)


SANDBOX = SandboxProvider(
    slug=SLUG,
    wire=WIRE,
    lifecycles=lifecycle.LIFECYCLES,
    figures=lifecycle.BaanxConfig(),
    options=BaanxOptions(),
    option_choices=OPTION_CHOICES,
    new_order_id=lifecycle.new_order_id,
    services=lifecycle.products,
    create=create,
    variants=VARIANTS,
)
"""The Baanx imitation."""
