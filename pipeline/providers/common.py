"""Helpers every provider adapter shares.

- JSON decoding that never raises, and typed field readers that fail with `ShapeError`;
- timestamp normalisation (epoch seconds / milliseconds, tolerant ISO-8601) to aware UTC;
- hashing and masking of codes and phone numbers, and redaction of bodies and messages (the
  text scrubbing itself is `pipeline.redaction.scrub`, shared with the log filter);
- error classification from HTTP status and `Retry-After`;
- `ParseContext`, one HTTP answer plus the order, which builds `Observation`s through
  `build_observation`, the one place their text fields are scrubbed and bounded;
- `BaseAdapter`, the never-raising `parse` wrapper the five adapters inherit.

Everything decoded is made storable right after `json.loads`: lone surrogates (valid as JSON
escapes, not encodable as UTF-8) and NUL become U+FFFD in every key and string.
"""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from pipeline.model import ErrorClass, Observation, OrderState, TrackedOrder
from pipeline.providers.base import PollingPolicy
from pipeline.redaction import REDACTED, Level, cut, scrub, storable

MAX_ORDER_ID_CHARS = 128
MAX_MESSAGE_CHARS = 300
MAX_STATUS_CHARS = 256
"""Bound of the short provider-written fields: status, substatus, service, country."""
MAX_TEXT_PAYLOAD_BYTES = 2048
"""Bound of a stored body that is not JSON."""
MAX_JSON_PAYLOAD_BYTES = 64 * 1024
"""Bound of a stored (redacted, re-serialised) JSON body; longer ones are cut and not JSON."""
MAX_JSON_STRING_CHARS = 4096
"""Bound of one string value of a stored JSON body (cut before it is scrubbed)."""
MAX_JSON_KEY_CHARS = 256
"""Bound of one key of a stored JSON body."""
MAX_JSON_DEPTH = 64
"""Bodies nested deeper are not parsed: no documented body goes past five levels."""
MAX_RAW_TIMESTAMP_CHARS = 64
PHONE_VISIBLE_DIGITS = 4

EPOCH_SECONDS_RANGE = (1e8, 1e11)
"""Plausible epoch seconds (1973..5138); outside it a seconds field is treated as malformed."""
EPOCH_MILLIS_RANGE = (1e11, 1e14)
"""Plausible epoch milliseconds (1973..5138)."""

SECRET_KEY_PARTS = ("token", "apikey", "secret", "authorization", "password", "cookie")
"""A JSON key whose lower-cased, punctuation-free name contains one of these is dropped."""
ERROR_DETAIL_KEYS = ("errorMessage", "error", "reason", "message", "title", "detail")
"""Keys that carry a human-readable reason in provider error bodies, in order of preference."""
FREE_TEXT_KEYS = frozenset({*ERROR_DETAIL_KEYS, "description", "note"})
"""Keys whose values are prose a provider may fill with anything: scrubbed hardest."""

_NOT_FOUND = re.compile(r"not\s*found|no\s+such\s+order|unknown\s+order|does\s+not\s+exist", re.I)
_ISO_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
    r"(?:Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_HOUR_ONLY_OFFSET = re.compile(r"([+-]\d{2})$")
_FRACTION = re.compile(r"[.,](\d+)")

_T = TypeVar("_T")

Transform = Callable[[Any], Any]
"""Replaces one sensitive JSON value by its redacted form."""


class ShapeError(ValueError):
    """The body is JSON but not the shape the contract promises. Messages never hold values."""


# --- JSON -------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


class _Unstorable(ValueError):
    """A decoded value we refuse to keep (too deep, a number that is no double)."""


def decode_json(body: bytes) -> tuple[Any, str | None]:
    """Decode a body as strict JSON without ever raising, and make every string storable.

    Returns:
        `(value, None)` on success, `(None, problem)` otherwise (empty, not UTF-8, not JSON,
        NaN/Infinity or a number out of double range, nesting deeper than `MAX_JSON_DEPTH`).
        The problem text never quotes the body.
    """
    if not body or not body.strip():
        return None, "empty body"
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "body is not UTF-8"
    try:
        return storable_json(json.loads(text, parse_constant=_reject_constant)), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg} at char {exc.pos})"
    except _Unstorable as exc:
        return None, f"invalid JSON ({exc})"
    except (ValueError, RecursionError) as exc:
        return None, f"invalid JSON ({type(exc).__name__})"


