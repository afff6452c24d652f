"""Helpers every provider adapter shares, one module per concern:

- `bounds`: how much of an answer is kept (ids, texts, payloads, JSON depth);
- `json_values`: JSON decoding that never raises, typed field readers failing with `ShapeError`;
- `timestamps`: epoch seconds / milliseconds and tolerant ISO-8601 to aware UTC;
- `http`: error classification from the HTTP status, `Retry-After` and error bodies;
- `sensitive`: hashing and masking of codes and phone numbers, redaction of stored bodies;
- `observations`: `ParseContext`, which builds every `Observation` through `build_observation`;
- `adapter`: `BaseAdapter`, the never-raising `parse` wrapper every adapter inherits.

Adapters import from here; the names below are the package's public surface.
"""

from __future__ import annotations

from pipeline.providers.common.adapter import BaseAdapter
from pipeline.providers.common.bounds import (
    MAX_JSON_DEPTH,
    MAX_JSON_KEY_CHARS,
    MAX_JSON_PAYLOAD_BYTES,
    MAX_JSON_STRING_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_ORDER_ID_CHARS,
    MAX_RAW_TIMESTAMP_CHARS,
    MAX_STATUS_CHARS,
    MAX_TEXT_PAYLOAD_BYTES,
    PHONE_VISIBLE_DIGITS,
)
from pipeline.providers.common.http import (
    ERROR_DETAIL_KEYS,
    body_error_class,
    classify_http_status,
    error_detail,
    header,
    path_segment,
    retry_after_seconds,
)
from pipeline.providers.common.json_values import (
    ShapeError,
    decode_json,
    json_type,
    lenient,
    opt_bool,
    opt_int,
    opt_list,
    opt_number,
    opt_object,
    opt_str,
    opt_text,
    require_object,
    storable_json,
)
from pipeline.providers.common.observations import (
    OBSERVATION_TEXT,
    ParseContext,
    build_observation,
    known_state,
)
from pipeline.providers.common.sensitive import (
    FREE_TEXT_KEYS,
    SECRET_KEY_PARTS,
    Transform,
    code_facts,
    compact_json,
    cut_utf8,
    hashed_code_value,
    hashed_value,
    is_secret_key,
    mask_phone,
    masked_phone_value,
    normalise_code,
    redact_json,
    redact_text,
    safe_message,
    sha256_hex,
)
from pipeline.providers.common.timestamps import (
    EPOCH_MILLIS_RANGE,
    EPOCH_SECONDS_RANGE,
    TimestampReader,
    as_utc,
    from_epoch,
    parse_iso,
)

__all__ = [
    "EPOCH_MILLIS_RANGE",
    "EPOCH_SECONDS_RANGE",
    "ERROR_DETAIL_KEYS",
    "FREE_TEXT_KEYS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_KEY_CHARS",
    "MAX_JSON_PAYLOAD_BYTES",
    "MAX_JSON_STRING_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_ORDER_ID_CHARS",
    "MAX_RAW_TIMESTAMP_CHARS",
    "MAX_STATUS_CHARS",
    "MAX_TEXT_PAYLOAD_BYTES",
    "OBSERVATION_TEXT",
    "PHONE_VISIBLE_DIGITS",
    "SECRET_KEY_PARTS",
    "BaseAdapter",
    "ParseContext",
    "ShapeError",
    "TimestampReader",
    "Transform",
    "as_utc",
    "body_error_class",
    "build_observation",
    "classify_http_status",
    "code_facts",
    "compact_json",
    "cut_utf8",
    "decode_json",
    "error_detail",
    "from_epoch",
    "hashed_code_value",
    "hashed_value",
    "header",
    "is_secret_key",
    "json_type",
    "known_state",
    "lenient",
    "mask_phone",
    "masked_phone_value",
    "normalise_code",
    "opt_bool",
    "opt_int",
    "opt_list",
    "opt_number",
    "opt_object",
    "opt_str",
    "opt_text",
    "parse_iso",
    "path_segment",
    "redact_json",
    "redact_text",
    "require_object",
    "retry_after_seconds",
    "safe_message",
    "sha256_hex",
    "storable_json",
]
