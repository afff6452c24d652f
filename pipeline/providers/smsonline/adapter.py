"""SMSOnline adapter: `GET /v3/numbers/{userId}/order/{orderId}?apiKey=` (rented numbers).

The API key travels in the query string, so it is only ever put in `RequestSpec.params`; the
URL and the log template never hold it. Only the status `completed` is documented, so the state
is derived field-first (PROVIDERS.md §2.6): a received SMS wins, then the status words, then the
lease clock (`expiredAt`). Contract: PROVIDERS.md §2 and §6.3.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pipeline.model import ErrorClass, Observation, OrderState, TrackedOrder
from pipeline.providers.base import ProviderSettings, RequestSpec
from pipeline.providers.common import (
    BaseAdapter,
    ParseContext,
    TimestampReader,
    Transform,
    body_error_class,
    code_facts,
    error_detail,
    hashed_code_value,
    hashed_value,
    lenient,
    mask_phone,
    masked_phone_value,
    opt_bool,
    opt_list,
    opt_number,
    opt_str,
    opt_text,
    path_segment,
    require_object,
)
from pipeline.providers.smsonline.spec import SPEC

STATUS_MAP: dict[str, OrderState] = {
    "completed": OrderState.CODE_RECEIVED,
    "pending": OrderState.PROCESSING,
    "waiting": OrderState.PROCESSING,
    "active": OrderState.PROCESSING,
    "refunded": OrderState.REFUNDED,
    "cancelled": OrderState.CANCELLED,
    "canceled": OrderState.CANCELLED,
    "expired": OrderState.EXPIRED,
}
"""`status` → state. Only `completed` is documented; the rest is the configured known list."""

STATUS_KEYWORDS: tuple[tuple[str, OrderState], ...] = (
    ("refund", OrderState.REFUNDED),
    ("cancel", OrderState.CANCELLED),
    ("expir", OrderState.EXPIRED),
)
"""Substring rules for statuses outside `STATUS_MAP` (checked in this order)."""


PATH = "/v3/numbers/{userId}/order/{orderId}"
LOG_URL = PATH
AMOUNT_UNIT = "smsonline_minor_unit"
SUBSTATUS_LEASE_EXPIRED = "lease_expired"
AUTH_FAILURE = re.compile(r"unauthori[sz]ed|unauthenticated|forbidden|api\s*key|\bkey\b|auth", re.I)
TERMINAL_FROM_STATUS = frozenset(
    {OrderState.CODE_RECEIVED, OrderState.REFUNDED, OrderState.CANCELLED, OrderState.EXPIRED}
)


class SmsOnlineAdapter(BaseAdapter):
    """SMSOnline v3 "Get order data": `apiKey` query parameter plus `userId` path segment."""

    spec = SPEC
    redactions: ClassVar[Mapping[str, Transform]] = {
        "receivedSMS": hashed_code_value,
        "phoneNumber": masked_phone_value,
        "userId": hashed_value,
    }

    def build_request(self, order: TrackedOrder, settings: ProviderSettings) -> RequestSpec:
        """`GET {base}/v3/numbers/{userId}/order/{orderId}` with `apiKey` in `params` only.

        Missing credentials are left out rather than raised: the provider's 401 then becomes an
        `auth_invalid` observation, which the poller treats as a configuration error.
        """
        user_id = settings.secret("user_id")
        api_key = settings.secret("api_key")
        path = PATH.format(
            userId=path_segment(user_id.reveal() if user_id else ""),
            orderId=path_segment(order.order_id),
        )
        return RequestSpec(
            method="GET",
            url=settings.base_url + path,
            params={"apiKey": api_key.reveal()} if api_key else {},
            headers={"Accept": "application/json"},
            log_url=LOG_URL,
        )

    def _parse(self, ctx: ParseContext, envelope: dict[str, Any]) -> Observation:
        ok = opt_bool(envelope, "ok")
        if ok is False:
            message = error_detail(envelope)
            if message is not None and AUTH_FAILURE.search(message):
                return ctx.error(ErrorClass.AUTH_INVALID, f"ok=false: {message}")
            return ctx.error(body_error_class(message), f"ok=false: {message or 'no reason'}")
        items = _body_items(envelope)
        if items is None:
            return ctx.parse_error("field 'body': missing")
        if not items:
            return ctx.error(ErrorClass.NOT_FOUND, "order not found (empty body list)")
        return self._order(ctx, require_object(_pick(items, ctx.order.order_id), "body[0]"))

    def _order(self, ctx: ParseContext, item: dict[str, Any]) -> Observation:
        """One order object, field-first: SMS, status words, lease clock, else processing."""
        status = opt_str(item, "status")
        sms = opt_text(item, "receivedSMS")
        code_sha256, code_length = code_facts(sms, ctx.code_key)
        times = TimestampReader()
        expires_at = times.iso("expiredAt", item.get("expiredAt"))
        amount = lenient(opt_number)(item, "purchasePrice")
        facts: dict[str, Any] = {
            "provider_status": status,
            "is_paid": True,
            "has_code": sms is not None,
            "code_sha256": code_sha256,
            "code_length": code_length,
            "phone_masked": mask_phone(lenient(opt_text)(item, "phoneNumber")),
            "amount": amount,
            "amount_unit": AMOUNT_UNIT if amount is not None else None,
            "service": lenient(opt_str)(item, "service") or ctx.order.service,
            "country": lenient(opt_str)(item, "country") or ctx.order.country,
            "provider_created_at": times.iso("orderedAt", item.get("orderedAt")),
            "provider_expires_at": expires_at,
            "provider_updated_at": times.iso("lastCheckedAt", item.get("lastCheckedAt")),
        }
        facts["provider_timestamp_raw"] = times.raw
        key = status.strip().lower() if status else ""
        mapped = STATUS_MAP.get(key) or _keyword_state(key)
        facts["status_unrecognized"] = bool(key) and key not in STATUS_MAP
        if sms is not None:
            return ctx.observation(OrderState.CODE_RECEIVED, **facts)
        if mapped is not None and mapped in TERMINAL_FROM_STATUS:
            return ctx.observation(mapped, **facts)
        if expires_at is not None and ctx.polled_at > expires_at:
            return ctx.observation(
                OrderState.EXPIRED, provider_substatus=SUBSTATUS_LEASE_EXPIRED, **facts
            )
        return ctx.observation(OrderState.PROCESSING, **facts)


def _body_items(envelope: dict[str, Any]) -> list[Any] | None:
    """`body` as a list of orders. The doc page shows an array; a v3 client reads `body` as one
    object on the order routes (a script calling premium.smsonline.cloud; PROVIDERS.md §2 and
    docs/providers/sources.md), so an object is taken as a list of one.

    Raises:
        ShapeError: `body` is neither an array nor an object.
    """
    body = envelope.get("body")
    if isinstance(body, dict):
        return [body]
    return opt_list(envelope, "body")


def _pick(items: list[Any], order_id: str) -> Any:
    """The entry for `order_id` when the list holds several, else the first."""
    for item in items:
        if isinstance(item, dict) and str(item.get("orderId")) == order_id:
            return item
    return items[0]


def _keyword_state(status: str) -> OrderState | None:
    if not status:
        return None
    for keyword, state in STATUS_KEYWORDS:
        if keyword in status:
            return state
    return None
