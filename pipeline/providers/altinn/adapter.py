"""Altinn Notifications adapter: `GET /notifications/api/v1/orders/{id}/status`.

The v1 endpoint reports the internal `Processed` status as `Completed` with the Processed
description, so `Completed` is disambiguated by its description (PROVIDERS.md §5.6). Success is
judged from the per-channel `generated` / `succeeded` counts, except for SMS, whose `succeeded`
counts only `Accepted` messages. A 404 comes with an empty body or a ProblemDetails body.
Contract: PROVIDERS.md §5 and §6.3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pipeline.model import Observation, OrderState, TrackedOrder
from pipeline.providers.altinn.spec import SPEC
from pipeline.providers.base import ProviderSettings, RequestSpec
from pipeline.providers.common import (
    BaseAdapter,
    ParseContext,
    TimestampReader,
    Transform,
    hashed_value,
    lenient,
    opt_int,
    opt_object,
    opt_str,
    path_segment,
    safe_message,
)

STATUS_MAP: dict[str, OrderState] = {
    "Registered": OrderState.PENDING,
    "Processing": OrderState.PROCESSING,
    "Processed": OrderState.PROCESSING,
    "Completed": OrderState.COMPLETED,
    "SendConditionNotMet": OrderState.CANCELLED,
    "Cancelled": OrderState.CANCELLED,
}
"""`processingStatus.status` → state; `Completed` is refined by `COMPLETED_DESCRIPTIONS`."""

COMPLETED_DESCRIPTIONS: tuple[tuple[str, OrderState, str | None], ...] = (
    ("final status", OrderState.COMPLETED, None),
    ("all notifications have been generated", OrderState.COMPLETED, None),
    ("successfully generated", OrderState.PROCESSING, "generated_awaiting_final"),
)
"""`Completed` + description fragment → (state, substatus), first match wins (§5.6).

"final status" is the true Completed; the seed's own wording is taken as completed too; the
Processed description ("successfully generated") means delivery is still pending. Any other
description on `Completed` gives `completed` flagged `status_unrecognized`.
"""

SUBSTATUS: dict[str, str] = {
    "Processed": "awaiting_delivery",
    "SendConditionNotMet": "send_condition_not_met",
}


PATH = "/notifications/api/v1/orders/{id}/status"
LOG_URL = PATH
SMS_CHANNEL = "sms"

_LOOKUP: dict[str, str] = {name.lower(): name for name in STATUS_MAP}


class AltinnAdapter(BaseAdapter):
    """Altinn `GET …/orders/{id}/status` with an Altinn bearer token or a PlatformAccessToken."""

    spec = SPEC
    redactions: ClassVar[Mapping[str, Transform]] = {"sendersReference": hashed_value}

    def build_request(self, order: TrackedOrder, settings: ProviderSettings) -> RequestSpec:
        """`GET {base}/notifications/api/v1/orders/{id}/status`.

        Sends `Authorization: Bearer` when a token is configured, else `PlatformAccessToken`.
        """
        headers = {"Accept": "application/json"}
        token = settings.secret("token")
        platform_token = settings.secret("platform_access_token")
        if token:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        elif platform_token:
            headers["PlatformAccessToken"] = platform_token.reveal()
        return RequestSpec(
            method="GET",
            url=settings.base_url + PATH.format(id=path_segment(order.order_id)),
            params={},
            headers=headers,
            log_url=LOG_URL,
        )

    def _parse(self, ctx: ParseContext, body: dict[str, Any]) -> Observation:
        processing = opt_object(body, "processingStatus")
        if processing is None:
            return ctx.parse_error("field 'processingStatus': missing")
        status = opt_str(processing, "status")
        if status is None:
            return ctx.parse_error("field 'processingStatus.status': missing")
        description = lenient(opt_str)(processing, "description")
        generated, succeeded, has_sms = _counts(body)
        times = TimestampReader()
        facts: dict[str, Any] = {
            "provider_status": status,
            "provider_substatus": safe_message(description),
            "items_total": generated,
            "items_succeeded": succeeded,
            "service": lenient(opt_str)(body, "notificationChannel") or ctx.order.service,
            "country": ctx.order.country,
            "provider_created_at": times.iso("created", body.get("created")),
            "provider_scheduled_at": times.iso("requestedSendTime", body.get("requestedSendTime")),
            "provider_updated_at": times.iso("lastUpdate", processing.get("lastUpdate")),
        }
        facts["provider_timestamp_raw"] = times.raw
        name = _LOOKUP.get(status.strip().lower())
        if name is None:
            return ctx.observation(OrderState.UNKNOWN, status_unrecognized=True, **facts)
        if name in SUBSTATUS:
            facts["provider_substatus"] = SUBSTATUS[name]
        state = STATUS_MAP[name]
        if state is not OrderState.COMPLETED:
            return ctx.observation(state, **facts)
        refined, substatus, recognized = _refine_completed(description)
        if refined is not OrderState.COMPLETED:
            facts["provider_substatus"] = substatus
            return ctx.observation(refined, **facts)
        return ctx.observation(
            OrderState.COMPLETED,
            is_success=_success(generated, succeeded, has_sms=has_sms),
            status_unrecognized=not recognized,
            **facts,
        )


def _refine_completed(description: str | None) -> tuple[OrderState, str | None, bool]:
    """(state, substatus, recognised) for `Completed`, decided by its description."""
    text = (description or "").lower()
    for fragment, state, substatus in COMPLETED_DESCRIPTIONS:
        if fragment in text:
            return state, substatus, True
    return OrderState.COMPLETED, None, False


def _counts(body: dict[str, Any]) -> tuple[int | None, int | None, bool]:
    """(Σ generated, Σ succeeded, whether SMS is involved); sums are None without a summary."""
    channel = lenient(opt_str)(body, "notificationChannel") or ""
    has_sms = SMS_CHANNEL in channel.lower()
    summary = lenient(opt_object)(body, "notificationsStatusSummary")
    if summary is None:
        return None, None, has_sms
    generated = succeeded = 0
    for name, entry in summary.items():
        if not isinstance(entry, dict):
            continue
        has_sms = has_sms or name.lower() == SMS_CHANNEL
        generated += lenient(opt_int)(entry, "generated") or 0
        succeeded += lenient(opt_int)(entry, "succeeded") or 0
    return generated, succeeded, has_sms


def _success(generated: int | None, succeeded: int | None, *, has_sms: bool) -> bool | None:
    """True when every generated notification succeeded; None when SMS counts differ (§6.3).

    SMS `succeeded` counts only `Accepted` results, so a shortfall there is not a failure.
    """
    generated, succeeded = generated or 0, succeeded or 0
    if generated > 0 and succeeded == generated:
        return True
    if has_sms and succeeded != generated:
        return None
    return False
