"""`DeclarativeAdapter`: a provider adapter driven by a `Declaration` instead of code.

It does what a hand-written adapter does, in this order, for a 2xx JSON object answer (non-2xx,
empty and non-JSON answers are handled by `BaseAdapter` before, with the declared HTTP error
classes):

1. a declared 200-with-error shape gives a poll error;
2. the status is read at its path (a string; missing: a body error when the body carries a
   reason, else a parse error; another type: a parse error);
3. rules, then the map (case-insensitive), give the canonical state; no match gives `unknown`
   with `status_unrecognized`; terminal and success follow from the state;
4. times, substatus, code (keyed hash), phone (masked), amount, service and country are read
   leniently (a wrong type is dropped, a malformed time is kept raw), except the code, whose
   wrong type is a parse error (a code that went through a float has lost digits).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline.model import ErrorClass, Observation, OrderState, TrackedOrder
from pipeline.providers.base import ProviderSettings, RequestSpec
from pipeline.providers.common import (
    BaseAdapter,
    ParseContext,
    TimestampReader,
    Transform,
    code_facts,
    error_detail,
    hashed_code_value,
    hashed_value,
    mask_phone,
    masked_phone_value,
    path_segment,
    safe_message,
)
from pipeline.providers.declarative.paths import (
    lenient_bool,
    lenient_number,
    lenient_str,
    lenient_text,
    read_str,
    read_text,
)
from pipeline.providers.declarative.schema import Declaration, TimeField, status_key
from pipeline.providers.spec import ProviderSpec

TRANSFORMS: dict[str, Transform] = {
    "code": hashed_code_value,
    "phone": masked_phone_value,
    "hash": hashed_value,
}
"""Redaction kind -> the transform applied to the value in the stored body."""
EPOCH_UNITS = {"epoch_s": "s", "epoch_ms": "ms"}


class DeclarativeAdapter(BaseAdapter):
    """The adapter of one declared provider.

    Args:
        declaration: the provider's declaration.
    """

    def __init__(self, declaration: Declaration) -> None:
        self.declaration = declaration
        self.spec: ProviderSpec = declaration.spec
        # Instance attributes shadow BaseAdapter's class-level defaults.
        self.redactions: Mapping[str, Transform] = {  # type: ignore[misc]
            key: TRANSFORMS[kind] for key, kind in declaration.redactions.items()
        }
        self.http_errors: Mapping[int, ErrorClass] = dict(declaration.errors.http)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"DeclarativeAdapter({self.spec.slug!r}, {str(self.declaration.path)!r})"

    # --- the request --------------------------------------------------------------------------

    def build_request(self, order: TrackedOrder, settings: ProviderSettings) -> RequestSpec:
        """The status request: the template filled with the percent-encoded id, plus the
        configured credentials. A missing credential is left out (the provider's refusal then
        becomes an `auth_invalid`-like observation, as for the built-in adapters)."""
        request = self.declaration.request
        headers = {"Accept": "application/json", **dict(request.headers)}
        params = {name: value.format(order_id=order.order_id) for name, value in request.query}
        for auth in request.auth:
            secret = settings.secret(auth.credential)
            if not secret:
                continue
            if auth.kind == "bearer":
                headers["Authorization"] = f"Bearer {secret.reveal()}"
            elif auth.kind == "header":
                headers[auth.name] = secret.reveal()
            else:
                params[auth.name] = secret.reveal()
        return RequestSpec(
            method=request.method,
            url=settings.base_url + request.path.format(order_id=path_segment(order.order_id)),
            params=params,
            headers=headers,
            log_url=request.log_url,
        )

    # --- the answer ---------------------------------------------------------------------------

    def _parse(self, ctx: ParseContext, body: dict[str, Any]) -> Observation:
        declaration = self.declaration
        for shape in declaration.errors.body:
            if shape.condition.holds(body):
                message = (
                    lenient_str(shape.message, body)
                    if shape.message is not None
                    else error_detail(body)
                )
                if shape.error_class is None:
                    return ctx.body_error(message, prefix=shape.prefix)
                detail = safe_message(message)
                text = f"{shape.prefix}: {detail}" if detail else shape.prefix
                return ctx.error(shape.error_class, text)
        section = declaration.status
        status = read_str(section.path, body)
        if status is None:
            detail = error_detail(body)
            if detail is not None:
                return ctx.body_error(detail)
            return ctx.parse_error(f"field {section.path.text!r}: missing")
        facts = self._facts(ctx, body, status)
        state = section.state_of(status, body)
        if state is None:
            return ctx.observation(OrderState.UNKNOWN, status_unrecognized=True, **facts)
        return ctx.observation(state, **facts)

    def _facts(self, ctx: ParseContext, body: dict[str, Any], status: str) -> dict[str, Any]:
        """Everything the observation carries besides its state."""
        declaration = self.declaration
        fields = declaration.fields
        times = TimestampReader()
        moments = {field.column: _read_time(times, field, body) for field in declaration.times}
        facts: dict[str, Any] = {"provider_status": status, **moments}
        substatus = declaration.status.substatus
        facts["provider_substatus"] = (
            safe_message(lenient_str(substatus, body)) if substatus is not None else None
        )
        facts["is_paid"] = self._is_paid(status, body, moments.get("provider_paid_at"))
        facts["service"] = (
            lenient_str(fields.service, body) if fields.service else None
        ) or ctx.order.service
        facts["country"] = (
            lenient_str(fields.country, body) if fields.country else None
        ) or ctx.order.country
        if fields.code is not None:
            code = read_text(fields.code, body)
            code_sha256, code_length = code_facts(code, ctx.code_key)
            facts.update(
                has_code=code is not None, code_sha256=code_sha256, code_length=code_length
            )
        if fields.phone is not None:
            facts["phone_masked"] = mask_phone(lenient_text(fields.phone, body))
        if fields.amount is not None:
            amount = lenient_number(fields.amount, body)
            facts["amount"] = amount
            facts["amount_unit"] = fields.amount_unit if amount is not None else None
        facts["provider_timestamp_raw"] = times.raw
        return facts

    def _is_paid(self, status: str, body: dict[str, Any], paid_at: datetime | None) -> bool | None:
        paid = self.declaration.paid
        if paid.always or status_key(status) in paid.statuses:
            return True
        if paid.from_paid_at and paid_at is not None:
            return True
        if paid.path is not None:
            return lenient_bool(paid.path, body)
        return None


def _read_time(times: TimestampReader, field: TimeField, body: dict[str, Any]) -> datetime | None:
    # Labelled by its key, as the built-in adapters do (`paidAt=...`): a long dotted path would
    # look like a token to the scrubber.
    value = field.path.get(body)
    if field.format == "iso":
        return times.iso(field.path.last_key, value)
    return times.epoch(field.path.last_key, value, EPOCH_UNITS[field.format])
