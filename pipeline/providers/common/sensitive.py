"""What never leaves an adapter whole: SMS codes (hashed), phone numbers (masked), secrets in
stored bodies (dropped or scrubbed; the text scrubbing itself is `pipeline.redaction.scrub`,
shared with the log filter)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.providers.common.bounds import (
    MAX_JSON_KEY_CHARS,
    MAX_JSON_STRING_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_TEXT_PAYLOAD_BYTES,
    PHONE_VISIBLE_DIGITS,
)
from pipeline.providers.common.http import ERROR_DETAIL_KEYS
from pipeline.redaction import REDACTED, Level, cut, scrub

SECRET_KEY_PARTS = ("token", "apikey", "secret", "authorization", "password", "cookie")
"""A JSON key whose lower-cased, punctuation-free name contains one of these is dropped."""
FREE_TEXT_KEYS = frozenset({*ERROR_DETAIL_KEYS, "description", "note"})
"""Keys whose values are prose a provider may fill with anything: scrubbed hardest."""

KEY_CACHE_SIZE = 4096
"""JSON keys whose checks are remembered: a provider's bodies repeat the same few dozen keys, so
each is checked once, not once per poll; the bound keeps hostile bodies from growing it."""

Transform = Callable[[Any], Any]
"""Replaces one sensitive JSON value by its redacted form."""


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


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def is_secret_key(key: str) -> bool:
    """Whether a JSON key names a credential (token, apiKey, secret, authorization, ...)."""
    flat = re.sub(r"[^a-z0-9]", "", key.lower())
    return any(part in flat for part in SECRET_KEY_PARTS)


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def _scrubbed_key(key: str) -> str:
    return scrub(key, max_chars=MAX_JSON_KEY_CHARS)


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
                name = _scrubbed_key(key)
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
