"""JSON paths of a declaration: `data.status`, `items.0.status`, `sms.-1.code`.

A path is dot-separated steps. On an object a step is a key; on an array it is an index (a
negative one counts from the end). A step that is all digits is still a key when the value there
is an object, so `{"0": …}` and `[…]` are both reachable by `x.0`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pipeline.providers.common import ShapeError, json_type

PATH_PATTERN = re.compile(r"^[^.\s]+(?:\.[^.\s]+)*$")
"""Non-empty steps without whitespace, separated by single dots."""
INDEX_PATTERN = re.compile(r"^-?[0-9]+$")
MAX_PATH_STEPS = 16

_MISSING: Any = object()


@dataclasses.dataclass(frozen=True)
class JsonPath:
    """A parsed JSON path.

    Attributes:
        text: the path as written (also its name in error messages).
        steps: its steps.
    """

    text: str
    steps: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        """The path written as `text`.

        Raises:
            ValueError: not a path (empty step, whitespace, too deep).
        """
        if not PATH_PATTERN.match(text):
            raise ValueError(
                f"{text!r} is not a JSON path (keys and indices separated by single dots)"
            )
        steps = tuple(text.split("."))
        if len(steps) > MAX_PATH_STEPS:
            raise ValueError(f"{text!r} is deeper than {MAX_PATH_STEPS} steps")
        return cls(text, steps)

    @property
    def last_key(self) -> str:
        """The last step (the key a redaction must name)."""
        return self.steps[-1]

    def get(self, value: Any) -> Any:
        """The value at this path, or None when any step is missing or of another type."""
        found = _walk(value, self.steps, strict=False)
        return None if found is _MISSING else found

    def get_strict(self, value: Any) -> Any:
        """The value at this path, or None when a step is missing.

        Raises:
            ShapeError: a step lands on a value that is neither object nor array (the contract
                promised a container there).
        """
        found = _walk(value, self.steps, strict=True)
        return None if found is _MISSING else found

    def __str__(self) -> str:
        return self.text


def _walk(value: Any, steps: tuple[str, ...], *, strict: bool) -> Any:
    current = value
    for position, step in enumerate(steps):
        if isinstance(current, dict):
            current = current.get(step, _MISSING)
        elif isinstance(current, list) and INDEX_PATTERN.match(step):
            index = int(step)
            current = current[index] if -len(current) <= index < len(current) else _MISSING
        elif not strict:
            return _MISSING
        else:
            where = ".".join(steps[:position]) or "body"
            expected = "object" if isinstance(current, list) else "object or array"
            raise ShapeError(f"field {where!r}: expected {expected}, got {json_type(current)}")
        if current is _MISSING or current is None:
            return _MISSING
    return current


def read_str(path: JsonPath, body: Any) -> str | None:
    """A string at `path`; absent or null gives None.

    Raises:
        ShapeError: the value (or a container on the way) has another type.
    """
    value = path.get_strict(body)
    if value is None or isinstance(value, str):
        return value
    raise ShapeError(f"field {path.text!r}: expected string, got {json_type(value)}")


def read_text(path: JsonPath, body: Any) -> str | None:
    """A string-or-integer at `path` as a stripped string (codes, phone numbers); empty is None.

    Raises:
        ShapeError: another type (a float has already lost digits of a code).
    """
    value = path.get_strict(body)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ShapeError(f"field {path.text!r}: expected string or integer, got {json_type(value)}")


def lenient_str(path: JsonPath, body: Any) -> str | None:
    """A string at `path`, None for anything else (informational fields)."""
    value = path.get(body)
    return value if isinstance(value, str) else None


def lenient_text(path: JsonPath, body: Any) -> str | None:
    """`read_text`, but None instead of an error."""
    try:
        return read_text(path, body)
    except ShapeError:
        return None


def lenient_number(path: JsonPath, body: Any) -> float | None:
    """A finite number at `path` (booleans rejected), None for anything else."""
    value = path.get(body)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def lenient_bool(path: JsonPath, body: Any) -> bool | None:
    """A boolean at `path`, None for anything else."""
    value = path.get(body)
    return value if isinstance(value, bool) else None
