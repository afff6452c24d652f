"""The sandbox's status answer of a declared provider, as pure data (no HTTP, no clock).

The answer is the `[sandbox] body` template, then the `body` of every phase the order has
entered (in order, so later phases add to earlier ones), then the phase's status word at the
status path (and its substatus at the substatus path). Strings in templates may hold
placeholders:

- `{order_id}` (`{order_id:int}` for a number), `{service}`, `{country}`, `{price}`;
- `{phone}` (`+<country prefix><10 digits>`, `{phone:digits}` without `+`), `{code}`
  (6 digits, `{code:int}` for a number): derived from the order id, stable across requests;
- times: `{created}`, `{window}` (the window's end), `{changed}` (the current phase's start),
  `{now}`, or a phase name (when the order first entered it), each with an optional format
  `:iso` (default, microseconds and `Z`), `:iso_ms`, `:iso_s`, `:epoch_s` or `:epoch_ms`.

A string that is exactly one placeholder becomes the value itself (a number, or null for a phase
not reached yet); placeholders inside longer strings are replaced by their text.

The loader renders every phase once with a sample order and parses it with the provider's own
adapter, so a declaration whose sandbox answers would not read as its lifecycle says is refused
before anything starts.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.providers.declarative.paths import INDEX_PATTERN, JsonPath
from pipeline.providers.declarative.schema import Phase, SandboxSection, StatusSection

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z_]+))?\}")
TIME_NAMES = ("created", "window", "changed", "now")
"""Time placeholders besides phase names (phase names may not take these)."""
VALUE_NAMES = ("order_id", "service", "country", "price", "phone", "code")
RESERVED_NAMES = frozenset((*TIME_NAMES, *VALUE_NAMES))
TIME_FORMATS = ("iso", "iso_ms", "iso_s", "epoch_s", "epoch_ms")
VALUE_FORMATS: dict[str, tuple[str, ...]] = {
    "order_id": ("int",),
    "phone": ("digits",),
    "code": ("int",),
}
DEFAULT_PHONE_PREFIX = "+1"
PHONE_DIGITS = 10
CODE_DIGITS = 6


class RenderError(ValueError):
    """A template that cannot be rendered (unknown placeholder, path that cannot be set)."""


@dataclasses.dataclass(frozen=True)
class OrderView:
    """What the answer of one order at one moment depends on.

    Attributes:
        order_id: the order's id.
        service: its service, if any.
        country: its country, if any.
        created_at: its creation time.
        window_ends_at: when its window ends, if it has one.
        milestones: phase name -> when it was first entered, in the order entered (up to now).
        phase: the phase it is in now.
        changed_at: when it entered `phase`.
        now: the moment of the answer.
        price: its price, if its service has one.
        phone_prefix: its country's phone prefix, if given.
    """

    order_id: str
    service: str | None
    country: str | None
    created_at: datetime
    window_ends_at: datetime | None
    milestones: Mapping[str, datetime]
    phase: Phase
    changed_at: datetime
    now: datetime
    price: float | None = None
    phone_prefix: str | None = None


def stable_digits(seed: str, count: int) -> str:
    """`count` decimal digits derived from `seed` (same seed, same digits; no leading zero)."""
    digest = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:16], "big")
    low = 10 ** (count - 1)
    return str(low + digest % (9 * low))


def format_time(moment: datetime, fmt: str) -> Any:
    """`moment` in one of `TIME_FORMATS`."""
    moment = moment.astimezone(UTC)
    if fmt == "epoch_s":
        return int(moment.timestamp())
    if fmt == "epoch_ms":
        return round(moment.timestamp() * 1000)
    if fmt == "iso_ms":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if fmt == "iso_s":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def placeholder_problem(name: str, fmt: str | None, phases: frozenset[str]) -> str | None:
    """Why `{name:fmt}` is not a placeholder of a lifecycle with `phases`, or None."""
    if name in VALUE_NAMES:
        allowed = VALUE_FORMATS.get(name, ())
        if fmt is not None and fmt not in allowed:
            return f"{{{name}:{fmt}}}: {name} takes " + (
                f"no format or :{', :'.join(allowed)}" if allowed else "no format"
            )
        return None
    if name in TIME_NAMES or name in phases:
        if fmt is not None and fmt not in TIME_FORMATS:
            return f"{{{name}:{fmt}}}: time formats are {', '.join(TIME_FORMATS)}"
        return None
    known = ", ".join((*VALUE_NAMES, *TIME_NAMES, *sorted(phases)))
    return f"unknown placeholder {{{name}}} (known: {known})"


def template_problems(value: Any, phases: frozenset[str]) -> list[str]:
    """Every placeholder problem in a template (strings at any depth)."""
    if isinstance(value, str):
        return [
            problem
            for match in PLACEHOLDER.finditer(value)
            if (problem := placeholder_problem(match.group(1), match.group(2), phases))
        ]
    if isinstance(value, Mapping):
        return [p for item in value.values() for p in template_problems(item, phases)]
    if isinstance(value, list):
        return [p for item in value for p in template_problems(item, phases)]
    return []


def _value(name: str, fmt: str | None, view: OrderView) -> Any:
    if name == "order_id":
        return int(view.order_id) if fmt == "int" and view.order_id.isdigit() else view.order_id
    if name == "service":
        return view.service
    if name == "country":
        return view.country
    if name == "price":
        return view.price
    if name == "phone":
        digits = (view.phone_prefix or DEFAULT_PHONE_PREFIX).lstrip("+") + stable_digits(
            f"{view.order_id}:phone", PHONE_DIGITS
        )
        return digits if fmt == "digits" else "+" + digits
    if name == "code":
        code = stable_digits(f"{view.order_id}:code", CODE_DIGITS)
        return int(code) if fmt == "int" else code
    moment = {
        "created": view.created_at,
        "window": view.window_ends_at,
        "changed": view.changed_at,
        "now": view.now,
    }.get(name, view.milestones.get(name))
    if moment is None:
        return None
    return format_time(moment, fmt or "iso")


def render_template(value: Any, view: OrderView) -> Any:
    """A copy of the template `value` with its placeholders filled for `view`."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return _value(whole.group(1), whole.group(2), view)

        def text(match: re.Match[str]) -> str:
            found = _value(match.group(1), match.group(2), view)
            return "" if found is None else str(found)

        return PLACEHOLDER.sub(text, value)
    if isinstance(value, Mapping):
        return {key: render_template(item, view) for key, item in value.items()}
    if isinstance(value, list):
        return [render_template(item, view) for item in value]
    return value


def merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Deep-merge `extra` into `into`: objects merge, anything else replaces."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def set_path(body: dict[str, Any], path: JsonPath, value: Any) -> None:
    """Put `value` at `path` in `body`, creating objects on the way (and appending one to an
    array when the step is the next index).

    Raises:
        RenderError: a step lands on a value that cannot hold it.
    """
    current: Any = body
    for position, step in enumerate(path.steps):
        last = position == len(path.steps) - 1
        if isinstance(current, dict):
            if last:
                current[step] = value
                return
            if not isinstance(current.get(step), dict | list):
                current[step] = {}
            current = current[step]
        elif isinstance(current, list) and INDEX_PATTERN.match(step):
            index = int(step)
            if index == len(current):
                current.append(value if last else {})
            elif not -len(current) <= index < len(current):
                raise RenderError(f"cannot set {path.text!r}: index {index} is past the end")
            elif last:
                current[index] = value
            if last:
                return
            current = current[index]
        else:
            where = ".".join(path.steps[:position]) or "body"
            raise RenderError(f"cannot set {path.text!r}: {where!r} holds no object")


def render_status(
    sandbox: SandboxSection, status: StatusSection, phases: Mapping[str, Phase], view: OrderView
) -> dict[str, Any]:
    """The status answer for `view` (a JSON object)."""
    body: dict[str, Any] = render_template(dict(sandbox.body), view)
    for name in view.milestones:
        merge(body, render_template(dict(phases[name].body), view))
    set_path(body, status.path, view.phase.status)
    if status.substatus is not None and view.phase.substatus is not None:
        set_path(body, status.substatus, view.phase.substatus)
    return body
