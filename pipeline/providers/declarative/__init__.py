"""Providers declared in one TOML file each, for status endpoints that answer plain JSON.

A declaration (`<slug>.toml`, in `pipeline/providers/declared/` or the folder named by
`PIPELINE_PROVIDERS_DIR`) gives the provider's facts (the `ProviderSpec` fields), its status
request (`[request]`), where the status lives and what it means (`[status]`), event times
(`[times]`), informational fields (`[fields]`), error shapes (`[errors]`), what is redacted
(`[redactions]`), its polling policy (`[policy]`) and a sandbox imitation (`[sandbox]`). See
`docs/providers/declaring-a-provider.md` for the format.

    from pipeline.providers.declarative import load_file, load_folder

    provider = load_file(Path("fivesim.toml"))
    provider.spec, provider.adapter, provider.sandbox()   # facts, adapter, sandbox half
    load_folder(Path("pipeline/providers/declared"))     # every *.toml there, by name

A file with any problem raises `DeclarationError` (`<file>: <key.path>: <problem>`), and
`load_folder` accepts all of a folder or nothing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.providers.declarative.adapter import DeclarativeAdapter
from pipeline.providers.declarative.loader import read_declaration
from pipeline.providers.declarative.schema import Declaration, DeclarationError
from pipeline.providers.spec import ProviderSpec

if TYPE_CHECKING:
    from pipeline.simulator.provider import SandboxProvider

SUFFIX = ".toml"
BUILTIN_PACKAGE = "pipeline.providers"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "declared"
"""The declarations shipped with the product (a user's folder may not declare these again)."""


@dataclasses.dataclass(frozen=True)
class DeclaredProvider:
    """One provider loaded from its declaration.

    Attributes:
        declaration: everything the file says.
        adapter: reads its answers.
    """

    declaration: Declaration
    adapter: DeclarativeAdapter
    _built: dict[str, SandboxProvider] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def spec(self) -> ProviderSpec:
        """The provider's facts."""
        return self.declaration.spec

    @property
    def path(self) -> Path:
        """The file it was declared in."""
        return self.declaration.path

    def sandbox(self) -> SandboxProvider:
        """Its sandbox imitation (built on first use; imports the simulator)."""
        if "sandbox" not in self._built:
            from pipeline.providers.declarative.sandbox import build_sandbox

            self._built["sandbox"] = build_sandbox(self.declaration)
        return self._built["sandbox"]


def load_file(path: Path) -> DeclaredProvider:
    """The provider declared in `path`.

    Raises:
        DeclarationError: the file cannot be read or has a problem.
    """
    declaration = read_declaration(Path(path))
    return DeclaredProvider(declaration, DeclarativeAdapter(declaration))


def load_folder(folder: Path) -> list[DeclaredProvider]:
    """Every provider declared in `folder` (its `*.toml` files, by name).

    Raises:
        DeclarationError: the folder does not exist, a file has a problem, two files declare
            the same slug, or a slug names a built-in provider package or a shipped declaration.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DeclarationError(folder, "(folder)", "is not a directory")
    providers: list[DeclaredProvider] = []
    seen: dict[str, Path] = {}
    shipped = (
        {p.stem: p for p in SHIPPED_DIR.glob(f"*{SUFFIX}")}
        if folder.resolve() != SHIPPED_DIR
        else {}
    )
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        provider = load_file(path)
        slug = provider.spec.slug
        if slug in seen or slug in shipped:
            first = seen.get(slug) or shipped[slug]
            raise DeclarationError(path, "slug", f"{slug!r} is already declared in {first}")
        if _is_builtin(slug):
            raise DeclarationError(
                path, "slug", f"{slug!r} is a built-in provider (pipeline/providers/{slug}/)"
            )
        seen[slug] = path
        providers.append(provider)
    return providers


def _is_builtin(slug: str) -> bool:
    """Whether `pipeline/providers/<slug>` is a package or module of the product."""
    try:
        return importlib.util.find_spec(f"{BUILTIN_PACKAGE}.{slug}") is not None
    except (ImportError, ValueError):
        return False


__all__ = [
    "Declaration",
    "DeclarationError",
    "DeclarativeAdapter",
    "DeclaredProvider",
    "load_file",
    "load_folder",
]
