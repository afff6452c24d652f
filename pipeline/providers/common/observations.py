"""`ParseContext`: one HTTP answer plus the order, which builds `Observation`s through
`build_observation`, the one place their text fields are scrubbed and bounded."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline.model import ErrorClass, Observation, OrderState, TrackedOrder
from pipeline.providers.common.bounds import (
    MAX_JSON_PAYLOAD_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_RAW_TIMESTAMP_CHARS,
    MAX_STATUS_CHARS,
    MAX_TEXT_PAYLOAD_BYTES,
)
from pipeline.providers.common.http import (
    body_error_class,
    classify_http_status,
    error_detail,
    retry_after_seconds,
)
from pipeline.providers.common.json_values import decode_json
from pipeline.providers.common.sensitive import (
    Transform,
    compact_json,
    cut_utf8,
    redact_json,
    redact_text,
    safe_message,
    sha256_hex,
)
from pipeline.providers.common.timestamps import as_utc
from pipeline.redaction import Level, scrub


def known_state(state: str | None) -> OrderState:
    """`state` as an `OrderState`; None or an unknown name gives `unknown`."""
    try:
        return OrderState(state) if state is not None else OrderState.UNKNOWN
    except ValueError:
        return OrderState.UNKNOWN


# --- building observations --------------------------------------------------------------------

_DEFAULT: Any = object()

OBSERVATION_TEXT: dict[str, tuple[Level, int]] = {
    "provider_status": ("tokens", MAX_STATUS_CHARS),
    "provider_substatus": ("prose", MAX_STATUS_CHARS),
    "service": ("tokens", MAX_STATUS_CHARS),
    "country": ("tokens", MAX_STATUS_CHARS),
    "provider_timestamp_raw": ("tokens", MAX_RAW_TIMESTAMP_CHARS),
    "error_message": ("prose", MAX_MESSAGE_CHARS),
}
"""Observation fields that may hold provider-written text → (scrub level, bound). The other
text fields are ours (ids, enums, hashes, masks, the already redacted payload)."""


def build_observation(**fields: Any) -> Observation:
    """An `Observation` whose provider-written text fields are scrubbed and bounded.

    Every observation an adapter returns is built here (through `ParseContext`), so no adapter
    can store a status, service or message that still holds a credential or an unstorable
    character. The error message is also made single-line; an empty one becomes None.
    """
    for name, (level, max_chars) in OBSERVATION_TEXT.items():
        value = fields.get(name)
        if isinstance(value, str):
            single_line = name == "error_message"
            value = scrub(value, level=level, max_chars=max_chars, single_line=single_line)
            fields[name] = value if value or not single_line else None
    return Observation(**fields)


@dataclasses.dataclass(frozen=True)
class ParseContext:
    """One HTTP answer about one order, decoded once, and the means to build `Observation`s.

    Attributes:
        slug: provider slug.
        order: the order polled.
        polled_at: request time, UTC.
        http_status: HTTP status of the answer.
        headers: response headers.
        value: the decoded JSON body, or None when `decode_problem` is set.
        decode_problem: why the body is not JSON, or None.
        previous_state: the last known state (repeated on errors).
        payload_redacted: the redacted body text, None for an empty body.
        payload_sha256: SHA-256 of `payload_redacted`.
        code_key: key of the SMS-code HMAC (see `code_facts`).
    """

    slug: str
    order: TrackedOrder
    polled_at: datetime
    http_status: int
    headers: Mapping[str, str]
    value: Any
    decode_problem: str | None
    previous_state: OrderState
    payload_redacted: str | None
    payload_sha256: str | None
    code_key: bytes = b""

    @classmethod
    def create(
        cls,
        slug: str,
        *,
        http_status: int,
        headers: Mapping[str, str],
        body: bytes,
        order: TrackedOrder,
        polled_at: datetime,
        previous_state: str | None,
        transforms: Mapping[str, Transform],
        code_key: bytes = b"",
    ) -> ParseContext:
        """Decode `body` and redact it with the provider's `transforms`."""
        if isinstance(body, str):
            body = body.encode("utf-8", errors="surrogatepass")
        elif not isinstance(body, bytes):
            body = bytes(body)
        value, problem = decode_json(body)
        redacted: str | None = None
        if problem is None:
            try:
                redacted = compact_json(redact_json(value, transforms))
            except (ValueError, TypeError, RecursionError):
                redacted = None
            else:
                redacted = cut_utf8(redacted, MAX_JSON_PAYLOAD_BYTES)
        if redacted is None and body.strip():
            # Four bytes per character at most: enough for the 2 KB kept, never the whole body.
            head = body[: 4 * MAX_TEXT_PAYLOAD_BYTES]
            redacted = redact_text(head.decode("utf-8", errors="replace"), tuple(transforms))
        return cls(
            slug=slug,
            order=order,
            polled_at=as_utc(polled_at),
            http_status=http_status,
            headers=headers,
            value=value,
            decode_problem=problem,
            previous_state=known_state(previous_state),
            payload_redacted=redacted,
            payload_sha256=sha256_hex(redacted) if redacted is not None else None,
            code_key=code_key,
        )

    @property
    def is_http_ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.http_status < 300

    @property
    def order_age_s(self) -> float:
        """Seconds from the order's creation (or registration, if unknown) to `polled_at`."""
        origin = self.order.created_at or self.order.registered_at
        return (self.polled_at - as_utc(origin)).total_seconds()

    def _base(self) -> dict[str, Any]:
        return {
            "provider": self.slug,
            "order_id": self.order.order_id,
            "order_kind": self.order.order_kind,
            "polled_at": self.polled_at,
            "http_status": self.http_status,
            "payload_redacted": self.payload_redacted,
            "payload_sha256": self.payload_sha256,
        }

    def observation(
        self,
        state: OrderState,
        *,
        is_terminal: bool | None = None,
        is_success: bool | None = _DEFAULT,
        **facts: Any,
    ) -> Observation:
        """A successful parse in `state`; terminal/success default to the state's own."""
        return build_observation(
            **self._base(),
            state=state.value,
            is_terminal=state.is_terminal if is_terminal is None else is_terminal,
            is_success=state.is_success if is_success is _DEFAULT else is_success,
            **facts,
        )

    def error(self, error_class: ErrorClass, message: str | None, **facts: Any) -> Observation:
        """A poll error: the previous state is repeated, `message` is made safe; the order's
        service and country are kept, as on every other observation."""
        state = self.previous_state
        return build_observation(
            **self._base(),
            state=state.value,
            is_terminal=state.is_terminal,
            is_success=state.is_success,
            error_class=error_class.value,
            error_message=message,
            **{"service": self.order.service, "country": self.order.country, **facts},
        )

    def http_error(self, error_class: ErrorClass | None = None) -> Observation:
        """A poll error for a non-2xx answer, with the body's reason and `Retry-After`.

        `error_class` overrides the class derived from the status (e.g. Baanx 498/499).
        """
        error_class = error_class or classify_http_status(self.http_status)
        detail = safe_message(error_detail(self.value))
        message = f"HTTP {self.http_status}" + (f": {detail}" if detail else "")
        return self.error(
            error_class or ErrorClass.CLIENT_ERROR,
            message,
            retry_after_s=retry_after_seconds(self.headers, self.polled_at),
        )

    def body_error(self, message: str | None, *, prefix: str = "error in body") -> Observation:
        """A poll error for a 2xx whose body reports an error (`not_found` if it says so)."""
        detail = safe_message(message)
        return self.error(body_error_class(message), f"{prefix}: {detail}" if detail else prefix)

    def parse_error(self, message: str) -> Observation:
        """A poll error for a body that is not the promised JSON shape."""
        return self.error(ErrorClass.PARSE_ERROR, message)
