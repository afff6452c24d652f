"""Baanx adapter: `GET /v1/order/{orderId}` for crypto-card product orders.

Authenticated per user (`Authorization: Bearer`) and per application (`X-Client-ID`). The
non-standard 498/499 answers mean the client id is wrong or missing: configuration errors.
`paidAt` uses PostgreSQL's text style with an hour-only offset (`+03`). Contract: PROVIDERS.md §4
and §6.3.
"""

from __future__ import annotations

from typing import Any

from pipeline.model import ErrorClass, Observation, OrderState, TrackedOrder
from pipeline.providers.baanx.spec import CLIENT_ID_HEADER, CLIENT_KEY_HEADER, SPEC
from pipeline.providers.base import ProviderSettings, RequestSpec
from pipeline.providers.common import (
    BaseAdapter,
    ParseContext,
    TimestampReader,
    error_detail,
    lenient,
    opt_object,
    opt_str,
    path_segment,
    safe_message,
)

STATUS_MAP: dict[str, OrderState] = {
    "STARTED": OrderState.PENDING,
    # Not on the doc page: MetaMask Mobile types six statuses (app/components/UI/Card/types.ts
    # @ 00613668) and keeps polling PENDING (services/DaimoPayService.ts @ f1ba1b7a): a payment
    # under way.
    "PENDING": OrderState.PROCESSING,
    "COMPLETED": OrderState.COMPLETED,
    "FAILED": OrderState.FAILED,
    "EXPIRED": OrderState.EXPIRED,
    # Same sources: a refunded order, shown by MetaMask as failed with `metadata.note`.
    "REFUNDED": OrderState.REFUNDED,
}
"""`status` → canonical state. On the doc page STARTED covers both unpaid and paid-in-flight;
real clients also see PENDING and REFUNDED."""

REFUND_NOTES: frozenset[str] = frozenset({"payment_refunded"})
"""`metadata.note` values that turn a FAILED order into `refunded`."""

HTTP_ERRORS: dict[int, ErrorClass] = {
    498: ErrorClass.CLIENT_KEY_INVALID,
    499: ErrorClass.CLIENT_KEY_MISSING,
}
"""Baanx's non-standard statuses; everything else follows the shared classification."""


PATH = "/v1/order/{orderId}"
LOG_URL = PATH


class BaanxAdapter(BaseAdapter):
    """Baanx `GET /v1/order/{orderId}` with a user bearer token and the application client id."""

    spec = SPEC
    http_errors = HTTP_ERRORS

    def build_request(self, order: TrackedOrder, settings: ProviderSettings) -> RequestSpec:
        """`GET {base}/v1/order/{orderId}` with `Authorization` and the client id if configured,
        under the header name `BAANX_CLIENT_KEY_HEADER` chooses.

        A missing credential is left out: Baanx then answers 401 or 499, which become
        `auth_invalid` / `client_key_missing` observations.
        """
        headers = {"Accept": "application/json"}
        token = settings.secret("access_token")
        client_id = settings.secret("client_id")
        if token:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        if client_id:
            for name in _client_key_headers(settings):
                headers[name] = client_id.reveal()
        us_env = settings.option("us_env", "unset")
        if us_env != "unset":
            headers["x-us-env"] = us_env
        return RequestSpec(
            method="GET",
            url=settings.base_url + PATH.format(orderId=path_segment(order.order_id)),
            params={},
            headers=headers,
            log_url=LOG_URL,
        )

    def _parse(self, ctx: ParseContext, body: dict[str, Any]) -> Observation:
        status = opt_str(body, "status")
        if status is None:
            detail = error_detail(body)
            if detail is not None:
                return ctx.body_error(detail)
            return ctx.parse_error("field 'status': missing")
        metadata = lenient(opt_object)(body, "metadata") or {}
        note = lenient(opt_str)(metadata, "note")
        times = TimestampReader()
        paid_at = times.iso("paidAt", body.get("paidAt"))
        key = status.strip().upper()
        mapped = STATUS_MAP.get(key)
        facts: dict[str, Any] = {
            "provider_status": status,
            "provider_substatus": safe_message(note),
            "is_paid": True if key == "COMPLETED" or paid_at is not None else None,
            "service": ctx.order.service,
            "country": ctx.order.country,
            "provider_paid_at": paid_at,
            "provider_timestamp_raw": times.raw,
        }
        if mapped is None:
            return ctx.observation(OrderState.UNKNOWN, status_unrecognized=True, **facts)
        if mapped is OrderState.FAILED and note in REFUND_NOTES:
            return ctx.observation(OrderState.REFUNDED, **facts)
        return ctx.observation(mapped, **facts)


def _client_key_headers(settings: ProviderSettings) -> tuple[str, ...]:
    """The header name(s) the client id travels under."""
    choice = settings.option("client_key_header", CLIENT_ID_HEADER)
    if choice == "both":
        return (CLIENT_ID_HEADER, CLIENT_KEY_HEADER)
    return (choice,)
