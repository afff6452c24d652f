"""The shared vocabulary: order kinds, canonical states, tracked orders and observations.

Providers themselves are data: `pipeline.providers.registry` lists them, each with its spec.

Everything downstream of a provider adapter speaks only these types. Raw provider bodies never
travel further than `pipeline.providers`.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any


class OrderKind(enum.StrEnum):
    """What was bought or sent: the kinds the built-in providers sell. A declared provider may
    name a kind of its own."""

    SMS_RECEIVE = "sms_receive"
    """A rented number waiting for an activation SMS (sms4sats receive, SMSOnline)."""
    SMS_SEND = "sms_send"
    """An outgoing SMS (sms4sats send orders)."""
    INSCRIPTION = "inscription"
    """A Bitcoin inscription order (OrdinalsBot)."""
    PRODUCT_ORDER = "product_order"
    """A crypto-card product payment (Baanx)."""
    NOTIFICATION_ORDER = "notification_order"
    """A public-sector email/SMS notification order (Altinn)."""


class OrderState(enum.StrEnum):
    """Canonical order states shared by every provider (PROVIDERS.md §6.1).

    A poll that fails (HTTP error, timeout, malformed body) does not change the state: the
    observation repeats the last known state, or `unknown` when there is none.
    """

    PENDING = "pending"
    """Order exists, awaiting payment, a scheduled time or a user action. Not terminal."""
    PROCESSING = "processing"
    """Paid or accepted; the provider is working (number assigned, inscribing). Not terminal."""
    CODE_RECEIVED = "code_received"
    """The deliverable arrived: SMS code received or SMS delivered. Terminal, success."""
    COMPLETED = "completed"
    """The provider reports fulfilment complete. Terminal, success."""
    FAILED = "failed"
    """Provider-side failure: payment rejected, no number, inscription error. Terminal, failure."""
    EXPIRED = "expired"
    """Not paid or not fulfilled within the provider's window. Terminal, failure."""
    CANCELLED = "cancelled"
    """Cancelled by the user, the provider or a send condition. Terminal, failure."""
    REFUNDED = "refunded"
    """Funds returned after an unfulfilled order. Terminal, failure."""
    UNKNOWN = "unknown"
    """Unrecognised status, or a poll error with no prior state. Not terminal."""

    @property
    def is_terminal(self) -> bool:
        """Whether the order is finished in this state (by default; adapters may refine)."""
        return self in TERMINAL_STATES

    @property
    def is_success(self) -> bool | None:
        """True for success, False for a failed outcome, None while the order is open."""
        if self in SUCCESS_STATES:
            return True
        if self in TERMINAL_STATES:
            return False
        return None


SUCCESS_STATES = frozenset({OrderState.CODE_RECEIVED, OrderState.COMPLETED})
TERMINAL_STATES = frozenset(
    {
        OrderState.CODE_RECEIVED,
        OrderState.COMPLETED,
        OrderState.FAILED,
        OrderState.EXPIRED,
        OrderState.CANCELLED,
        OrderState.REFUNDED,
    }
)
STATE_VALUES: tuple[str, ...] = tuple(s.value for s in OrderState)


class ErrorClass(enum.StrEnum):
    """Why a poll attempt did not yield a valid answer. `None` on an observation means success."""

    TIMEOUT = "timeout"
    """No response within the client timeout."""
    CONNECTION_ERROR = "connection_error"
    """Could not connect, or the connection broke mid-response."""
    RATE_LIMITED = "rate_limited"
    """HTTP 429: over the provider's request budget."""
    SERVER_ERROR = "server_error"
    """HTTP 5xx."""
    AUTH_INVALID = "auth_invalid"
    """HTTP 401, or a provider's bad-key answer: credentials missing, wrong or expired."""
    FORBIDDEN = "forbidden"
    """HTTP 403: credentials valid but not allowed to see this order."""
    CLIENT_KEY_INVALID = "client_key_invalid"
    """Baanx 498: the client id is not recognised."""
    CLIENT_KEY_MISSING = "client_key_missing"
    """Baanx 499: the client id header is absent."""
    NOT_FOUND = "not_found"
    """The provider does not know this order (404, empty list, 'not found' error body)."""
    CLIENT_ERROR = "client_error"
    """Any other 4xx, e.g. a malformed order id."""
    BODY_ERROR = "body_error"
    """A 2xx whose body reports an error (sms4sats `status:error`, OrdinalsBot `status:error`)."""
    PARSE_ERROR = "parse_error"
    """The body is not valid JSON or lacks the fields the contract promises."""
    CIRCUIT_OPEN = "circuit_open"
    """Not sent: the provider's circuit breaker is open after a sustained outage."""


# Errors caused by configuration, not by the provider being down: never retried in a storm.
CONFIG_ERRORS = frozenset(
    {
        ErrorClass.AUTH_INVALID,
        ErrorClass.FORBIDDEN,
        ErrorClass.CLIENT_KEY_INVALID,
        ErrorClass.CLIENT_KEY_MISSING,
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class TrackedOrder:
    """An order the team asked us to track.

    Attributes:
        provider: provider slug.
        order_id: the provider's order id, always a string.
        order_kind: an `OrderKind` value.
        registered_at: when we started tracking it (UTC); the time origin when the provider
            gives no creation time.
        created_at: when the order was created at the provider, if known (UTC).
        service: what was ordered, for grouping (SMS service, product id, channel).
        country: where, for grouping (SMS country).
    """

    provider: str
    order_id: str
    order_kind: str
    registered_at: datetime
    created_at: datetime | None = None
    service: str | None = None
    country: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    """One poll attempt of one order, normalised. Failed attempts are observations too.

    Adapters fill the parsed fields; the poller fills the attempt's context (`polled_at`,
    `latency_ms`, `attempt`). Secrets never enter: codes are hashed, phone numbers masked.
    """

    provider: str
    order_id: str
    order_kind: str
    polled_at: datetime
    state: str
    is_terminal: bool
    http_status: int | None = None
    latency_ms: float | None = None
    attempt: int = 1
    error_class: str | None = None
    error_message: str | None = None
    retry_after_s: float | None = None
    provider_status: str | None = None
    provider_substatus: str | None = None
    status_unrecognized: bool = False
    is_success: bool | None = None
    is_paid: bool | None = None
    has_code: bool | None = None
    code_sha256: str | None = None
    code_length: int | None = None
    phone_masked: str | None = None
    items_total: int | None = None
    items_succeeded: int | None = None
    amount: float | None = None
    amount_unit: str | None = None
    service: str | None = None
    country: str | None = None
    provider_created_at: datetime | None = None
    provider_scheduled_at: datetime | None = None
    provider_updated_at: datetime | None = None
    provider_paid_at: datetime | None = None
    provider_expires_at: datetime | None = None
    provider_timestamp_raw: str | None = None
    payload_sha256: str | None = None
    payload_redacted: str | None = None
    """The redacted body, stored once per hash in `payloads`; not a column of `observations`."""

    def as_row(self) -> dict[str, Any]:
        """The observation as a plain dict, one key per field."""
        return {name: getattr(self, name) for name in OBSERVATION_FIELDS}


OBSERVATION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Observation))