def storable_json(value: Any, depth: int = 0) -> Any:
    """A decoded value with every key and string made storable (see `storable`).

    Raises:
        _Unstorable: nesting deeper than `MAX_JSON_DEPTH`, or a non-finite float (`1e400`).
    """
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Unstorable("number out of range")
    if isinstance(value, list | dict) and depth >= MAX_JSON_DEPTH:
        raise _Unstorable(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, list):
        return [storable_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable_json(item, depth + 1) for key, item in value.items()}
    return value


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong_type(key: str, expected: str, value: Any) -> ShapeError:
    return ShapeError(f"field {key!r}: expected {expected}, got {json_type(value)}")


def require_object(value: Any, what: str = "body") -> dict[str, Any]:
    """`value` if it is a JSON object, else `ShapeError`."""
    if not isinstance(value, dict):
        raise ShapeError(f"{what}: expected object, got {json_type(value)}")
    return value


def opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    """A string field; absent or null gives None, another type raises `ShapeError`."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _wrong_type(key, "string", value)


def opt_bool(obj: Mapping[str, Any], key: str) -> bool | None:
    """A boolean field; absent or null gives None, another type raises `ShapeError`."""
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _wrong_type(key, "boolean", value)


def opt_int(obj: Mapping[str, Any], key: str) -> int | None:
    """An integer field (booleans rejected); absent or null gives None."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _wrong_type(key, "integer", value)


def opt_number(obj: Mapping[str, Any], key: str) -> float | None:
    """A finite numeric field (booleans rejected); absent or null gives None."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise _wrong_type(key, "number", value)


def opt_object(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """An object field; absent or null gives None."""
    value = obj.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise _wrong_type(key, "object", value)


def opt_list(obj: Mapping[str, Any], key: str) -> list[Any] | None:
    """An array field; absent or null gives None."""
    value = obj.get(key)
    if value is None or isinstance(value, list):
        return value
    raise _wrong_type(key, "array", value)


def opt_text(obj: Mapping[str, Any], key: str) -> str | None:
    """A string-or-integer field (ids, codes, phone numbers) as a stripped string.

    Empty strings give None. Floats and booleans raise `ShapeError`: a code or phone number that
    went through a float has already lost digits.
    """
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _wrong_type(key, "string or integer", value)


def lenient(
    reader: Callable[[Mapping[str, Any], str], _T | None],
) -> Callable[[Mapping[str, Any], str], _T | None]:
    """Wrap a field reader so a wrong type gives None: for informational fields only."""

    def read(obj: Mapping[str, Any], key: str) -> _T | None:
        try:
            return reader(obj, key)
        except ShapeError:
            return None

    return read


# --- timestamps -------------------------------------------------------------------------------


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive value is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def from_epoch(value: Any, unit: str) -> datetime | None:
    """An epoch number in `unit` ("s" or "ms") as aware UTC, or None if implausible.

    The unit is decided per field by the caller; the magnitude is only a sanity check.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    low, high = EPOCH_MILLIS_RANGE if unit == "ms" else EPOCH_SECONDS_RANGE
    if not low <= value < high:
        return None
    seconds = value / 1000 if unit == "ms" else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_iso(value: Any) -> datetime | None:
    """A tolerant ISO-8601 parser; returns aware UTC or None, never raises.

    Accepts a `T` or space separator, any number of fractional digits (truncated to
    microseconds), `Z`, `±HH:MM`, `±HHMM` and the hour-only `±HH` (Baanx, PostgreSQL style).
    A value without an offset is taken as UTC (SMSOnline's naive strings).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _ISO_TIMESTAMP.match(text):
        return None
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text)
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    elif len(text) > 10:
        text = _HOUR_ONLY_OFFSET.sub(r"\1:00", text) if text[-3] in "+-" else text
    try:
        return as_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        return None


class TimestampReader:
    """Reads timestamp fields and remembers the first malformed raw value.

    Attributes:
        raw: `"<field>=<raw value>"` of the first malformed timestamp seen, or None.
    """

    def __init__(self) -> None:
        self.raw: str | None = None

    def epoch(self, field: str, value: Any, unit: str) -> datetime | None:
        """An epoch field in `unit`; None (and remembered) when malformed."""
        if value is None:
            return None
        moment = from_epoch(value, unit)
        if moment is None:
            self._remember(field, value)
        return moment

    def iso(self, field: str, value: Any) -> datetime | None:
        """An ISO-8601 string field; None (and remembered) when malformed."""
        if value is None:
            return None
        moment = parse_iso(value)
        if moment is None:
            self._remember(field, value)
        return moment

    def _remember(self, field: str, value: Any) -> None:
        if self.raw is None:
            text = value if isinstance(value, str) else json_type(value)
            text = scrub(text, level="tokens", max_chars=MAX_RAW_TIMESTAMP_CHARS)
            self.raw = cut(f"{field}={text}", MAX_RAW_TIMESTAMP_CHARS)


# --- hashing, masking, redaction -------------------------------------------------------------


def sha256_hex(text: str) -> str:
    """SHA-256 of `text` (UTF-8) as lower-case hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_code(value: Any) -> str | None:
    """An SMS code or message as a stripped string (integers converted), or None if empty."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def code_facts(code: str | None, key: bytes) -> tuple[str | None, int | None]:
    """`(keyed hash, length)` of a normalised code, `(None, None)` without one.

    The hash is HMAC-SHA256 under the installation's key: a plain hash of a six-digit code is
    reversed by trying all million codes, a keyed one is not without the key (kept outside the
    warehouse). It still tells whether two answers carried the same code.
    """
    if code is None:
        return None, None
    return hmac.new(key, code.encode("utf-8"), hashlib.sha256).hexdigest(), len(code)


def mask_phone(value: Any) -> str | None:
    """A phone number with all but its last four digits replaced by `*`.

    Non-digits (`+`, spaces) are dropped; numbers of four digits or fewer are masked entirely.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    digits = re.sub(r"\D", "", str(value))
    if not digits:
        return None
    visible = digits[-PHONE_VISIBLE_DIGITS:] if len(digits) > PHONE_VISIBLE_DIGITS else ""
    return "*" * (len(digits) - len(visible)) + visible


