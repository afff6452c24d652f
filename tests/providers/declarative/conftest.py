"""Fixtures for declared providers (the declarations themselves are in `declarative_helpers`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from declarative_helpers import ACME, write_declaration

from pipeline.providers.declarative import DeclaredProvider, load_file


@pytest.fixture
def acme(tmp_path: Path) -> DeclaredProvider:
    """The generic declared provider."""
    return load_file(write_declaration(tmp_path, ACME))


@pytest.fixture
def declare(tmp_path: Path) -> Callable[..., Path]:
    """Write a declaration into a fresh folder: `declare(text, name="acme.toml")`."""
    counter = iter(range(1_000_000))

    def make(text: str, name: str = "acme.toml") -> Path:
        folder = tmp_path / f"d{next(counter)}"
        folder.mkdir()
        return write_declaration(folder, text, name)

    return make
