"""`BaseAdapter`: the never-raising `parse` wrapper and the id check every adapter inherits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from pipeline.model import ErrorClass, Observation, TrackedOrder
from pipeline.providers.base import PollingPolicy
from pipeline.providers.common.bounds import MAX_ORDER_ID_CHARS
from pipeline.providers.common.json_values import ShapeError, require_object
from pipeline.providers.common.observations import ParseContext, build_observation, known_state
from pipeline.providers.common.sensitive import Transform
from pipeline.providers.common.timestamps import as_utc
from pipeline.providers.spec import ProviderSpec


class BaseAdapter:
    """What every adapter shares: the never-raising `parse` and the id length check.

    Subclasses set `spec` and `redactions`, and implement `build_request` and `_parse`.
    """

    spec: ProviderSpec
    """The provider's facts; `slug` and `policy` are read from it."""
    redactions: ClassVar[Mapping[str, Transform]] = {}
    """JSON key → transform applied to its value in the stored payload."""
    http_errors: ClassVar[Mapping[int, ErrorClass]] = {}
    """Provider-specific error classes for non-2xx statuses (e.g. Baanx 498/499)."""

    @property
    def slug(self) -> str:
        """The provider's slug."""
        return self.spec.slug

    @property
    def policy(self) -> PollingPolicy:
        """The provider's polling policy."""
        return self.spec.policy

    def parse(
        self,
        http_status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        order: TrackedOrder,
        polled_at: datetime,
        previous_state: str | None = None,
        code_key: bytes = b"",
    ) -> Observation:
        """Turn one HTTP answer into an `Observation`. Pure; never raises on bad input.

        Whatever fails (decoding, redaction, the mapping, building the observation) gives a
        `parse_error` observation naming the exception's type, never quoting the body.
        """
        try:
            ctx = ParseContext.create(
                self.slug,
                http_status=http_status,
                headers=headers,
                body=body,
                order=order,
                polled_at=polled_at,
                previous_state=previous_state,
                transforms=self.redactions,
                code_key=code_key,
            )
        except Exception as exc:  # a body no redaction anticipated must not stop a poll tick
            return self._unreadable(exc, http_status, order, polled_at, previous_state)
        try:
            return self._map(ctx)
        except Exception as exc:  # not even the parse_error observation could be built
            return self._unreadable(exc, http_status, order, polled_at, previous_state)

    def _map(self, ctx: ParseContext) -> Observation:
        try:
            if not ctx.is_http_ok:
                return ctx.http_error(self.http_errors.get(ctx.http_status))
            if ctx.decode_problem is not None:
                return ctx.parse_error(ctx.decode_problem)
            return self._parse(ctx, require_object(ctx.value))
        except ShapeError as exc:
            return ctx.parse_error(str(exc))
        except Exception as exc:  # a body shape no check anticipated must not stop a poll tick
            return ctx.parse_error(f"unexpected body shape ({type(exc).__name__})")

    def _unreadable(
        self,
        exc: Exception,
        http_status: int,
        order: TrackedOrder,
        polled_at: datetime,
        previous_state: str | None,
    ) -> Observation:
        """The `parse_error` observation for an answer not even a `ParseContext` could hold;
        its payload is not kept (it could not be redacted)."""
        state = known_state(previous_state)
        return build_observation(
            provider=self.slug,
            order_id=order.order_id,
            order_kind=order.order_kind,
            polled_at=as_utc(polled_at),
            http_status=http_status,
            state=state.value,
            is_terminal=state.is_terminal,
            is_success=state.is_success,
            error_class=ErrorClass.PARSE_ERROR.value,
            error_message=f"answer could not be read ({type(exc).__name__})",
            service=order.service,
            country=order.country,
        )

    def _parse(self, ctx: ParseContext, body: dict[str, Any]) -> Observation:
        """The provider's mapping of a 2xx JSON object answer (errors are handled before)."""
        raise NotImplementedError

    def validate_order_id(self, order_id: str) -> str | None:
        """None if `order_id` looks valid for this provider, else a reason to reject it."""
        if not isinstance(order_id, str) or not order_id:
            return "order id is empty"
        if len(order_id) > MAX_ORDER_ID_CHARS:
            return f"order id is longer than {MAX_ORDER_ID_CHARS} characters"
        return self.spec.check_order_id(order_id)