def hashed_code_value(value: Any) -> Any:
    """Redaction transform: a code becomes `{"length": …}`; nothing derived from its digits is
    stored in the payload (the observation carries the keyed hash)."""
    code = normalise_code(value)
    if code is None:
        return value if value in (None, "") else REDACTED
    return {"length": len(code)}


def masked_phone_value(value: Any) -> Any:
    """Redaction transform: a phone number becomes its masked form."""
    if value is None:
        return None
    return mask_phone(value) or REDACTED


def hashed_value(value: Any) -> Any:
    """Redaction transform: a string (or each string of a list) becomes `sha256:<hex>`."""
    if value is None:
        return None
    if isinstance(value, list):
        return [hashed_value(item) for item in value]
    if isinstance(value, str | int) and not isinstance(value, bool):
        return "sha256:" + sha256_hex(str(value))
    return REDACTED


def is_secret_key(key: str) -> bool:
    """Whether a JSON key names a credential (token, apiKey, secret, authorization, ...)."""
    flat = re.sub(r"[^a-z0-9]", "", key.lower())
    return any(part in flat for part in SECRET_KEY_PARTS)


def redact_json(value: Any, transforms: Mapping[str, Transform], *, prose: bool = False) -> Any:
    """A copy of a decoded body with secrets dropped and sensitive values transformed.

    Keys naming credentials are removed at any depth; keys in `transforms` have their value
    replaced; other keys are scrubbed and cut to `MAX_JSON_KEY_CHARS`. Strings are cut to
    `MAX_JSON_STRING_CHARS` and scrubbed: as prose under `FREE_TEXT_KEYS`, for credentials
    elsewhere (ids and numbers in structured fields are kept).
    """
    if isinstance(value, dict):
        redacted: dict[str, Any] = {}
        for key, item in value.items():
            if is_secret_key(key):
                continue
            if key in transforms:
                redacted[key] = transforms[key](item)
            else:
                name = scrub(key, max_chars=MAX_JSON_KEY_CHARS)
                redacted[name] = redact_json(item, transforms, prose=key in FREE_TEXT_KEYS)
        return redacted
    if isinstance(value, list):
        return [redact_json(item, transforms, prose=prose) for item in value]
    if isinstance(value, str):
        level: Level = "prose" if prose else "credentials"
        return scrub(value, level=level, max_chars=MAX_JSON_STRING_CHARS)
    return value


