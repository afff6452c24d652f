"""Bounds on what an adapter keeps of a provider's answer: ids, texts, payloads, JSON."""

from __future__ import annotations

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
