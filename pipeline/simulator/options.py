"""Switches for behaviour the real APIs leave undocumented (PROVIDERS.md §7 and §8).

Each provider declares its own switches (an options dataclass, `SandboxProvider.options`, with
the documented default where a document exists, else the inference PROVIDERS.md recommends) and
the allowed values of its enumerated ones (`SandboxProvider.option_choices`). Change them in code
(`ProviderOptions(sms4sats=Sms4satsOptions(code_type="string"))`) or from the CLI with
`--option sms4sats.code_type=string` (see `apply_overrides`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from pipeline.simulator.per_provider import PerProvider
from pipeline.simulator.provider import sandbox_provider


class ProviderOptions(PerProvider):
    """The unknowns of every provider: `ProviderOptions(<slug>=<options>)`.

    A provider not named takes its `SandboxProvider.options`; `options.of(slug)` (or
    `options[slug]`, `options.<slug>`) gives the options its handlers read.
    """

    default_attribute = "options"


def choices(provider: str, field: str) -> tuple[str, ...]:
    """The allowed values of `provider.field` (empty when any value of its type goes)."""
    return tuple(sandbox_provider(provider).option_choices.get(field, ()))


def apply_overrides(options: ProviderOptions, overrides: list[str]) -> ProviderOptions:
    """`options` with `provider.field=value` overrides applied.

    Values are converted to the field's type (`true`/`false` for booleans, comma-separated
    lists for tuples).

    Raises:
        ValueError: a malformed override, an unknown provider or field, or a bad value.
    """
    for override in overrides:
        name, sep, text = override.partition("=")
        provider, dot, field = name.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"option {override!r}: expected provider.field=value")
        try:
            section = options.of(provider)
        except ValueError:
            raise ValueError(f"option {override!r}: unknown provider {provider!r}") from None
        hints = get_type_hints(type(section))
        if field not in hints:
            known = ", ".join(f.name for f in dataclasses.fields(section))
            raise ValueError(f"option {override!r}: unknown field (known: {known})")
        value = _convert(hints[field], text.strip(), override)
        allowed = choices(provider, field)
        if allowed and value not in allowed:
            raise ValueError(f"option {override!r}: choose one of {', '.join(allowed)}")
        changed: Any = dataclasses.replace(section, **{field: value})
        options = options.replace(**{provider: changed})
    return options


def _convert(kind: Any, text: str, override: str) -> Any:
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
        return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"option {override!r}: bad value {text!r}") from None
