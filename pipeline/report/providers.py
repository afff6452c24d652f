"""How the report names, orders and colours providers: from their specs in the registry.

Nothing here lists providers by name: a provider declared in a file shows up with its own name
and colour. A slug in the data that no spec registers (a provider since removed) keeps its slug
as its name and gets `OTHER_COLOUR`, after the registered ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline.providers.registry import PROVIDERS, REGISTRY
from pipeline.providers.spec import ProviderSpec

OTHER_COLOUR = "#777777"
"""Colour of a provider no spec registers."""


def _spec(slug: str) -> ProviderSpec | None:
    return REGISTRY.spec(slug) if slug in REGISTRY else None


def provider_colour(provider: str) -> str:
    """The provider's colour (`ProviderSpec.colour`), or `OTHER_COLOUR`."""
    spec = _spec(provider)
    return spec.colour if spec else OTHER_COLOUR


def provider_name(provider: str) -> str:
    """How people write the provider (`ProviderSpec.display_name`), or its slug."""
    spec = _spec(provider)
    return spec.display_name if spec else str(provider)


def provider_order(providers: Sequence[str]) -> list[str]:
    """`providers` in the registry's order (`PROVIDERS`), unknown ones last (sorted)."""
    known = [p for p in PROVIDERS if p in providers]
    return known + sorted(set(providers) - set(known))


def names(specs: Iterable[ProviderSpec]) -> str:
    """The specs' display names, comma-separated."""
    return ", ".join(spec.display_name for spec in specs)


def code_providers() -> tuple[ProviderSpec, ...]:
    """The providers that sell an order kind whose deliverable is a code."""
    return tuple(spec for spec in REGISTRY.specs() if spec.code_kinds)


def code_kinds() -> tuple[str, ...]:
    """Every order kind whose deliverable is a code, in registry order."""
    kinds = [str(kind) for spec in REGISTRY.specs() for kind in spec.code_kinds]
    return tuple(dict.fromkeys(kinds))


def never_expiring() -> tuple[ProviderSpec, ...]:
    """The providers none of whose orders expire (no expiry window)."""
    return tuple(spec for spec in REGISTRY.specs() if not spec.expiry_windows)
