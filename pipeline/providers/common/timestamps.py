"""Timestamp normalisation to aware UTC: epoch seconds or milliseconds, tolerant ISO-8601."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from pipeline.providers.common.bounds import MAX_RAW_TIMESTAMP_CHARS
from pipeline.providers.common.json_values import json_type
from pipeline.redaction import cut, scrub

EPOCH_SECONDS_RANGE = (1e8, 1e11)
"""Plausible epoch seconds (1973..5138); outside it a seconds field is treated as malformed."""
EPOCH_MILLIS_RANGE = (1e11, 1e14)
"""Plausible epoch milliseconds (1973..5138)."""

_ISO_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
    r"(?:Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_HOUR_ONLY_OFFSET = re.compile(r"([+-]\d{2})$")
_FRACTION = re.compile(r"[.,](\d+)")


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
