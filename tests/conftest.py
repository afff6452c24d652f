"""Shared fixtures: a temporary warehouse and settings that point at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.warehouse import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    """An empty, migrated warehouse in a temporary directory."""
    wh = Warehouse(tmp_path / "warehouse.duckdb", lock_timeout_s=5.0)
    wh.initialise()
    return wh
