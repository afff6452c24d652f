"""Error classification of an HTTP answer: status codes, `Retry-After`, error bodies; safe URLs."""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pipeline.model import ErrorClass
from pipeline.providers.common.bounds import MAX_JSON_STRING_CHARS
from pipeline.providers.common.timestamps import as_utc

ERROR_DETAIL_KEYS = ("errorMessage", "error", "reason", "message", "title", "detail")
"""Keys that carry a human-readable reason in provider error bodies, in order of preference."""

_NOT_FOUND = re.compile(r"not\s*found|no\s+such\s+order|unknown\s+order|does\s+not\s+exist", re.I)


def path_segment(value: str) -> str:
    """`value` percent-encoded as one path segment that cannot escape its place.

    Slashes, `?`, `#` and `%` are encoded by `quote`; all-dot segments (`.`, `..`) are encoded
    too, because HTTP clients remove them while normalising the path.
    """
    segment = quote(value, safe="")
    if segment and set(segment) == {"."}:
        segment = segment.replace(".", "%2E")
    return segment


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