def compact_json(value: Any) -> str:
    """Compact JSON with sorted keys: one text per meaning, so equal bodies hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def redact_text(text: str, sensitive_keys: tuple[str, ...]) -> str:
    """Redact a body that is not valid JSON (truncated, HTML), cut to 2 KB first.

    The values of `sensitive_keys` in JSON-looking fragments (`"code":48010`, possibly cut off)
    are replaced, then the whole text is scrubbed as prose.
    """
    text = cut(text, MAX_TEXT_PAYLOAD_BYTES, whole_words=True)
    for key in sensitive_keys:
        pattern = rf'("{re.escape(key)}"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}}\]\s]+)'
        text = re.sub(pattern, rf'\1"{REDACTED}"', text)
    text = scrub(text, level="prose", max_chars=MAX_TEXT_PAYLOAD_BYTES)
    return cut_utf8(text, MAX_TEXT_PAYLOAD_BYTES)


def cut_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` bytes of UTF-8, never inside a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def safe_message(text: str | None) -> str | None:
    """A short, single-line, redacted version of provider-written text for `error_message`."""
    if text is None:
        return None
    return scrub(text, level="prose", max_chars=MAX_MESSAGE_CHARS, single_line=True) or None


def path_segment(value: str) -> str:
    """`value` percent-encoded as one path segment that cannot escape its place.

    Slashes, `?`, `#` and `%` are encoded by `quote`; all-dot segments (`.`, `..`) are encoded
    too, because HTTP clients remove them while normalising the path.
    """
    segment = quote(value, safe="")
    if segment and set(segment) == {"."}:
        segment = segment.replace(".", "%2E")
    return segment


# --- HTTP errors ------------------------------------------------------------------------------


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def classify_http_status(status: int) -> ErrorClass | None:
    """The error class of an HTTP status, or None for 2xx."""
    if 200 <= status < 300:
        return None
    if status == 401:
        return ErrorClass.AUTH_INVALID
    if status == 403:
        return ErrorClass.FORBIDDEN
    if status == 404:
        return ErrorClass.NOT_FOUND
    if status == 429:
        return ErrorClass.RATE_LIMITED
    if status >= 500:
        return ErrorClass.SERVER_ERROR
    return ErrorClass.CLIENT_ERROR


def body_error_class(message: str | None) -> ErrorClass:
    """`not_found` when an in-body error message says so, else `body_error`."""
    if message and _NOT_FOUND.search(message[:MAX_JSON_STRING_CHARS]):
        return ErrorClass.NOT_FOUND
    return ErrorClass.BODY_ERROR


def retry_after_seconds(headers: Mapping[str, str], polled_at: datetime) -> float | None:
    """Seconds to wait from `Retry-After` (delta-seconds or HTTP-date), or None."""
    value = header(headers, "Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return max(0.0, (as_utc(when) - as_utc(polled_at)).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def error_detail(value: Any) -> str | None:
    """The human-readable reason of a decoded error body, if it carries one."""
    if not isinstance(value, dict):
        return None
    for key in ERROR_DETAIL_KEYS:
        detail = value.get(key)
        if isinstance(detail, str) and detail.strip():
            return detail
    return None


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
        """A poll error: the previous state is repeated, `message` is made safe."""
        state = self.previous_state
        return build_observation(
            **self._base(),
            state=state.value,
            is_terminal=state.is_terminal,
            is_success=state.is_success,
            error_class=error_class.value,
            error_message=message,
            **facts,
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


class BaseAdapter:
    """What every adapter shares: the never-raising `parse` and the id length check.

    Subclasses set `slug`, `policy` and `redactions`, and implement `build_request`,
    `_parse` and `_check_order_id`.
    """

    slug: str
    policy: PollingPolicy
    redactions: ClassVar[Mapping[str, Transform]] = {}
    """JSON key → transform applied to its value in the stored payload."""
    http_errors: ClassVar[Mapping[int, ErrorClass]] = {}
    """Provider-specific error classes for non-2xx statuses (e.g. Baanx 498/499)."""

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
        return self._check_order_id(order_id)

    def _check_order_id(self, order_id: str) -> str | None:
        return None
