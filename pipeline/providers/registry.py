"""Every provider the product knows, by slug: the one place a provider is registered.

A provider comes from one of two places:

- a package under `pipeline/providers/<slug>/` (spec, adapter, sandbox imitation), listed once in
  `BUILTIN`;
- a declaration file (`<slug>.toml`) in `pipeline/providers/declared/` or in the folder named by
  `PIPELINE_PROVIDERS_DIR`, for providers whose status endpoint answers plain JSON.

Everything else (settings, Dagster resources, intake, analytics, report, sandbox, workload) loops
over `REGISTRY`. A declaration with a problem stops the import with an error naming the file, the
key and the problem: nothing starts half-configured.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.environment import environment
from pipeline.providers.base import ProviderAdapter
from pipeline.providers.spec import ProviderSpec

if TYPE_CHECKING:
    from pipeline.simulator.provider import SandboxProvider

BUILTIN: tuple[str, ...] = (
    "sms4sats",
    "smsonline",
    "ordinalsbot",
    "baanx",
    "altinn",
)
"""Provider packages under `pipeline/providers/`, in the order reports list them."""

DECLARED_DIR = Path(__file__).parent / "declared"
"""Declarations shipped with the product."""
PROVIDERS_DIR_VARIABLE = "PIPELINE_PROVIDERS_DIR"
"""Names a folder of the user's own declarations."""


@dataclasses.dataclass(frozen=True)
class RegisteredProvider:
    """One provider: its facts, its adapter, and how to build its sandbox imitation.

    Attributes:
        spec: the provider's facts.
        adapter: reads its answers (stateless, shareable).
        origin: the module or file it was registered from.
        load_sandbox: builds its sandbox imitation (imported only when the sandbox runs).
    """

    spec: ProviderSpec
    adapter: ProviderAdapter
    origin: str
    load_sandbox: Callable[[], SandboxProvider]


class Registry(Mapping[str, RegisteredProvider]):
    """Registered providers by slug, in registration order."""

    def __init__(self, providers: list[RegisteredProvider]) -> None:
        self._providers: dict[str, RegisteredProvider] = {}
        for provider in providers:
            slug = provider.spec.slug
            if slug in self._providers:
                first = self._providers[slug].origin
                raise ValueError(f"provider {slug!r} from {provider.origin} is already {first}")
            self._providers[slug] = provider

    def __getitem__(self, slug: str) -> RegisteredProvider:
        try:
            return self._providers[slug]
        except KeyError:
            known = ", ".join(self._providers)
            raise KeyError(f"no provider {slug!r}; known: {known}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)

    @property
    def slugs(self) -> tuple[str, ...]:
        """Every slug, in registration order."""
        return tuple(self._providers)

    def spec(self, slug: str) -> ProviderSpec:
        """The facts of `slug`."""
        return self[slug].spec

    def adapter(self, slug: str) -> ProviderAdapter:
        """The adapter of `slug`."""
        return self[slug].adapter

    def sandbox(self, slug: str) -> SandboxProvider:
        """The sandbox imitation of `slug`."""
        return self[slug].load_sandbox()

    def specs(self) -> tuple[ProviderSpec, ...]:
        """Every provider's facts, in registration order."""
        return tuple(p.spec for p in self._providers.values())

    def sandbox_credentials(self) -> dict[str, str]:
        """Variable → value of every credential the sandbox accepts."""
        return {c.variable: c.sandbox_value for s in self.specs() for c in s.credentials}

    @classmethod
    def load(cls, providers_dir: Path | None = None) -> Registry:
        """The built-in packages, the shipped declarations, then those in `providers_dir`."""
        providers = [_builtin(slug) for slug in BUILTIN]
        for folder in (DECLARED_DIR, providers_dir):
            if folder is not None:
                providers.extend(_declared(folder))
        return cls(providers)


def _builtin(slug: str) -> RegisteredProvider:
    module = importlib.import_module(f"pipeline.providers.{slug}")

    def load_sandbox() -> SandboxProvider:
        sandbox: SandboxProvider = importlib.import_module(
            f"pipeline.providers.{slug}.sandbox"
        ).SANDBOX
        return sandbox

    return RegisteredProvider(module.SPEC, module.ADAPTER, module.__name__, load_sandbox)


def _declared(folder: Path) -> list[RegisteredProvider]:
    from pipeline.providers.declarative import load_folder

    return [
        RegisteredProvider(d.spec, d.adapter, str(d.path), d.sandbox) for d in load_folder(folder)
    ]


def _providers_dir(env: Mapping[str, Any]) -> Path | None:
    folder = str(env.get(PROVIDERS_DIR_VARIABLE) or "").strip()
    return Path(folder) if folder else None


REGISTRY = Registry.load(_providers_dir(environment()))
"""The providers of this process."""

PROVIDERS: tuple[str, ...] = REGISTRY.slugs
"""Every provider slug, in registration order."""

ADAPTERS: dict[str, ProviderAdapter] = {slug: p.adapter for slug, p in REGISTRY.items()}
"""Adapter instances (stateless, shareable) keyed by provider slug."""


def get_adapter(slug: str) -> ProviderAdapter:
    """The adapter for `slug`.

    Raises:
        KeyError: no provider is registered under `slug`.
    """
    return REGISTRY.adapter(slug)


def get_spec(slug: str) -> ProviderSpec:
    """The facts of `slug`.

    Raises:
        KeyError: no provider is registered under `slug`.
    """
    return REGISTRY.spec(slug)


def default_kind(slug: str) -> str:
    """The order kind assumed when a user registers an order without naming one."""
    return REGISTRY.spec(slug).order_kinds[0]
