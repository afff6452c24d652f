"""sms4sats adapter: `GET /orderstatus?orderId=` for receive (activation code) and send orders.

There is no status field for receive orders: the state follows from `error`, `code` and `paid`,
and from the clock (orders without a code are auto-cancelled after 21 minutes). Send orders
carry `smsStatus`. Contract: PROVIDERS.md §1 and §6.3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pipeline.model import Observation, OrderKind, OrderState, TrackedOrder
from pipeline.providers.base import ProviderSettings, RequestSpec
from pipeline.providers.common import (
    BaseAdapter,
    ParseContext,
    Transform,
    code_facts,
    error_detail,
    hashed_code_value,
    lenient,
    mask_phone,
    masked_phone_value,
    opt_bool,
    opt_str,
    opt_text,
)
from pipeline.providers.sms4sats.spec import SPEC

STATUS_MAP: dict[str, OrderState] = {
    "created": OrderState.PROCESSING,
    "sent": OrderState.PROCESSING,
    "delivered": OrderState.CODE_RECEIVED,
    "failed": OrderState.FAILED,
}
"""Send orders: `smsStatus` → canonical state. Receive orders have no status (see `_receive`)."""


RECEIVE_WINDOW_S = SPEC.expiry_windows[0].window_s + 60.0
"""The receive window (auto-cancel without a code) plus 60 s grace."""
SEND_NO_DLR_CUTOFF_S = 10 * 60.0
"""A send order still `sent` after this long is recorded as completed without delivery report."""

PATH = "/orderstatus"
LOG_URL = "/orderstatus?orderId={orderId}"

SUBSTATUS_NO_NUMBER = "no_number"
SUBSTATUS_SEND_ERROR = "send_error"
SUBSTATUS_AUTO_CANCELLED = "auto_cancel_window"
SUBSTATUS_SENT_NO_DLR = "sent_no_dlr"
SUBSTATUS_USER_CANCELLED = "user_cancelled"
SUBSTATUS_UNPAID = "invoice_expired"


def _flag(value: Any) -> str:
    return "true" if value else "false"


class Sms4satsAdapter(BaseAdapter):
    """sms4sats `GET /orderstatus`: no authentication; the order id is the capability."""

    spec = SPEC
    redactions: ClassVar[Mapping[str, Transform]] = {
        "code": hashed_code_value,
        "number": masked_phone_value,
    }

    def build_request(self, order: TrackedOrder, settings: ProviderSettings) -> RequestSpec:
        """`GET {base}/orderstatus?orderId=…`; the id travels as a query parameter."""
        return RequestSpec(
            method="GET",
            url=settings.base_url + PATH,
            params={"orderId": order.order_id},
            headers={"Accept": "application/json"},
            log_url=LOG_URL,
        )

    def _parse(self, ctx: ParseContext, body: dict[str, Any]) -> Observation:
        envelope = opt_str(body, "status")
        if envelope is not None and envelope.strip().lower() == "error":
            return ctx.body_error(error_detail(body), prefix="status error")
        paid = opt_bool(body, "paid")
        error = opt_str(body, "error")
        sms_status = opt_str(body, "smsStatus")
        facts: dict[str, Any] = {
            "is_paid": paid,
            "service": lenient(opt_str)(body, "service") or ctx.order.service,
            "country": lenient(opt_str)(body, "country") or ctx.order.country,
            "phone_masked": mask_phone(lenient(opt_text)(body, "number")),
            "provider_timestamp_raw": _raw_timestamp(body.get("timestamp")),
        }
        if sms_status is not None or ctx.order.order_kind == OrderKind.SMS_SEND:
            return self._send(ctx, paid=paid, error=error, sms_status=sms_status, facts=facts)
        return self._receive(ctx, body, paid=paid, error=error, facts=facts)

    def _receive(
        self,
        ctx: ParseContext,
        body: dict[str, Any],
        *,
        paid: bool | None,
        error: str | None,
        facts: dict[str, Any],
    ) -> Observation:
        """Receive orders, first match wins: error, code, auto-cancel, paid, unpaid."""
        code = opt_text(body, "code")
        code_sha256, code_length = code_facts(code, ctx.code_key)
        facts.update(has_code=code is not None, code_sha256=code_sha256, code_length=code_length)
        facts["provider_status"] = (
            f"paid={_flag(paid)};number={_flag(body.get('number'))};"
            f"code={_flag(code)};error={_flag(error)}"
        )
        if error and paid is False:
            return _cancelled_with_refund(ctx, facts)
        if error:
            return ctx.observation(
                OrderState.FAILED, provider_substatus=SUBSTATUS_NO_NUMBER, **facts
            )
        if code is not None:
            return ctx.observation(OrderState.CODE_RECEIVED, **facts)
        # A paid order seen unpaid again, without code or error, was auto-cancelled: the hold
        # invoice was released. The body after a cancel is undocumented; this is its trace.
        cancelled_under_us = not paid and ctx.previous_state is OrderState.PROCESSING
        if ctx.order_age_s > RECEIVE_WINDOW_S or cancelled_under_us:
            return ctx.observation(
                OrderState.EXPIRED, provider_substatus=SUBSTATUS_AUTO_CANCELLED, **facts
            )
        state = OrderState.PROCESSING if paid else OrderState.PENDING
        return ctx.observation(state, **facts)

    def _send(
        self,
        ctx: ParseContext,
        *,
        paid: bool | None,
        error: str | None,
        sms_status: str | None,
        facts: dict[str, Any],
    ) -> Observation:
        """Send orders: `smsStatus` through `STATUS_MAP`; a long `sent` becomes completed."""
        facts["provider_status"] = sms_status
        if error and paid is False:
            return _cancelled_with_refund(ctx, facts)
        if error:
            return ctx.observation(
                OrderState.FAILED, provider_substatus=SUBSTATUS_SEND_ERROR, **facts
            )
        if sms_status is None:
            return ctx.observation(OrderState.PROCESSING if paid else OrderState.PENDING, **facts)
        state = STATUS_MAP.get(sms_status.strip().lower())
        if state is None:
            return ctx.observation(OrderState.UNKNOWN, status_unrecognized=True, **facts)
        if sms_status.strip().lower() == "sent" and ctx.order_age_s > SEND_NO_DLR_CUTOFF_S:
            return ctx.observation(
                OrderState.COMPLETED, provider_substatus=SUBSTATUS_SENT_NO_DLR, **facts
            )
        return ctx.observation(state, **facts)


def _raw_timestamp(value: Any) -> str | None:
    """sms4sats `timestamp` verbatim (its meaning is undocumented); the observation scrubs it
    and cuts it to `common.MAX_RAW_TIMESTAMP_CHARS`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    return str(value)


def _cancelled_with_refund(ctx: ParseContext, facts: dict[str, Any]) -> Observation:
    """`paid:false` with an `error`: the order was cancelled and its funds returned (BlitzWallet
    reads `status:"OK"` + `error` as a refund; app/components/admin/homeComponents/apps/sms4sats/
    home.js @ 62975d93). Past the window it was the auto-cancel; a paid order inside it was
    cancelled by the user; a never-paid one let its invoice expire."""
    if ctx.order_age_s > RECEIVE_WINDOW_S:
        return ctx.observation(
            OrderState.EXPIRED, provider_substatus=SUBSTATUS_AUTO_CANCELLED, **facts
        )
    if ctx.previous_state is OrderState.PROCESSING:
        return ctx.observation(
            OrderState.CANCELLED, provider_substatus=SUBSTATUS_USER_CANCELLED, **facts
        )
    return ctx.observation(OrderState.EXPIRED, provider_substatus=SUBSTATUS_UNPAID, **facts)
