"""Strict JSON decoding that never raises, and typed field readers that fail with `ShapeError`.

Everything decoded is made storable right after `json.loads`: lone surrogates (valid as JSON
escapes, not encodable as UTF-8) and NUL become U+FFFD in every key and string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pipeline.providers.common.bounds import (
    MAX_JSON_DEPTH,
)
from pipeline.redaction import storable

_T = TypeVar("_T")


class ShapeError(ValueError):
    """The body is JSON but not the shape the contract promises. Messages never hold values."""


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
