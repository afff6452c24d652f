"""OrdinalsBot adapter: `GET /order?id=` for Bitcoin inscription orders.

`state` is authoritative; bodies without it (the seed example) fall back to the legacy booleans.
A `status: "error"` body in a 200 is a poll error, not an order state. Timestamps mix units in
one object: `createdAt` ms, `charge.created_at` and `lightning_invoice.expires_at` seconds,
`files[].tx.updatedAt` ISO strings. Contract: PROVIDERS.md §3 and §6.3.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from pipeline.model import Observation, OrderState, TrackedOrder
from pipeline.providers.base import ProviderSettings, RequestSpec
from pipeline.providers.common import (
    BaseAdapter,
    ParseContext,
    TimestampReader,
    Transform,
    error_detail,
    hashed_value,
    lenient,
    opt_bool,
    opt_int,
    opt_list,
    opt_number,
    opt_object,
    opt_str,
    safe_message,
)
from pipeline.providers.ordinalsbot.spec import SPEC

STATUS_MAP: dict[str, OrderState] = {
    "waiting-payment": OrderState.PENDING,
    "waiting-parent": OrderState.PENDING,
    "waiting-confirmation": OrderState.PROCESSING,
    "prep": OrderState.PROCESSING,
    "queued": OrderState.PROCESSING,
    "waiting-reveal": OrderState.PROCESSING,
    "waiting-rune-balance": OrderState.PROCESSING,
    "completed": OrderState.COMPLETED,
    "error": OrderState.FAILED,
    "cancelled": OrderState.CANCELLED,
    "waiting-refund": OrderState.FAILED,
    "refunded": OrderState.REFUNDED,
    "expired": OrderState.EXPIRED,
    # Not documented for GET /order: a client's webhook handler lists it among the order states
    # (docs/providers/sources.md, OrdinalsBot). One file inscribed, others may still be pending.
    "file-inscribed": OrderState.PROCESSING,
}
"""`state` → canonical state: the 13 documented values and `file-inscribed`."""

NOT_TERMINAL: frozenset[str] = frozenset({"waiting-refund"})
"""States whose canonical state is terminal by default but which can still change."""
SUBSTATUS: dict[str, str] = {"waiting-refund": "refund_pending"}
UNPAID_STATES: frozenset[str] = frozenset({"waiting-payment", "waiting-parent", "expired"})


PATH = "/order"
LOG_URL = "/order?id={orderId}"
AMOUNT_UNIT = "sat"
SUBSTATUS_LEGACY = "legacy_flags"


class OrdinalsBotAdapter(BaseAdapter):
    """OrdinalsBot `GET /order`; sends `x-api-key` only when one is configured."""

    spec = SPEC
    redactions: ClassVar[Mapping[str, Transform]] = {
        "receiveAddress": hashed_value,
        "payreq": hashed_value,
    }

    def build_request(self, order: TrackedOrder, settings: ProviderSettings) -> RequestSpec:
        """`GET {base}/order?id=…`, with `x-api-key` if configured."""
        headers = {"Accept": "application/json"}
        api_key = settings.secret("api_key")
        if api_key:
            headers["x-api-key"] = api_key.reveal()
        return RequestSpec(
            method="GET",
            url=settings.base_url + PATH,
            params={"id": order.order_id},
            headers=headers,
            log_url=LOG_URL,
        )

    def _parse(self, ctx: ParseContext, body: dict[str, Any]) -> Observation:
        body = _unwrap(body)
        envelope = opt_str(body, "status")
        if envelope is not None and envelope.strip().lower() == "error":
            return ctx.body_error(error_detail(body), prefix="status error")
        state = opt_str(body, "state")
        paid = opt_bool(body, "paid")
        facts = _facts(ctx, body)
        if state is None:
            return self._legacy(ctx, body, paid=paid, facts=facts)
        key = state.strip().lower()
        mapped = STATUS_MAP.get(key)
        facts["provider_status"] = state
        facts["is_paid"] = paid if paid is not None else _paid_from_state(key)
        if mapped is None:
            return ctx.observation(OrderState.UNKNOWN, status_unrecognized=True, **facts)
        substatus = SUBSTATUS.get(key)
        if key == "error":
            substatus = safe_message(lenient(opt_str)(body, "error"))
        return ctx.observation(
            mapped,
            is_terminal=mapped.is_terminal and key not in NOT_TERMINAL,
            provider_substatus=substatus,
            **facts,
        )

    def _legacy(
        self, ctx: ParseContext, body: dict[str, Any], *, paid: bool | None, facts: dict[str, Any]
    ) -> Observation:
        """`sent` → completed, `expired` → expired, `paid` → processing, else pending."""
        expired = opt_bool(body, "expired")
        if body.get("sent"):
            state = OrderState.COMPLETED
        elif expired:
            state = OrderState.EXPIRED
        elif paid:
            state = OrderState.PROCESSING
        else:
            state = OrderState.PENDING
        facts["is_paid"] = paid
        return ctx.observation(state, provider_substatus=SUBSTATUS_LEGACY, **facts)


def _unwrap(body: dict[str, Any]) -> dict[str, Any]:
    """The order inside a `{"data": {...}}` envelope, which the official SDK tolerates."""
    inner = body.get("data")
    if isinstance(inner, dict) and "state" not in body and "id" not in body:
        return inner
    return body


def _paid_from_state(key: str) -> bool | None:
    if key not in STATUS_MAP:
        return None
    return key not in UNPAID_STATES


def _facts(ctx: ParseContext, body: dict[str, Any]) -> dict[str, Any]:
    """Items, amount and timestamps; informational fields of the wrong type are ignored."""
    charge = lenient(opt_object)(body, "charge") or {}
    invoice = lenient(opt_object)(charge, "lightning_invoice") or {}
    items = _items(body)
    times = TimestampReader()
    created = times.epoch("createdAt", body.get("createdAt"), "ms")
    if created is None:
        created = times.epoch("charge.created_at", charge.get("created_at"), "s")
    expires = times.epoch("lightning_invoice.expires_at", invoice.get("expires_at"), "s")
    if expires is None and "expires_at" not in invoice:
        expires = times.iso("charge.expires_at", charge.get("expires_at"))
    updated = [
        _tx_updated_at(times, item["tx"]) for item in items if isinstance(item.get("tx"), dict)
    ]
    amount = lenient(opt_number)(body, "amount")
    if amount is None:
        amount = lenient(opt_number)(charge, "amount")
    return {
        "items_total": _total(body),
        "items_succeeded": _succeeded(body, items),
        "amount": amount,
        "amount_unit": AMOUNT_UNIT if amount is not None else None,
        "service": lenient(opt_str)(body, "orderType") or ctx.order.service,
        "country": ctx.order.country,
        "provider_created_at": created,
        "provider_expires_at": expires,
        "provider_updated_at": _latest(updated),
        "provider_timestamp_raw": times.raw,
    }


def _tx_updated_at(times: TimestampReader, tx: dict[str, Any]) -> datetime | None:
    """`tx.updatedAt` (documented), else `tx.updated_at`: a client's schema notes the API also
    sends the snake-case name (mamokin/ordinalsbot-poc, app/order-status/[id]/schema.ts at
    977c15ea)."""
    if "updatedAt" in tx:
        return times.iso("tx.updatedAt", tx.get("updatedAt"))
    return times.iso("tx.updated_at", tx.get("updated_at"))


def _has_items(body: dict[str, Any]) -> bool:
    return isinstance(body.get("files"), list) or isinstance(body.get("delegates"), list)


def _total(body: dict[str, Any]) -> int | None:
    """`len(files) + len(delegates)`, None when the body has neither list."""
    if not _has_items(body):
        return None
    return len(lenient(opt_list)(body, "files") or []) + len(
        lenient(opt_list)(body, "delegates") or []
    )


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`files` and `delegates` entries that are objects."""
    entries = (lenient(opt_list)(body, "files") or []) + (
        lenient(opt_list)(body, "delegates") or []
    )
    return [entry for entry in entries if isinstance(entry, dict)]


def _succeeded(body: dict[str, Any], items: list[dict[str, Any]]) -> int | None:
    """`inscribedCount`, else the entries whose `tx` names an inscription."""
    count = lenient(opt_int)(body, "inscribedCount")
    if count is not None:
        return count
    if not _has_items(body):
        return None
    return sum(
        1 for item in items if isinstance(item.get("tx"), dict) and item["tx"].get("inscription")
    )


def _latest(moments: list[datetime | None]) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None
