"""What the provider modules share: the `Reply` type, JSON encoding, time formats, derived values.

Handlers return a `Reply` rather than a Starlette response, so fault injection can still change
the body (drift, unknown statuses) or its bytes (truncation) before anything is sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from pipeline.simulator.state import Sandbox

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
PROBLEM_CONTENT_TYPE = "application/problem+json; charset=utf-8"
MAX_REQUEST_BODY_BYTES = 64 * 1024

PathKey = str | int
"""One step into a JSON value: an object key or a list index."""


@dataclasses.dataclass
class Reply:
    """A response not yet encoded.

    Attributes:
        status: HTTP status.
        body: the JSON value to send; ignored when `raw` is set.
        raw: exact body bytes (`b""` for an empty body).
        headers: extra headers.
        content_type: the `Content-Type` header.
        indent: JSON indentation (None: compact).
        status_path: where the order's status sits in `body` (for unknown-status faults).
        record_path: where the order object sits in `body` (for schema-drift faults).
    """

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE
    indent: int | None = None
    status_path: tuple[PathKey, ...] | None = None
    record_path: tuple[PathKey, ...] = ()

    def encode(self) -> bytes:
        """The body bytes."""
        if self.raw is not None:
            return self.raw
        return encode_json(self.body, self.indent)


def encode_json(value: Any, indent: int | None = None) -> bytes:
    """Strict JSON (compact unless `indent`), UTF-8."""
    if indent is None:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return json.dumps(value, indent=indent, ensure_ascii=False).encode("utf-8")


def json_reply(body: Any, status: int = 200, **fields: Any) -> Reply:
    """A JSON reply."""
    return Reply(status=status, body=body, **fields)


def empty_reply(status: int, headers: dict[str, str] | None = None) -> Reply:
    """A reply with an empty body and no content type."""
    return Reply(status=status, raw=b"", headers=headers or {}, content_type="")


def to_response(reply: Reply, body: bytes | None = None) -> Response:
    """A Starlette response for `reply` (with `body` instead of its encoding, if given)."""
    content = reply.encode() if body is None else body
    headers = dict(reply.headers)
    if reply.content_type:
        headers["content-type"] = reply.content_type
    return Response(content=content, status_code=reply.status, headers=headers)


Handler = Callable[[Request, "Sandbox"], Awaitable[Reply]]
"""An endpoint's logic: the request and the sandbox in, a `Reply` out."""


@dataclasses.dataclass(frozen=True)
class RouteSpec:
    """One endpoint of a provider, relative to its slug prefix.

    Attributes:
        path: Starlette path after the prefix (e.g. `/v1/order/{orderId}`).
        methods: HTTP methods.
        kind: `status`, `create` or `action` (what fault rules may target).
        handler: the endpoint's logic.
    """

    path: str
    methods: tuple[str, ...]
    kind: str
    handler: Handler


@dataclasses.dataclass(frozen=True)
class ProviderWire:
    """A provider's HTTP surface: its routes and its own error bodies.

    Attributes:
        slug: provider slug, also the path prefix.
        routes: endpoints, in matching order.
        error_reply: the provider's body for an injected HTTP error status (5xx).
        rate_limited_reply: the provider's 429 with `Retry-After` (whole seconds).
        poll_path: path (after the slug prefix) of an order's status endpoint, with
            `{order_id}` and `{owner}` placeholders; credentials not included.
    """

    slug: str
    routes: Sequence[RouteSpec]
    error_reply: Callable[[int], Reply]
    rate_limited_reply: Callable[[int], Reply]
    poll_path: str


async def read_json(request: Request) -> Any:
    """The request body as JSON, or None when empty, too large or not JSON."""
    body = await request.body()
    if not body or len(body) > MAX_REQUEST_BODY_BYTES:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def client_address(request: Request) -> str:
    """The client's address (for per-IP limits)."""
    return request.client.host if request.client else "unknown"


# --- values derived from ids (stable across requests) ----------------------------------------


def stable_int(seed: str, low: int, high: int) -> int:
    """An integer in [low, high) derived from `seed` (same seed, same value)."""
    digest = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "big")
    return low + digest % (high - low)


def stable_hex(seed: str, length: int) -> str:
    """`length` hex characters derived from `seed`."""
    text = ""
    counter = 0
    while len(text) < length:
        text += hashlib.sha256(f"{seed}:{counter}".encode()).hexdigest()
        counter += 1
    return text[:length]


# --- time formats -----------------------------------------------------------------------------


def epoch_ms(moment: datetime) -> int:
    """Unix epoch milliseconds."""
    return round(moment.timestamp() * 1000)


def epoch_s(moment: datetime) -> int:
    """Unix epoch seconds."""
    return int(moment.timestamp())


def naive_utc(moment: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC without a zone designator (SMSOnline)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with `Z`, fractional digits trimmed of trailing zeros (.NET style)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def iso_ms_z(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and `Z` (JavaScript `toISOString`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def pg_text(moment: datetime, offset_hours: int) -> str:
    """PostgreSQL `timestamptz` text with an hour-only offset, e.g. `2023-03-27 17:07:12.662+03`."""
    local = moment.astimezone(timezone(timedelta(hours=offset_hours)))
    sign = "+" if offset_hours >= 0 else "-"
    return local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + f"{sign}{abs(offset_hours):02d}"
