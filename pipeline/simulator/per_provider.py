"""`PerProvider`: one value per registered provider, given for some, the provider's default for
the rest. `LifecycleConfig` (lifecycle figures) and `ProviderOptions` (behaviour switches) are
built on it:

    options = ProviderOptions(ordinalsbot=OrdinalsBotOptions(create_limit=10))
    options.of("ordinalsbot").create_limit     # 10
    options["altinn"]                          # Altinn's default options
    options.replace(altinn=AltinnOptions(indent=0))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Self

from pipeline.simulator.provider import sandbox_provider


class PerProvider:
    """Per-provider values by slug; a provider not given takes its `SandboxProvider` default.

    Subclasses name the `SandboxProvider` attribute holding the default. Instances are
    immutable; `replace` makes a changed copy. Providers' sandboxes are loaded only when a value
    is given or looked up.

    Args:
        **given: slug -> value (an instance of the default's class).

    Raises:
        ValueError: an unknown slug, or a value of another class than the provider's default.
    """

    default_attribute: ClassVar[str]
    __slots__ = ("_given",)
    _given: Mapping[str, Any]

    def __init__(self, **given: Any) -> None:
        for slug, value in given.items():
            default = self._default(slug)
            if type(value) is not type(default):
                raise ValueError(
                    f"{type(self).__name__}({slug}=...): expected {type(default).__name__},"
                    f" got {type(value).__name__}"
                )
        object.__setattr__(self, "_given", MappingProxyType(dict(given)))

    def _default(self, slug: str) -> Any:
        return getattr(sandbox_provider(slug), self.default_attribute)

    def of(self, slug: str) -> Any:
        """The value for `slug` (given, else the provider's default).

        Raises:
            ValueError: no provider is registered under `slug`.
        """
        if slug in self._given:
            return self._given[slug]
        return self._default(slug)

    def __getitem__(self, slug: str) -> Any:
        return self.of(slug)

    def __getattr__(self, slug: str) -> Any:
        if slug.startswith("_"):
            raise AttributeError(slug)
        try:
            return self.of(slug)
        except ValueError as error:
            raise AttributeError(str(error)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    @property
    def given(self) -> Mapping[str, Any]:
        """The values given explicitly, by slug."""
        return self._given

    def replace(self, **changes: Any) -> Self:
        """A copy with the values of some providers replaced."""
        return type(self)(**{**self._given, **changes})

    def items(self) -> Iterator[tuple[str, Any]]:
        """(slug, value) of every registered provider."""
        from pipeline.providers.registry import REGISTRY

        return ((slug, self.of(slug)) for slug in REGISTRY)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, PerProvider)
        return dict(self._given) == dict(other._given)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self._given))))

    def __repr__(self) -> str:
        given = ", ".join(f"{slug}={value!r}" for slug, value in self._given.items())
        return f"{type(self).__name__}({given})"
