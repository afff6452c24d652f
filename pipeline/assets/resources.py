"""Dagster resources: the warehouse location and provider settings, from configuration."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipeline.settings import Settings
from pipeline.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the DuckDB warehouse lives. Opens nothing until an asset asks for a connection."""

    data_dir: str
    lock_timeout_s: float = 30.0

    def warehouse(self) -> Warehouse:
        """The read-write warehouse."""
        return Warehouse(Path(self.data_dir) / "warehouse.duckdb", lock_timeout_s=self.lock_timeout_s)

    def settings(self) -> Settings:
        """Full settings with this resource's data directory."""
        base = Settings.from_env()
        return Settings(
            data_dir=Path(self.data_dir),
            sandbox_url=base.sandbox_url,
            lock_timeout_s=self.lock_timeout_s,
            providers=base.providers,
        )
